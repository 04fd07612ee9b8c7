//! City science statistics (科普统计): the year's figures of a base, a district or the city,
//! by year, quarter or month, counted by the database from the raw rows (sessions, bookings,
//! tours, campaign applications, exhibit loans), each figure one grouped query.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::{base, district};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QuerySelect};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::RawSql;
use crate::domain::enums::{BookingStatus, LoanStatus, SessionStatus};
use crate::error::Result;

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

/// A grouped count read back: the unit's key, the bucket, up to six figures.
#[derive(Debug, FromQueryResult)]
struct Counted {
    k: String,
    p: i32,
    a: Option<i64>,
    b: Option<i64>,
    c: Option<i64>,
    d: Option<i64>,
    e: Option<i64>,
    f: Option<i64>,
}

/// How one query groups and filters by unit, given the column holding the row's base id.
struct Grouping<'a> {
    backend: DbBackend,
    units: &'a Units,
}

impl Grouping<'_> {
    /// The join to `bases b` the unit needs (for districts).
    fn join(&self, base_col: &str) -> String {
        match self.units {
            Units::Districts(_) => format!(" JOIN bases b ON b.id = {base_col}"),
            _ => String::new(),
        }
    }

    /// The unit's key as text.
    fn key(&self, base_col: &str) -> String {
        match (self.units, self.backend) {
            (Units::Bases(_), DbBackend::Postgres) => format!("CAST({base_col} AS TEXT)"),
            (Units::Bases(_), _) => format!("lower(hex({base_col}))"),
            (Units::Districts(_), _) => "b.district_code".into(),
            (Units::City, _) => "'city'".into(),
        }
    }

    /// The unit filter, appended with AND.
    fn filter(&self, sql: &mut RawSql, base_col: &str) {
        match self.units {
            Units::Bases(ids) => {
                sql.push(" AND ");
                sql.in_ids(base_col, ids);
            }
            Units::Districts(codes) if codes.is_empty() => {
                sql.push(" AND 1 = 0");
            }
            Units::Districts(codes) => {
                sql.push(" AND b.district_code IN (");
                for (i, c) in codes.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.bind(c.clone());
                }
                sql.push(")");
            }
            Units::City => {}
        }
    }

    /// The bucket (1-based) of the local time of `col` within `year` (rows are already limited
    /// to the year): compared with the buckets' first instants, written as literals, so that no
    /// row pays for a time-zone conversion.
    fn bucket(&self, period: Period, year: i32, col: &str) -> String {
        let starts: Vec<DateTime<Utc>> = (2..=period.buckets()).map(|n| bucket_start(period, year, n)).collect();
        if starts.is_empty() {
            return "1".into();
        }
        let mut out = String::from("CASE");
        for (i, t) in starts.iter().enumerate() {
            let literal = match self.backend {
                DbBackend::Postgres => format!("CAST('{}' AS TIMESTAMPTZ)", t.to_rfc3339()),
                // As sqlx writes instants on SQLite, so that text compares as time.
                _ => format!("'{}'", t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)),
            };
            out.push_str(&format!(" WHEN {col} < {literal} THEN {}", i + 1));
        }
        out.push_str(&format!(" ELSE {} END", period.buckets()));
        out
    }
}

/// The first instant of bucket `n` (1-based) of `year`, local time.
fn bucket_start(period: Period, year: i32, n: u32) -> DateTime<Utc> {
    use chrono::TimeZone;
    let month = match period {
        Period::Year => 1,
        Period::Quarter => (n - 1) * 3 + 1,
        Period::Month => n,
    };
    crate::domain::sessions::city_offset()
        .with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn in_list(sql: &mut RawSql, col: &str, values: &[&str]) {
    sql.push(" AND ").push(col).push(" IN (");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(v.to_string());
    }
    sql.push(")");
}

