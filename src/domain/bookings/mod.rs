//! Bookings: a school's class visit to a session, confirmed only when every pool the session
//! draws on has room (taken atomically inside the database), or put on the waiting list;
//! cancellation, check-in, promotion of waiting groups, and the sweep that records no-shows.

use chrono::{DateTime, Duration, Utc};
use entity::{audit_log, base, booking, capacity_pool, notification, school, session_pool};
use rand::Rng;
use sea_orm::sea_query::{Expr, Query, SelectStatement, UnionType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement, TransactionTrait,
};
use serde::Serialize;
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::capacity::{self, Party, PoolRef};
use crate::domain::enums::{Audience, BaseStatus, BookingStatus, Role, SessionStatus};
use crate::domain::idempotency::{self, Idempotency, Made};
use crate::domain::notifications;
use crate::domain::page::{Cursor, PageRequest, Paged};
use crate::domain::sessions::{self, local_time};
use crate::domain::validate::{self, Validator};
use crate::error::{AppError, FieldError, Result};
use crate::telemetry::{self, BookingOutcome};

mod changes;
pub use changes::{BookingEdit, edit, move_to};

/// One teacher is needed for every this many students.
pub const STUDENTS_PER_TEACHER: i32 = 20;
/// A school may hold this many active future bookings at one base.
pub const MAX_ACTIVE_PER_BASE: u64 = 2;
/// No-shows within this window …
pub const NO_SHOW_WINDOW_DAYS: i64 = 90;
/// … this many of them …
pub const NO_SHOWS_FOR_SUSPENSION: usize = 3;
/// … suspend booking for this long after the last one.
pub const SUSPENSION_DAYS: i64 = 30;
/// Cancelling later than this before the start is a late cancellation.
pub const LATE_CANCELLATION_HOURS: i64 = 24;
/// Check-in opens this long before the start.
pub const CHECK_IN_OPENS_HOURS: i64 = 2;

/// A booking request.
#[derive(Debug, Clone)]
pub struct BookingRequest {
    pub session_id: Uuid,
    pub school_id: Uuid,
    pub students: i32,
    pub teachers: i32,
    pub audience: Audience,
    pub contact_name: String,
    pub contact_phone: String,
    pub needs: Option<String>,
    pub waitlist: bool,
}

/// A booking and, while it waits, its place in the queue.
#[derive(Debug, Clone, Serialize)]
pub struct BookingRecord {
    #[serde(flatten)]
    pub booking: booking::Model,
    pub waitlist_position: Option<u64>,
}

impl BookingRecord {
    pub fn status(&self) -> BookingStatus {
        BookingStatus::from_db(&self.booking.status)
    }
}

/// A first answer to replay, or a new booking.
pub type Created = Made<BookingRecord>;

/// Checks the party against the fixed rules (no database needed), naming each field.
pub fn check_request(req: &BookingRequest) -> Result<()> {
    let mut v = Validator::new();
    if req.students < 1 {
        v.push("students", "at least 1 student");
    } else if req.students > 10_000 {
        v.push("students", "at most 10000 students");
    }
    let needed = (req.students.max(0) + STUDENTS_PER_TEACHER - 1) / STUDENTS_PER_TEACHER;
    if req.teachers < needed.max(0) {
        v.push("teachers", format!("at least one teacher per {STUDENTS_PER_TEACHER} students: {needed} needed"));
    } else if req.teachers > 1_000 {
        v.push("teachers", "at most 1000 teachers");
    }
    v.text("contact_name", &req.contact_name, 100);
    v.check("contact_phone", validate::phone(&req.contact_phone));
    v.opt_text("needs", req.needs.as_deref(), 2000);
    v.finish()
}

pub fn new_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..6).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// The time until which a school is suspended, if it is: its third no-show within 90 days
/// suspends booking for 30 days after that no-show. `no_show_ends` are the ends of its
/// no-show visits, newest first.
pub fn suspended_until(no_show_ends: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let n = NO_SHOWS_FOR_SUSPENSION - 1;
    no_show_ends
        .windows(NO_SHOWS_FOR_SUSPENSION)
        .find(|w| w[0] - w[n] <= Duration::days(NO_SHOW_WINDOW_DAYS) && now - w[0] < Duration::days(SUSPENSION_DAYS))
        .map(|w| w[0] + Duration::days(SUSPENSION_DAYS))
}

/// What a booking reads about its session, the session's base and pools: one query, which
/// on PostgreSQL also keeps the session's pool set from changing until commit (`FOR SHARE`).
#[derive(Debug, Clone, FromQueryResult)]
struct TargetRow {
    id: Uuid,
    base_id: Uuid,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    audiences: serde_json::Value,
    booking_opens_at: DateTime<Utc>,
    booking_closes_at: DateTime<Utc>,
    max_group_size: Option<i32>,
    status: String,
    base_status: String,
    base_valid_until: Option<DateTime<Utc>>,
    base_name_en: String,
    base_max_group_size: Option<i32>,
    pool_id: Uuid,
}

/// A session as a booking sees it.
struct Target {
    row: TargetRow,
    pools: Vec<PoolRef>,
}

impl Target {
    /// Whether the pool set read with the locks is still the session's (`current`, sorted).
    fn pools_are(&self, current: &[Uuid]) -> bool {
        let mut loaded: Vec<Uuid> = self.pools.iter().map(|p| p.id).collect();
        loaded.sort();
        loaded == current
    }
}

