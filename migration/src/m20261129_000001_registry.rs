//! The registry: districts, accounts and tokens, schools, bases, exhibits, the audit log.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Districts {
    Table,
    Code,
    NameZh,
    NameEn,
    Lat,
    Lon,
}

#[derive(DeriveIden)]
enum Schools {
    Table,
    Id,
    Name,
    DistrictCode,
    Address,
    Lat,
    Lon,
    Kind,
    StudentCount,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Bases {
    Table,
    Id,
    NameZh,
    NameEn,
    HostOrg,
    Category,
    Subcategory,
    DistrictCode,
    Address,
    Lat,
    Lon,
    ExhibitionAreaM2,
    OpeningHours,
    ContactPhone,
    ContactEmail,
    Accessibility,
    Status,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BaseThemes {
    Table,
    BaseId,
    Theme,
}

#[derive(DeriveIden)]
enum BaseAudiences {
    Table,
    BaseId,
    Audience,
}

#[derive(DeriveIden)]
enum Exhibits {
    Table,
    Id,
    BaseId,
    Name,
    Description,
    Hall,
    Kind,
    Status,
    Shareable,
    Audiences,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    PasswordHash,
    Role,
    DistrictCode,
    SchoolId,
    Disabled,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OperatorBases {
    Table,
    UserId,
    BaseId,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    TokenHash,
    UserId,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Id,
    Username,
    ClientIp,
    At,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    ActorId,
    ActorUsername,
    Action,
    Entity,
    EntityId,
    Before,
    After,
    RequestId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Districts::Table)
                .col(string_len(Districts::Code, 6).primary_key())
                .col(string(Districts::NameZh))
                .col(string(Districts::NameEn))
                .col(double(Districts::Lat))
                .col(double(Districts::Lon))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Schools::Table)
                .col(pk_uuid(Schools::Id))
                .col(string(Schools::Name))
                .col(string_len(Schools::DistrictCode, 6))
                .col(string(Schools::Address))
                .col(double(Schools::Lat))
                .col(double(Schools::Lon))
                .col(string(Schools::Kind))
                .col(integer(Schools::StudentCount))
                .col(integer(Schools::Version))
                .col(timestamp_with_time_zone(Schools::CreatedAt))
                .col(timestamp_with_time_zone(Schools::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_schools_district",
                    (Schools::Table, Schools::DistrictCode),
                    (Districts::Table, Districts::Code),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_schools_district", Schools::Table, &["district_code"])).await?;
        m.create_index(index("idx_schools_lat_lon", Schools::Table, &["lat", "lon"])).await?;

        m.create_table(
            Table::create()
                .table(Bases::Table)
                .col(pk_uuid(Bases::Id))
                .col(string(Bases::NameZh))
                .col(string(Bases::NameEn))
                .col(string(Bases::HostOrg))
                .col(string(Bases::Category))
                .col(string(Bases::Subcategory))
                .col(string_len(Bases::DistrictCode, 6))
                .col(string(Bases::Address))
                .col(double(Bases::Lat))
                .col(double(Bases::Lon))
                .col(double_null(Bases::ExhibitionAreaM2))
                .col(text_null(Bases::OpeningHours))
                .col(string_null(Bases::ContactPhone))
                .col(string_null(Bases::ContactEmail))
                .col(text_null(Bases::Accessibility))
                .col(string(Bases::Status))
                .col(integer(Bases::Version))
                .col(timestamp_with_time_zone(Bases::CreatedAt))
                .col(timestamp_with_time_zone(Bases::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_bases_district",
                    (Bases::Table, Bases::DistrictCode),
                    (Districts::Table, Districts::Code),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_bases_district", Bases::Table, &["district_code"])).await?;
        m.create_index(index("idx_bases_lat_lon", Bases::Table, &["lat", "lon"])).await?;
        m.create_index(index("idx_bases_status", Bases::Table, &["status"])).await?;

        m.create_table(
            Table::create()
                .table(BaseThemes::Table)
                .col(uuid(BaseThemes::BaseId))
                .col(string(BaseThemes::Theme))
                .primary_key(Index::create().col(BaseThemes::BaseId).col(BaseThemes::Theme))
                .foreign_key(&mut fk(
                    "fk_base_themes_base",
                    (BaseThemes::Table, BaseThemes::BaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_base_themes_theme", BaseThemes::Table, &["theme"])).await?;

        m.create_table(
            Table::create()
                .table(BaseAudiences::Table)
                .col(uuid(BaseAudiences::BaseId))
                .col(string(BaseAudiences::Audience))
                .primary_key(Index::create().col(BaseAudiences::BaseId).col(BaseAudiences::Audience))
                .foreign_key(&mut fk(
                    "fk_base_audiences_base",
                    (BaseAudiences::Table, BaseAudiences::BaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_base_audiences_audience", BaseAudiences::Table, &["audience"])).await?;

        m.create_table(
            Table::create()
                .table(Exhibits::Table)
                .col(pk_uuid(Exhibits::Id))
                .col(uuid(Exhibits::BaseId))
                .col(string(Exhibits::Name))
                .col(text_null(Exhibits::Description))
                .col(string_null(Exhibits::Hall))
                .col(string(Exhibits::Kind))
                .col(string(Exhibits::Status))
                .col(boolean(Exhibits::Shareable))
                .col(json(Exhibits::Audiences))
                .col(integer(Exhibits::Version))
                .col(timestamp_with_time_zone(Exhibits::CreatedAt))
                .col(timestamp_with_time_zone(Exhibits::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_exhibits_base",
                    (Exhibits::Table, Exhibits::BaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_exhibits_base", Exhibits::Table, &["base_id", "id"])).await?;

        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(pk_uuid(Users::Id))
                .col(string_uniq(Users::Username))
                .col(string(Users::PasswordHash))
                .col(string(Users::Role))
                .col(string_len_null(Users::DistrictCode, 6))
                .col(uuid_null(Users::SchoolId))
                .col(boolean(Users::Disabled))
                .col(integer(Users::Version))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .col(timestamp_with_time_zone(Users::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_users_district",
                    (Users::Table, Users::DistrictCode),
                    (Districts::Table, Districts::Code),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_users_school",
                    (Users::Table, Users::SchoolId),
                    (Schools::Table, Schools::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(OperatorBases::Table)
                .col(uuid(OperatorBases::UserId))
                .col(uuid(OperatorBases::BaseId))
                .primary_key(Index::create().col(OperatorBases::UserId).col(OperatorBases::BaseId))
                .foreign_key(&mut fk(
                    "fk_operator_bases_user",
                    (OperatorBases::Table, OperatorBases::UserId),
                    (Users::Table, Users::Id),
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_operator_bases_base",
                    (OperatorBases::Table, OperatorBases::BaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_operator_bases_base", OperatorBases::Table, &["base_id"])).await?;

        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .col(pk_uuid(ApiTokens::Id))
                .col(string_uniq(ApiTokens::TokenHash))
                .col(uuid(ApiTokens::UserId))
                .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                .col(timestamp_with_time_zone(ApiTokens::ExpiresAt))
                .col(timestamp_with_time_zone_null(ApiTokens::RevokedAt))
                .foreign_key(&mut fk(
                    "fk_api_tokens_user",
                    (ApiTokens::Table, ApiTokens::UserId),
                    (Users::Table, Users::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_api_tokens_user", ApiTokens::Table, &["user_id"])).await?;

        m.create_table(
            Table::create()
                .table(LoginFailures::Table)
                .col(pk_uuid(LoginFailures::Id))
                .col(string(LoginFailures::Username))
                .col(string(LoginFailures::ClientIp))
                .col(timestamp_with_time_zone(LoginFailures::At))
                .take(),
        )
        .await?;
        m.create_index(index("idx_login_failures_username", LoginFailures::Table, &["username", "at"])).await?;
        m.create_index(index("idx_login_failures_client", LoginFailures::Table, &["client_ip", "at"])).await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(pk_uuid(AuditLog::Id))
                .col(timestamp_with_time_zone(AuditLog::At))
                .col(uuid_null(AuditLog::ActorId))
                .col(string_null(AuditLog::ActorUsername))
                .col(string(AuditLog::Action))
                .col(string(AuditLog::Entity))
                .col(string(AuditLog::EntityId))
                .col(json_null(AuditLog::Before))
                .col(json_null(AuditLog::After))
                .col(string_null(AuditLog::RequestId))
                .take(),
        )
        .await?;
        m.create_index(index("idx_audit_log_entity", AuditLog::Table, &["entity", "entity_id", "id"])).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            LoginFailures::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            OperatorBases::Table.into_iden(),
            Users::Table.into_iden(),
            Exhibits::Table.into_iden(),
            BaseAudiences::Table.into_iden(),
            BaseThemes::Table.into_iden(),
            Bases::Table.into_iden(),
            Schools::Table.into_iden(),
            Districts::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).take()).await?;
        }
        Ok(())
    }
}
