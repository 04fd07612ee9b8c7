//! A version of the signage standard: sign types, their specification and placement rule.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "signage_standards")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub version: String,
    pub sign_types: Json,
    pub published_at: DateTimeUtc,
    pub created_by: Option<Uuid>,
}

impl ActiveModelBehavior for ActiveModel {}