/// The booking `req` makes of the session `t` (not yet written).
fn new_booking(
    req: &BookingRequest,
    t: &Target,
    status: BookingStatus,
    actor: &Actor,
    now: DateTime<Utc>,
) -> booking::Model {
    let s = &t.row;
    booking::Model {
        id: Uuid::now_v7(),
        session_id: s.id,
        base_id: s.base_id,
        school_id: req.school_id,
        students: req.students,
        teachers: req.teachers,
        audience: req.audience.as_str().into(),
        contact_name: req.contact_name.trim().into(),
        contact_phone: req.contact_phone.trim().into(),
        needs: req.needs.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string),
        status: status.as_str().into(),
        code: new_code(),
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        created_by: actor.account_id(),
        cancelled_at: None,
        cancel_reason: None,
        late_cancellation: false,
        checked_in_at: None,
        students_present: None,
        teachers_present: None,
        created_at: now,
        updated_at: now,
        tour_booking_id: None,
        version: 1,
        session_moved_at: None,
        reminded_days: None,
    }
}

/// Locks, then reads the session with its base and pool ids, in one statement: the school, so
/// that its own bookings serialise and its limits hold; and the session, shared, so that its
/// pool set cannot change (attaching, detaching and cancelling take it exclusively). The
/// pools' units come from [`capacity::refs_by_id`] (they never change). The session's own
/// fields are read as locked; its pool set may be older when the statement had to wait for the
/// lock (a statement reads as of its start), so the writes read it again ([`guarded_query`]).
/// SQLite's write transactions are serial already.
async fn lock_and_load(txn: &DatabaseTransaction, school_id: Uuid, session_id: Uuid) -> Result<Target> {
    const SQL: &str = "SELECT s.id, s.base_id, s.starts_at, s.ends_at, s.audiences, s.booking_opens_at, \
        s.booking_closes_at, s.max_group_size, s.status, b.status AS base_status, b.valid_until AS base_valid_until, \
        b.name_en AS base_name_en, b.max_group_size AS base_max_group_size, sp.pool_id \
        FROM schools sc CROSS JOIN sessions s JOIN bases b ON b.id = s.base_id \
        JOIN session_pools sp ON sp.session_id = s.id \
        WHERE sc.id = $1 AND s.id = $2";
    const LOCKS: &str = " FOR UPDATE OF sc FOR SHARE OF s";
    let backend = txn.get_database_backend();
    let sql = if backend == DbBackend::Postgres { [SQL, LOCKS].concat() } else { SQL.to_string() };
    let values = [school_id.into(), session_id.into()];
    let rows = TargetRow::find_by_statement(Statement::from_sql_and_values(backend, sql, values)).all(txn).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.pool_id).collect();
    match rows.into_iter().next() {
        Some(row) => Ok(Target { row, pools: capacity::refs_by_id(txn, &ids).await? }),
        None if school::Entity::find_by_id(school_id).one(txn).await?.is_none() => {
            Err(AppError::field("school_id", "no such school"))
        }
        None => Err(AppError::field("session_id", "no such session")),
    }
}

