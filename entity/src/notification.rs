//! A message to a school about one of its bookings, for a later mail or webhook sender.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub school_id: Option<Uuid>,
    /// A notice to the base's operators (reminders of tomorrow's groups).
    pub base_id: Option<Uuid>,
    /// A notice to one account (a district officer's, an admin's, a webhook's owner).
    pub user_id: Option<Uuid>,
    pub booking_id: Option<Uuid>,
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub created_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
    /// Handed to the webhook outbox (a delivery row per matching subscription).
    pub dispatched_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
