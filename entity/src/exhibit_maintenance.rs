//! A maintenance note on an exhibit, opened when a loan returns it damaged and closed when
//! its owner puts it back on display.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "exhibit_maintenance")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub exhibit_id: Uuid,
    pub loan_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub note: String,
    pub opened_at: DateTimeUtc,
    pub closed_at: Option<DateTimeUtc>,
    pub closed_by: Option<Uuid>,
}

impl ActiveModelBehavior for ActiveModel {}