/// The rules about the session, the base and the group, in the order a school would want to
/// hear them.
fn check_session(req: &BookingRequest, t: &Target, now: DateTime<Utc>) -> Result<()> {
    let s = &t.row;
    let lapsed = s.base_valid_until.is_some_and(|until| until <= now);
    if BaseStatus::from_db(&s.base_status) != BaseStatus::Accredited || lapsed {
        return Err(AppError::conflict_rule(
            "base-not-accredited",
            format!("{} is not an accredited base", s.base_name_en),
        ));
    }
    let status = SessionStatus::from_db(&s.status);
    if status != SessionStatus::Open || s.starts_at <= now {
        let why = if status == SessionStatus::Open { "has started".to_string() } else { format!("is {status}") };
        return Err(AppError::conflict_rule("session-not-open", format!("the session {why}")));
    }
    if now < s.booking_opens_at {
        return Err(AppError::invalid_rule(
            "booking-window-closed",
            format!("booking for this session opens at {}", local_time(s.booking_opens_at)),
        ));
    }
    if now >= s.booking_closes_at {
        return Err(AppError::invalid_rule(
            "booking-window-closed",
            format!("booking for this session closed at {}", local_time(s.booking_closes_at)),
        ));
    }
    let mut errors = Vec::new();
    let audiences: Vec<Audience> = serde_json::from_value(s.audiences.clone()).unwrap_or_default();
    if !audiences.contains(&req.audience) {
        errors.push(FieldError::new("audience", format!("the session is not for {}", req.audience)));
    }
    let group = req.students + req.teachers;
    for (limit, whose) in [(s.max_group_size, "session"), (s.base_max_group_size, "base")] {
        if let Some(max) = limit
            && group > max
        {
            errors
                .push(FieldError::new("students", format!("a group of {group} exceeds the {whose}'s limit of {max}")));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(AppError::Validation(errors)) }
}

/// A row of [`guarded_query`]: a booking of the school, or (with only `pool_id`) a pool of the
/// session.
#[derive(Debug, FromQueryResult)]
struct GuardedRow {
    id: Option<Uuid>,
    base_id: Option<Uuid>,
    status: Option<String>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    tour_booking_id: Option<Uuid>,
    pool_id: Option<Uuid>,
}

/// A booking of the school, as its rules see it.
struct Held {
    id: Uuid,
    base_id: Uuid,
    status: BookingStatus,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    /// The legs of one tour booking are one visit to the no-show rule.
    tour_booking_id: Option<Uuid>,
}

/// What the locks guard, read after they are held (so it sees everything committed before):
/// the school's active bookings and recent no-shows, other than `except` (those being made),
/// and the session's pool set.
fn guarded_query(school_id: Uuid, session_id: Uuid, except: &[Uuid], now: DateTime<Utc>) -> SelectStatement {
    let mut statuses = BookingStatus::names(BookingStatus::ACTIVE);
    statuses.push(BookingStatus::NoShow.as_str());
    let since = now - Duration::days(NO_SHOW_WINDOW_DAYS + SUSPENSION_DAYS);
    let pools = Query::select()
        .exprs([
            Expr::cust("NULL"),
            Expr::cust("NULL"),
            Expr::cust("NULL"),
            Expr::cust("NULL"),
            Expr::cust("NULL"),
            Expr::cust("NULL"),
        ])
        .column(session_pool::Column::PoolId)
        .from(session_pool::Entity)
        .and_where(session_pool::Column::SessionId.eq(session_id))
        .take();
    booking::Entity::find()
        .select_only()
        .columns([
            booking::Column::Id,
            booking::Column::BaseId,
            booking::Column::Status,
            booking::Column::StartsAt,
            booking::Column::EndsAt,
            booking::Column::TourBookingId,
        ])
        .expr_as(Expr::cust("NULL"), "pool_id")
        .filter(booking::Column::SchoolId.eq(school_id))
        .filter(booking::Column::Status.is_in(statuses))
        .filter(booking::Column::EndsAt.gte(since))
        .filter(booking::Column::Id.is_not_in(except.iter().copied()))
        .into_query()
        .union(UnionType::All, pools)
        .take()
}

/// The school's bookings and the session's pool ids (sorted) out of [`guarded_query`]'s rows.
fn split_guarded(rows: Vec<GuardedRow>) -> (Vec<Held>, Vec<Uuid>) {
    let mut held = Vec::new();
    let mut pools = Vec::new();
    for r in rows {
        match (r.pool_id, r.id, r.base_id, r.status, r.starts_at, r.ends_at) {
            (Some(pool), ..) => pools.push(pool),
            (None, Some(id), Some(base_id), Some(status), Some(starts_at), Some(ends_at)) => {
                let (status, tour_booking_id) = (BookingStatus::from_db(&status), r.tour_booking_id);
                held.push(Held { id, base_id, status, starts_at, ends_at, tour_booking_id });
            }
            _ => {}
        }
    }
    pools.sort();
    (held, pools)
}

/// The rules about the school's other bookings: suspension, the limit per base, overlaps.
/// `also` are the other legs of the tour booking being made: they count towards the limit per
/// base, never as overlapping.
fn check_school(held: &[Held], also: &[(Uuid, DateTime<Utc>)], t: &Target, now: DateTime<Utc>) -> Result<()> {
    // A missed tour is one no-show, however many legs it had.
    let mut tours_missed = std::collections::HashSet::new();
    let mut no_shows: Vec<DateTime<Utc>> = held
        .iter()
        .filter(|b| b.status == BookingStatus::NoShow && b.ends_at <= now)
        .filter(|b| b.tour_booking_id.is_none_or(|tb| tours_missed.insert(tb)))
        .map(|b| b.ends_at)
        .collect();
    no_shows.sort_by(|a, b| b.cmp(a));
    if let Some(until) = suspended_until(&no_shows, now) {
        return Err(AppError::conflict_rule(
            "school-suspended",
            format!("3 no-shows within 90 days: the school cannot book until {}", local_time(until)),
        ));
    }
    let active: Vec<&Held> = held.iter().filter(|b| BookingStatus::ACTIVE.contains(&b.status)).collect();
    let at_base = active.iter().filter(|b| b.base_id == t.row.base_id && b.starts_at > now).count() as u64
        + also.iter().filter(|(base, starts)| *base == t.row.base_id && *starts > now).count() as u64;
    if at_base >= MAX_ACTIVE_PER_BASE {
        return Err(AppError::conflict_rule(
            "school-booking-limit",
            format!(
                "the school already holds {at_base} active future bookings at this base (at most {MAX_ACTIVE_PER_BASE})"
            ),
        ));
    }
    if let Some(o) = active.iter().find(|b| b.starts_at < t.row.ends_at && b.ends_at > t.row.starts_at) {
        return Err(AppError::conflict_rule(
            "overlapping-booking",
            format!(
                "the school already has a visit from {} to {} (booking {})",
                local_time(o.starts_at),
                local_time(o.ends_at),
                o.id
            ),
        ));
    }
    Ok(())
}

/// Books a visit. `render` gives the HTTP answer that an `Idempotency-Key` will replay. Every
/// request's outcome is counted here, in one place, for `/metrics`.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    req: BookingRequest,
    idem: Option<Idempotency>,
    render: impl Fn(&BookingRecord) -> (u16, serde_json::Value),
    now: DateTime<Utc>,
) -> Result<Created> {
    let result = decide(db, actor, req, idem, render, now).await;
    let outcome = match &result {
        Ok(Created::New(r)) if r.status() == BookingStatus::Waitlisted => Some(BookingOutcome::Waitlisted),
        Ok(Created::New(_)) => Some(BookingOutcome::Confirmed),
        // A replay is the first request's answer again, counted then.
        Ok(Created::Replay { .. }) => None,
        Err(e) if e.status().is_client_error() => Some(BookingOutcome::Refused(e.slug())),
        // A failure, not a refusal: `http_requests_total` counts it by status.
        Err(_) => None,
    };
    if let Some(outcome) = outcome {
        telemetry::record_booking(outcome);
    }
    result
}