/// The statistics of `units` for `year` cut by `period`: one row per unit and period, every
/// period present (zeros where nothing happened). `now` bounds "held": sessions and tours
/// that have not started yet are not counted as held.
#[tracing::instrument(skip(conn), err)]
pub async fn figures(
    conn: &impl ConnectionTrait,
    units: &Units,
    year: i32,
    period: Period,
    now: DateTime<Utc>,
) -> Result<Vec<StatRow>> {
    let backend = conn.get_database_backend();
    let g = Grouping { backend, units };
    let (from, to) = crate::domain::evaluation::year_range(year);
    let held_before = now.min(to);
    let mut table: BTreeMap<(String, i32), Figures> = BTreeMap::new();
    let holding = BookingStatus::names(BookingStatus::HOLDING);

    // Sessions held and places offered.
    let mut sql = RawSql::new(backend);
    sql.push(&format!(
        "SELECT {} AS k, {} AS p, COUNT(*) AS a, SUM(s.capacity) AS b, CAST(NULL AS BIGINT) AS c, CAST(NULL AS BIGINT) AS d, CAST(NULL AS BIGINT) AS e, CAST(NULL AS BIGINT) AS f FROM sessions s{} WHERE s.status <> ",
        g.key("s.base_id"),
        g.bucket(period, year, "s.starts_at"),
        g.join("s.base_id")
    ));
    sql.bind(SessionStatus::Cancelled.as_str())
        .push(" AND s.starts_at >= ")
        .bind(from)
        .push(" AND s.starts_at < ")
        .bind(held_before);
    g.filter(&mut sql, "s.base_id");
    sql.push(" GROUP BY 1, 2");
    read_into(conn, sql, &mut table, |f, r| {
        f.sessions_held = r.a.unwrap_or(0);
        f.places_offered = r.b.unwrap_or(0);
    })
    .await?;

    // Bookings, by the visit's start.
    let holds = |sql: &mut RawSql| {
        sql.push("k.status IN (");
        for (i, s) in holding.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(s.to_string());
        }
        sql.push(")");
    };
    let mut sql = RawSql::new(backend);
    sql.push(&format!(
        "SELECT {} AS k, {} AS p, SUM(CASE WHEN ",
        g.key("k.base_id"),
        g.bucket(period, year, "k.starts_at")
    ));
    holds(&mut sql);
    sql.push(" THEN 1 ELSE 0 END) AS a, SUM(CASE WHEN ");
    holds(&mut sql);
    sql.push(" THEN k.students + k.teachers ELSE 0 END) AS b, SUM(CASE WHEN k.status = ")
        .bind(BookingStatus::CheckedIn.as_str())
        .push(" THEN COALESCE(k.students_present, 0) + COALESCE(k.teachers_present, 0) ELSE 0 END) AS c, SUM(CASE WHEN k.status = ")
        .bind(BookingStatus::CheckedIn.as_str())
        .push(" THEN 1 ELSE 0 END) AS d, SUM(CASE WHEN k.status = ")
        .bind(BookingStatus::Cancelled.as_str())
        .push(" AND k.late_cancellation THEN 1 ELSE 0 END) AS e, SUM(CASE WHEN k.status = ")
        .bind(BookingStatus::NoShow.as_str())
        .push(&format!(
            " THEN 1 ELSE 0 END) AS f FROM bookings k{} WHERE k.starts_at >= ",
            g.join("k.base_id")
        ))
        .bind(from)
        .push(" AND k.starts_at < ")
        .bind(to);
    g.filter(&mut sql, "k.base_id");
    sql.push(" GROUP BY 1, 2");
    read_into(conn, sql, &mut table, |f, r| {
        f.bookings = r.a.unwrap_or(0);
        f.visitors_booked = r.b.unwrap_or(0);
        f.visitors_checked_in = r.c.unwrap_or(0);
        f.school_groups = r.d.unwrap_or(0);
        f.late_cancellations = r.e.unwrap_or(0);
        f.no_shows = r.f.unwrap_or(0);
    })
    .await?;

    // Distinct schools, apart: a distinct count would keep the sums above from running in
    // parallel, and distinct (unit, period, school) triples come from the schools' index.
    let mut sql = RawSql::new(backend);
    sql.push(&format!(
        "SELECT x.k AS k, x.p AS p, COUNT(*) AS a, CAST(NULL AS BIGINT) AS b, CAST(NULL AS BIGINT) AS c, \
         CAST(NULL AS BIGINT) AS d, CAST(NULL AS BIGINT) AS e, CAST(NULL AS BIGINT) AS f \
         FROM (SELECT DISTINCT {} AS k, {} AS p, k.school_id AS school FROM bookings k{} WHERE ",
        g.key("k.base_id"),
        g.bucket(period, year, "k.starts_at"),
        g.join("k.base_id")
    ));
    holds(&mut sql);
    sql.push(" AND k.starts_at >= ").bind(from).push(" AND k.starts_at < ").bind(to);
    g.filter(&mut sql, "k.base_id");
    sql.push(") x GROUP BY x.k, x.p");
    read_into(conn, sql, &mut table, |f, r| f.distinct_schools = r.a.unwrap_or(0)).await?;

    // Tour departures with a leg at the unit, each tour once per unit.
    let mut sql = RawSql::new(backend);
    sql.push(&format!(
        "SELECT x.k AS k, x.p AS p, COUNT(*) AS a, SUM(x.places) AS b, CAST(SUM(x.booked) AS BIGINT) AS c, CAST(NULL AS BIGINT) AS d, CAST(NULL AS BIGINT) AS e, CAST(NULL AS BIGINT) AS f FROM (\
         SELECT DISTINCT {} AS k, {} AS p, t.id AS tid, t.places AS places, \
         tp.used AS booked FROM tours t JOIN capacity_pools tp ON tp.id = t.pool_id \
         JOIN tour_legs l ON l.tour_id = t.id JOIN sessions s ON s.id = l.session_id{} WHERE t.status <> ",
        g.key("s.base_id"),
        g.bucket(period, year, "t.starts_at"),
        g.join("s.base_id")
    ));
    sql.bind(crate::domain::tours::CANCELLED)
        .push(" AND t.starts_at >= ")
        .bind(from)
        .push(" AND t.starts_at < ")
        .bind(held_before);
    g.filter(&mut sql, "s.base_id");
    sql.push(") x GROUP BY x.k, x.p");
    read_into(conn, sql, &mut table, |f, r| {
        f.tour_departures = r.a.unwrap_or(0);
        f.tour_places = r.b.unwrap_or(0);
        f.tour_booked = r.c.unwrap_or(0);
    })
    .await?;

    // Campaign applicants (of campaigns with a tour at the unit) and winners (with a place
    // held on a tour at the unit), by the close of sign-up.
    let mut sql = RawSql::new(backend);
    sql.push(&format!(
        "SELECT {} AS k, {} AS p, COUNT(DISTINCT a.id) AS a, CAST(NULL AS BIGINT) AS b, CAST(NULL AS BIGINT) AS c, \
         CAST(NULL AS BIGINT) AS d, CAST(NULL AS BIGINT) AS e, CAST(NULL AS BIGINT) AS f FROM campaigns c \
         JOIN applications a ON a.campaign_id = c.id JOIN campaign_tours ct ON ct.campaign_id = c.id \
         JOIN tour_legs l ON l.tour_id = ct.tour_id JOIN sessions s ON s.id = l.session_id{} WHERE c.closes_at >= ",
        g.key("s.base_id"),
        g.bucket(period, year, "c.closes_at"),
        g.join("s.base_id")
    ));
    sql.bind(from).push(" AND c.closes_at < ").bind(to);
    g.filter(&mut sql, "s.base_id");
    sql.push(" GROUP BY 1, 2");
    read_into(conn, sql, &mut table, |f, r| f.campaign_applicants = r.a.unwrap_or(0)).await?;
    let mut sql = RawSql::new(backend);
    sql.push(&format!(
        "SELECT {} AS k, {} AS p, COUNT(DISTINCT w.application_id) AS a, CAST(NULL AS BIGINT) AS b, \
         CAST(NULL AS BIGINT) AS c, CAST(NULL AS BIGINT) AS d, CAST(NULL AS BIGINT) AS e, CAST(NULL AS BIGINT) AS f \
         FROM campaigns c JOIN applications a ON a.campaign_id = c.id JOIN application_wins w ON w.application_id = a.id \
         JOIN tour_legs l ON l.tour_id = w.tour_id JOIN sessions s ON s.id = l.session_id{} WHERE w.status = ",
        g.key("s.base_id"),
        g.bucket(period, year, "c.closes_at"),
        g.join("s.base_id")
    ));
    sql.bind(crate::domain::campaigns::CONFIRMED)
        .push(" AND c.closes_at >= ")
        .bind(from)
        .push(" AND c.closes_at < ")
        .bind(to);
    g.filter(&mut sql, "s.base_id");
    sql.push(" GROUP BY 1, 2");
    read_into(conn, sql, &mut table, |f, r| f.campaign_winners = r.a.unwrap_or(0)).await?;

    // Exhibit loans sent out, by the lending and by the borrowing side.
    for (side, lent) in [("x.owner_base_id", true), ("x.borrower_base_id", false)] {
        let mut sql = RawSql::new(backend);
        sql.push(&format!(
            "SELECT {} AS k, {} AS p, COUNT(*) AS a, CAST(NULL AS BIGINT) AS b, CAST(NULL AS BIGINT) AS c, CAST(NULL AS BIGINT) AS d, CAST(NULL AS BIGINT) AS e, CAST(NULL AS BIGINT) AS f \
             FROM exhibit_loans x{} WHERE x.dispatched_at >= ",
            g.key(side),
            g.bucket(period, year, "x.dispatched_at"),
            g.join(side)
        ));
        sql.bind(from).push(" AND x.dispatched_at < ").bind(to);
        in_list(&mut sql, "x.status", &[LoanStatus::OnLoan.as_str(), LoanStatus::Returned.as_str()]);
        g.filter(&mut sql, side);
        sql.push(" GROUP BY 1, 2");
        read_into(conn, sql, &mut table, |f, r| {
            if lent {
                f.exhibit_loans_lent = r.a.unwrap_or(0);
            } else {
                f.exhibit_loans_borrowed = r.a.unwrap_or(0);
            }
        })
        .await?;
    }

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

