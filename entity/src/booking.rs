//! A school's booking of a session.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "bookings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub session_id: Uuid,
    pub base_id: Uuid,
    pub school_id: Uuid,
    pub students: i32,
    pub teachers: i32,
    pub audience: String,
    pub contact_name: String,
    pub contact_phone: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub needs: Option<String>,
    pub status: String,
    pub code: String,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    pub created_by: Option<Uuid>,
    pub cancelled_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub cancel_reason: Option<String>,
    pub late_cancellation: bool,
    pub checked_in_at: Option<DateTimeUtc>,
    pub students_present: Option<i32>,
    pub teachers_present: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Set on a leg of a tour booking.
    pub tour_booking_id: Option<Uuid>,
    /// Bumped by every change: the `ETag`, and the calendar event's sequence.
    pub version: i32,
    /// When the session's times last changed under this booking: cancelling is never late after.
    pub session_moved_at: Option<DateTimeUtc>,
    /// The last reminder sent, in days before the visit.
    pub reminded_days: Option<i32>,
}

impl ActiveModelBehavior for ActiveModel {}
