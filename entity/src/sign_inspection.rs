//! An inspection of a sign: its condition and when it is due again.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "sign_inspections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub sign_id: Uuid,
    pub inspector_id: Uuid,
    pub condition: String,
    pub photo_url: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub notes: Option<String>,
    pub inspected_at: DateTimeUtc,
    pub next_due: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
