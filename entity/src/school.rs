//! A primary or secondary school that books visits.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "schools")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub district_code: String,
    pub address: String,
    pub lat: f64,
    pub lon: f64,
    pub kind: String,
    pub student_count: i32,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[serde(skip_serializing)]
    pub feed_token_hash: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
