//! Sessions: bookable visit times at a base, each with its own capacity pool, created one by
//! one or from a weekly pattern, found by place and free places, and cancelled with their
//! bookings.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use entity::{base, booking, capacity_pool, session, session_pool};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::bases::BookingRules;
use crate::domain::capacity::{self, Party};
use crate::domain::enums::{Audience, BaseStatus, BookingStatus, PoolUnit, SessionStatus};
use crate::domain::geo::LatLon;
use crate::domain::page::{Cursor, PageRequest, Paged};
use crate::domain::validate::{self, Validator};
use crate::domain::{bases, districts, notifications};
use crate::error::{AppError, Result};

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
}

impl SessionRecord {
    pub fn free(&self) -> i32 {
        capacity::free_places(&self.pools)
    }

    pub fn audiences(&self) -> Vec<Audience> {
        audiences_of(&self.session)
    }
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
    let pools = capacity::pools_of_session(conn, id).await?;
    Ok(SessionRecord { session, pools })
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
        let usable = pool.session_id.is_none() && pool.base_id.is_none_or(|b| b == base.id);
        if !usable {
            return Err(AppError::field(format!("pool_ids[{i}]"), "is another base's or another session's pool"));
        }
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
}

/// A search hit: the session, its base and the distance from `near`.
#[derive(Debug, Clone)]
pub struct SessionHit {
    pub record: SessionRecord,
    pub base: base::Model,
    pub distance_km: Option<f64>,
}

/// Finds open sessions; free places are read live from the pools. With `near`, sorted by
/// distance then start; otherwise by start.
pub async fn search(
    db: &DatabaseConnection,
    q: &SessionQuery,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<Paged<SessionHit>> {
    validate::sane_time("from", q.from)?;
    validate::sane_time("to", q.to)?;
    if let Some(d) = &q.district {
        districts::ensure_exists(db, d, "district").await?;
    }
    let from = q.from.unwrap_or(now);
    let to = q.to.unwrap_or_else(|| from.checked_add_signed(Duration::days(90)).unwrap_or(DateTime::<Utc>::MAX_UTC));
    if to <= from {
        return Err(AppError::field("to", "must be after from"));
    }
    let mut bases_cond = Condition::all();
    match q.base_id {
        Some(id) => bases_cond = bases_cond.add(base::Column::Id.eq(id)),
        None => bases_cond = bases_cond.add(crate::domain::bases::status_condition(BaseStatus::Accredited, now)),
    }
    if let Some(d) = &q.district {
        bases_cond = bases_cond.add(base::Column::DistrictCode.eq(d.as_str()));
    }
    if let (Some(c), Some(r)) = (q.near, q.radius_km) {
        let b = c.enclosing_box(r);
        bases_cond = bases_cond
            .add(base::Column::Lat.between(b.min_lat, b.max_lat))
            .add(base::Column::Lon.between(b.min_lon, b.max_lon));
    }
    let txn = sea_orm::TransactionTrait::begin(db).await?;
    let bases: HashMap<Uuid, base::Model> =
        base::Entity::find().filter(bases_cond).all(&txn).await?.into_iter().map(|b| (b.id, b)).collect();
    let base_ids: Vec<Uuid> = bases.keys().copied().collect();
    let sessions = if base_ids.is_empty() {
        vec![]
    } else {
        session::Entity::find()
            .filter(session::Column::BaseId.is_in(base_ids))
            .filter(session::Column::Status.eq(SessionStatus::Open.as_str()))
            .filter(session::Column::StartsAt.gte(from))
            .filter(session::Column::StartsAt.lt(to))
            .all(&txn)
            .await?
    };
    let ids: Vec<Uuid> = sessions.iter().map(|s| s.id).collect();
    let mut pools = capacity::pools_of_sessions(&txn, &ids).await?;
    txn.commit().await?;
    let mut hits: Vec<SessionHit> = sessions
        .into_iter()
        .filter_map(|s| {
            let base = bases.get(&s.base_id)?.clone();
            let distance_km = q.near.map(|c| c.distance_km(LatLon { lat: base.lat, lon: base.lon }));
            let record = SessionRecord { pools: pools.remove(&s.id).unwrap_or_default(), session: s };
            Some(SessionHit { record, base, distance_km })
        })
        .filter(|h| q.radius_km.is_none_or(|r| h.distance_km.is_some_and(|d| d <= r)))
        .filter(|h| q.min_free.is_none_or(|m| h.record.free() >= m))
        .filter(|h| q.audience.is_none_or(|a| h.record.audiences().contains(&a)))
        .collect();
    let key = |h: &SessionHit| (h.distance_km.unwrap_or(0.0), h.record.session.starts_at, h.record.session.id);
    hits.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0).then(ka.1.cmp(&kb.1)).then(ka.2.cmp(&kb.2))
    });
    if let Some(after) = page.after {
        let ak = (after.distance_km.unwrap_or(0.0), after.at.unwrap_or(DateTime::<Utc>::MIN_UTC), after.id);
        hits.retain(|h| {
            let k = key(h);
            k.0.total_cmp(&ak.0).then(k.1.cmp(&ak.1)).then(k.2.cmp(&ak.2)).is_gt()
        });
    }
    hits.truncate(page.limit as usize + 1);
    Ok(Paged::from_overfetch(hits, page.limit, |h| Cursor {
        id: h.record.session.id,
        distance_km: h.distance_km,
        at: Some(h.record.session.starts_at),
    }))
}
