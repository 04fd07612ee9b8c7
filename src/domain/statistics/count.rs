//! How the statistics count: one grouped query per figure family, each row a unit's key, a
//! period's bucket and up to eight figures, over the raw rows of some time ranges or over the
//! rollup of closed months. The same queries fill the rollup, so both count by one rule.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult};
use uuid::Uuid;

use super::{Figures, Period, Units};
use crate::db::RawSql;
use crate::domain::enums::{BookingStatus, LoanStatus, SessionStatus};
use crate::error::Result;

/// Figures by (unit key, bucket).
pub(super) type Table = BTreeMap<(String, i32), Figures>;

/// Instants `[from, to)` whose rows count.
pub(super) type Ranges = [(DateTime<Utc>, DateTime<Utc>)];

/// Whose rows a query counts, and what it groups them by: some bases or districts (`None`:
/// every one, to fill the rollup), or the city.
#[derive(Debug, Clone, Copy)]
pub(super) enum By<'a> {
    Bases(Option<&'a [Uuid]>),
    BasesOf(&'a str),
    Districts(Option<&'a [String]>),
    City,
}

impl<'a> By<'a> {
    pub(super) fn of(units: &'a Units) -> Self {
        match units {
            Units::Bases(ids) => By::Bases(Some(ids)),
            Units::BasesOf(code) => By::BasesOf(code),
            Units::Districts(codes) => By::Districts(Some(codes)),
            Units::City => By::City,
        }
    }
}

/// The key a base's figures are filed under, as [`Counter::key`] writes it in SQL.
pub(super) fn base_key(backend: DbBackend, id: Uuid) -> String {
    match backend {
        DbBackend::Postgres => id.to_string(),
        _ => id.simple().to_string(),
    }
}

/// A grouped count read back.
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
    g: Option<i64>,
    h: Option<i64>,
}

impl Counted {
    fn values(&self) -> [i64; 8] {
        [self.a, self.b, self.c, self.d, self.e, self.f, self.g, self.h].map(|v| v.unwrap_or(0))
    }
}

/// The visit figures in the order the visit queries and the rollup columns give them.
fn visit_figures(f: &mut Figures) -> [&mut i64; 8] {
    [
        &mut f.sessions_held,
        &mut f.places_offered,
        &mut f.bookings,
        &mut f.visitors_booked,
        &mut f.visitors_checked_in,
        &mut f.school_groups,
        &mut f.late_cancellations,
        &mut f.no_shows,
    ]
}

/// The rollup's columns of [`visit_figures`], in order.
const ROLLED: [&str; 8] = [
    "sessions_held",
    "places_offered",
    "bookings",
    "visitors_booked",
    "visitors_checked_in",
    "school_groups",
    "late_cancellations",
    "no_shows",
];

/// `'a', 'b'`: our own status names, written into the SQL.
fn quoted(values: &[&str]) -> String {
    values.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
}

/// Writes the grouped queries for one grouping.
pub(super) struct Counter<'a> {
    pub(super) backend: DbBackend,
    pub(super) by: By<'a>,
}

