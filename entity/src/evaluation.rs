//! One base's evaluation in a cycle (annual, or a re-evaluation after rectification).
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "evaluations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub cycle_id: Uuid,
    pub base_id: Uuid,
    pub kind: String,
    pub status: String,
    pub self_report: Option<Json>,
    pub measured: Option<Json>,
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub due_at: Option<DateTimeUtc>,
    pub finalized_at: Option<DateTimeUtc>,
    pub finalized_by: Option<Uuid>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
