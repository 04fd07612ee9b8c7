//! The bureau's working calendar: public holidays, and the weekend days worked in their place
//! (调休), so that "working days" mean what they mean in the city.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PublicHolidays {
    Table,
    Day,
    Name,
    Working,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PublicHolidays::Table)
                .if_not_exists()
                .col(date(PublicHolidays::Day).primary_key())
                .col(string(PublicHolidays::Name))
                .col(boolean(PublicHolidays::Working))
                .col(timestamp_with_time_zone(PublicHolidays::UpdatedAt))
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PublicHolidays::Table).take()).await
    }
}
