//! A school's booking of a whole tour; its legs are bookings pointing here.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "tour_bookings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tour_id: Uuid,
    pub school_id: Uuid,
    pub students: i32,
    pub teachers: i32,
    pub contact_name: String,
    pub contact_phone: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub needs: Option<String>,
    pub status: String,
    /// The code the group shows at every leg's check-in.
    pub code: String,
    pub created_by: Option<Uuid>,
    pub cancelled_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub cancel_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
