//! A tour sign-up campaign (科普游报名): departures offered for a season, drawn by lot.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "campaigns")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub title: String,
    pub opens_at: DateTimeUtc,
    pub closes_at: DateTimeUtc,
    pub for_schools: bool,
    pub for_citizens: bool,
    /// Departures one applicant may win at most.
    pub max_wins: i32,
    /// Secret until the draw (hex).
    #[serde(skip)]
    pub seed: String,
    /// Published from the start: SHA-256 of the seed.
    pub seed_sha256: String,
    pub status: String,
    pub drawn_at: Option<DateTimeUtc>,
    /// The published draw, once drawn.
    pub draw: Option<Json>,
    /// The end of the last departure: citizens' contact details are erased 90 days after.
    pub last_departure_at: DateTimeUtc,
    pub citizens_erased_at: Option<DateTimeUtc>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
