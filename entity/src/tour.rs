//! A science tour (科普一日游): a day route of 2–5 legs, each a session at a base.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "tours")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub title: String,
    pub audience: String,
    pub meeting_point: String,
    pub lat: f64,
    pub lon: f64,
    /// The tour's own places (its pool's capacity).
    pub places: i32,
    pub pool_id: Uuid,
    /// The district whose officer made it (`None`: the bureau's).
    pub district_code: Option<String>,
    pub status: String,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
