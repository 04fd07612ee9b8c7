//! Webhooks: notifications may be addressed to one account (`user_id`: a district officer's,
//! an admin's, or a subscription's owner told that it was disabled) and carry the time they
//! were handed to the webhook outbox (`dispatched_at`; the table is rebuilt, which SQLite
//! needs to change a CHECK constraint); the subscriptions (`webhooks`) and their deliveries
//! (`webhook_deliveries`, one per subscription and event).

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

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
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    SchoolId,
    BaseId,
    UserId,
    BookingId,
    Kind,
    Message,
    CreatedAt,
    DeliveredAt,
    DispatchedAt,
}

#[derive(DeriveIden)]
enum NotificationsNew {
    Table,
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    OwnerId,
    Url,
    EventTypes,
    Description,
    Secret,
    Enabled,
    ConsecutiveFailures,
    FailingSince,
    DisabledAt,
    DisabledReason,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    EventId,
    EventType,
    BookingId,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    LeaseToken,
    LastStatus,
    LastError,
    CreatedAt,
    DeliveredAt,
}

const OLD_COLUMNS: &str = "id, school_id, base_id, booking_id, kind, message, created_at, delivered_at";

/// The notifications table as of `user_id`'s presence: with it, one of the three recipients
/// must be set.
fn notifications_table(with_user: bool) -> TableCreateStatement {
    let mut t = Table::create()
        .table(NotificationsNew::Table)
        .col(pk_uuid(Notifications::Id))
        .col(uuid_null(Notifications::SchoolId))
        .col(uuid_null(Notifications::BaseId))
        .take();
    if with_user {
        t.col(uuid_null(Notifications::UserId));
    }
    t.col(uuid_null(Notifications::BookingId))
        .col(string(Notifications::Kind))
        .col(text(Notifications::Message))
        .col(timestamp_with_time_zone(Notifications::CreatedAt))
        .col(timestamp_with_time_zone_null(Notifications::DeliveredAt));
    if with_user {
        t.col(timestamp_with_time_zone_null(Notifications::DispatchedAt));
    }
    t.foreign_key(&mut fk(
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
    ));
    let recipient = Expr::col(Notifications::SchoolId).is_not_null().or(Expr::col(Notifications::BaseId).is_not_null());
    if with_user {
        t.foreign_key(&mut fk(
            "fk_notifications_user",
            (NotificationsNew::Table, Notifications::UserId),
            (Users::Table, Users::Id),
            ForeignKeyAction::Cascade,
        ))
        .check(recipient.or(Expr::col(Notifications::UserId).is_not_null()));
    } else {
        t.check(recipient);
    }
    t
}

