//! The statistics rollup: a closed month's visit figures per base, district and the city,
//! and the schools that came, counted once by the same queries the live statistics run
//! (`stat_months`, `stat_school_months`). The sweep rolls up months a day after they end.
//!
//! A rollup must never hide a later change. Each month has a generation (`stat_rollups`):
//! every write to a session or booking of a closed month raises it in the writer's own
//! transaction ([`touched`]), and a rollup counts only while holding the month's row, then
//! records the generation it counted. The statistics read a month from the rollup while the
//! two are equal, and from the raw rows otherwise, so their figures always equal a recount.

use chrono::{DateTime, Datelike, Duration, Utc};
use entity::stat_month;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, Set};

use super::Period;
use super::count::{By, Counter, Table, bucket_start};
use crate::db::{RawSql, begin_write};
use crate::error::Result;

/// How long after its end a month is rolled up: its last no-shows are recorded by then. A
/// write whose transaction outlasts this could go unnoticed, so it is generous.
pub const SETTLE: Duration = Duration::days(1);

/// The month (yyyymm, the city's time) of an instant.
pub fn month_of(t: DateTime<Utc>) -> i32 {
    let local = t.with_timezone(&crate::domain::sessions::city_offset());
    local.year() * 100 + local.month() as i32
}

/// The instants `[from, to)` of a month.
pub fn month_range(month: i32) -> (DateTime<Utc>, DateTime<Utc>) {
    let (year, m) = (month / 100, (month % 100) as u32);
    (bucket_start(Period::Month, year, m), bucket_start(Period::Month, year, m + 1))
}

fn next_month(month: i32) -> i32 {
    if month % 100 == 12 { (month / 100 + 1) * 100 + 1 } else { month + 1 }
}

/// Records, inside the writer's transaction, that the sessions or bookings starting at
/// `instants` changed: each of their months that has ended gets a new generation, so that
/// the statistics read it from the raw rows until it is rolled up again. Months still open
/// are never rolled up and cost nothing here.
pub async fn touched(conn: &impl ConnectionTrait, instants: &[DateTime<Utc>], now: DateTime<Utc>) -> Result<()> {
    let mut months: Vec<i32> =
        instants.iter().filter(|t| month_range(month_of(**t)).1 <= now).map(|t| month_of(*t)).collect();
    months.sort_unstable();
    months.dedup();
    for month in months {
        let mut sql = RawSql::new(conn.get_database_backend());
        sql.push("INSERT INTO stat_rollups (month, generation) VALUES (")
            .bind(month)
            .push(", 1) ON CONFLICT (month) DO UPDATE SET generation = stat_rollups.generation + 1");
        conn.execute_raw(sql.statement()).await?;
    }
    Ok(())
}

/// Records that every rolled-up month changed (a base moved to another district: its months
/// are filed under the old one).
pub async fn touched_all(conn: &impl ConnectionTrait) -> Result<()> {
    conn.execute_unprepared("UPDATE stat_rollups SET generation = generation + 1").await?;
    Ok(())
}

/// The months of `year` (yyyymm) whose rollup counted their current generation.
pub async fn fresh_months(conn: &impl ConnectionTrait, year: i32) -> Result<Vec<i32>> {
    #[derive(FromQueryResult)]
    struct Fresh {
        month: i32,
    }
    let mut sql = RawSql::new(conn.get_database_backend());
    sql.push("SELECT month FROM stat_rollups WHERE month > ")
        .bind(year * 100)
        .push(" AND month < ")
        .bind(year * 100 + 13)
        .push(" AND rolled_generation = generation ORDER BY month");
    Ok(Fresh::find_by_statement(sql.statement()).all(conn).await?.into_iter().map(|f| f.month).collect())
}

/// The instants of `year` outside the `fresh` months, as few ranges as possible.
pub fn open_ranges(year: i32, fresh: &[i32]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut ranges: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for month in (1..=12).map(|m| year * 100 + m).filter(|m| !fresh.contains(m)) {
        let (from, to) = month_range(month);
        match ranges.last_mut() {
            Some(last) if last.1 == from => last.1 = to,
            _ => ranges.push((from, to)),
        }
    }
    ranges
}

/// What one rollup did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RollupReport {
    /// Months rolled up.
    pub rolled: usize,
    /// Months already fresh when their turn came (another process rolled them).
    pub skipped: usize,
}

