//! An address an account logged in from, and when it last did: while the account's failed
//! log-ins for the hour are spent, only its recent addresses may still try.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "login_addresses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The address as the log-in throttle keys it (an IPv6 address by its /64).
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_ip: String,
    pub last_login_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