/// Replaces `notifications` by `notifications_new` and indexes it again.
async fn swap_in(m: &SchemaManager<'_>, with_user: bool) -> Result<(), DbErr> {
    let db = m.get_connection();
    m.drop_table(Table::drop().table(Notifications::Table).take()).await?;
    m.rename_table(Table::rename().table(NotificationsNew::Table, Notifications::Table).take()).await?;
    if m.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres {
        db.execute_unprepared(
            "ALTER TABLE notifications RENAME CONSTRAINT notifications_new_pkey TO notifications_pkey",
        )
        .await?;
    }
    m.create_index(index("idx_notifications_school", Notifications::Table, &["school_id", "id"])).await?;
    db.execute_unprepared(
        "CREATE INDEX idx_notifications_base ON notifications (base_id, id) WHERE base_id IS NOT NULL",
    )
    .await?;
    m.create_index(index("idx_notifications_booking", Notifications::Table, &["booking_id"])).await?;
    if with_user {
        db.execute_unprepared(
            "CREATE INDEX idx_notifications_user ON notifications (user_id, id) WHERE user_id IS NOT NULL",
        )
        .await?;
        // The outbox: what the webhook worker has not handed on yet (a handful of rows).
        db.execute_unprepared(
            "CREATE INDEX idx_notifications_undispatched ON notifications (id) WHERE dispatched_at IS NULL",
        )
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on every backend: the rebuild's statements must run on one connection,
    /// all or none.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(notifications_table(true)).await?;
        // Notices from before webhooks existed count as dispatched: no subscription predates them.
        m.get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO notifications_new ({OLD_COLUMNS}, dispatched_at) \
                 SELECT {OLD_COLUMNS}, created_at FROM notifications"
            ))
            .await?;
        swap_in(m, true).await?;

        m.create_table(
            Table::create()
                .table(Webhooks::Table)
                .col(pk_uuid(Webhooks::Id))
                .col(uuid(Webhooks::OwnerId))
                .col(string_len(Webhooks::Url, 2048))
                .col(text(Webhooks::EventTypes))
                .col(text_null(Webhooks::Description))
                .col(string(Webhooks::Secret))
                .col(boolean(Webhooks::Enabled).default(true))
                .col(integer(Webhooks::ConsecutiveFailures).default(0))
                .col(timestamp_with_time_zone_null(Webhooks::FailingSince))
                .col(timestamp_with_time_zone_null(Webhooks::DisabledAt))
                .col(text_null(Webhooks::DisabledReason))
                .col(timestamp_with_time_zone(Webhooks::CreatedAt))
                .col(timestamp_with_time_zone(Webhooks::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_webhooks_owner",
                    (Webhooks::Table, Webhooks::OwnerId),
                    (Users::Table, Users::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_webhooks_owner", Webhooks::Table, &["owner_id", "id"])).await?;

        m.create_table(
            Table::create()
                .table(WebhookDeliveries::Table)
                .col(pk_uuid(WebhookDeliveries::Id))
                .col(uuid(WebhookDeliveries::WebhookId))
                .col(uuid(WebhookDeliveries::EventId))
                .col(string(WebhookDeliveries::EventType))
                .col(uuid_null(WebhookDeliveries::BookingId))
                .col(text(WebhookDeliveries::Payload))
                .col(string(WebhookDeliveries::Status))
                .col(integer(WebhookDeliveries::Attempts).default(0))
                .col(timestamp_with_time_zone(WebhookDeliveries::NextAttemptAt))
                .col(timestamp_with_time_zone_null(WebhookDeliveries::LeaseUntil))
                .col(uuid_null(WebhookDeliveries::LeaseToken))
                .col(integer_null(WebhookDeliveries::LastStatus))
                .col(text_null(WebhookDeliveries::LastError))
                .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                .col(timestamp_with_time_zone_null(WebhookDeliveries::DeliveredAt))
                .foreign_key(&mut fk(
                    "fk_webhook_deliveries_webhook",
                    (WebhookDeliveries::Table, WebhookDeliveries::WebhookId),
                    (Webhooks::Table, Webhooks::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        // One delivery per subscription and event, however many workers fan the event out.
        m.create_index(
            index("idx_webhook_deliveries_event", WebhookDeliveries::Table, &["webhook_id", "event_id"])
                .unique()
                .take(),
        )
        .await?;
        // The log of one subscription, newest first.
        m.create_index(index("idx_webhook_deliveries_webhook", WebhookDeliveries::Table, &["webhook_id", "id"]))
            .await?;
        let db = m.get_connection();
        // What is due: pending rows only, by when.
        db.execute_unprepared(
            "CREATE INDEX idx_webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'",
        )
        .await?;
        // The order per booking: an earlier pending delivery of the same booking holds a later one back.
        db.execute_unprepared(
            "CREATE INDEX idx_webhook_deliveries_booking ON webhook_deliveries (webhook_id, booking_id, event_id) \
             WHERE status = 'pending' AND booking_id IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(WebhookDeliveries::Table).take()).await?;
        m.drop_table(Table::drop().table(Webhooks::Table).take()).await?;
        let db = m.get_connection();
        db.execute_unprepared("DELETE FROM notifications WHERE school_id IS NULL AND base_id IS NULL").await?;
        m.create_table(notifications_table(false)).await?;
        db.execute_unprepared(&format!(
            "INSERT INTO notifications_new ({OLD_COLUMNS}) SELECT {OLD_COLUMNS} FROM notifications"
        ))
        .await?;
        swap_in(m, false).await
    }
}
