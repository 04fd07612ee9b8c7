//! A sign of a base (plaque, road guide sign, wayfinding), from application to removal.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "signs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub base_id: Uuid,
    pub standard_id: Uuid,
    pub kind: String,
    pub lat: f64,
    pub lon: f64,
    pub road_name: Option<String>,
    pub status: String,
    pub traffic_police_ref: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub comment: Option<String>,
    pub installed_at: Option<DateTimeUtc>,
    pub last_inspected_at: Option<DateTimeUtc>,
    pub next_inspection_due: Option<DateTimeUtc>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
