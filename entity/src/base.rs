//! A science-popularisation base (科普基地).
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "bases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name_zh: String,
    pub name_en: String,
    pub host_org: String,
    pub category: String,
    pub subcategory: String,
    pub district_code: String,
    pub address: String,
    pub lat: f64,
    pub lon: f64,
    pub exhibition_area_m2: Option<f64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub opening_hours: Option<String>,
    pub contact_phone: Option<String>,
    pub contact_email: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub accessibility: Option<String>,
    pub status: String,
    pub booking_opens_days: i32,
    pub booking_closes_hours: i32,
    pub max_group_size: Option<i32>,
    pub certificate_number: Option<String>,
    pub valid_until: Option<DateTimeUtc>,
    pub rectification_until: Option<DateTimeUtc>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
