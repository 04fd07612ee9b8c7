//! Changing bookings and sessions: a booking's version (its `ETag`, and its calendar event's
//! sequence), the time its session was moved (a cancellation after that is never late) and
//! the reminder last sent (days before the visit: each sent once, by a conditional update);
//! notifications to a base's operators as well as to schools (`school_id` becomes optional,
//! `base_id` is added: the table is rebuilt, which SQLite needs to drop a NOT NULL); and the
//! operators' daily reminders already sent, one row each, so that several instances send each
//! once.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Version,
    SessionMovedAt,
    RemindedDays,
}

#[derive(DeriveIden)]
enum Schools {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Bases {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    SchoolId,
    BaseId,
    BookingId,
    Kind,
    Message,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum NotificationsNew {
    Table,
}

#[derive(DeriveIden)]
enum SentReminders {
    Table,
    Key,
    SentAt,
}

const COLUMNS: &str = "id, school_id, booking_id, kind, message, created_at, delivered_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on every backend: the rebuild's statements must run on one connection
    /// (SQLite's migrations otherwise take any of the pool's), all or none.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Bookings::Table).add_column(integer(Bookings::Version).default(1)).take())
            .await?;
        m.alter_table(
            Table::alter()
                .table(Bookings::Table)
                .add_column(timestamp_with_time_zone_null(Bookings::SessionMovedAt))
                .take(),
        )
        .await?;
        m.alter_table(Table::alter().table(Bookings::Table).add_column(integer_null(Bookings::RemindedDays)).take())
            .await?;

        m.create_table(
            Table::create()
                .table(NotificationsNew::Table)
                .col(pk_uuid(Notifications::Id))
                .col(uuid_null(Notifications::SchoolId))
                .col(uuid_null(Notifications::BaseId))
                .col(uuid_null(Notifications::BookingId))
                .col(string(Notifications::Kind))
                .col(text(Notifications::Message))
                .col(timestamp_with_time_zone(Notifications::CreatedAt))
                .col(timestamp_with_time_zone_null(Notifications::DeliveredAt))
                .foreign_key(&mut fk(
                    "fk_notifications_school_v2",
                    (NotificationsNew::Table, Notifications::SchoolId),
                    (Schools::Table, Schools::Id),
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_notifications_base",
                    (NotificationsNew::Table, Notifications::BaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Cascade,
                ))
                .check(
                    Expr::col(Notifications::SchoolId).is_not_null().or(Expr::col(Notifications::BaseId).is_not_null()),
                )
                .take(),
        )
        .await?;
        let db = m.get_connection();
        db.execute_unprepared(&format!(
            "INSERT INTO notifications_new ({COLUMNS}) SELECT {COLUMNS} FROM notifications"
        ))
        .await?;
        m.drop_table(Table::drop().table(Notifications::Table).take()).await?;
        m.rename_table(Table::rename().table(NotificationsNew::Table, Notifications::Table).take()).await?;
        keep_key_name(m).await?;
        m.create_index(index("idx_notifications_school", Notifications::Table, &["school_id", "id"])).await?;
        // Partial: a booking's notification (the hot path) has no base and adds no entry here.
        db.execute_unprepared(
            "CREATE INDEX idx_notifications_base ON notifications (base_id, id) WHERE base_id IS NOT NULL",
        )
        .await?;
        m.create_index(index("idx_notifications_booking", Notifications::Table, &["booking_id"])).await?;

        m.create_table(
            Table::create()
                .table(SentReminders::Table)
                .col(string(SentReminders::Key).primary_key())
                .col(timestamp_with_time_zone(SentReminders::SentAt))
                .take(),
        )
        .await?;
        m.create_index(index("idx_sent_reminders_at", SentReminders::Table, &["sent_at"])).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SentReminders::Table).take()).await?;
        let db = m.get_connection();
        db.execute_unprepared("DELETE FROM notifications WHERE school_id IS NULL").await?;
        m.create_table(
            Table::create()
                .table(NotificationsNew::Table)
                .col(pk_uuid(Notifications::Id))
                .col(uuid(Notifications::SchoolId))
                .col(uuid_null(Notifications::BookingId))
                .col(string(Notifications::Kind))
                .col(text(Notifications::Message))
                .col(timestamp_with_time_zone(Notifications::CreatedAt))
                .col(timestamp_with_time_zone_null(Notifications::DeliveredAt))
                .foreign_key(&mut fk(
                    "fk_notifications_school",
                    (NotificationsNew::Table, Notifications::SchoolId),
                    (Schools::Table, Schools::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO notifications_new ({COLUMNS}) SELECT {COLUMNS} FROM notifications"
        ))
        .await?;
        m.drop_table(Table::drop().table(Notifications::Table).take()).await?;
        m.rename_table(Table::rename().table(NotificationsNew::Table, Notifications::Table).take()).await?;
        keep_key_name(m).await?;
        m.create_index(index("idx_notifications_school", Notifications::Table, &["school_id", "id"])).await?;
        m.create_index(index("idx_notifications_booking", Notifications::Table, &["booking_id"])).await?;
        m.alter_table(Table::alter().table(Bookings::Table).drop_column(Bookings::RemindedDays).take()).await?;
        m.alter_table(Table::alter().table(Bookings::Table).drop_column(Bookings::SessionMovedAt).take()).await?;
        m.alter_table(Table::alter().table(Bookings::Table).drop_column(Bookings::Version).take()).await
    }
}

/// On PostgreSQL the rebuilt table's primary key keeps the name it was created with; give it
/// the table's own (SQLite names no constraints).
async fn keep_key_name(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    if m.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres {
        m.get_connection()
            .execute_unprepared(
                "ALTER TABLE notifications RENAME CONSTRAINT notifications_new_pkey TO notifications_pkey",
            )
            .await?;
    }
    Ok(())
}
