//! A month's rollup state: `generation` rises with every change to the month's sessions or
//! bookings after it closed; the rollup is fresh while `rolled_generation` equals it.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stat_rollups")]
pub struct Model {
    /// yyyymm in the city's time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub month: i32,
    pub generation: i64,
    pub rolled_generation: Option<i64>,
    pub rolled_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
