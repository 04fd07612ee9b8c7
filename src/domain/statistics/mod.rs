//! City science statistics (科普统计): the year's figures of a base, a district or the city,
//! by year, quarter or month, counted by the database (each figure family one grouped query,
//! [`count`]): visits of closed months from their rollup ([`rollup`]), everything else from
//! the raw rows (sessions, bookings, tours, campaign applications, exhibit loans). The
//! district report's standing and the sharing report are in [`report`].

mod count;
pub mod report;
pub mod rollup;

use chrono::{DateTime, Utc};
use entity::{base, district};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::Result;

use count::{By, Counter, Table};
pub use report::{DistrictStanding, Sharing, Standing, district_standing, sharing, sharing_scope, standings};

/// Whose figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Base,
    District,
    City,
}

/// How a year is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    #[default]
    Year,
    Quarter,
    Month,
}

impl Period {
    fn buckets(self) -> u32 {
        match self {
            Period::Year => 1,
            Period::Quarter => 4,
            Period::Month => 12,
        }
    }

    /// The label of bucket `n` (1-based) of `year`: `2026`, `2026-Q3`, `2026-07`.
    pub fn label(self, year: i32, n: u32) -> String {
        match self {
            Period::Year => year.to_string(),
            Period::Quarter => format!("{year}-Q{n}"),
            Period::Month => format!("{year}-{n:02}"),
        }
    }
}

/// Which rows count: the units (bases or districts) to report, or the whole city.
#[derive(Debug, Clone)]
pub enum Units {
    Bases(Vec<Uuid>),
    /// Every base of a district, each apart (chosen in the database: a district has hundreds).
    BasesOf(String),
    Districts(Vec<String>),
    City,
}

/// The figures of one unit in one period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[schema(as = StatFigures)]
pub struct Figures {
    /// Sessions that started in the period (by now) and were not cancelled.
    pub sessions_held: i64,
    /// Their capacity, in visitors.
    pub places_offered: i64,
    /// Bookings for visits in the period that held places (confirmed, checked in, no-show).
    pub bookings: i64,
    /// Students and teachers of those bookings.
    pub visitors_booked: i64,
    /// Students and teachers who came (checked-in bookings' counted numbers).
    pub visitors_checked_in: i64,
    /// School groups that came (checked-in bookings).
    pub school_groups: i64,
    /// Schools with at least one booking that held places.
    pub distinct_schools: i64,
    pub late_cancellations: i64,
    pub no_shows: i64,
    /// `visitors_checked_in ÷ places_offered`, 4 decimals; `null` with nothing offered.
    pub utilisation: Option<f64>,
    /// Science tours that departed in the period (not cancelled) with a leg at the unit.
    pub tour_departures: i64,
    /// Their places, and the places taken on them (schools' tour bookings and families who
    /// won them in a campaign: the use of each tour's own pool).
    pub tour_places: i64,
    pub tour_booked: i64,
    /// `tour_booked ÷ tour_places`, 4 decimals.
    pub tour_fill: Option<f64>,
    /// Applications to tour campaigns whose sign-up closed in the period (with a tour at the
    /// unit), and those that hold a place won on a tour at the unit.
    pub campaign_applicants: i64,
    pub campaign_winners: i64,
    /// Exhibit loans sent out in the period, lent by the unit and borrowed by it.
    pub exhibit_loans_lent: i64,
    pub exhibit_loans_borrowed: i64,
}

/// One row of statistics: a unit, a period, its figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatRow {
    pub scope: Scope,
    /// The base's id, the district's code, or `city`.
    #[schema(example = "440106")]
    pub id: String,
    #[schema(example = "天河区")]
    pub name: String,
    #[schema(example = "2026-Q3")]
    pub period: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The column names of the CSV, in order: stable, for spreadsheets and scripts.
pub const CSV_COLUMNS: [&str; 22] = [
    "scope",
    "id",
    "name",
    "period",
    "sessions_held",
    "places_offered",
    "bookings",
    "visitors_booked",
    "visitors_checked_in",
    "school_groups",
    "distinct_schools",
    "late_cancellations",
    "no_shows",
    "utilisation",
    "tour_departures",
    "tour_places",
    "tour_booked",
    "tour_fill",
    "campaign_applicants",
    "campaign_winners",
    "exhibit_loans_lent",
    "exhibit_loans_borrowed",
];

impl StatRow {
    /// The row's CSV fields, in [`CSV_COLUMNS`] order.
    pub fn csv_fields(&self) -> Vec<String> {
        let f = &self.figures;
        let ratio = |r: Option<f64>| r.map(|v| v.to_string()).unwrap_or_default();
        let scope = match self.scope {
            Scope::Base => "base",
            Scope::District => "district",
            Scope::City => "city",
        };
        vec![
            scope.into(),
            self.id.clone(),
            self.name.clone(),
            self.period.clone(),
            f.sessions_held.to_string(),
            f.places_offered.to_string(),
            f.bookings.to_string(),
            f.visitors_booked.to_string(),
            f.visitors_checked_in.to_string(),
            f.school_groups.to_string(),
            f.distinct_schools.to_string(),
            f.late_cancellations.to_string(),
            f.no_shows.to_string(),
            ratio(f.utilisation),
            f.tour_departures.to_string(),
            f.tour_places.to_string(),
            f.tour_booked.to_string(),
            ratio(f.tour_fill),
            f.campaign_applicants.to_string(),
            f.campaign_winners.to_string(),
            f.exhibit_loans_lent.to_string(),
            f.exhibit_loans_borrowed.to_string(),
        ]
    }
}

