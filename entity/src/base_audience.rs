//! One audience (grade band) a base serves.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "base_audiences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub base_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub audience: String,
}

impl ActiveModelBehavior for ActiveModel {}
