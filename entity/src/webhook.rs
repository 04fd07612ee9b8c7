//! A webhook subscription: an account's URL that is sent the notifications the account can
//! read, signed with the subscription's secret.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The account whose notifications it receives.
    pub owner_id: Uuid,
    pub url: String,
    /// Notification kinds, separated by commas; `*`: all.
    #[sea_orm(column_type = "Text")]
    pub event_types: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// `whsec_` and the base64 of the key: shown once, never logged or audited.
    #[serde(skip_serializing)]
    pub secret: String,
    pub enabled: bool,
    /// Failed attempts since the last delivered one.
    pub consecutive_failures: i32,
    /// The first of those failures.
    pub failing_since: Option<DateTimeUtc>,
    pub disabled_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub disabled_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