/// Rolls up to `limit` months that ended at least [`SETTLE`] before `now` and are not fresh,
/// the latest first. Safe in several processes at once: a month is rolled by one at a time.
pub async fn roll_up(db: &DatabaseConnection, now: DateTime<Utc>, limit: usize) -> Result<RollupReport> {
    #[derive(FromQueryResult)]
    struct First {
        first: Option<DateTime<Utc>>,
    }
    let backend = db.get_database_backend();
    let mut report = RollupReport::default();
    let first = First::find_by_statement(sea_orm::Statement::from_string(
        backend,
        "SELECT MIN(starts_at) AS first FROM sessions",
    ))
    .one(db)
    .await?
    .and_then(|f| f.first);
    let Some(first) = first else {
        return Ok(report);
    };
    let mut months = Vec::new();
    let mut month = month_of(first);
    while month_range(month).1 <= now - SETTLE {
        months.push(month);
        month = next_month(month);
    }
    let fresh: Vec<i32> = entity::stat_rollup::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter(|r| r.rolled_generation == Some(r.generation))
        .map(|r| r.month)
        .collect();
    for month in months.into_iter().rev().filter(|m| !fresh.contains(m)).take(limit) {
        if roll_month(db, month, now).await? {
            report.rolled += 1;
        } else {
            report.skipped += 1;
        }
    }
    if report.rolled > 0 {
        // A month's rows arrive at once; planning with the table's old statistics could read
        // every row of the rollup for one district's bases.
        db.execute_unprepared("ANALYZE stat_months").await?;
        db.execute_unprepared("ANALYZE stat_school_months").await?;
    }
    Ok(report)
}

/// Rolls up one closed month in one transaction holding its `stat_rollups` row; false when it
/// was fresh already.
async fn roll_month(db: &DatabaseConnection, month: i32, now: DateTime<Utc>) -> Result<bool> {
    #[derive(FromQueryResult)]
    struct State {
        generation: i64,
        rolled_generation: Option<i64>,
    }
    let backend = db.get_database_backend();
    let mut sql = RawSql::new(backend);
    sql.push("INSERT INTO stat_rollups (month, generation) VALUES (")
        .bind(month)
        .push(", 0) ON CONFLICT (month) DO NOTHING");
    db.execute_raw(sql.statement()).await?;

    // Holding the row: a writer raising the generation waits for this transaction, and every
    // change committed before it is in what the queries below read.
    let txn = begin_write(db).await?;
    let mut sql = RawSql::new(backend);
    sql.push("SELECT generation, rolled_generation FROM stat_rollups WHERE month = ").bind(month);
    if backend == DbBackend::Postgres {
        sql.push(" FOR UPDATE");
    }
    let Some(state) = State::find_by_statement(sql.statement()).one(&txn).await? else {
        return Ok(false);
    };
    if state.rolled_generation == Some(state.generation) {
        return Ok(false);
    }
    for table in ["stat_months", "stat_school_months"] {
        let mut sql = RawSql::new(backend);
        sql.push(&format!("DELETE FROM {table} WHERE month = ")).bind(month);
        txn.execute_raw(sql.statement()).await?;
    }
    let range = [month_range(month)];
    let bucket = |_: &str| month.to_string();
    for by in [By::Bases(None), By::Districts(None), By::City] {
        let counter = Counter { backend, by };
        let mut table = Table::new();
        counter.visits(&txn, &bucket, &range, range[0].1, &mut table).await?;
        let rows: Vec<stat_month::ActiveModel> = table
            .into_iter()
            .map(|((unit, _), f)| stat_month::ActiveModel {
                unit: Set(unit),
                month: Set(month),
                sessions_held: Set(f.sessions_held),
                places_offered: Set(f.places_offered),
                bookings: Set(f.bookings),
                visitors_booked: Set(f.visitors_booked),
                visitors_checked_in: Set(f.visitors_checked_in),
                school_groups: Set(f.school_groups),
                late_cancellations: Set(f.late_cancellations),
                no_shows: Set(f.no_shows),
            })
            .collect();
        for chunk in rows.chunks(1000) {
            stat_month::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
        }
        let mut sql = RawSql::new(backend);
        sql.push("INSERT INTO stat_school_months (unit, month, school_id) ");
        counter.school_triples(&mut sql, &month.to_string(), &range);
        txn.execute_raw(sql.statement()).await?;
    }
    let mut sql = RawSql::new(backend);
    sql.push("UPDATE stat_rollups SET rolled_generation = generation, rolled_at = ")
        .bind(now)
        .push(" WHERE month = ")
        .bind(month)
        .push(" AND generation = ")
        .bind(state.generation);
    if txn.execute_raw(sql.statement()).await?.rows_affected() != 1 {
        // Cannot happen while the row is held; a rollup that missed a change is never kept.
        return Ok(false);
    }
    txn.commit().await?;
    Ok(true)
}
