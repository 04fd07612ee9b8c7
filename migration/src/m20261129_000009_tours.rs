//! Science tours (科普一日游): day routes of 2–5 legs, each leg a session at a base; a tour's
//! own places are a capacity pool (`pool_id`); a tour booking's legs are bookings
//! (`bookings.tour_booking_id`), so every rule and every reader of bookings sees them.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Schools {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CapacityPools {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    TourBookingId,
}

#[derive(DeriveIden)]
enum Tours {
    Table,
    Id,
    Title,
    Audience,
    MeetingPoint,
    Lat,
    Lon,
    Places,
    PoolId,
    DistrictCode,
    Status,
    StartsAt,
    EndsAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TourLegs {
    Table,
    TourId,
    Position,
    SessionId,
}

#[derive(DeriveIden)]
enum TourBookings {
    Table,
    Id,
    TourId,
    SchoolId,
    Students,
    Teachers,
    ContactName,
    ContactPhone,
    Needs,
    Status,
    Code,
    CreatedBy,
    CancelledAt,
    CancelReason,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Tours::Table)
                .col(pk_uuid(Tours::Id))
                .col(string(Tours::Title))
                .col(string(Tours::Audience))
                .col(string(Tours::MeetingPoint))
                .col(double(Tours::Lat))
                .col(double(Tours::Lon))
                .col(integer(Tours::Places))
                .col(uuid(Tours::PoolId))
                .col(string_null(Tours::DistrictCode))
                .col(string(Tours::Status))
                .col(timestamp_with_time_zone(Tours::StartsAt))
                .col(timestamp_with_time_zone(Tours::EndsAt))
                .col(uuid_null(Tours::CreatedBy))
                .col(timestamp_with_time_zone(Tours::CreatedAt))
                .col(timestamp_with_time_zone(Tours::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_tours_pool",
                    (Tours::Table, Tours::PoolId),
                    (CapacityPools::Table, CapacityPools::Id),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_tours_created_by",
                    (Tours::Table, Tours::CreatedBy),
                    (Users::Table, Users::Id),
                    ForeignKeyAction::SetNull,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_tours_start", Tours::Table, &["starts_at", "id"])).await?;
        m.create_index(index("idx_tours_location", Tours::Table, &["lat", "lon"])).await?;
        m.create_index(index("idx_tours_pool", Tours::Table, &["pool_id"]).unique().take()).await?;

        m.create_table(
            Table::create()
                .table(TourLegs::Table)
                .col(uuid(TourLegs::TourId))
                .col(integer(TourLegs::Position))
                .col(uuid(TourLegs::SessionId))
                .primary_key(Index::create().col(TourLegs::TourId).col(TourLegs::Position))
                .foreign_key(&mut fk(
                    "fk_tour_legs_tour",
                    (TourLegs::Table, TourLegs::TourId),
                    (Tours::Table, Tours::Id),
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_tour_legs_session",
                    (TourLegs::Table, TourLegs::SessionId),
                    (Sessions::Table, Sessions::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_tour_legs_session", TourLegs::Table, &["session_id"])).await?;

        m.create_table(
            Table::create()
                .table(TourBookings::Table)
                .col(pk_uuid(TourBookings::Id))
                .col(uuid(TourBookings::TourId))
                .col(uuid(TourBookings::SchoolId))
                .col(integer(TourBookings::Students))
                .col(integer(TourBookings::Teachers))
                .col(string(TourBookings::ContactName))
                .col(string(TourBookings::ContactPhone))
                .col(text_null(TourBookings::Needs))
                .col(string(TourBookings::Status))
                .col(string(TourBookings::Code))
                .col(uuid_null(TourBookings::CreatedBy))
                .col(timestamp_with_time_zone_null(TourBookings::CancelledAt))
                .col(text_null(TourBookings::CancelReason))
                .col(timestamp_with_time_zone(TourBookings::CreatedAt))
                .col(timestamp_with_time_zone(TourBookings::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_tour_bookings_tour",
                    (TourBookings::Table, TourBookings::TourId),
                    (Tours::Table, Tours::Id),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_tour_bookings_school",
                    (TourBookings::Table, TourBookings::SchoolId),
                    (Schools::Table, Schools::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_tour_bookings_tour", TourBookings::Table, &["tour_id", "status", "id"])).await?;
        m.create_index(index("idx_tour_bookings_school", TourBookings::Table, &["school_id", "id"])).await?;

        // SQLite adds a column but not a foreign key to an existing table: the legs point at
        // their tour booking by id, kept by the code that writes both in one transaction.
        m.alter_table(Table::alter().table(Bookings::Table).add_column(uuid_null(Bookings::TourBookingId)).take())
            .await?;
        m.create_index(index("idx_bookings_tour_booking", Bookings::Table, &["tour_booking_id"])).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_bookings_tour_booking").table(Bookings::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(Bookings::Table).drop_column(Bookings::TourBookingId).take()).await?;
        m.drop_table(Table::drop().table(TourBookings::Table).take()).await?;
        m.drop_table(Table::drop().table(TourLegs::Table).take()).await?;
        m.drop_table(Table::drop().table(Tours::Table).take()).await
    }
}