/// Runs a grouped count and applies each row to its unit's and period's figures.
async fn read_into(
    conn: &impl ConnectionTrait,
    sql: RawSql,
    table: &mut BTreeMap<(String, i32), Figures>,
    apply: impl Fn(&mut Figures, &Counted),
) -> Result<()> {
    for r in Counted::find_by_statement(sql.statement()).all(conn).await? {
        apply(table.entry((r.k.clone(), r.p)).or_default(), &r);
    }
    Ok(())
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0)
}

/// The units in report order with their keys (as the queries write them) and names.
async fn named_units(conn: &impl ConnectionTrait, units: &Units) -> Result<(Scope, Vec<(String, String)>)> {
    let postgres = conn.get_database_backend() == DbBackend::Postgres;
    Ok(match units {
        Units::Bases(ids) => {
            let mut bases = base::Entity::find().filter(base::Column::Id.is_in(ids.clone())).all(conn).await?;
            bases.sort_by_key(|b| b.id);
            let key = |id: Uuid| if postgres { id.to_string() } else { id.simple().to_string() };
            (Scope::Base, bases.into_iter().map(|b| (key(b.id), b.name_zh)).collect())
        }
        Units::Districts(codes) => {
            let mut ds = district::Entity::find().filter(district::Column::Code.is_in(codes.clone())).all(conn).await?;
            ds.sort_by(|a, b| a.code.cmp(&b.code));
            (Scope::District, ds.into_iter().map(|d| (d.code, d.name_zh)).collect())
        }
        Units::City => (Scope::City, vec![("city".into(), "广州市".into())]),
    })
}

