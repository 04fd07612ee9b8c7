//! A departure an application won in the draw (or was given from the waiting list).
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "application_wins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub application_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tour_id: Uuid,
    /// The draw's round (0: given from the waiting list).
    pub round: i32,
    pub people: i32,
    /// `confirmed` (places held), `refused` (a school rule stood in the way) or `cancelled`.
    pub status: String,
    /// A school's tour booking.
    pub tour_booking_id: Option<Uuid>,
    #[sea_orm(column_type = "Text", nullable)]
    pub note: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