/// The statistics of `units` for `year` cut by `period`: one row per unit and period, every
/// period present (zeros where nothing happened). `now` bounds "held": sessions and tours
/// that have not started yet are not counted as held. Call it inside one read snapshot.
#[tracing::instrument(skip(conn), err)]
pub async fn figures(
    conn: &impl ConnectionTrait,
    units: &Units,
    year: i32,
    period: Period,
    now: DateTime<Utc>,
) -> Result<Vec<StatRow>> {
    let counter = Counter { backend: conn.get_database_backend(), by: By::of(units) };
    let held_before = now.min(crate::domain::evaluation::year_range(year).1);
    // Closed months rolled up since their last change from the rollup, the rest raw.
    let rolled = rollup::fresh_months(conn, year).await?;
    let open = rollup::open_ranges(year, &rolled);
    let mut table = Table::new();
    counter.rolled_visits(conn, period, &rolled, &mut table).await?;
    counter.visits(conn, &|col| counter.bucket(period, year, col), &open, held_before, &mut table).await?;
    counter.distinct_schools(conn, period, year, &rolled, &open, &mut table).await?;
    counter.tours_campaigns_loans(conn, period, year, held_before, &mut table).await?;

    // Every unit, every period, in order.
    let (scope, units_named) = named_units(conn, units).await?;
    let mut rows = Vec::new();
    for (key, name) in units_named {
        for n in 1..=period.buckets() {
            let mut figures = table.remove(&(key.clone(), n as i32)).unwrap_or_default();
            figures.utilisation = ratio(figures.visitors_checked_in, figures.places_offered);
            figures.tour_fill = ratio(figures.tour_booked, figures.tour_places);
            let id = match scope {
                Scope::Base => Uuid::parse_str(&key).map(|u| u.to_string()).unwrap_or(key.clone()),
                _ => key.clone(),
            };
            rows.push(StatRow { scope, id, name: name.clone(), period: period.label(year, n), figures });
        }
    }
    Ok(rows)
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0)
}

/// The units in report order with their keys (as the queries write them) and names.
async fn named_units(conn: &impl ConnectionTrait, units: &Units) -> Result<(Scope, Vec<(String, String)>)> {
    let backend = conn.get_database_backend();
    Ok(match units {
        Units::Bases(ids) => {
            let mut bases = base::Entity::find().filter(base::Column::Id.is_in(ids.clone())).all(conn).await?;
            bases.sort_by_key(|b| b.id);
            (Scope::Base, bases.into_iter().map(|b| (count::base_key(backend, b.id), b.name_zh)).collect())
        }
        Units::BasesOf(code) => {
            let mut bases = base::Entity::find().filter(base::Column::DistrictCode.eq(code.clone())).all(conn).await?;
            bases.sort_by_key(|b| b.id);
            (Scope::Base, bases.into_iter().map(|b| (count::base_key(backend, b.id), b.name_zh)).collect())
        }
        Units::Districts(codes) => {
            let mut ds = district::Entity::find().filter(district::Column::Code.is_in(codes.clone())).all(conn).await?;
            ds.sort_by(|a, b| a.code.cmp(&b.code));
            (Scope::District, ds.into_iter().map(|d| (d.code, d.name_zh)).collect())
        }
        Units::City => (Scope::City, vec![("city".into(), "广州市".into())]),
    })
}

/// The units a caller may read statistics of, for a scope and an optional id: the city and
/// the districts for anyone; a base for its operators, its district's officer and the bureau
/// (without an id: an operator's bases, an officer's district's bases).
pub async fn units_for(
    conn: &impl ConnectionTrait,
    actor: Option<&crate::domain::access::Actor>,
    scope: Scope,
    id: Option<&str>,
) -> Result<Units> {
    use crate::domain::enums::Role;
    use crate::error::AppError;
    match scope {
        Scope::City => Ok(Units::City),
        Scope::District => match id {
            Some(code) => {
                crate::domain::districts::ensure_exists(conn, code, "id").await?;
                Ok(Units::Districts(vec![code.to_string()]))
            }
            None => {
                Ok(Units::Districts(crate::domain::districts::list(conn).await?.into_iter().map(|d| d.code).collect()))
            }
        },
        Scope::Base => {
            let actor = actor.ok_or_else(|| {
                AppError::Unauthorized("a base's statistics are for its operators, its district and the bureau".into())
            })?;
            match id {
                Some(id) => {
                    let id = Uuid::parse_str(id).map_err(|_| AppError::field("id", "must be a base's id (a UUID)"))?;
                    let b = crate::domain::bases::ensure_exists(conn, id).await?;
                    let allowed = actor.is_admin()
                        || actor.operates(id)
                        || (actor.role == Role::DistrictOfficer
                            && actor.district_code.as_deref() == Some(b.district_code.as_str()));
                    if !allowed {
                        return Err(AppError::forbidden(format!(
                            "a {} account cannot read the statistics of base {id}",
                            actor.role
                        )));
                    }
                    Ok(Units::Bases(vec![id]))
                }
                None => match actor.role {
                    Role::Operator => Ok(Units::Bases(actor.base_ids.clone())),
                    Role::DistrictOfficer => Ok(Units::BasesOf(actor.district_code.clone().unwrap_or_default())),
                    Role::Admin => Err(AppError::field(
                        "id",
                        "required with scope=base for the bureau; GET /v1/districts/{code}/report lists a district's bases",
                    )),
                    other => Err(AppError::forbidden(format!("a {other} account has no base statistics"))),
                },
            }
        }
    }
}