/// A base's standing in a district report: accreditation, the year's grade, its signs.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Standing {
    pub id: Uuid,
    pub name_zh: String,
    pub status: String,
    pub valid_until: Option<DateTime<Utc>>,
    /// The grade of its finalised evaluation of the year (the latest, if re-evaluated).
    pub grade: Option<String>,
    /// Signs standing (not rejected, replaced or removed).
    pub signs: i64,
    /// Of those, installed signs whose inspection is overdue.
    pub signs_overdue: i64,
    /// Of those, signs due for update to the current standard.
    pub signs_update_due: i64,
}

/// The standing of every base of a district, by id: one query, the counts correlated
/// subqueries over the signs' and evaluations' base indexes.
pub async fn standings(
    conn: &impl ConnectionTrait,
    code: &str,
    year: i32,
    now: DateTime<Utc>,
) -> Result<Vec<Standing>> {
    use crate::domain::enums::{EvaluationStatus, SignStatus};
    let gone = [SignStatus::Rejected, SignStatus::Replaced, SignStatus::Removed];
    let standing_signs = |sql: &mut RawSql| in_list(sql, "s.status NOT", &gone.map(|s| s.as_str()));
    let mut sql = RawSql::new(conn.get_database_backend());
    sql.push(
        "SELECT b.id AS id, b.name_zh AS name_zh, b.status AS status, b.valid_until AS valid_until, \
         (SELECT e.grade FROM evaluations e JOIN evaluation_cycles c ON c.id = e.cycle_id \
          WHERE e.base_id = b.id AND c.year = ",
    )
    .bind(year)
    .push(" AND e.status = ")
    .bind(EvaluationStatus::Finalized.as_str())
    .push(" ORDER BY e.finalized_at DESC LIMIT 1) AS grade, (SELECT COUNT(*) FROM signs s WHERE s.base_id = b.id");
    standing_signs(&mut sql);
    sql.push(") AS signs, (SELECT COUNT(*) FROM signs s WHERE s.base_id = b.id AND s.next_inspection_due < ")
        .bind(now)
        .push(" AND s.status = ")
        .bind(SignStatus::Installed.as_str())
        .push(") AS signs_overdue, (SELECT COUNT(*) FROM signs s WHERE s.base_id = b.id AND s.status = ")
        .bind(SignStatus::UpdateDue.as_str())
        .push(") AS signs_update_due FROM bases b WHERE b.district_code = ")
        .bind(code.to_string())
        .push(" ORDER BY b.id");
    Ok(Standing::find_by_statement(sql.statement()).all(conn).await?)
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
                    Role::DistrictOfficer => {
                        let code = actor.district_code.clone().unwrap_or_default();
                        let ids: Vec<Uuid> = base::Entity::find()
                            .select_only()
                            .column(base::Column::Id)
                            .filter(base::Column::DistrictCode.eq(code))
                            .into_tuple()
                            .all(conn)
                            .await?;
                        Ok(Units::Bases(ids))
                    }
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

/// A unit's exhibit sharing in a year.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Sharing {
    /// Loans it sent out in the year, and the days they were (or have been so far) away.
    pub loans_lent: i64,
    pub days_lent: i64,
    /// Loans it received in the year, and their days.
    pub loans_borrowed: i64,
    pub days_borrowed: i64,
    /// Its shareable exhibits now, and those of them never sent out on a loan.
    pub shareable_exhibits: i64,
    pub never_lent: i64,
}

