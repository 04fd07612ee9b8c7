//! An expert assigned to an accreditation or an evaluation, with their score once given.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "reviews")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_kind: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub evaluator_id: Uuid,
    pub points: Option<Json>,
    pub total: Option<f64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub comment: Option<String>,
    /// Comments by criterion or indicator key.
    pub comments: Option<Json>,
    pub assigned_at: DateTimeUtc,
    pub scored_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
