//! Tour sign-up campaigns (科普游报名): a set of tour departures offered for a season, the
//! applications of schools and citizens, and the places the draw gave.

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
enum Tours {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Schools {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum TourBookings {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Campaigns {
    Table,
    Id,
    Title,
    OpensAt,
    ClosesAt,
    ForSchools,
    ForCitizens,
    MaxWins,
    Seed,
    SeedSha256,
    Status,
    DrawnAt,
    Draw,
    LastDepartureAt,
    CitizensErasedAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CampaignTours {
    Table,
    CampaignId,
    TourId,
    Position,
}

#[derive(DeriveIden)]
enum Applications {
    Table,
    Id,
    CampaignId,
    Kind,
    SchoolId,
    Students,
    Teachers,
    People,
    Name,
    Phone,
    ContactName,
    ContactPhone,
    ClientIp,
    DistrictCode,
    Preferences,
    Status,
    DrawPosition,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApplicationWins {
    Table,
    ApplicationId,
    TourId,
    Round,
    People,
    Status,
    TourBookingId,
    Note,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Campaigns::Table)
                .col(pk_uuid(Campaigns::Id))
                .col(string(Campaigns::Title))
                .col(timestamp_with_time_zone(Campaigns::OpensAt))
                .col(timestamp_with_time_zone(Campaigns::ClosesAt))
                .col(boolean(Campaigns::ForSchools))
                .col(boolean(Campaigns::ForCitizens))
                .col(integer(Campaigns::MaxWins))
                .col(string(Campaigns::Seed))
                .col(string(Campaigns::SeedSha256))
                .col(string(Campaigns::Status))
                .col(timestamp_with_time_zone_null(Campaigns::DrawnAt))
                .col(json_null(Campaigns::Draw))
                .col(timestamp_with_time_zone(Campaigns::LastDepartureAt))
                .col(timestamp_with_time_zone_null(Campaigns::CitizensErasedAt))
                .col(uuid_null(Campaigns::CreatedBy))
                .col(timestamp_with_time_zone(Campaigns::CreatedAt))
                .col(timestamp_with_time_zone(Campaigns::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_campaigns_created_by",
                    (Campaigns::Table, Campaigns::CreatedBy),
                    (Users::Table, Users::Id),
                    ForeignKeyAction::SetNull,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_campaigns_opens", Campaigns::Table, &["opens_at", "id"])).await?;

        m.create_table(
            Table::create()
                .table(CampaignTours::Table)
                .col(uuid(CampaignTours::CampaignId))
                .col(uuid(CampaignTours::TourId))
                .col(integer(CampaignTours::Position))
                .primary_key(Index::create().col(CampaignTours::CampaignId).col(CampaignTours::TourId))
                .foreign_key(&mut fk(
                    "fk_campaign_tours_campaign",
                    (CampaignTours::Table, CampaignTours::CampaignId),
                    (Campaigns::Table, Campaigns::Id),
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_campaign_tours_tour",
                    (CampaignTours::Table, CampaignTours::TourId),
                    (Tours::Table, Tours::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_campaign_tours_tour", CampaignTours::Table, &["tour_id"])).await?;

        m.create_table(
            Table::create()
                .table(Applications::Table)
                .col(pk_uuid(Applications::Id))
                .col(uuid(Applications::CampaignId))
                .col(string(Applications::Kind))
                .col(uuid_null(Applications::SchoolId))
                .col(integer(Applications::Students))
                .col(integer(Applications::Teachers))
                .col(integer(Applications::People))
                .col(string_null(Applications::Name))
                .col(string_null(Applications::Phone))
                .col(string_null(Applications::ContactName))
                .col(string_null(Applications::ContactPhone))
                .col(string_null(Applications::ClientIp))
                .col(string(Applications::DistrictCode))
                .col(json(Applications::Preferences))
                .col(string(Applications::Status))
                .col(integer_null(Applications::DrawPosition))
                .col(uuid_null(Applications::CreatedBy))
                .col(timestamp_with_time_zone(Applications::CreatedAt))
                .col(timestamp_with_time_zone(Applications::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_applications_campaign",
                    (Applications::Table, Applications::CampaignId),
                    (Campaigns::Table, Campaigns::Id),
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_applications_school",
                    (Applications::Table, Applications::SchoolId),
                    (Schools::Table, Schools::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        // One application per school and per phone number in a campaign (NULLs, erased
        // phones included, never collide).
        m.create_index(
            index("idx_applications_school", Applications::Table, &["campaign_id", "school_id"]).unique().take(),
        )
        .await?;
        m.create_index(index("idx_applications_phone", Applications::Table, &["campaign_id", "phone"]).unique().take())
            .await?;
        m.create_index(index("idx_applications_campaign", Applications::Table, &["campaign_id", "id"])).await?;
        m.create_index(index(
            "idx_applications_client",
            Applications::Table,
            &["campaign_id", "client_ip", "created_at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(ApplicationWins::Table)
                .col(uuid(ApplicationWins::ApplicationId))
                .col(uuid(ApplicationWins::TourId))
                .col(integer(ApplicationWins::Round))
                .col(integer(ApplicationWins::People))
                .col(string(ApplicationWins::Status))
                .col(uuid_null(ApplicationWins::TourBookingId))
                .col(text_null(ApplicationWins::Note))
                .primary_key(Index::create().col(ApplicationWins::ApplicationId).col(ApplicationWins::TourId))
                .foreign_key(&mut fk(
                    "fk_application_wins_application",
                    (ApplicationWins::Table, ApplicationWins::ApplicationId),
                    (Applications::Table, Applications::Id),
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_application_wins_tour",
                    (ApplicationWins::Table, ApplicationWins::TourId),
                    (Tours::Table, Tours::Id),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_application_wins_tour_booking",
                    (ApplicationWins::Table, ApplicationWins::TourBookingId),
                    (TourBookings::Table, TourBookings::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_application_wins_tour", ApplicationWins::Table, &["tour_id", "status"])).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ApplicationWins::Table).take()).await?;
        m.drop_table(Table::drop().table(Applications::Table).take()).await?;
        m.drop_table(Table::drop().table(CampaignTours::Table).take()).await?;
        m.drop_table(Table::drop().table(Campaigns::Table).take()).await
    }
}