/// The district a caller's sharing report covers (`None`: the city): the bureau's choice, a
/// district officer's own district; nobody else reads it.
pub async fn sharing_scope(
    conn: &impl ConnectionTrait,
    actor: &crate::domain::access::Actor,
    asked: Option<String>,
) -> Result<Option<String>> {
    use crate::domain::enums::Role;
    let district = match actor.role {
        Role::Admin => asked,
        Role::DistrictOfficer => actor.district_code.clone(),
        other => {
            return Err(crate::error::AppError::forbidden(format!(
                "the sharing report is the bureau's and the districts'; not a {other}'s"
            )));
        }
    };
    if let Some(d) = &district {
        crate::domain::districts::ensure_exists(conn, d, "district").await?;
    }
    Ok(district)
}

/// The sharing report: per base (those with loans or shareable exhibits) and per district,
/// each figure a grouped query. A loan counts in the year it was dispatched; its days run
/// from the local day it left to the day it came back (or today), both counted.
pub async fn sharing(
    conn: &impl ConnectionTrait,
    year: i32,
    district: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(BTreeMap<Uuid, Sharing>, BTreeMap<String, Sharing>)> {
    let backend = conn.get_database_backend();
    // A local day's number: `prefix` + an instant + `suffix`.
    let (prefix, suffix) = match backend {
        DbBackend::Postgres => ("(CAST((", " AT TIME ZONE 'Asia/Shanghai') AS DATE) - DATE '2000-01-01')"),
        _ => ("CAST(julianday(date(", ", '+8 hours')) AS INTEGER)"),
    };
    let null_uuid = if backend == DbBackend::Postgres { "CAST(NULL AS UUID)" } else { "NULL" };
    let (from, to) = crate::domain::evaluation::year_range(year);
    let mut by_base: BTreeMap<Uuid, Sharing> = BTreeMap::new();
    let mut by_district: BTreeMap<String, Sharing> = BTreeMap::new();
    #[derive(Debug, FromQueryResult)]
    struct Row {
        base_id: Option<Uuid>,
        district_code: Option<String>,
        a: Option<i64>,
        b: Option<i64>,
    }
    let sent = [LoanStatus::OnLoan.as_str(), LoanStatus::Returned.as_str()];
    for per_district in [false, true] {
        let key = if per_district {
            format!("{null_uuid} AS base_id, b.district_code AS district_code")
        } else {
            "b.id AS base_id, CAST(NULL AS TEXT) AS district_code".to_string()
        };
        let group = if per_district { "b.district_code" } else { "b.id" };
        for (side, lent) in [("x.owner_base_id", true), ("x.borrower_base_id", false)] {
            let mut sql = RawSql::new(backend);
            sql.push(&format!("SELECT {key}, COUNT(*) AS a, CAST(SUM({prefix}COALESCE(x.returned_at, "))
                .bind(now)
                .push(&format!(
                    "){suffix} - {prefix}x.dispatched_at{suffix} + 1) AS BIGINT) AS b FROM exhibit_loans x \
                     JOIN bases b ON b.id = {side} WHERE x.dispatched_at >= "
                ))
                .bind(from)
                .push(" AND x.dispatched_at < ")
                .bind(to);
            in_list(&mut sql, "x.status", &sent);
            if let Some(d) = district {
                sql.push(" AND b.district_code = ").bind(d.to_string());
            }
            sql.push(&format!(" GROUP BY {group}"));
            for r in Row::find_by_statement(sql.statement()).all(conn).await? {
                let s = match (r.base_id, r.district_code) {
                    (Some(b), _) => by_base.entry(b).or_default(),
                    (None, Some(d)) => by_district.entry(d).or_default(),
                    _ => continue,
                };
                if lent {
                    (s.loans_lent, s.days_lent) = (r.a.unwrap_or(0), r.b.unwrap_or(0));
                } else {
                    (s.loans_borrowed, s.days_borrowed) = (r.a.unwrap_or(0), r.b.unwrap_or(0));
                }
            }
        }
        let mut sql = RawSql::new(backend);
        sql.push(&format!(
            "SELECT {key}, COUNT(*) AS a, SUM(CASE WHEN NOT EXISTS (SELECT 1 FROM exhibit_loans x WHERE x.exhibit_id = e.id \
             AND x.dispatched_at IS NOT NULL) THEN 1 ELSE 0 END) AS b FROM exhibits e JOIN bases b ON b.id = e.base_id WHERE e.shareable"
        ));
        if let Some(d) = district {
            sql.push(" AND b.district_code = ").bind(d.to_string());
        }
        sql.push(&format!(" GROUP BY {group}"));
        for r in Row::find_by_statement(sql.statement()).all(conn).await? {
            let s = match (r.base_id, r.district_code) {
                (Some(b), _) => by_base.entry(b).or_default(),
                (None, Some(d)) => by_district.entry(d).or_default(),
                _ => continue,
            };
            (s.shareable_exhibits, s.never_lent) = (r.a.unwrap_or(0), r.b.unwrap_or(0));
        }
    }
    Ok((by_base, by_district))
}

/// A district's bases by status now (a lapsed accreditation counts as expired), by the grade of
/// their finalised evaluation of `year`, and its standing signs overdue for inspection and due
/// for update: grouped counts, in the database.
#[derive(Debug, Clone, Default)]
pub struct DistrictStanding {
    pub bases_by_status: BTreeMap<String, i64>,
    pub grades: BTreeMap<String, i64>,
    pub signs: i64,
    pub signs_overdue: i64,
    pub signs_update_due: i64,
}

pub async fn district_standing(
    conn: &impl ConnectionTrait,
    code: &str,
    year: i32,
    now: DateTime<Utc>,
) -> Result<DistrictStanding> {
    use crate::domain::enums::{BaseStatus, EvaluationStatus, SignStatus};
    #[derive(Debug, FromQueryResult)]
    struct Group {
        key: Option<String>,
        n: i64,
    }
    let backend = conn.get_database_backend();
    let mut out = DistrictStanding::default();

    let mut sql = RawSql::new(backend);
    sql.push("SELECT CASE WHEN b.status = ")
        .bind(BaseStatus::Accredited.as_str())
        .push(" AND b.valid_until <= ")
        .bind(now)
        .push(" THEN ")
        .bind(BaseStatus::Expired.as_str())
        .push(" ELSE b.status END AS key, COUNT(*) AS n FROM bases b WHERE b.district_code = ")
        .bind(code.to_string())
        .push(" GROUP BY 1");
    for g in Group::find_by_statement(sql.statement()).all(conn).await? {
        out.bases_by_status.insert(g.key.unwrap_or_default(), g.n);
    }

    let mut sql = RawSql::new(backend);
    sql.push(
        "SELECT x.grade AS key, COUNT(*) AS n FROM (SELECT (SELECT e.grade FROM evaluations e \
         JOIN evaluation_cycles c ON c.id = e.cycle_id WHERE e.base_id = b.id AND c.year = ",
    )
    .bind(year)
    .push(" AND e.status = ")
    .bind(EvaluationStatus::Finalized.as_str())
    .push(" ORDER BY e.finalized_at DESC LIMIT 1) AS grade FROM bases b WHERE b.district_code = ")
    .bind(code.to_string())
    .push(") x WHERE x.grade IS NOT NULL GROUP BY x.grade");
    for g in Group::find_by_statement(sql.statement()).all(conn).await? {
        out.grades.insert(g.key.unwrap_or_default(), g.n);
    }

    #[derive(Debug, FromQueryResult)]
    struct Signs {
        signs: Option<i64>,
        overdue: Option<i64>,
        update_due: Option<i64>,
    }
    let gone = [SignStatus::Rejected, SignStatus::Replaced, SignStatus::Removed];
    let mut sql = RawSql::new(backend);
    sql.push("SELECT COUNT(*) AS signs, SUM(CASE WHEN s.status = ")
        .bind(SignStatus::Installed.as_str())
        .push(" AND s.next_inspection_due < ")
        .bind(now)
        .push(" THEN 1 ELSE 0 END) AS overdue, SUM(CASE WHEN s.status = ")
        .bind(SignStatus::UpdateDue.as_str())
        .push(
            " THEN 1 ELSE 0 END) AS update_due FROM signs s JOIN bases b ON b.id = s.base_id WHERE b.district_code = ",
        )
        .bind(code.to_string());
    in_list(&mut sql, "s.status NOT", &gone.map(|s| s.as_str()));
    if let Some(s) = Signs::find_by_statement(sql.statement()).one(conn).await? {
        out.signs = s.signs.unwrap_or(0);
        out.signs_overdue = s.overdue.unwrap_or(0);
        out.signs_update_due = s.update_due.unwrap_or(0);
    }
    Ok(out)
}