/// What [`create`] answers.
///
/// The fast path is four round trips on PostgreSQL: begin; the locks with the session, its
/// base and pools; the booking, its notification and audit entry, the first pool's places and
/// the re-read of what the locks guard; commit. The hot rows (the pools) stay locked only
/// for the last two. When a pool lacks room the transaction is rolled back and, if the school
/// asked to wait, retried as a waiting booking that takes no places.
async fn decide(
    db: &DatabaseConnection,
    actor: &Actor,
    req: BookingRequest,
    idem: Option<Idempotency>,
    render: impl Fn(&BookingRecord) -> (u16, serde_json::Value),
    now: DateTime<Utc>,
) -> Result<Created> {
    authorize(actor, Action::BookFor { school_id: req.school_id })?;
    if let Some(idem) = &idem
        && let Some(replay) = idempotency::find(db, actor.user_id, idem).await?
    {
        return Ok(Created::Replay(replay));
    }
    check_request(&req)?;
    let (r, key, show) = (&req, idem.as_ref(), &render);
    let fresh = move |status| attempt_fresh(move || attempt(db, actor, r, key, show, status, now));
    match fresh(BookingStatus::Confirmed).await? {
        Attempt::Done(created) => Ok(created),
        Attempt::Full { free } if !req.waitlist => Err(AppError::conflict_rule(
            "capacity-exhausted",
            format!(
                "{free} places left and the group needs {}; send waitlist: true to wait for a place",
                req.students + req.teachers
            ),
        )),
        Attempt::Full { .. } => match fresh(BookingStatus::Waitlisted).await? {
            Attempt::Done(created) => Ok(created),
            Attempt::Full { .. } => Err(AppError::Internal(anyhow::anyhow!("a waiting booking takes no places"))),
        },
    }
}

enum Attempt {
    Done(Created),
    Full { free: i32 },
}

