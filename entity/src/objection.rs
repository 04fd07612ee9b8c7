//! An objection filed during an accreditation's public notice (公示).
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "objections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub accreditation_id: Uuid,
    pub name: Option<String>,
    pub contact: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    #[serde(skip_serializing)]
    pub client_ip: String,
    pub status: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub resolution: Option<String>,
    pub resolved_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub resolved_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
