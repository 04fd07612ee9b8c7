//! One event for one webhook subscription: its body as first built (every retry sends the same
//! bytes), and where its attempts stand.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The `webhook-id` header: the notification's id, or a test event's own.
    pub event_id: Uuid,
    pub event_type: String,
    /// Deliveries of one booking are sent in order.
    pub booking_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// A worker sending it holds it until then.
    pub lease_until: Option<DateTimeUtc>,
    pub lease_token: Option<Uuid>,
    pub last_status: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