/// Runs an attempt (a transaction that locks sessions and books), again when a session's
/// pools changed under it (an operator attached or detached one at that moment): the next
/// attempt finds the lock free and the set current.
pub async fn attempt_fresh<T, F: std::future::Future<Output = Result<Option<T>>>>(
    attempt: impl Fn() -> F,
) -> Result<T> {
    for _ in 0..3 {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(AppError::conflict_rule("session-changing", "the session's capacity pools are being changed; try again"))
}

/// One transaction of [`create`]: every rule, then the writes, then (for a confirmed booking)
/// the places. `None` when the session's pool set changed while the attempt waited for its
/// lock (nothing is written then).
async fn attempt(
    db: &DatabaseConnection,
    actor: &Actor,
    req: &BookingRequest,
    idem: Option<&Idempotency>,
    render: &impl Fn(&BookingRecord) -> (u16, serde_json::Value),
    status: BookingStatus,
    now: DateTime<Utc>,
) -> Result<Option<Attempt>> {
    let txn = begin_write(db).await?;
    let target = lock_and_load(&txn, req.school_id, req.session_id).await?;
    // A request with the same key that held the lock before us has answered: replay it.
    if let Some(idem) = idem
        && let Some(replay) = idempotency::find(&txn, actor.user_id, idem).await?
    {
        txn.rollback().await?;
        return Ok(Some(Attempt::Done(Created::Replay(replay))));
    }
    check_session(req, &target, now)?;
    let s = &target.row;
    let pools = if status == BookingStatus::Confirmed { target.pools.clone() } else { vec![] };

    let booking = new_booking(req, &target, status, actor, now);
    let waitlisted = status == BookingStatus::Waitlisted;
    if waitlisted {
        booking::Entity::insert(booking::ActiveModel::from(booking.clone())).exec_without_returning(&txn).await?;
    }
    let record = match status {
        BookingStatus::Waitlisted => get_record(&txn, booking.id).await?,
        _ => BookingRecord { booking, waitlist_position: None },
    };
    let (kind, message) = match status {
        BookingStatus::Confirmed => (
            "booking_confirmed",
            format!(
                "Visit confirmed for {} at {}; check-in code {}",
                local_time(s.starts_at),
                s.base_name_en,
                record.booking.code
            ),
        ),
        _ => (
            "booking_waitlisted",
            format!(
                "The visit on {} at {} is full; you are number {} on the waiting list",
                local_time(s.starts_at),
                s.base_name_en,
                record.waitlist_position.unwrap_or(0)
            ),
        ),
    };
    if let Some(idem) = idem
        && !idempotency::store(&txn, actor.user_id, idem, render(&record), now).await?
    {
        // The same key raced in from another request: its answer is the first one.
        txn.rollback().await?;
        return Ok(Some(Attempt::Done(Created::Replay(idempotency::taken(db, actor.user_id, idem).await?))));
    }
    let mut inserts = Vec::with_capacity(3);
    if !waitlisted {
        inserts.push(booking::Entity::insert(booking::ActiveModel::from(record.booking.clone())).into_query());
    }
    inserts.push(notification::Entity::insert(notifications::row(&record.booking, kind, message, now)).into_query());
    let change = Change::created("booking", record.booking.id, &record);
    inserts.push(audit_log::Entity::insert(audit::row(Some(actor), now, change)).into_query());
    // The booking, its notification and audit entry, the first pool's places and what the
    // locks guard in one round trip, last: the hot pool rows stay locked only until the commit
    // right after. A broken rule found in the re-read rolls all of it back.
    let party = Party { students: req.students, teachers: req.teachers };
    let take_first = pools.first().map(|first| capacity::take_statement(*first, party, now));
    let guarded = guarded_query(req.school_id, req.session_id, &[record.booking.id], now);
    let (first_taken, rows) = crate::db::writes_then_read::<GuardedRow>(&txn, inserts, take_first, guarded).await?;
    let (held, current_pools) = split_guarded(rows);
    if !target.pools_are(&current_pools) {
        txn.rollback().await?;
        return Ok(None);
    }
    check_school(&held, &[], &target, now)?;
    let taken = match pools.split_first() {
        Some((_, rest)) => first_taken == 1 && capacity::take(&txn, rest, party, now).await?,
        None => true,
    };
    if !taken {
        txn.rollback().await?;
        let free = capacity::free_places(&capacity::pools_of_session(db, req.session_id).await?);
        return Ok(Some(Attempt::Full { free }));
    }
    txn.commit().await?;
    Ok(Some(Attempt::Done(Created::New(Box::new(record)))))
}

/// Books one party on several sessions at once (the legs of a tour booking), in the caller's
/// transaction, all or nothing, through the same steps as a single booking: `reqs` checked
/// ([`check_request`]); each session locked, loaded and checked ([`lock_and_load`],
/// [`check_session`]); the bookings written (pointing at `tour_booking_id`, showing `code`);
/// the school's rules checked per leg against its other bookings, the legs not counting
/// against each other ([`check_school`]); then the places taken from every leg's pools and from
/// `extra` (the tour's own pool), added up per pool, in id order ([`capacity::take_all`]).
/// `Ok(None)` when a leg's pool set changed while waiting for its lock: nothing is written,
/// try again ([`attempt_fresh`]). When places lack, 409 `capacity-exhausted` saying how many
/// are left (the least over the legs and `extra`).
pub async fn book_together(
    txn: &DatabaseTransaction,
    actor: &Actor,
    reqs: &[BookingRequest],
    (tour_booking_id, code): (Uuid, &str),
    extra: &[PoolRef],
    now: DateTime<Utc>,
) -> Result<Option<Vec<booking::Model>>> {
    let mut targets = Vec::with_capacity(reqs.len());
    for req in reqs {
        check_request(req)?;
        let target = lock_and_load(txn, req.school_id, req.session_id).await?;
        check_session(req, &target, now)?;
        targets.push(target);
    }
    let legs: Vec<booking::Model> = reqs
        .iter()
        .zip(&targets)
        .map(|(req, t)| booking::Model {
            tour_booking_id: Some(tour_booking_id),
            code: code.to_string(),
            ..new_booking(req, t, BookingStatus::Confirmed, actor, now)
        })
        .collect();
    booking::Entity::insert_many(legs.iter().cloned().map(booking::ActiveModel::from))
        .exec_without_returning(txn)
        .await?;
    let ids: Vec<Uuid> = legs.iter().map(|b| b.id).collect();
    let mut takes: Vec<(PoolRef, Party)> = Vec::new();
    for (req, t) in reqs.iter().zip(&targets) {
        let rows = GuardedRow::find_by_statement(txn.get_database_backend().build(&guarded_query(
            req.school_id,
            req.session_id,
            &ids,
            now,
        )))
        .all(txn)
        .await?;
        let (held, current_pools) = split_guarded(rows);
        if !t.pools_are(&current_pools) {
            return Ok(None);
        }
        let others: Vec<(Uuid, DateTime<Utc>)> =
            targets.iter().filter(|o| o.row.id != t.row.id).map(|o| (o.row.base_id, o.row.starts_at)).collect();
        check_school(&held, &others, t, now)?;
        let party = Party { students: req.students, teachers: req.teachers };
        takes.extend(t.pools.iter().map(|p| (*p, party)));
    }
    if let Some(first) = reqs.first() {
        let party = Party { students: first.students, teachers: first.teachers };
        takes.extend(extra.iter().map(|p| (*p, party)));
    }
    let sp = txn.begin().await?;
    if capacity::take_all(&sp, &takes, now).await? {
        sp.commit().await?;
        return Ok(Some(legs));
    }
    sp.rollback().await?;
    let mut free = i32::MAX;
    for req in reqs {
        free = free.min(capacity::free_places(&capacity::pools_of_session(txn, req.session_id).await?));
    }
    if !extra.is_empty() {
        let ids: Vec<Uuid> = extra.iter().map(|p| p.id).collect();
        let pools = capacity_pool::Entity::find().filter(capacity_pool::Column::Id.is_in(ids)).all(txn).await?;
        free = free.min(capacity::free_places(&pools));
    }
    let group = reqs.first().map_or(0, |r| r.students + r.teachers);
    Err(AppError::conflict_rule(
        "capacity-exhausted",
        format!("{free} places left on the whole route and the group needs {group}"),
    ))
}

/// A booking with its waiting-list position.
pub async fn get_record(conn: &impl ConnectionTrait, id: Uuid) -> Result<BookingRecord> {
    let b = booking::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no booking with id {id}")))?;
    let waitlist_position = if BookingStatus::from_db(&b.status) == BookingStatus::Waitlisted {
        let ahead = booking::Entity::find()
            .filter(booking::Column::SessionId.eq(b.session_id))
            .filter(booking::Column::Status.eq(BookingStatus::Waitlisted.as_str()))
            .filter(booking::Column::Id.lt(b.id))
            .count(conn)
            .await?;
        Some(ahead + 1)
    } else {
        None
    };
    Ok(BookingRecord { booking: b, waitlist_position })
}

/// Who may read a booking: its school, the base's operators, the district's officer, admins.
async fn can_read(conn: &impl ConnectionTrait, actor: &Actor, b: &booking::Model) -> Result<bool> {
    Ok(match actor.role {
        Role::Admin => true,
        Role::School => actor.school_id == Some(b.school_id),
        Role::Operator => actor.base_ids.contains(&b.base_id),
        Role::DistrictOfficer => base::Entity::find_by_id(b.base_id)
            .one(conn)
            .await?
            .is_some_and(|base| actor.district_code.as_deref() == Some(base.district_code.as_str())),
        Role::Evaluator => false,
    })
}

pub async fn get(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<BookingRecord> {
    let record = get_record(db, id).await?;
    if !can_read(db, actor, &record.booking).await? {
        return Err(AppError::forbidden(format!("a {} account cannot read booking {id}", actor.role)));
    }
    Ok(record)
}

/// Filters of the booking list; the caller's scope is always added.
#[derive(Debug, Default, Clone)]
pub struct BookingFilter {
    pub session_id: Option<Uuid>,
    pub school_id: Option<Uuid>,
    pub status: Option<BookingStatus>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    f: &BookingFilter,
    page: PageRequest,
) -> Result<Paged<BookingRecord>> {
    validate::sane_time("from", f.from)?;
    validate::sane_time("to", f.to)?;
    let mut cond = Condition::all();
    match actor.role {
        Role::Admin => {}
        Role::School => cond = cond.add(booking::Column::SchoolId.eq(actor.school_id.unwrap_or_default())),
        Role::Operator => cond = cond.add(booking::Column::BaseId.is_in(actor.base_ids.clone())),
        Role::DistrictOfficer => {
            let district = actor.district_code.as_deref().unwrap_or_default();
            cond = cond.add(booking::Column::BaseId.in_subquery(crate::domain::bases::in_district(district)));
        }
        Role::Evaluator => return Err(AppError::forbidden("an evaluator account cannot read bookings")),
    }
    if let Some(s) = f.session_id {
        cond = cond.add(booking::Column::SessionId.eq(s));
    }
    if let Some(s) = f.school_id {
        cond = cond.add(booking::Column::SchoolId.eq(s));
    }
    if let Some(s) = f.status {
        cond = cond.add(booking::Column::Status.eq(s.as_str()));
    }
    if let Some(t) = f.from {
        cond = cond.add(booking::Column::StartsAt.gte(t));
    }
    if let Some(t) = f.to {
        cond = cond.add(booking::Column::StartsAt.lt(t));
    }
    if let Some(after) = page.after {
        cond = cond.add(booking::Column::Id.gt(after.id));
    }
    let rows =
        booking::Entity::find().filter(cond).order_by_asc(booking::Column::Id).limit(page.limit + 1).all(db).await?;
    let paged = Paged::from_overfetch(rows, page.limit, |b| Cursor::id(b.id));
    let mut items = Vec::with_capacity(paged.items.len());
    for b in paged.items {
        let waiting = BookingStatus::from_db(&b.status) == BookingStatus::Waitlisted;
        items.push(if waiting {
            get_record(db, b.id).await?
        } else {
            BookingRecord { booking: b, waitlist_position: None }
        });
    }
    Ok(Paged { items, next: paged.next })
}

/// Moves a booking from one status to another only if it is still in `from` and still the
/// version `b` was read at; `false` if another request got there first (a change of its size
/// or session too: what the caller decided from `b`, such as the places to give back, would
/// be wrong).
async fn transition(
    conn: &impl ConnectionTrait,
    b: &booking::Model,
    from: BookingStatus,
    to: BookingStatus,
    extra: Vec<(booking::Column, sea_orm::sea_query::SimpleExpr)>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut q = booking::Entity::update_many()
        .col_expr(booking::Column::Status, Expr::value(to.as_str()))
        .col_expr(booking::Column::Version, sea_orm::sea_query::ExprTrait::add(Expr::col(booking::Column::Version), 1))
        .col_expr(booking::Column::UpdatedAt, Expr::value(now));
    for (col, value) in extra {
        q = q.col_expr(col, value);
    }
    let res = q
        .filter(booking::Column::Id.eq(b.id))
        .filter(booking::Column::Status.eq(from.as_str()))
        .filter(booking::Column::Version.eq(b.version))
        .exec(conn)
        .await?;
    if res.rows_affected == 1 {
        crate::domain::statistics::rollup::touched(conn, &[b.starts_at], now).await?;
    }
    Ok(res.rows_affected == 1)
}

/// Cancels a booking: the school before the visit starts; its base's operators and admins at
/// any time, with a reason. Freed places go to waiting groups.
pub async fn cancel(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<BookingRecord> {
    let txn = begin_write(db).await?;
    let before = get_record(&txn, id).await?;
    let b = before.booking.clone();
    let as_base = authorize(actor, Action::ManageSessions { base_id: b.base_id }).is_ok();
    if !as_base {
        authorize(actor, Action::BookFor { school_id: b.school_id })?;
        if now >= b.starts_at {
            return Err(AppError::conflict_rule("invalid-state", "the visit has started; ask the base to cancel it"));
        }
    }
    let mut v = Validator::new();
    let reason = v.opt_text("reason", reason.as_deref(), 500).flatten();
    v.finish()?;
    if as_base && actor.role != Role::School && reason.is_none() {
        return Err(AppError::field("reason", "a base or the bureau must give a reason to cancel"));
    }
    if let Some(tour_booking) = b.tour_booking_id {
        return Err(AppError::conflict_rule(
            "part-of-tour",
            format!("this visit is a leg of tour booking {tour_booking}: cancel the tour booking"),
        ));
    }
    let (after, gives) = cancel_in(&txn, actor, &before, reason, now).await?;
    capacity::release_all(&txn, &gives, now).await?;
    txn.commit().await?;
    let freed: Vec<Uuid> = gives.iter().map(|(p, _)| p.id).collect();
    offer_freed_places(db, &freed, now).await;
    Ok(after)
}

/// Cancels an active booking in the caller's transaction, whose caller has checked who may:
/// the session locked (shared), the status changed (a late cancellation when less than 24 h
/// before a confirmed visit, unless the base moved the session since it was booked), the school told, the change audited. Answers the booking as it
/// now is and the places to give back, which the caller gives ([`capacity::release_all`], all
/// of a transaction's at once, in pool order) and offers to waiting groups
/// ([`offer_freed_places`]) once committed.
pub async fn cancel_in(
    txn: &DatabaseTransaction,
    actor: &Actor,
    before: &BookingRecord,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<(BookingRecord, Vec<(PoolRef, Party)>)> {
    let (b, id) = (&before.booking, before.booking.id);
    let was = before.status();
    if !BookingStatus::ACTIVE.contains(&was) {
        return Err(AppError::conflict_rule("invalid-state", format!("a {was} booking cannot be cancelled")));
    }
    sessions::lock_shared(txn, b.session_id).await?;
    let late = b.starts_at - now < Duration::hours(LATE_CANCELLATION_HOURS);
    let changed = transition(
        txn,
        b,
        was,
        BookingStatus::Cancelled,
        vec![
            (booking::Column::CancelledAt, Expr::value(now)),
            (booking::Column::CancelReason, Expr::value(reason.clone())),
            (
                booking::Column::LateCancellation,
                Expr::value(late && was == BookingStatus::Confirmed && b.session_moved_at.is_none()),
            ),
        ],
        now,
    )
    .await?;
    if !changed {
        return Err(AppError::conflict_rule("invalid-state", "the booking changed meanwhile; fetch it again"));
    }
    let gives: Vec<(PoolRef, Party)> = match was {
        BookingStatus::Confirmed => capacity::refs(&capacity::pools_of_session(txn, b.session_id).await?)
            .into_iter()
            .map(|p| (p, Party::of(b)))
            .collect(),
        _ => vec![],
    };
    let after = get_record(txn, id).await?;
    let why = reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    notifications::send(
        txn,
        b,
        "booking_cancelled",
        format!("The visit on {} was cancelled{why}", local_time(b.starts_at)),
        now,
    )
    .await?;
    audit::record(txn, Some(actor), now, Change::updated("booking.cancel", "booking", id, before, &after)).await?;
    Ok((after, gives))
}

/// After places free up in `pools`, each session drawing on them promotes its waiting list
/// (each in its own transaction). A failure is logged: the sweep retries.
pub async fn offer_freed_places(db: &DatabaseConnection, pools: &[Uuid], now: DateTime<Utc>) {
    let sessions = match capacity::sessions_sharing(db, pools).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "could not list sessions to promote");
            return;
        }
    };
    for s in sessions {
        if let Err(e) = promote_waitlist(db, s, now).await {
            tracing::warn!(session = %s, error = %e, "waiting-list promotion failed; the sweep will retry");
        }
    }
}

/// Confirms waiting bookings of a session first come, first served, skipping a group that
/// does not fit and taking the next that does. Returns how many were confirmed.
pub async fn promote_waitlist(db: &DatabaseConnection, session_id: Uuid, now: DateTime<Utc>) -> Result<usize> {
    let txn = begin_write(db).await?;
    let s = sessions::lock_shared(&txn, session_id).await?;
    // A closed session takes no new bookings but still serves its waiting list.
    if SessionStatus::from_db(&s.status) == SessionStatus::Cancelled || s.starts_at <= now {
        return Ok(0);
    }
    let waiting = booking::Entity::find()
        .filter(booking::Column::SessionId.eq(session_id))
        .filter(booking::Column::Status.eq(BookingStatus::Waitlisted.as_str()))
        .order_by_asc(booking::Column::Id)
        .all(&txn)
        .await?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let pools = capacity::refs(&capacity::pools_of_session(&txn, session_id).await?);
    let mut promoted = 0;
    for b in waiting {
        // The booking first, then the places: every writer takes a booking's row before pool
        // rows (no deadlock with a cancellation, a resize or a move); a booking changed since
        // it was read is left for the next round.
        let sp = txn.begin().await?;
        let taken = transition(&sp, &b, BookingStatus::Waitlisted, BookingStatus::Confirmed, vec![], now).await?
            && capacity::take(&sp, &pools, Party::of(&b), now).await?;
        if !taken {
            sp.rollback().await?;
            continue;
        }
        sp.commit().await?;
        promoted += 1;
        let after = booking::Entity::find_by_id(b.id).one(&txn).await?;
        notifications::send(
            &txn,
            &b,
            "booking_promoted",
            format!(
                "A place freed up: your visit on {} is confirmed; check-in code {}",
                local_time(b.starts_at),
                b.code
            ),
            now,
        )
        .await?;
        audit::record(&txn, None, now, Change::updated("booking.promote", "booking", b.id, &b, &after)).await?;
    }
    txn.commit().await?;
    Ok(promoted)
}

/// Who came, recorded by the base at arrival.
#[derive(Debug, Clone)]
pub struct CheckIn {
    pub code: String,
    pub students_present: i32,
    pub teachers_present: i32,
}

/// Records a group's arrival (the base's operators, or an admin), with its check-in code.
pub async fn check_in(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    c: CheckIn,
    now: DateTime<Utc>,
) -> Result<BookingRecord> {
    let txn = begin_write(db).await?;
    let before = get_record(&txn, id).await?;
    let b = before.booking.clone();
    authorize(actor, Action::ManageSessions { base_id: b.base_id })?;
    let mut v = Validator::new();
    v.range("students_present", c.students_present, 0, b.students);
    v.range("teachers_present", c.teachers_present, 0, b.teachers);
    if !c.code.trim().eq_ignore_ascii_case(&b.code) {
        v.push("code", "does not match the booking's check-in code");
    }
    v.finish()?;
    let was = before.status();
    if !matches!(was, BookingStatus::Confirmed | BookingStatus::NoShow) {
        return Err(AppError::conflict_rule("invalid-state", format!("a {was} booking cannot be checked in")));
    }
    if now < b.starts_at - Duration::hours(CHECK_IN_OPENS_HOURS) {
        return Err(AppError::conflict_rule(
            "check-in-not-open",
            format!("check-in opens {CHECK_IN_OPENS_HOURS} hours before the visit ({})", local_time(b.starts_at)),
        ));
    }
    let extra = vec![
        (booking::Column::CheckedInAt, Expr::value(now)),
        (booking::Column::StudentsPresent, Expr::value(c.students_present)),
        (booking::Column::TeachersPresent, Expr::value(c.teachers_present)),
    ];
    if !transition(&txn, &b, was, BookingStatus::CheckedIn, extra, now).await? {
        return Err(AppError::conflict_rule("invalid-state", "the booking changed meanwhile; fetch it again"));
    }
    let after = get_record(&txn, id).await?;
    notifications::send(
        &txn,
        &b,
        "booking_checked_in",
        format!("Checked in: {} students and {} teachers", c.students_present, c.teachers_present),
        now,
    )
    .await?;
    audit::record(&txn, Some(actor), now, Change::updated("booking.check_in", "booking", id, &before, &after)).await?;
    txn.commit().await?;
    Ok(after)
}

/// Checks a group in at the gate by its code alone (the gate staff have no booking ids): the
/// visit at `base_id` with that code whose check-in is open now and that started at most a day
/// ago, then [`check_in`] with its rules. 422 on `code` when there is none.
pub async fn check_in_at(
    db: &DatabaseConnection,
    actor: &Actor,
    base_id: Uuid,
    c: CheckIn,
    now: DateTime<Utc>,
) -> Result<BookingRecord> {
    authorize(actor, Action::ManageSessions { base_id })?;
    crate::domain::bases::ensure_exists(db, base_id).await?;
    let code = c.code.trim().to_ascii_uppercase();
    let in_window = booking::Entity::find()
        .filter(booking::Column::BaseId.eq(base_id))
        .filter(booking::Column::Code.eq(code))
        .filter(booking::Column::StartsAt.lte(now + Duration::hours(CHECK_IN_OPENS_HOURS)))
        .filter(booking::Column::StartsAt.gt(now - Duration::hours(24)))
        .order_by_asc(booking::Column::StartsAt)
        .all(db)
        .await?;
    let (candidates, others): (Vec<booking::Model>, Vec<booking::Model>) = in_window
        .into_iter()
        .partition(|b| matches!(BookingStatus::from_db(&b.status), BookingStatus::Confirmed | BookingStatus::NoShow));
    // The gate is told a group came already, rather than that its code is unknown.
    if candidates.is_empty()
        && let Some(done) = others.iter().rev().find(|b| BookingStatus::from_db(&b.status) == BookingStatus::CheckedIn)
    {
        let at = done.checked_in_at.map(local_time).unwrap_or_default();
        return Err(AppError::conflict_rule("already-checked-in", format!("this group checked in already, at {at}")));
    }
    // Two legs of one tour at this base share the code: the first that has not ended, else the
    // last that has (a group arriving late).
    let found = candidates.iter().find(|b| b.ends_at > now).or_else(|| candidates.last()).ok_or_else(|| {
        AppError::field(
            "code",
            format!(
                "no visit with this code at this base is open for check-in now (from {CHECK_IN_OPENS_HOURS} \
                     hours before its start)"
            ),
        )
    })?;
    check_in(db, actor, found.id, c, now).await
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub no_shows: usize,
    pub expired: usize,
    pub promoted: usize,
    pub idempotency_keys_dropped: u64,
}

/// Turns confirmed bookings of ended sessions into no-shows, expires waiting bookings of
/// started sessions, retries promotions, and drops old idempotency keys. Every change is a
/// conditional update, so several processes may sweep at once without doing anything twice.
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<SweepReport> {
    let mut report = SweepReport::default();
    let ended = booking::Entity::find()
        .filter(booking::Column::Status.eq(BookingStatus::Confirmed.as_str()))
        .filter(booking::Column::EndsAt.lte(now))
        .limit(1000)
        .all(db)
        .await?;
    for b in ended {
        if mark(db, &b, BookingStatus::Confirmed, BookingStatus::NoShow, now).await? {
            report.no_shows += 1;
        }
    }
    let started = booking::Entity::find()
        .filter(booking::Column::Status.eq(BookingStatus::Waitlisted.as_str()))
        .filter(booking::Column::StartsAt.lte(now))
        .limit(1000)
        .all(db)
        .await?;
    for b in started {
        if mark(db, &b, BookingStatus::Waitlisted, BookingStatus::Expired, now).await? {
            report.expired += 1;
        }
    }
    let mut waiting_sessions: Vec<Uuid> = booking::Entity::find()
        .filter(booking::Column::Status.eq(BookingStatus::Waitlisted.as_str()))
        .filter(booking::Column::StartsAt.gt(now))
        .limit(1000)
        .all(db)
        .await?
        .into_iter()
        .map(|b| b.session_id)
        .collect();
    waiting_sessions.sort();
    waiting_sessions.dedup();
    for s in waiting_sessions {
        report.promoted += promote_waitlist(db, s, now).await?;
    }
    report.idempotency_keys_dropped = idempotency::sweep(db, now).await?;
    Ok(report)
}

async fn mark(
    db: &DatabaseConnection,
    b: &booking::Model,
    from: BookingStatus,
    to: BookingStatus,
    now: DateTime<Utc>,
) -> Result<bool> {
    let txn = begin_write(db).await?;
    if !transition(&txn, b, from, to, vec![], now).await? {
        return Ok(false);
    }
    let after = booking::Entity::find_by_id(b.id).one(&txn).await?;
    let (kind, message) = match to {
        BookingStatus::NoShow => {
            ("booking_no_show", format!("No one checked in for the visit on {}", local_time(b.starts_at)))
        }
        _ => ("booking_expired", format!("No place freed up for the visit on {}", local_time(b.starts_at))),
    };
    notifications::send(&txn, b, kind, message, now).await?;
    audit::record(&txn, None, now, Change::updated(format!("booking.{to}"), "booking", b.id, b, &after)).await?;
    txn.commit().await?;
    Ok(true)
}
