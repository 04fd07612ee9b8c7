//! The statistics rollup: each closed month's figures per base, district and the city
//! (`stat_months`), the schools that visited each of them that month (`stat_school_months`),
//! and per month the generation of the raw rows it was counted from (`stat_rollups`), so
//! that a month changed after its rollup is read from the raw rows until it is rolled up
//! again. And the index that finds a period's bookings by their visit's start.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Bookings {
    Table,
}

#[derive(DeriveIden)]
enum StatMonths {
    Table,
    Unit,
    Month,
    SessionsHeld,
    PlacesOffered,
    Bookings,
    VisitorsBooked,
    VisitorsCheckedIn,
    SchoolGroups,
    LateCancellations,
    NoShows,
}

#[derive(DeriveIden)]
enum StatSchoolMonths {
    Table,
    Unit,
    Month,
    SchoolId,
}

#[derive(DeriveIden)]
enum StatRollups {
    Table,
    Month,
    Generation,
    RolledGeneration,
    RolledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(StatMonths::Table)
                .if_not_exists()
                // A base's id (as the statistics write it), a district's code, or `city`.
                .col(string(StatMonths::Unit))
                // yyyymm, in the city's time.
                .col(integer(StatMonths::Month))
                .col(big_integer(StatMonths::SessionsHeld))
                .col(big_integer(StatMonths::PlacesOffered))
                .col(big_integer(StatMonths::Bookings))
                .col(big_integer(StatMonths::VisitorsBooked))
                .col(big_integer(StatMonths::VisitorsCheckedIn))
                .col(big_integer(StatMonths::SchoolGroups))
                .col(big_integer(StatMonths::LateCancellations))
                .col(big_integer(StatMonths::NoShows))
                .primary_key(Index::create().col(StatMonths::Month).col(StatMonths::Unit))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(StatSchoolMonths::Table)
                .if_not_exists()
                .col(string(StatSchoolMonths::Unit))
                .col(integer(StatSchoolMonths::Month))
                .col(uuid(StatSchoolMonths::SchoolId))
                .primary_key(
                    Index::create()
                        .col(StatSchoolMonths::Month)
                        .col(StatSchoolMonths::Unit)
                        .col(StatSchoolMonths::SchoolId),
                )
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(StatRollups::Table)
                .if_not_exists()
                .col(integer(StatRollups::Month).primary_key())
                // Raised by every change to a closed month's sessions or bookings.
                .col(big_integer(StatRollups::Generation).default(0))
                // The generation the month's rollup counted; fresh while equal.
                .col(big_integer_null(StatRollups::RolledGeneration))
                .col(timestamp_with_time_zone_null(StatRollups::RolledAt))
                .take(),
        )
        .await?;
        m.create_index(index("idx_bookings_starts", Bookings::Table, &["starts_at"])).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_bookings_starts").table(Bookings::Table).to_owned()).await?;
        for t in [StatRollups::Table.into_iden(), StatSchoolMonths::Table.into_iden(), StatMonths::Table.into_iden()] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
