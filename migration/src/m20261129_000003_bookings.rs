//! Visits: sessions, capacity pools shared by sessions, bookings, notifications, idempotency
//! keys; booking rules on bases and calendar feed tokens on schools.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Bases {
    Table,
    Id,
    BookingOpensDays,
    BookingClosesHours,
    MaxGroupSize,
}

#[derive(DeriveIden)]
enum Schools {
    Table,
    Id,
    FeedTokenHash,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    BaseId,
    StartsAt,
    EndsAt,
    Capacity,
    Audiences,
    BookingOpensAt,
    BookingClosesAt,
    MaxGroupSize,
    Status,
    OwnPoolId,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CapacityPools {
    Table,
    Id,
    Name,
    Unit,
    Capacity,
    Used,
    BaseId,
    SessionId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SessionPools {
    Table,
    SessionId,
    PoolId,
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
    SessionId,
    BaseId,
    SchoolId,
    Students,
    Teachers,
    Audience,
    ContactName,
    ContactPhone,
    Needs,
    Status,
    Code,
    StartsAt,
    EndsAt,
    CreatedBy,
    CancelledAt,
    CancelReason,
    LateCancellation,
    CheckedInAt,
    StudentsPresent,
    TeachersPresent,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    SchoolId,
    BookingId,
    Kind,
    Message,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    UserId,
    Key,
    RequestHash,
    Status,
    Response,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for col in [
            integer(Bases::BookingOpensDays).default(30).take(),
            integer(Bases::BookingClosesHours).default(24).take(),
            integer_null(Bases::MaxGroupSize).take(),
        ] {
            m.alter_table(Table::alter().table(Bases::Table).add_column(col).take()).await?;
        }
        m.alter_table(Table::alter().table(Schools::Table).add_column(string_null(Schools::FeedTokenHash)).take())
            .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(pk_uuid(Sessions::Id))
                .col(uuid(Sessions::BaseId))
                .col(timestamp_with_time_zone(Sessions::StartsAt))
                .col(timestamp_with_time_zone(Sessions::EndsAt))
                .col(integer(Sessions::Capacity))
                .col(json(Sessions::Audiences))
                .col(timestamp_with_time_zone(Sessions::BookingOpensAt))
                .col(timestamp_with_time_zone(Sessions::BookingClosesAt))
                .col(integer_null(Sessions::MaxGroupSize))
                .col(string(Sessions::Status))
                .col(uuid(Sessions::OwnPoolId))
                .col(integer(Sessions::Version))
                .col(timestamp_with_time_zone(Sessions::CreatedAt))
                .col(timestamp_with_time_zone(Sessions::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_sessions_base",
                    (Sessions::Table, Sessions::BaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_sessions_base_start", Sessions::Table, &["base_id", "starts_at"])).await?;
        m.create_index(index("idx_sessions_start", Sessions::Table, &["starts_at"])).await?;

        // `used` can never leave [0, capacity]: the database itself refuses an overbooking.
        m.create_table(
            Table::create()
                .table(CapacityPools::Table)
                .col(pk_uuid(CapacityPools::Id))
                .col(string(CapacityPools::Name))
                .col(string(CapacityPools::Unit))
                .col(integer(CapacityPools::Capacity))
                .col(integer(CapacityPools::Used))
                .col(uuid_null(CapacityPools::BaseId))
                .col(uuid_null(CapacityPools::SessionId))
                .col(timestamp_with_time_zone(CapacityPools::CreatedAt))
                .col(timestamp_with_time_zone(CapacityPools::UpdatedAt))
                .check(
                    Expr::col(CapacityPools::Used)
                        .gte(0)
                        .and(Expr::col(CapacityPools::Used).lte(Expr::col(CapacityPools::Capacity))),
                )
                .foreign_key(&mut fk(
                    "fk_capacity_pools_base",
                    (CapacityPools::Table, CapacityPools::BaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_capacity_pools_base", CapacityPools::Table, &["base_id"])).await?;

        m.create_table(
            Table::create()
                .table(SessionPools::Table)
                .col(uuid(SessionPools::SessionId))
                .col(uuid(SessionPools::PoolId))
                .primary_key(Index::create().col(SessionPools::SessionId).col(SessionPools::PoolId))
                .foreign_key(&mut fk(
                    "fk_session_pools_session",
                    (SessionPools::Table, SessionPools::SessionId),
                    (Sessions::Table, Sessions::Id),
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_session_pools_pool",
                    (SessionPools::Table, SessionPools::PoolId),
                    (CapacityPools::Table, CapacityPools::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_session_pools_pool", SessionPools::Table, &["pool_id"])).await?;

        m.create_table(
            Table::create()
                .table(Bookings::Table)
                .col(pk_uuid(Bookings::Id))
                .col(uuid(Bookings::SessionId))
                .col(uuid(Bookings::BaseId))
                .col(uuid(Bookings::SchoolId))
                .col(integer(Bookings::Students))
                .col(integer(Bookings::Teachers))
                .col(string(Bookings::Audience))
                .col(string(Bookings::ContactName))
                .col(string(Bookings::ContactPhone))
                .col(text_null(Bookings::Needs))
                .col(string(Bookings::Status))
                .col(string(Bookings::Code))
                .col(timestamp_with_time_zone(Bookings::StartsAt))
                .col(timestamp_with_time_zone(Bookings::EndsAt))
                .col(uuid_null(Bookings::CreatedBy))
                .col(timestamp_with_time_zone_null(Bookings::CancelledAt))
                .col(text_null(Bookings::CancelReason))
                .col(boolean(Bookings::LateCancellation).default(false))
                .col(timestamp_with_time_zone_null(Bookings::CheckedInAt))
                .col(integer_null(Bookings::StudentsPresent))
                .col(integer_null(Bookings::TeachersPresent))
                .col(timestamp_with_time_zone(Bookings::CreatedAt))
                .col(timestamp_with_time_zone(Bookings::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_bookings_session",
                    (Bookings::Table, Bookings::SessionId),
                    (Sessions::Table, Sessions::Id),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_bookings_school",
                    (Bookings::Table, Bookings::SchoolId),
                    (Schools::Table, Schools::Id),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_bookings_base",
                    (Bookings::Table, Bookings::BaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_bookings_session_status", Bookings::Table, &["session_id", "status", "id"])).await?;
        m.create_index(index("idx_bookings_school_status", Bookings::Table, &["school_id", "status", "starts_at"]))
            .await?;
        m.create_index(index("idx_bookings_status_ends", Bookings::Table, &["status", "ends_at"])).await?;
        m.create_index(index("idx_bookings_base", Bookings::Table, &["base_id", "id"])).await?;

        m.create_table(
            Table::create()
                .table(Notifications::Table)
                .col(pk_uuid(Notifications::Id))
                .col(uuid(Notifications::SchoolId))
                .col(uuid_null(Notifications::BookingId))
                .col(string(Notifications::Kind))
                .col(text(Notifications::Message))
                .col(timestamp_with_time_zone(Notifications::CreatedAt))
                .col(timestamp_with_time_zone_null(Notifications::DeliveredAt))
                .foreign_key(&mut fk(
                    "fk_notifications_school",
                    (Notifications::Table, Notifications::SchoolId),
                    (Schools::Table, Schools::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_notifications_school", Notifications::Table, &["school_id", "id"])).await?;
        m.create_index(index("idx_notifications_booking", Notifications::Table, &["booking_id"])).await?;

        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(uuid(IdempotencyKeys::UserId))
                .col(string(IdempotencyKeys::Key))
                .col(string(IdempotencyKeys::RequestHash))
                .col(integer(IdempotencyKeys::Status))
                .col(json(IdempotencyKeys::Response))
                .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                .primary_key(Index::create().col(IdempotencyKeys::UserId).col(IdempotencyKeys::Key))
                .foreign_key(&mut fk(
                    "fk_idempotency_keys_user",
                    (IdempotencyKeys::Table, IdempotencyKeys::UserId),
                    (Users::Table, Users::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_idempotency_keys_created", IdempotencyKeys::Table, &["created_at"])).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            Notifications::Table.into_iden(),
            Bookings::Table.into_iden(),
            SessionPools::Table.into_iden(),
            CapacityPools::Table.into_iden(),
            Sessions::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).take()).await?;
        }
        m.alter_table(Table::alter().table(Schools::Table).drop_column(Schools::FeedTokenHash).take()).await?;
        for col in [
            Bases::MaxGroupSize.into_iden(),
            Bases::BookingClosesHours.into_iden(),
            Bases::BookingOpensDays.into_iden(),
        ] {
            m.alter_table(Table::alter().table(Bases::Table).drop_column(col).take()).await?;
        }
        Ok(())
    }
}
