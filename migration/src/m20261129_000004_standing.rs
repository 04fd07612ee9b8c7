//! The bureau's side: accreditation standards and rounds, objections, certificates, annual
//! evaluation cycles, expert reviews, signage standards, signs and their inspections. Seeds the
//! 2021 accreditation standard and the 2021 signage standard.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Bases {
    Table,
    Id,
    CertificateNumber,
    ValidUntil,
    RectificationUntil,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AccreditationStandards {
    Table,
    Id,
    Version,
    EffectiveFrom,
    Requirements,
    ScoringSheet,
    ValidityYears,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Accreditations {
    Table,
    Id,
    BaseId,
    StandardId,
    ApplicantId,
    Status,
    Figures,
    EvidenceLinks,
    Unmet,
    DistrictComment,
    NoticeStartsAt,
    NoticeEndsAt,
    DecisionComment,
    CertificateNumber,
    DecidedAt,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Objections {
    Table,
    Id,
    AccreditationId,
    Name,
    Contact,
    Reason,
    ClientIp,
    Status,
    Resolution,
    ResolvedBy,
    CreatedAt,
    ResolvedAt,
}

#[derive(DeriveIden)]
enum CertificateCounters {
    Table,
    Year,
    Last,
}

#[derive(DeriveIden)]
enum Reviews {
    Table,
    SubjectKind,
    SubjectId,
    EvaluatorId,
    Points,
    Total,
    Comment,
    AssignedAt,
    ScoredAt,
}

#[derive(DeriveIden)]
enum EvaluationCycles {
    Table,
    Id,
    Year,
    Rubric,
    SelfReportDeadline,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Evaluations {
    Table,
    Id,
    CycleId,
    BaseId,
    Kind,
    Status,
    SelfReport,
    Measured,
    Score,
    Grade,
    DueAt,
    FinalizedAt,
    FinalizedBy,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SignageStandards {
    Table,
    Id,
    Version,
    SignTypes,
    PublishedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum Signs {
    Table,
    Id,
    BaseId,
    StandardId,
    Kind,
    Lat,
    Lon,
    RoadName,
    Status,
    TrafficPoliceRef,
    Comment,
    InstalledAt,
    LastInspectedAt,
    NextInspectionDue,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SignInspections {
    Table,
    Id,
    SignId,
    InspectorId,
    Condition,
    PhotoUrl,
    Notes,
    InspectedAt,
    NextDue,
}

#[derive(DeriveIden)]
enum MaintenanceItems {
    Table,
    Id,
    SignId,
    InspectionId,
    Status,
    OpenedAt,
    ClosedAt,
    ClosedBy,
    Note,
}

/// The 2021 revision of the accreditation measures, per subcategory: exhibition area, open
/// days, free days for students, annual visitors, staff, interactive exhibits.
const REQUIREMENTS_2021: &str = r#"{
  "science_venue":       {"min_exhibition_area_m2": 1000, "min_open_days": 200, "min_free_days_for_students": 20, "min_annual_visitors": 10000, "min_staff": 5, "min_interactive_exhibits": 10},
  "education_research":  {"min_exhibition_area_m2": 300,  "min_open_days": 200, "min_free_days_for_students": 10, "min_annual_visitors": 3000,  "min_staff": 3, "min_interactive_exhibits": 3},
  "public_place":        {"min_exhibition_area_m2": 300,  "min_open_days": 200, "min_free_days_for_students": 10, "min_annual_visitors": 5000,  "min_staff": 3, "min_interactive_exhibits": 3},
  "production_facility": {"min_exhibition_area_m2": 300,  "min_open_days": 200, "min_free_days_for_students": 10, "min_annual_visitors": 3000,  "min_staff": 3, "min_interactive_exhibits": 3},
  "agriculture":         {"min_exhibition_area_m2": 300,  "min_open_days": 200, "min_free_days_for_students": 10, "min_annual_visitors": 3000,  "min_staff": 3, "min_interactive_exhibits": 3},
  "enterprise":          {"min_exhibition_area_m2": 300,  "min_open_days": 200, "min_free_days_for_students": 10, "min_annual_visitors": 3000,  "min_staff": 3, "min_interactive_exhibits": 3},
  "natural_resource":    {"min_exhibition_area_m2": 5000, "min_open_days": 200, "min_free_days_for_students": 10, "min_annual_visitors": 10000, "min_staff": 3, "min_interactive_exhibits": 3},
  "other":               {"min_exhibition_area_m2": 300,  "min_open_days": 200, "min_free_days_for_students": 10, "min_annual_visitors": 3000,  "min_staff": 3, "min_interactive_exhibits": 3}
}"#;

/// The experts' scoring sheet of the 2021 rounds.
const SCORING_SHEET_2021: &str = r#"[
  {"key": "facilities", "name": "场馆设施 Facilities and exhibits", "max_points": 30},
  {"key": "content", "name": "科普内容 Science content", "max_points": 30},
  {"key": "operations", "name": "运行管理 Operations and staff", "max_points": 20},
  {"key": "schools", "name": "馆校合作 Cooperation with schools", "max_points": 20}
]"#;

/// The 2021 signage standard: sign types, their specification and placement rule.
const SIGN_TYPES_2021: &str = r#"[
  {"type": "plaque", "size": "600 × 400 mm", "material": "brushed stainless steel", "colour": "brown RAL 8002, white text", "max_distance_m": 200},
  {"type": "road_guide", "size": "2000 × 1200 mm", "material": "reflective aluminium (GB 5768.2)", "colour": "brown background, white text", "max_distance_m": 3000},
  {"type": "wayfinding", "size": "400 × 300 mm", "material": "acrylic", "colour": "brown and white", "max_distance_m": 200}
]"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            string_null(Bases::CertificateNumber).take(),
            timestamp_with_time_zone_null(Bases::ValidUntil).take(),
            timestamp_with_time_zone_null(Bases::RectificationUntil).take(),
        ] {
            m.alter_table(Table::alter().table(Bases::Table).add_column(col).take()).await?;
        }

        m.create_table(
            Table::create()
                .table(AccreditationStandards::Table)
                .col(pk_uuid(AccreditationStandards::Id))
                .col(string_uniq(AccreditationStandards::Version))
                .col(timestamp_with_time_zone(AccreditationStandards::EffectiveFrom))
                .col(json(AccreditationStandards::Requirements))
                .col(json(AccreditationStandards::ScoringSheet))
                .col(integer(AccreditationStandards::ValidityYears))
                .col(timestamp_with_time_zone(AccreditationStandards::CreatedAt))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Accreditations::Table)
                .col(pk_uuid(Accreditations::Id))
                .col(uuid(Accreditations::BaseId))
                .col(uuid(Accreditations::StandardId))
                .col(uuid(Accreditations::ApplicantId))
                .col(string(Accreditations::Status))
                .col(json(Accreditations::Figures))
                .col(json(Accreditations::EvidenceLinks))
                .col(json_null(Accreditations::Unmet))
                .col(text_null(Accreditations::DistrictComment))
                .col(timestamp_with_time_zone_null(Accreditations::NoticeStartsAt))
                .col(timestamp_with_time_zone_null(Accreditations::NoticeEndsAt))
                .col(text_null(Accreditations::DecisionComment))
                .col(string_null(Accreditations::CertificateNumber).unique_key())
                .col(timestamp_with_time_zone_null(Accreditations::DecidedAt))
                .col(integer(Accreditations::Version))
                .col(timestamp_with_time_zone(Accreditations::CreatedAt))
                .col(timestamp_with_time_zone(Accreditations::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_accreditations_base",
                    (Accreditations::Table, Accreditations::BaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_accreditations_standard",
                    (Accreditations::Table, Accreditations::StandardId),
                    (AccreditationStandards::Table, AccreditationStandards::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_accreditations_base", Accreditations::Table, &["base_id", "id"])).await?;
        m.create_index(index("idx_accreditations_status", Accreditations::Table, &["status"])).await?;

        m.create_table(
            Table::create()
                .table(Objections::Table)
                .col(pk_uuid(Objections::Id))
                .col(uuid(Objections::AccreditationId))
                .col(string_null(Objections::Name))
                .col(string_null(Objections::Contact))
                .col(text(Objections::Reason))
                .col(string(Objections::ClientIp))
                .col(string(Objections::Status))
                .col(text_null(Objections::Resolution))
                .col(uuid_null(Objections::ResolvedBy))
                .col(timestamp_with_time_zone(Objections::CreatedAt))
                .col(timestamp_with_time_zone_null(Objections::ResolvedAt))
                .foreign_key(&mut fk(
                    "fk_objections_accreditation",
                    (Objections::Table, Objections::AccreditationId),
                    (Accreditations::Table, Accreditations::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_objections_accreditation", Objections::Table, &["accreditation_id", "status"]))
            .await?;
        m.create_index(index("idx_objections_client", Objections::Table, &["client_ip", "created_at"])).await?;

        m.create_table(
            Table::create()
                .table(CertificateCounters::Table)
                .col(integer(CertificateCounters::Year).primary_key())
                .col(integer(CertificateCounters::Last))
                .take(),
        )
        .await?;

        // An expert assigned to an accreditation or an evaluation, and, once scored, the score.
        m.create_table(
            Table::create()
                .table(Reviews::Table)
                .col(string(Reviews::SubjectKind))
                .col(uuid(Reviews::SubjectId))
                .col(uuid(Reviews::EvaluatorId))
                .col(json_null(Reviews::Points))
                .col(double_null(Reviews::Total))
                .col(text_null(Reviews::Comment))
                .col(timestamp_with_time_zone(Reviews::AssignedAt))
                .col(timestamp_with_time_zone_null(Reviews::ScoredAt))
                .primary_key(
                    Index::create().col(Reviews::SubjectKind).col(Reviews::SubjectId).col(Reviews::EvaluatorId),
                )
                .foreign_key(&mut fk(
                    "fk_reviews_evaluator",
                    (Reviews::Table, Reviews::EvaluatorId),
                    (Users::Table, Users::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_reviews_evaluator", Reviews::Table, &["evaluator_id"])).await?;

        m.create_table(
            Table::create()
                .table(EvaluationCycles::Table)
                .col(pk_uuid(EvaluationCycles::Id))
                .col(integer_uniq(EvaluationCycles::Year))
                .col(json(EvaluationCycles::Rubric))
                .col(timestamp_with_time_zone(EvaluationCycles::SelfReportDeadline))
                .col(uuid(EvaluationCycles::CreatedBy))
                .col(timestamp_with_time_zone(EvaluationCycles::CreatedAt))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Evaluations::Table)
                .col(pk_uuid(Evaluations::Id))
                .col(uuid(Evaluations::CycleId))
                .col(uuid(Evaluations::BaseId))
                .col(string(Evaluations::Kind))
                .col(string(Evaluations::Status))
                .col(json_null(Evaluations::SelfReport))
                .col(json_null(Evaluations::Measured))
                .col(double_null(Evaluations::Score))
                .col(string_null(Evaluations::Grade))
                .col(timestamp_with_time_zone_null(Evaluations::DueAt))
                .col(timestamp_with_time_zone_null(Evaluations::FinalizedAt))
                .col(uuid_null(Evaluations::FinalizedBy))
                .col(integer(Evaluations::Version))
                .col(timestamp_with_time_zone(Evaluations::CreatedAt))
                .col(timestamp_with_time_zone(Evaluations::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_evaluations_cycle",
                    (Evaluations::Table, Evaluations::CycleId),
                    (EvaluationCycles::Table, EvaluationCycles::Id),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_evaluations_base",
                    (Evaluations::Table, Evaluations::BaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_evaluations_base", Evaluations::Table, &["base_id", "created_at"])).await?;
        m.create_index(index("idx_evaluations_cycle", Evaluations::Table, &["cycle_id", "id"])).await?;

        m.create_table(
            Table::create()
                .table(SignageStandards::Table)
                .col(pk_uuid(SignageStandards::Id))
                .col(string_uniq(SignageStandards::Version))
                .col(json(SignageStandards::SignTypes))
                .col(timestamp_with_time_zone(SignageStandards::PublishedAt))
                .col(uuid_null(SignageStandards::CreatedBy))
                .take(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Signs::Table)
                .col(pk_uuid(Signs::Id))
                .col(uuid(Signs::BaseId))
                .col(uuid(Signs::StandardId))
                .col(string(Signs::Kind))
                .col(double(Signs::Lat))
                .col(double(Signs::Lon))
                .col(string_null(Signs::RoadName))
                .col(string(Signs::Status))
                .col(string_null(Signs::TrafficPoliceRef))
                .col(text_null(Signs::Comment))
                .col(timestamp_with_time_zone_null(Signs::InstalledAt))
                .col(timestamp_with_time_zone_null(Signs::LastInspectedAt))
                .col(timestamp_with_time_zone_null(Signs::NextInspectionDue))
                .col(integer(Signs::Version))
                .col(timestamp_with_time_zone(Signs::CreatedAt))
                .col(timestamp_with_time_zone(Signs::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_signs_base",
                    (Signs::Table, Signs::BaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_signs_standard",
                    (Signs::Table, Signs::StandardId),
                    (SignageStandards::Table, SignageStandards::Id),
                    ForeignKeyAction::Restrict,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_signs_base", Signs::Table, &["base_id", "id"])).await?;
        m.create_index(index("idx_signs_status", Signs::Table, &["status", "next_inspection_due"])).await?;

        m.create_table(
            Table::create()
                .table(SignInspections::Table)
                .col(pk_uuid(SignInspections::Id))
                .col(uuid(SignInspections::SignId))
                .col(uuid(SignInspections::InspectorId))
                .col(string(SignInspections::Condition))
                .col(string_null(SignInspections::PhotoUrl))
                .col(text_null(SignInspections::Notes))
                .col(timestamp_with_time_zone(SignInspections::InspectedAt))
                .col(timestamp_with_time_zone(SignInspections::NextDue))
                .foreign_key(&mut fk(
                    "fk_sign_inspections_sign",
                    (SignInspections::Table, SignInspections::SignId),
                    (Signs::Table, Signs::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_sign_inspections_sign", SignInspections::Table, &["sign_id", "id"])).await?;

        m.create_table(
            Table::create()
                .table(MaintenanceItems::Table)
                .col(pk_uuid(MaintenanceItems::Id))
                .col(uuid(MaintenanceItems::SignId))
                .col(uuid(MaintenanceItems::InspectionId))
                .col(string(MaintenanceItems::Status))
                .col(timestamp_with_time_zone(MaintenanceItems::OpenedAt))
                .col(timestamp_with_time_zone_null(MaintenanceItems::ClosedAt))
                .col(uuid_null(MaintenanceItems::ClosedBy))
                .col(text_null(MaintenanceItems::Note))
                .foreign_key(&mut fk(
                    "fk_maintenance_items_sign",
                    (MaintenanceItems::Table, MaintenanceItems::SignId),
                    (Signs::Table, Signs::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_maintenance_items_sign", MaintenanceItems::Table, &["sign_id", "status"])).await?;

        // Reference data: the standards in force.
        let at = "2021-01-01T00:00:00+08:00";
        let insert = Query::insert()
            .into_table(AccreditationStandards::Table)
            .columns([
                AccreditationStandards::Id,
                AccreditationStandards::Version,
                AccreditationStandards::EffectiveFrom,
                AccreditationStandards::Requirements,
                AccreditationStandards::ScoringSheet,
                AccreditationStandards::ValidityYears,
                AccreditationStandards::CreatedAt,
            ])
            .values_panic([
                seed_id(1).into(),
                "2021".into(),
                seed_time(at).into(),
                seed_json(REQUIREMENTS_2021).into(),
                seed_json(SCORING_SHEET_2021).into(),
                5.into(),
                seed_time(at).into(),
            ])
            .take();
        m.exec_stmt(insert).await?;
        let insert = Query::insert()
            .into_table(SignageStandards::Table)
            .columns([
                SignageStandards::Id,
                SignageStandards::Version,
                SignageStandards::SignTypes,
                SignageStandards::PublishedAt,
            ])
            .values_panic([seed_id(2).into(), "2021".into(), seed_json(SIGN_TYPES_2021).into(), seed_time(at).into()])
            .take();
        m.exec_stmt(insert).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            MaintenanceItems::Table.into_iden(),
            SignInspections::Table.into_iden(),
            Signs::Table.into_iden(),
            SignageStandards::Table.into_iden(),
            Evaluations::Table.into_iden(),
            EvaluationCycles::Table.into_iden(),
            Reviews::Table.into_iden(),
            CertificateCounters::Table.into_iden(),
            Objections::Table.into_iden(),
            Accreditations::Table.into_iden(),
            AccreditationStandards::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).take()).await?;
        }
        for col in
            [Bases::RectificationUntil.into_iden(), Bases::ValidUntil.into_iden(), Bases::CertificateNumber.into_iden()]
        {
            m.alter_table(Table::alter().table(Bases::Table).drop_column(col).take()).await?;
        }
        Ok(())
    }
}

/// Fixed ids of seeded reference rows (version 7 layout, from the seed's number).
fn seed_id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0176_0000_0000_7000_8000_0000_0000_0000 | n)
}

fn seed_time(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&chrono::Utc)).unwrap_or_default()
}

fn seed_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_default()
}
