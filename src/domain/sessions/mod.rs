//! Sessions: bookable visit times at a base, each with its own capacity pool, created one by
//! one or from a weekly pattern, found by place and free places, and cancelled with their
//! bookings.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use entity::{base, booking, capacity_pool, session, session_pool};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, LikeExpr, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde::Serialize;
use uuid::Uuid;

use crate::db::{RawSql, begin_write};
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::bases::BookingRules;
use crate::domain::capacity::{self, Party};
use crate::domain::enums::{Audience, BaseStatus, BookingStatus, PoolUnit, SessionStatus};
use crate::domain::geo::LatLon;
use crate::domain::page::{self, Cursor, PageRequest, Paged};
use crate::domain::validate::{self, Validator};
use crate::domain::{bases, districts, nearest, notifications};
use crate::error::{AppError, Result};

mod changes;
pub use changes::{SessionEdit, update};

/// The city's time zone: Asia/Shanghai has been UTC+08:00 all year since 1991.
pub fn city_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("a valid offset")
}

/// A session as requested.
#[derive(Debug, Clone)]
pub struct SessionInput {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i32,
    pub audiences: Vec<Audience>,
    pub booking_opens_at: Option<DateTime<Utc>>,
    pub booking_closes_at: Option<DateTime<Utc>>,
    pub max_group_size: Option<i32>,
    pub pool_ids: Vec<Uuid>,
}

/// A session with the pools it draws on.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRecord {
    #[serde(flatten)]
    pub session: session::Model,
    pub pools: Vec<capacity_pool::Model>,
    /// Its base, in short.
    #[serde(skip)]
    pub base: BaseBrief,
}

/// What a session shows of its base: who and where, and whether it is accredited.
#[derive(Debug, Clone, Default)]
pub struct BaseBrief {
    pub id: Uuid,
    pub name_zh: String,
    pub name_en: String,
    pub district_code: String,
    pub location: LatLon,
    /// Stored status and certificate end, read with [`bases::status_at`].
    pub status: String,
    pub valid_until: Option<DateTime<Utc>>,
}

impl BaseBrief {
    pub fn of(b: base::Model) -> Self {
        Self {
            id: b.id,
            location: LatLon { lat: b.lat, lon: b.lon },
            name_zh: b.name_zh,
            name_en: b.name_en,
            district_code: b.district_code,
            status: b.status,
            valid_until: b.valid_until,
        }
    }
}

impl SessionRecord {
    pub fn free(&self) -> i32 {
        capacity::free_places(&self.pools)
    }

    pub fn audiences(&self) -> Vec<Audience> {
        audiences_of(&self.session)
    }

    /// Whether a school may book it at `now`: its base accredited, the session open and its
    /// booking window open (the window closes before the start). The booking rules check the
    /// same conditions one at a time, to say which one fails; in SQL this rule is
    /// [`bookable_condition`] and the base's [`bases::status_condition`].
    pub fn bookable_now(&self, now: DateTime<Utc>) -> bool {
        let s = &self.session;
        bases::status_at(&self.base.status, self.base.valid_until, now) == BaseStatus::Accredited
            && SessionStatus::from_db(&s.status) == SessionStatus::Open
            && s.booking_opens_at <= now
            && now < s.booking_closes_at
    }
}

/// The session's part of [`SessionRecord::bookable_now`], as a condition on `sessions`.
pub fn bookable_condition(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(session::Column::Status.eq(SessionStatus::Open.as_str()))
        .add(session::Column::BookingOpensAt.lte(now))
        .add(session::Column::BookingClosesAt.gt(now))
}

pub fn audiences_of(s: &session::Model) -> Vec<Audience> {
    serde_json::from_value(s.audiences.clone()).unwrap_or_default()
}

fn not_found(id: Uuid) -> AppError {
    AppError::not_found(format!("no session with id {id}"))
}

/// Reads a session and locks it against concurrent bookings (pool changes, cancellation).
/// SQLite needs no row lock: its write transactions are serial.
pub async fn lock_exclusive(conn: &impl ConnectionTrait, id: Uuid) -> Result<session::Model> {
    session::Entity::find_by_id(id).lock_exclusive().one(conn).await?.ok_or_else(|| not_found(id))
}

/// Reads a session and keeps its pool set from changing until commit; bookings share it.
pub async fn lock_shared(conn: &impl ConnectionTrait, id: Uuid) -> Result<session::Model> {
    session::Entity::find_by_id(id).lock_shared().one(conn).await?.ok_or_else(|| not_found(id))
}

pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<SessionRecord> {
    let session = session::Entity::find_by_id(id).one(conn).await?.ok_or_else(|| not_found(id))?;
    let base = base::Entity::find_by_id(session.base_id).one(conn).await?.map(BaseBrief::of).unwrap_or_default();
    let pools = capacity::pools_of_session(conn, id).await?;
    Ok(SessionRecord { session, pools, base })
}

