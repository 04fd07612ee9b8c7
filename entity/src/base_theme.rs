//! One theme of a base (a row per theme, so that theme search is an indexed lookup).
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "base_themes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub base_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub theme: String,
}

impl ActiveModelBehavior for ActiveModel {}