impl Counter<'_> {
    /// The join to `bases b` the grouping needs (for districts).
    fn join(&self, base_col: &str) -> String {
        match self.by {
            By::Districts(_) | By::BasesOf(_) => format!(" JOIN bases b ON b.id = {base_col}"),
            _ => String::new(),
        }
    }

    /// The unit's key as text.
    fn key(&self, base_col: &str) -> String {
        match (self.by, self.backend) {
            (By::Bases(_) | By::BasesOf(_), DbBackend::Postgres) => format!("CAST({base_col} AS TEXT)"),
            (By::Bases(_) | By::BasesOf(_), _) => format!("lower(hex({base_col}))"),
            (By::Districts(_), _) => "b.district_code".into(),
            (By::City, _) => "'city'".into(),
        }
    }

    /// The unit filter of raw rows, appended with AND.
    fn filter(&self, sql: &mut RawSql, base_col: &str) {
        match self.by {
            By::Bases(Some(ids)) => {
                sql.push(" AND ");
                sql.in_ids(base_col, ids);
            }
            By::Districts(Some(codes)) => text_in(sql, self.backend, "b.district_code", codes),
            By::BasesOf(code) => {
                sql.push(" AND b.district_code = ").bind(code.to_string());
            }
            By::Bases(None) | By::Districts(None) | By::City => {}
        }
    }

    /// The unit filter of rollup rows (`m.unit`), appended with AND.
    fn unit_filter(&self, sql: &mut RawSql) {
        match self.by {
            By::Bases(Some(ids)) => {
                let keys: Vec<String> = ids.iter().map(|id| base_key(self.backend, *id)).collect();
                text_in(sql, self.backend, "m.unit", &keys);
            }
            By::Districts(Some(codes)) => text_in(sql, self.backend, "m.unit", codes),
            By::BasesOf(code) => {
                sql.push(&format!(" AND m.unit IN (SELECT {} FROM bases b WHERE b.district_code = ", self.key("b.id")))
                    .bind(code.to_string())
                    .push(")");
            }
            By::City => {
                sql.push(" AND m.unit = 'city'");
            }
            // Every base or district: the rollup is read for named units only.
            By::Bases(None) | By::Districts(None) => {
                sql.push(" AND 1 = 0");
            }
        }
    }

    /// The bucket (1-based) of the local time of `col` within `year` (rows are already limited
    /// to the year): compared with the buckets' first instants, written as literals, so that no
    /// row pays for a time-zone conversion.
    pub(super) fn bucket(&self, period: Period, year: i32, col: &str) -> String {
        let starts: Vec<DateTime<Utc>> = (2..=period.buckets()).map(|n| bucket_start(period, year, n)).collect();
        if starts.is_empty() {
            return "1".into();
        }
        let mut out = String::from("CASE");
        for (i, t) in starts.iter().enumerate() {
            out.push_str(&format!(" WHEN {col} < {} THEN {}", self.instant(*t), i + 1));
        }
        out.push_str(&format!(" ELSE {} END", period.buckets()));
        out
    }

    /// An instant as a literal that compares with the backend's timestamps.
    fn instant(&self, t: DateTime<Utc>) -> String {
        match self.backend {
            DbBackend::Postgres => format!("CAST('{}' AS TIMESTAMPTZ)", t.to_rfc3339()),
            // As sqlx writes instants on SQLite, so that text compares as time.
            _ => format!("'{}'", t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)),
        }
    }

    /// The visit figures of the raw sessions and bookings of `ranges` (sessions only when they
    /// started before `held_before`), added to `table`: two grouped queries.
    pub(super) async fn visits(
        &self,
        conn: &impl ConnectionTrait,
        bucket: &(dyn Fn(&str) -> String + Sync),
        ranges: &Ranges,
        held_before: DateTime<Utc>,
        table: &mut Table,
    ) -> Result<()> {
        if ranges.is_empty() {
            return Ok(());
        }
        // Sessions held and places offered.
        let mut sql = RawSql::new(self.backend);
        sql.push(&select(&self.key("s.base_id"), &bucket("s.starts_at"), &["COUNT(*)", "SUM(s.capacity)"]));
        sql.push(&format!(
            " FROM sessions s{} WHERE s.status <> '{}'",
            self.join("s.base_id"),
            SessionStatus::Cancelled.as_str()
        ));
        within(&mut sql, "s.starts_at", ranges);
        sql.push(" AND s.starts_at < ").bind(held_before);
        self.filter(&mut sql, "s.base_id");
        sql.push(" GROUP BY 1, 2");
        add_into(conn, sql, table, |f, v| {
            f.sessions_held += v[0];
            f.places_offered += v[1];
        })
        .await?;

        // Bookings, by the visit's start.
        let holds = format!("k.status IN ({})", quoted(&BookingStatus::names(BookingStatus::HOLDING)));
        let (came, cancelled, missed) =
            (BookingStatus::CheckedIn.as_str(), BookingStatus::Cancelled.as_str(), BookingStatus::NoShow.as_str());
        let mut sql = RawSql::new(self.backend);
        sql.push(&select(
            &self.key("k.base_id"),
            &bucket("k.starts_at"),
            &[
                &format!("SUM(CASE WHEN {holds} THEN 1 ELSE 0 END)"),
                &format!("SUM(CASE WHEN {holds} THEN k.students + k.teachers ELSE 0 END)"),
                &format!(
                    "SUM(CASE WHEN k.status = '{came}' THEN COALESCE(k.students_present, 0) + \
                     COALESCE(k.teachers_present, 0) ELSE 0 END)"
                ),
                &format!("SUM(CASE WHEN k.status = '{came}' THEN 1 ELSE 0 END)"),
                &format!("SUM(CASE WHEN k.status = '{cancelled}' AND k.late_cancellation THEN 1 ELSE 0 END)"),
                &format!("SUM(CASE WHEN k.status = '{missed}' THEN 1 ELSE 0 END)"),
            ],
        ));
        sql.push(&format!(" FROM bookings k{} WHERE 1 = 1", self.join("k.base_id")));
        within(&mut sql, "k.starts_at", ranges);
        self.filter(&mut sql, "k.base_id");
        sql.push(" GROUP BY 1, 2");
        add_into(conn, sql, table, |f, v| {
            f.bookings += v[0];
            f.visitors_booked += v[1];
            f.visitors_checked_in += v[2];
            f.school_groups += v[3];
            f.late_cancellations += v[4];
            f.no_shows += v[5];
        })
        .await
    }

    /// The visit figures of the rolled-up `months` (yyyymm), added to `table`.
    pub(super) async fn rolled_visits(
        &self,
        conn: &impl ConnectionTrait,
        period: Period,
        months: &[i32],
        table: &mut Table,
    ) -> Result<()> {
        if months.is_empty() {
            return Ok(());
        }
        let sums: Vec<String> = ROLLED.iter().map(|c| format!("SUM(m.{c})")).collect();
        let sums: Vec<&str> = sums.iter().map(String::as_str).collect();
        let mut sql = RawSql::new(self.backend);
        sql.push(&select("m.unit", &month_bucket(period, "m.month"), &sums));
        sql.push(&format!(" FROM stat_months m WHERE m.month IN ({})", month_list(months)));
        self.unit_filter(&mut sql);
        sql.push(" GROUP BY 1, 2");
        add_into(conn, sql, table, |f, v| {
            for (figure, value) in visit_figures(f).into_iter().zip(v) {
                *figure += value;
            }
        })
        .await
    }

    /// Writes `SELECT DISTINCT` unit key, bucket, school: the schools that held places in
    /// `ranges`.
    pub(super) fn school_triples(&self, sql: &mut RawSql, bucket: &str, ranges: &Ranges) {
        sql.push(&format!(
            "SELECT DISTINCT {} AS k, {bucket} AS p, k.school_id AS school FROM bookings k{} WHERE k.status IN ({})",
            self.key("k.base_id"),
            self.join("k.base_id"),
            quoted(&BookingStatus::names(BookingStatus::HOLDING))
        ));
        within(sql, "k.starts_at", ranges);
        self.filter(sql, "k.base_id");
    }

    /// Distinct schools per unit and bucket, over the rolled-up `months` and the raw `ranges`
    /// together (a school counts once in a quarter however many of its months it came).
    pub(super) async fn distinct_schools(
        &self,
        conn: &impl ConnectionTrait,
        period: Period,
        year: i32,
        months: &[i32],
        ranges: &Ranges,
        table: &mut Table,
    ) -> Result<()> {
        if ranges.is_empty() && months.is_empty() {
            return Ok(());
        }
        let mut sql = RawSql::new(self.backend);
        sql.push(&select("x.k", "x.p", &["COUNT(DISTINCT x.school)"]));
        sql.push(" FROM (");
        if !ranges.is_empty() {
            self.school_triples(&mut sql, &self.bucket(period, year, "k.starts_at"), ranges);
        }
        if !months.is_empty() {
            if !ranges.is_empty() {
                sql.push(" UNION ALL ");
            }
            sql.push(&format!(
                "SELECT m.unit AS k, {} AS p, m.school_id AS school FROM stat_school_months m WHERE m.month IN ({})",
                month_bucket(period, "m.month"),
                month_list(months)
            ));
            self.unit_filter(&mut sql);
        }
        sql.push(") x GROUP BY x.k, x.p");
        add_into(conn, sql, table, |f, v| f.distinct_schools += v[0]).await
    }

    /// Tour departures with a leg at the unit (each tour once per unit), their places and the
    /// use of their pools; campaign applicants (of campaigns with a tour at the unit) and
    /// winners (holding a place won on a tour at the unit), by the close of sign-up; exhibit
    /// loans sent out, by the lending and by the borrowing side. Small tables, always raw.
    pub(super) async fn tours_campaigns_loans(
        &self,
        conn: &impl ConnectionTrait,
        period: Period,
        year: i32,
        held_before: DateTime<Utc>,
        table: &mut Table,
    ) -> Result<()> {
        let year_range = [crate::domain::evaluation::year_range(year)];
        let mut sql = RawSql::new(self.backend);
        sql.push(&select("x.k", "x.p", &["COUNT(*)", "SUM(x.places)", "SUM(x.booked)"]));
        sql.push(&format!(
            " FROM (SELECT DISTINCT {} AS k, {} AS p, t.id AS tid, t.places AS places, tp.used AS booked FROM tours t \
             JOIN capacity_pools tp ON tp.id = t.pool_id JOIN tour_legs l ON l.tour_id = t.id \
             JOIN sessions s ON s.id = l.session_id{} WHERE t.status <> '{}'",
            self.key("s.base_id"),
            self.bucket(period, year, "t.starts_at"),
            self.join("s.base_id"),
            crate::domain::tours::CANCELLED
        ));
        within(&mut sql, "t.starts_at", &year_range);
        sql.push(" AND t.starts_at < ").bind(held_before);
        self.filter(&mut sql, "s.base_id");
        sql.push(") x GROUP BY x.k, x.p");
        add_into(conn, sql, table, |f, v| {
            f.tour_departures += v[0];
            f.tour_places += v[1];
            f.tour_booked += v[2];
        })
        .await?;

        let campaign_legs = |won: bool| {
            let (count, join, condition) = match won {
                false => ("COUNT(DISTINCT a.id)", "campaign_tours ct ON ct.campaign_id = c.id", "ct.tour_id"),
                true => {
                    ("COUNT(DISTINCT w.application_id)", "application_wins w ON w.application_id = a.id", "w.tour_id")
                }
            };
            let mut sql = RawSql::new(self.backend);
            sql.push(&select(&self.key("s.base_id"), &self.bucket(period, year, "c.closes_at"), &[count]));
            sql.push(&format!(
                " FROM campaigns c JOIN applications a ON a.campaign_id = c.id JOIN {join} \
                 JOIN tour_legs l ON l.tour_id = {condition} JOIN sessions s ON s.id = l.session_id{} WHERE 1 = 1",
                self.join("s.base_id")
            ));
            if won {
                sql.push(&format!(" AND w.status = '{}'", crate::domain::campaigns::CONFIRMED));
            }
            within(&mut sql, "c.closes_at", &year_range);
            self.filter(&mut sql, "s.base_id");
            sql.push(" GROUP BY 1, 2");
            sql
        };
        add_into(conn, campaign_legs(false), table, |f, v| f.campaign_applicants += v[0]).await?;
        add_into(conn, campaign_legs(true), table, |f, v| f.campaign_winners += v[0]).await?;

        for (side, lent) in [("x.owner_base_id", true), ("x.borrower_base_id", false)] {
            let mut sql = RawSql::new(self.backend);
            sql.push(&select(&self.key(side), &self.bucket(period, year, "x.dispatched_at"), &["COUNT(*)"]));
            sql.push(&format!(
                " FROM exhibit_loans x{} WHERE x.status IN ({})",
                self.join(side),
                quoted(&[LoanStatus::OnLoan.as_str(), LoanStatus::Returned.as_str()])
            ));
            within(&mut sql, "x.dispatched_at", &year_range);
            self.filter(&mut sql, side);
            sql.push(" GROUP BY 1, 2");
            add_into(conn, sql, table, |f, v| match lent {
                true => f.exhibit_loans_lent += v[0],
                false => f.exhibit_loans_borrowed += v[0],
            })
            .await?;
        }
        Ok(())
    }
}