/// The sessions `ids` with their bases and pools, by id (three queries, whatever the count).
pub async fn records(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, SessionRecord>> {
    use std::collections::HashMap;
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sessions = session::Entity::find().filter(session::Column::Id.is_in(ids.iter().copied())).all(conn).await?;
    let base_ids: Vec<Uuid> = sessions.iter().map(|s| s.base_id).collect();
    let bases: HashMap<Uuid, BaseBrief> = base::Entity::find()
        .filter(base::Column::Id.is_in(base_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|b| (b.id, BaseBrief::of(b)))
        .collect();
    let links = session_pool::Entity::find()
        .filter(session_pool::Column::SessionId.is_in(ids.iter().copied()))
        .all(conn)
        .await?;
    let pools: HashMap<Uuid, capacity_pool::Model> = capacity_pool::Entity::find()
        .filter(capacity_pool::Column::Id.is_in(links.iter().map(|l| l.pool_id)))
        .order_by_asc(capacity_pool::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let mut out = HashMap::new();
    for s in sessions {
        let mut own: Vec<capacity_pool::Model> =
            links.iter().filter(|l| l.session_id == s.id).filter_map(|l| pools.get(&l.pool_id).cloned()).collect();
        own.sort_by_key(|p| p.id);
        let base = bases.get(&s.base_id).cloned().unwrap_or_default();
        out.insert(s.id, SessionRecord { session: s, pools: own, base });
    }
    Ok(out)
}

/// How far ahead sessions may be scheduled.
pub const MAX_DAYS_AHEAD: i64 = 730;

/// Checks a session's times, capacity and window, filling the window from the base's rules.
fn check(input: &SessionInput, rules: BookingRules, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    validate::sane_time("starts_at", Some(input.starts_at))?;
    validate::sane_time("ends_at", Some(input.ends_at))?;
    validate::sane_time("booking_opens_at", input.booking_opens_at)?;
    validate::sane_time("booking_closes_at", input.booking_closes_at)?;
    let mut v = Validator::new();
    if input.starts_at <= now {
        v.push("starts_at", "must be in the future");
    } else if input.starts_at > now + Duration::days(MAX_DAYS_AHEAD) {
        v.push("starts_at", format!("must be within {MAX_DAYS_AHEAD} days from now"));
    }
    // Everything below computes with the times; stop before an absurd one overflows.
    v.finish()?;
    let mut v = Validator::new();
    if input.ends_at <= input.starts_at {
        v.push("ends_at", "must be after starts_at");
    } else if input.ends_at - input.starts_at > Duration::hours(12) {
        v.push("ends_at", "a session lasts at most 12 hours");
    }
    v.range("capacity", input.capacity, 1, 100_000);
    if input.audiences.is_empty() {
        v.push("audiences", "must name at least one audience");
    }
    if let Some(m) = input.max_group_size {
        v.range("max_group_size", m, 1, 100_000);
    }
    let opens = input.booking_opens_at.unwrap_or(input.starts_at - Duration::days(rules.opens_days_before.into()));
    let closes = input.booking_closes_at.unwrap_or(input.starts_at - Duration::hours(rules.closes_hours_before.into()));
    if closes > input.starts_at {
        v.push("booking_closes_at", "must not be after starts_at");
    }
    if opens >= closes {
        v.push("booking_opens_at", "must be before booking_closes_at");
    }
    v.finish()?;
    Ok((opens, closes))
}

/// Inserts a session with its own pool and links it to the extra pools.
async fn insert(
    txn: &DatabaseTransaction,
    actor: &Actor,
    base: &base::Model,
    input: &SessionInput,
    now: DateTime<Utc>,
) -> Result<SessionRecord> {
    let (opens, closes) = check(input, BookingRules::of(base), now)?;
    let id = Uuid::now_v7();
    let own_pool = Uuid::now_v7();
    capacity_pool::Entity::insert(capacity_pool::ActiveModel {
        id: Set(own_pool),
        name: Set(format!("session {id}")),
        unit: Set(PoolUnit::Visitors.as_str().into()),
        capacity: Set(input.capacity),
        used: Set(0),
        base_id: Set(Some(base.id)),
        session_id: Set(Some(id)),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    let audiences = validate::unique(input.audiences.clone());
    session::Entity::insert(session::ActiveModel {
        id: Set(id),
        base_id: Set(base.id),
        starts_at: Set(input.starts_at),
        ends_at: Set(input.ends_at),
        capacity: Set(input.capacity),
        audiences: Set(serde_json::to_value(&audiences).unwrap_or_default()),
        booking_opens_at: Set(opens),
        booking_closes_at: Set(closes),
        max_group_size: Set(input.max_group_size),
        status: Set(SessionStatus::Open.as_str().into()),
        own_pool_id: Set(own_pool),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    let mut pool_ids = vec![own_pool];
    for (i, pid) in input.pool_ids.iter().enumerate() {
        let pool = capacity_pool::Entity::find_by_id(*pid)
            .one(txn)
            .await?
            .ok_or_else(|| AppError::field(format!("pool_ids[{i}]"), "no such capacity pool"))?;
        capacity::authorize_link(actor, &pool, base.id).map_err(|e| match e {
            AppError::Forbidden(_) => e,
            _ => AppError::field(format!("pool_ids[{i}]"), "is another base's or another session's pool"),
        })?;
        if !pool_ids.contains(pid) {
            pool_ids.push(*pid);
        }
    }
    session_pool::Entity::insert_many(
        pool_ids.iter().map(|p| session_pool::ActiveModel { session_id: Set(id), pool_id: Set(*p) }),
    )
    .exec_without_returning(txn)
    .await?;
    let record = get(txn, id).await?;
    audit::record(txn, Some(actor), now, Change::created("session", id, &record)).await?;
    Ok(record)
}

/// Creates one session at a base (its operators, or an admin).
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    base_id: Uuid,
    input: SessionInput,
    now: DateTime<Utc>,
) -> Result<SessionRecord> {
    authorize(actor, Action::ManageSessions { base_id })?;
    let txn = begin_write(db).await?;
    let base = bases::ensure_exists(&txn, base_id).await?;
    let record = insert(&txn, actor, &base, &input, now).await?;
    txn.commit().await?;
    Ok(record)
}

/// A weekly pattern of sessions.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub from_date: NaiveDate,
    pub to_date: NaiveDate,
    pub weekdays: Vec<Weekday>,
    /// Local (Asia/Shanghai) start and end times.
    pub times: Vec<(NaiveTime, NaiveTime)>,
    pub capacity: i32,
    pub audiences: Vec<Audience>,
    pub max_group_size: Option<i32>,
    pub pool_ids: Vec<Uuid>,
}

/// A slot of the pattern that was not created, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
}

pub const MAX_GENERATED: usize = 500;

/// The pattern's slots, in UTC, in order.
pub fn slots(p: &Pattern, now: DateTime<Utc>) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    let mut v = Validator::new();
    let today = now.with_timezone(&city_offset()).date_naive();
    let last_day = today + Duration::days(MAX_DAYS_AHEAD);
    if p.from_date < today - Duration::days(366) {
        v.push("from_date", "must not be more than a year ago");
    } else if p.from_date > last_day {
        v.push("from_date", format!("must be within {MAX_DAYS_AHEAD} days from today"));
    } else if p.to_date > last_day {
        v.push("to_date", format!("must be within {MAX_DAYS_AHEAD} days from today"));
    }
    if p.to_date < p.from_date {
        v.push("to_date", "must not be before from_date");
    } else if (p.to_date - p.from_date).num_days() > 366 {
        v.push("to_date", "a pattern spans at most 366 days");
    }
    if p.weekdays.is_empty() {
        v.push("weekdays", "must name at least one weekday");
    }
    if p.times.is_empty() {
        v.push("times", "must name at least one time");
    }
    for (i, (start, end)) in p.times.iter().enumerate() {
        if end <= start {
            v.push(format!("times[{i}].end"), "must be after start (sessions end on the day they start)");
        }
    }
    v.finish()?;
    let tz = city_offset();
    let mut out = Vec::new();
    for day in p.from_date.iter_days().take_while(|d| *d <= p.to_date) {
        if !p.weekdays.contains(&day.weekday()) {
            continue;
        }
        for (start, end) in &p.times {
            let local =
                |t: &NaiveTime| tz.from_local_datetime(&day.and_time(*t)).single().map(|d| d.with_timezone(&Utc));
            if let (Some(s), Some(e)) = (local(start), local(end)) {
                out.push((s, e));
            }
        }
    }
    out.sort();
    if out.len() > MAX_GENERATED {
        return Err(AppError::field(
            "to_date",
            format!("the pattern makes {} sessions; at most {MAX_GENERATED} at once", out.len()),
        ));
    }
    Ok(out)
}

/// Creates the sessions of a weekly pattern, skipping slots in the past or overlapping an
/// existing session of the base.
pub async fn generate(
    db: &DatabaseConnection,
    actor: &Actor,
    base_id: Uuid,
    pattern: Pattern,
    now: DateTime<Utc>,
) -> Result<(Vec<SessionRecord>, Vec<Skipped>)> {
    authorize(actor, Action::ManageSessions { base_id })?;
    let slots = slots(&pattern, now)?;
    let txn = begin_write(db).await?;
    let base = bases::ensure_exists(&txn, base_id).await?;
    let (first, last) = match (slots.first(), slots.last()) {
        (Some(f), Some(l)) => (f.0, l.1),
        _ => return Ok((vec![], vec![])),
    };
    let mut taken: Vec<(DateTime<Utc>, DateTime<Utc>)> = session::Entity::find()
        .filter(session::Column::BaseId.eq(base_id))
        .filter(session::Column::Status.ne(SessionStatus::Cancelled.as_str()))
        .filter(session::Column::StartsAt.lt(last))
        .filter(session::Column::EndsAt.gt(first))
        .all(&txn)
        .await?
        .into_iter()
        .map(|s| (s.starts_at, s.ends_at))
        .collect();
    let mut created = Vec::new();
    let mut skipped = Vec::new();
    for (starts_at, ends_at) in slots {
        let reason = if starts_at <= now {
            Some("in the past")
        } else if taken.iter().any(|(s, e)| *s < ends_at && starts_at < *e) {
            Some("overlaps an existing session")
        } else {
            None
        };
        if let Some(reason) = reason {
            skipped.push(Skipped { starts_at, ends_at, reason: reason.into() });
            continue;
        }
        let input = SessionInput {
            starts_at,
            ends_at,
            capacity: pattern.capacity,
            audiences: pattern.audiences.clone(),
            booking_opens_at: None,
            booking_closes_at: None,
            max_group_size: pattern.max_group_size,
            pool_ids: pattern.pool_ids.clone(),
        };
        created.push(insert(&txn, actor, &base, &input, now).await?);
        taken.push((starts_at, ends_at));
    }
    txn.commit().await?;
    Ok((created, skipped))
}

/// Cancels a session and every booking on it, giving their places back and telling each school.
pub async fn cancel(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<SessionRecord> {
    let txn = begin_write(db).await?;
    let s = lock_exclusive(&txn, id).await?;
    authorize(actor, Action::ManageSessions { base_id: s.base_id })?;
    let reason = validate::required_text("reason", reason, 500)?;
    // A visit that has begun happened (or is happening): its record stays as it is.
    if s.starts_at <= now {
        return Err(AppError::conflict_rule("invalid-state", "the session has started; it can no longer be cancelled"));
    }
    cancel_locked(&txn, Some(actor), s, &reason, now).await?;
    let after = get(&txn, id).await?;
    txn.commit().await?;
    Ok(after)
}

/// Moves a locked session to `status`, as a new version.
async fn set_status(
    conn: &impl ConnectionTrait,
    s: &session::Model,
    status: SessionStatus,
    now: DateTime<Utc>,
) -> Result<()> {
    session::Entity::update_many()
        .col_expr(session::Column::Status, sea_orm::sea_query::Expr::value(status.as_str()))
        .col_expr(session::Column::Version, sea_orm::sea_query::Expr::value(s.version + 1))
        .col_expr(session::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now))
        .filter(session::Column::Id.eq(s.id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Closes a session to new bookings (`open: false`; the bookings it has stay, and its waiting
/// list still moves up as places free), or opens it again before it starts (`open: true`).
pub async fn set_open(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    open: bool,
    now: DateTime<Utc>,
) -> Result<SessionRecord> {
    let txn = begin_write(db).await?;
    let s = lock_exclusive(&txn, id).await?;
    authorize(actor, Action::ManageSessions { base_id: s.base_id })?;
    let (from, to, action) = match open {
        true => (SessionStatus::Closed, SessionStatus::Open, "session.reopen"),
        false => (SessionStatus::Open, SessionStatus::Closed, "session.close"),
    };
    let status = SessionStatus::from_db(&s.status);
    if status != from {
        return Err(AppError::conflict_rule("invalid-state", format!("the session is {status}, not {from}")));
    }
    if open && s.starts_at <= now {
        return Err(AppError::conflict_rule("invalid-state", "the session has started"));
    }
    let before = get(&txn, id).await?;
    set_status(&txn, &s, to, now).await?;
    let after = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::updated(action, "session", id, &before, &after)).await?;
    txn.commit().await?;
    Ok(after)
}

/// Cancels a locked session and its bookings inside the caller's transaction (also used when
/// a base is revoked).
pub async fn cancel_locked(
    txn: &DatabaseTransaction,
    actor: Option<&Actor>,
    s: session::Model,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    if SessionStatus::from_db(&s.status) == SessionStatus::Cancelled {
        return Err(AppError::conflict_rule("invalid-state", "the session is already cancelled"));
    }
    let before = get(txn, s.id).await?;
    set_status(txn, &s, SessionStatus::Cancelled, now).await?;
    let bookings = booking::Entity::find()
        .filter(booking::Column::SessionId.eq(s.id))
        .filter(booking::Column::Status.is_in(BookingStatus::names(BookingStatus::ACTIVE)))
        .order_by_asc(booking::Column::Id)
        .all(txn)
        .await?;
    for b in bookings {
        let was = BookingStatus::from_db(&b.status);
        let res = booking::Entity::update_many()
            .col_expr(booking::Column::Status, sea_orm::sea_query::Expr::value(BookingStatus::Cancelled.as_str()))
            .col_expr(booking::Column::CancelledAt, sea_orm::sea_query::Expr::value(now))
            .col_expr(
                booking::Column::CancelReason,
                sea_orm::sea_query::Expr::value(format!("session cancelled: {reason}")),
            )
            .col_expr(booking::Column::Version, Expr::col(booking::Column::Version).add(1))
            .col_expr(booking::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now))
            .filter(booking::Column::Id.eq(b.id))
            .filter(booking::Column::Status.eq(was.as_str()))
            .exec(txn)
            .await?;
        if res.rows_affected == 0 {
            continue;
        }
        if was == BookingStatus::Confirmed {
            capacity::release(txn, &capacity::refs(&before.pools), Party::of(&b), now).await?;
        }
        let after = booking::Entity::find_by_id(b.id).one(txn).await?;
        audit::record(txn, actor, now, Change::updated("booking.cancel", "booking", b.id, &b, &after)).await?;
        notifications::send(
            txn,
            &b,
            "session_cancelled",
            format!("The visit on {} was cancelled by the base: {reason}", local_time(b.starts_at)),
            now,
        )
        .await?;
    }
    let after = get(txn, s.id).await?;
    audit::record(txn, actor, now, Change::updated("session.cancel", "session", s.id, &before, &after)).await?;
    // Last, once its bookings are locked: every writer takes a month's statistics row after
    // the booking rows it changes (a late check-in does too), so the two never deadlock.
    crate::domain::statistics::rollup::touched(txn, &[s.starts_at], now).await?;
    Ok(())
}

/// A time as the city reads it.
pub fn local_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&city_offset()).format("%Y-%m-%d %H:%M").to_string()
}

/// The filters of a session search.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub base_id: Option<Uuid>,
    pub near: Option<LatLon>,
    pub radius_km: Option<f64>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub min_free: Option<i32>,
    pub audience: Option<Audience>,
    pub district: Option<String>,
    /// Only sessions a school can book now (`true`), or only those it cannot yet or any more.
    pub bookable: Option<bool>,
    /// Closed and cancelled sessions too, not only the open ones (one base's schedule).
    pub any_status: bool,
}

/// A search hit: the session (with its base) and the distance from `near`.
#[derive(Debug, Clone)]
pub struct SessionHit {
    pub record: SessionRecord,
    pub distance_km: Option<f64>,
}

/// Sessions a base is taken to hold per day of a `near` search's window, until its first batch
/// of bases tells (most bases open a session or two on most days).
const SESSIONS_PER_BASE_DAY: f64 = 0.7;
/// The most bases one statement of a `near` search reads (more when bases share a distance).
const MAX_BATCH: usize = 64;

/// How many bases the next batch of a `near` search takes to fill `still` rows: as many as the
/// bases so far yielded per base (`rows` of `bases`), or before any, as the window's length
/// suggests. A batch too large reads rows in vain and one too small costs another statement:
/// over three months the nearest base alone usually fills a page, over a week about five do.
fn batch_size(still: u64, (rows, bases): (usize, usize), window_days: f64) -> usize {
    let per_base = if bases == 0 { window_days * SESSIONS_PER_BASE_DAY } else { rows as f64 / bases as f64 };
    let wanted = (still as f64 / per_base.max(0.25)).ceil();
    if wanted.is_finite() { (wanted as usize).clamp(1, MAX_BATCH) } else { MAX_BATCH }
}

/// Finds open sessions, filtering, ordering and cutting the page in the database; free
/// places are computed live in the query from every pool of each session. With `near`,
/// sorted by distance, then start, then id: bases are walked nearest first in rings
/// ([`nearest::Rings`]) and each batch of bases, sized to fill the page, answers one query.
/// Otherwise sorted by start, then id, off the `(starts_at, id)` index. A page and its pools
/// are read by one statement (one snapshot).
pub async fn search(
    db: &DatabaseConnection,
    q: &SessionQuery,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<Paged<SessionHit>> {
    let (from, to) = window(q, now)?;
    if q.any_status && q.base_id.is_none() {
        return Err(AppError::field("any_status", "only with base_id: a base's own schedule"));
    }
    if let Some(d) = &q.district {
        districts::ensure_exists(db, d, "district").await?;
    }
    let filter = search_condition(q, from, to, now);
    let need = page.limit + 1;
    // Each statement reads one snapshot: a page's sessions with their free places and pools.
    let rows = match q.near {
        None => {
            let stmt = by_time_statement(db.get_database_backend(), q, filter, page, need);
            hit_rows(db, stmt).await?.into_iter().map(|r| (r, None)).collect()
        }
        Some(center) => near_rows(db, q, center, filter, (from, to), page, need).await?,
    };
    let paged = Paged::from_overfetch(rows, page.limit, |(r, d): &(HitRow, Option<f64>)| Cursor {
        distance_km: *d,
        ..Cursor::at(r.record.session.starts_at, r.record.session.id)
    });
    Ok(paged.map(|(r, distance_km)| SessionHit { record: r.record, distance_km }))
}

/// The window of a search: `from` (default now) to `to` (default 90 days on).
fn window(q: &SessionQuery, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    search_window(q.from, q.to, q.min_free, now)
}

/// What every search over time checks (sessions and tours): `from` (default now) to `to`
/// (default 90 days on), `to` after `from`, and `min_free` not negative.
pub fn search_window(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    min_free: Option<i32>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    validate::sane_time("from", from)?;
    validate::sane_time("to", to)?;
    if min_free.is_some_and(|m| m < 0) {
        return Err(AppError::field("min_free", "must not be negative"));
    }
    let from = from.unwrap_or(now);
    let to = to.unwrap_or_else(|| from.checked_add_signed(Duration::days(90)).unwrap_or(DateTime::<Utc>::MAX_UTC));
    if to <= from {
        return Err(AppError::field("to", "must be after from"));
    }
    Ok((from, to))
}

/// The statement of a page of a search without `near`: the sessions by (start, id) after the
/// cursor, at most `need`.
fn by_time_statement(backend: DbBackend, q: &SessionQuery, filter: Filter, page: PageRequest, need: u64) -> Statement {
    let mut filter = filter;
    if let Some(after) = page.after {
        filter.sessions = filter.sessions.add(keyset(after));
    }
    hits_statement(backend, &HitSelect { filter, need, rank: None }, q.min_free)
}

/// The statement of a batch of a `near` search: the sessions of `bases` (nearest first) by
/// distance, then (start, id), at most `need`; after the cursor for the cursor's own distance.
/// Bases at one distance share a rank, as their sessions interleave by start. One base (or
/// one distance) walks its index in order and stops at `need`; several are read whole and
/// sorted, which a batch sized to fill the page ([`batch_size`]) keeps to about `need` rows.
fn near_statement(
    backend: DbBackend,
    q: &SessionQuery,
    filter: &Filter,
    bases: &[nearest::Near],
    page: PageRequest,
    need: u64,
) -> Statement {
    let groups: Vec<&[nearest::Near]> = bases.chunk_by(|a, b| a.distance_km == b.distance_km).collect();
    let ids = |g: &[nearest::Near]| g.iter().map(|n| n.id).collect::<Vec<Uuid>>();
    let mut filter = filter.clone();
    filter.sessions = filter.sessions.add(session::Column::BaseId.is_in(ids(bases)));
    // The walk read these bases through the same filters; a base whose status changed since
    // (milliseconds ago) shows it in `bookable_now`.
    filter.bases = Condition::all();
    if let Some(after) = page.after
        && let Some(g) = groups.iter().find(|g| after.distance_km == Some(g[0].distance_km))
    {
        let others = session::Column::BaseId.is_not_in(ids(g));
        filter.sessions = filter.sessions.add(Condition::any().add(others).add(keyset(after)));
    }
    let rank = (groups.len() > 1).then(|| {
        let mut rank = CaseStatement::new();
        for (i, g) in groups.iter().enumerate() {
            rank = rank.case(session::Column::BaseId.is_in(ids(g)), Expr::val(i as i64));
        }
        let rank: Expr = rank.finally(Expr::val(groups.len() as i64)).into();
        rank
    });
    hits_statement(backend, &HitSelect { filter, need, rank }, q.min_free)
}

/// The statement a search runs for the page after `page`'s cursor: by time, or (with `near`)
/// for the batch of `bases` given. For `EXPLAIN` in tests: the statements searches run are
/// built by these same functions.
pub fn page_statement(
    backend: DbBackend,
    q: &SessionQuery,
    bases: &[nearest::Near],
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<Statement> {
    let (from, to) = window(q, now)?;
    let filter = search_condition(q, from, to, now);
    Ok(match q.near {
        None => by_time_statement(backend, q, filter, page, page.limit + 1),
        Some(_) => near_statement(backend, q, &filter, bases, page, page.limit + 1),
    })
}

/// The filters of a search but for its place: on the sessions, and on their bases.
#[derive(Debug, Clone)]
struct Filter {
    sessions: Condition,
    bases: Condition,
}

/// The filters of a search, but for the place.
fn search_condition(q: &SessionQuery, from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Filter {
    let accredited = || bases::status_condition(BaseStatus::Accredited, now);
    let mut sessions = Condition::all().add(session::Column::StartsAt.gte(from)).add(session::Column::StartsAt.lt(to));
    if !q.any_status {
        sessions = sessions.add(session::Column::Status.eq(SessionStatus::Open.as_str()));
    }
    let mut of_bases = Condition::all();
    match q.base_id {
        Some(id) => sessions = sessions.add(session::Column::BaseId.eq(id)),
        None => of_bases = of_bases.add(accredited()),
    }
    if let Some(d) = &q.district {
        of_bases = of_bases.add(base::Column::DistrictCode.eq(d.as_str()));
    }
    if let Some(a) = q.audience {
        // `audiences` is a JSON array of names; a name in quotes matches that element only.
        let pattern = format!("%\"{}\"%", crate::domain::like_escape(a.as_str()));
        sessions = sessions.add(
            Expr::col((session::Entity, session::Column::Audiences))
                .cast_as("TEXT")
                .like(LikeExpr::new(pattern).escape('\\')),
        );
    }
    match q.bookable {
        Some(true) => {
            sessions = sessions.add(bookable_condition(now));
            of_bases = of_bases.add(accredited());
        }
        Some(false) => {
            let base_accredited = Query::select()
                .expr(Expr::val(1))
                .from(base::Entity)
                .and_where(
                    Expr::col((base::Entity, base::Column::Id)).equals((session::Entity, session::Column::BaseId)),
                )
                .cond_where(accredited())
                .take();
            sessions = sessions
                .add(Condition::any().add(bookable_condition(now).not()).add(Expr::exists(base_accredited).not()));
        }
        None => {}
    }
    Filter { sessions, bases: of_bases }
}

/// Sessions after a cursor in (start, id) order.
fn keyset(after: Cursor) -> Expr {
    let at = after.at.unwrap_or(DateTime::<Utc>::MIN_UTC);
    page::after(session::Column::StartsAt, at, session::Column::Id, after.id, Order::Asc)
}

/// The sessions of a `near` search: bases in distance order, a batch at a time, each batch's
/// sessions in one query, until the page is full. Batches never split bases of equal distance,
/// so every row of a batch sorts after every row of the batches before it.
async fn near_rows(
    txn: &DatabaseConnection,
    q: &SessionQuery,
    center: LatLon,
    filter: Filter,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    page: PageRequest,
    need: u64,
) -> Result<Vec<(HitRow, Option<f64>)>> {
    // The bases walked are those the search's base filters let through (the batches then read
    // their sessions without asking again).
    let mut bases_cond = filter.bases.clone();
    if let Some(id) = q.base_id {
        bases_cond = bases_cond.add(base::Column::Id.eq(id));
    }
    // The cursor's own distance is walked again: its base (and any at the same distance) may
    // have sessions after the cursor's.
    let after = page.after.and_then(|c| c.distance_km.map(|d| (d, Uuid::nil())));
    let mut rings = nearest::Rings::new(center, q.radius_km, after);
    let cols = [base::Column::Id, base::Column::Lat, base::Column::Lon];
    let mut out: Vec<(HitRow, Option<f64>)> = Vec::new();
    let window_days = (to - from).num_minutes() as f64 / 1440.0;
    let mut yielded = (0, 0);
    loop {
        let still = need - out.len() as u64;
        let batch = batch_size(still, yielded, window_days);
        let bases = rings.next(batch, |b| nearest::located::<base::Entity>(txn, bases_cond.clone(), cols, b)).await?;
        if bases.is_empty() {
            break;
        }
        let distances: std::collections::HashMap<Uuid, f64> = bases.iter().map(|n| (n.id, n.distance_km)).collect();
        let stmt = near_statement(txn.get_database_backend(), q, &filter, &bases, page, still);
        let mut rows: Vec<(HitRow, Option<f64>)> = hit_rows(txn, stmt)
            .await?
            .into_iter()
            .map(|r| {
                let d = distances.get(&r.record.session.base_id).copied();
                (r, d)
            })
            .collect();
        yielded = (yielded.0 + rows.len(), yielded.1 + bases.len());
        rows.sort_by(|(a, da), (b, db)| {
            let (a, b) = (&a.record.session, &b.record.session);
            da.unwrap_or(0.0).total_cmp(&db.unwrap_or(0.0)).then(a.starts_at.cmp(&b.starts_at)).then(a.id.cmp(&b.id))
        });
        rows.truncate(still as usize);
        out.extend(rows);
        if out.len() as u64 >= need {
            break;
        }
    }
    Ok(out)
}

/// A row of a session search: the session with its pools and its base in short.
#[derive(Debug)]
struct HitRow {
    record: SessionRecord,
}

/// One ordered, limited select of a search: the sessions matching `filter`, by (start, id), at
/// most `need` of them.
struct HitSelect {
    filter: Filter,
    need: u64,
    /// Ordered first by this (a base's rank by distance), when given.
    rank: Option<Expr>,
}

/// The statement of a select. With `min_free`, free places are computed in the query, per
/// candidate row and only in the filter ([`capacity::free_places_sql`]), so that the filter
/// holds before the `LIMIT` (in the select list PostgreSQL would compute them again for every
/// row kept); the pools and the base of the rows kept are read beside them.
fn hits_statement(backend: DbBackend, sel: &HitSelect, min_free: Option<i32>) -> Statement {
    let mut sql = RawSql::new(backend);
    // The page's pools are read by the statement that picked the page: one snapshot.
    let pools = capacity::pools_json_sql(backend, "g.id");
    // And each kept session's base, by its key (a join here, PostgreSQL may hash every base).
    let base = format!(
        "(SELECT {array}(b.name_zh, b.name_en, b.district_code, b.lat, b.lon, b.status, b.valid_until) \
         FROM bases b WHERE b.id = g.base_id)",
        array = if backend == DbBackend::Postgres { "json_build_array" } else { "json_array" },
    );
    sql.push(&format!("SELECT g.*, {base} AS base, {pools} AS pools FROM (SELECT sessions.*, "))
        .expr(sel.rank.clone().unwrap_or_else(|| Expr::val(0)))
        .push(" AS search_rank FROM sessions WHERE ")
        .expr(sel.filter.sessions.clone());
    // The base's filters as a correlated scalar subquery (a key lookup per session read), not
    // a join or an `EXISTS`, which SQLite turns into a join: for a join it builds a Bloom
    // filter by reading every base, and it may walk every base to sort what follows a deep
    // cursor (the plan test fails on either).
    if !sel.filter.bases.is_empty() {
        sql.push(" AND (SELECT 1 FROM bases WHERE bases.id = sessions.base_id AND ")
            .expr(sel.filter.bases.clone())
            .push(") IS NOT NULL");
    }
    if let Some(m) = min_free {
        sql.push(" AND ").push(&capacity::free_places_sql("sessions.id")).push(" >= ").bind(m);
    }
    // The limit is written, not bound: PostgreSQL plans a bound `LIMIT $n` for an unknown
    // (large) count and then never settles on its cached generic plan, planning anew on every
    // execution; a written limit (one of 501 texts) is planned once per connection.
    let by_rank = if sel.rank.is_some() { "search_rank, " } else { "" };
    sql.push(&format!(" ORDER BY {by_rank}sessions.starts_at, sessions.id LIMIT {}) AS g", sel.need));
    sql.statement()
}

/// Reads the `[name_zh, name_en, district_code, lat, lon, status, valid_until]` of a base.
fn brief_from_json(id: Uuid, v: &serde_json::Value) -> Result<BaseBrief> {
    let bad = || AppError::Internal(anyhow::anyhow!("unreadable base of a session: {v}"));
    let text = |i: usize| v[i].as_str().map(str::to_string).ok_or_else(bad);
    Ok(BaseBrief {
        id,
        name_zh: text(0)?,
        name_en: text(1)?,
        district_code: text(2)?,
        location: LatLon { lat: v[3].as_f64().ok_or_else(bad)?, lon: v[4].as_f64().ok_or_else(bad)? },
        status: text(5)?,
        valid_until: match &v[6] {
            serde_json::Value::Null => None,
            t => Some(serde_json::from_value(t.clone()).map_err(|_| bad())?),
        },
    })
}

/// Runs a search statement; answers its rows by (start, id).
async fn hit_rows(conn: &impl ConnectionTrait, stmt: Statement) -> Result<Vec<HitRow>> {
    let mut rows = Vec::new();
    for row in conn.query_all_raw(stmt).await? {
        let session = session::Model::from_query_result(&row, "")?;
        let base = brief_from_json(session.base_id, &crate::db::json_column(&row, "base")?)?;
        let pools = capacity::pools_from_json(&crate::db::json_column(&row, "pools")?)?;
        rows.push(HitRow { record: SessionRecord { session, pools, base } });
    }
    rows.sort_by(|a, b| {
        let (a, b) = (&a.record.session, &b.record.session);
        a.starts_at.cmp(&b.starts_at).then(a.id.cmp(&b.id))
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::batch_size;

    #[test]
    fn near_batches_are_sized_to_fill_the_page() {
        // Before any base has answered, from the window: one base over three months, about
        // five over a week, the most over a day.
        assert_eq!(batch_size(21, (0, 0), 90.0), 1);
        assert_eq!(batch_size(21, (0, 0), 7.0), 5);
        assert_eq!(batch_size(21, (0, 0), 1.0), 31);
        // Then from what the bases so far yielded.
        assert_eq!(batch_size(15, (6, 1), 90.0), 3);
        assert_eq!(batch_size(21, (0, 4), 7.0), 64);
        assert_eq!(batch_size(501, (2, 1), 7.0), 64);
    }
}
