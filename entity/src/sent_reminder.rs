//! A base's daily reminder already sent, by its key (`base:{id}:{date}`): inserted
//! in the transaction that sends it, so that each is sent once however many instances sweep.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "sent_reminders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub sent_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