/// `SELECT key AS k, bucket AS p, figure AS a, …`, every figure a BIGINT and the ones not
/// given NULL, for [`Counted`].
fn select(key: &str, bucket: &str, figures: &[&str]) -> String {
    let mut out = format!("SELECT {key} AS k, {bucket} AS p");
    for (i, name) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
        let figure = figures.get(i).copied().unwrap_or("NULL");
        out.push_str(&format!(", CAST({figure} AS BIGINT) AS {name}"));
    }
    out
}

/// ` AND (col in one of the ranges)`.
fn within(sql: &mut RawSql, col: &str, ranges: &Ranges) {
    sql.push(" AND (");
    for (i, (from, to)) in ranges.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push(&format!("({col} >= ")).bind(*from).push(&format!(" AND {col} < ")).bind(*to).push(")");
    }
    if ranges.is_empty() {
        sql.push("1 = 0");
    }
    sql.push(")");
}

/// ` AND col IN (values)` with the values as one parameter however many there are (none:
/// nothing matches): a PostgreSQL array, or a JSON array on SQLite.
fn text_in(sql: &mut RawSql, backend: DbBackend, col: &str, values: &[String]) {
    if values.is_empty() {
        sql.push(" AND 1 = 0");
        return;
    }
    if backend == DbBackend::Postgres {
        let quoted: Vec<String> =
            values.iter().map(|v| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
        sql.push(&format!(" AND {col} = ANY(CAST(")).bind(format!("{{{}}}", quoted.join(","))).push(" AS TEXT[]))");
    } else {
        let json = serde_json::to_string(values).unwrap_or_default();
        sql.push(&format!(" AND {col} IN (SELECT value FROM json_each(")).bind(json).push("))");
    }
}

/// The bucket of a yyyymm column.
fn month_bucket(period: Period, col: &str) -> String {
    match period {
        Period::Year => "1".into(),
        Period::Quarter => format!("(({col} % 100) - 1) / 3 + 1"),
        Period::Month => format!("{col} % 100"),
    }
}

fn month_list(months: &[i32]) -> String {
    months.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
}

/// The first instant of bucket `n` (1-based) of `year`, local time (`n` past the last
/// bucket: the next year's first instant).
pub(super) fn bucket_start(period: Period, year: i32, n: u32) -> DateTime<Utc> {
    use chrono::TimeZone;
    let month = match period {
        Period::Year => 1,
        Period::Quarter => (n - 1) * 3 + 1,
        Period::Month => n,
    };
    let (year, month) = if month > 12 { (year + 1, month - 12) } else { (year, month) };
    crate::domain::sessions::city_offset()
        .with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Runs a grouped count and adds each row to its unit's and period's figures.
async fn add_into(
    conn: &impl ConnectionTrait,
    sql: RawSql,
    table: &mut Table,
    add: impl Fn(&mut Figures, [i64; 8]),
) -> Result<()> {
    for r in Counted::find_by_statement(sql.statement()).all(conn).await? {
        add(table.entry((r.k.clone(), r.p)).or_default(), r.values());
    }
    Ok(())
}
