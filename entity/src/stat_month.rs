//! One closed month's statistics of a base, a district or the city, rolled up from the raw
//! sessions and bookings (see `stat_rollup` for when it is fresh).
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stat_months")]
pub struct Model {
    /// A base's id as the statistics key it, a district's code, or `city`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub unit: String,
    /// yyyymm in the city's time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub month: i32,
    pub sessions_held: i64,
    pub places_offered: i64,
    pub bookings: i64,
    pub visitors_booked: i64,
    pub visitors_checked_in: i64,
    pub school_groups: i64,
    pub late_cancellations: i64,
    pub no_shows: i64,
}

impl ActiveModelBehavior for ActiveModel {}
