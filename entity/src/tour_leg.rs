//! A leg of a tour: the session it visits, by position (1 first).
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "tour_legs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tour_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub session_id: Uuid,
}

impl ActiveModelBehavior for ActiveModel {}
