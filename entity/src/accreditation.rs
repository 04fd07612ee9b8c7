//! An application for accreditation (认定) of a base, through its workflow.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "accreditations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub base_id: Uuid,
    pub standard_id: Uuid,
    pub applicant_id: Uuid,
    pub status: String,
    pub figures: Json,
    pub evidence_links: Json,
    pub unmet: Option<Json>,
    #[sea_orm(column_type = "Text", nullable)]
    pub district_comment: Option<String>,
    pub notice_starts_at: Option<DateTimeUtc>,
    pub notice_ends_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub decision_comment: Option<String>,
    pub certificate_number: Option<String>,
    pub decided_at: Option<DateTimeUtc>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
