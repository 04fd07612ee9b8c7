//! A failed log-in, kept for a while to slow down password guessing. A log-in attempt is
//! written here before its password is checked (and removed if the password is right), so
//! that attempts in flight count too.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "login_failures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub username: String,
    /// The address as the log-in throttle keys it (an IPv6 address by its /64).
    pub client_ip: String,
    pub at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
