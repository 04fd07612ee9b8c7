//! Changing a session the way a base's plans change: more or fewer places (never fewer than
//! are taken), other audiences or group limit (never excluding a group already booked), other
//! times (every school told, free to cancel without the late mark, and no school's bookings
//! made to overlap unless the bureau forces it).

use chrono::{DateTime, Utc};
use entity::{booking, capacity_pool, school, session, tour_leg};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{SessionInput, SessionRecord, check, get, local_time, lock_exclusive};
use crate::db::begin_write;
use crate::domain::Precondition;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::bases::{self, BookingRules};
use crate::domain::capacity::Party;
use crate::domain::enums::{Audience, BookingStatus, Role, SessionStatus};
use crate::domain::{bookings, notifications, validate};
use crate::error::{AppError, Result};

/// What a base may change of a session (a whole representation: a patch is laid over the
/// current one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEdit {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i32,
    pub audiences: Vec<Audience>,
    pub booking_opens_at: DateTime<Utc>,
    pub booking_closes_at: DateTime<Utc>,
    pub max_group_size: Option<i32>,
}

impl SessionEdit {
    pub fn of(s: &session::Model) -> Self {
        Self {
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            capacity: s.capacity,
            audiences: super::audiences_of(s),
            booking_opens_at: s.booking_opens_at,
            booking_closes_at: s.booking_closes_at,
            max_group_size: s.max_group_size,
        }
    }

    /// A session that starts at another time keeps its booking window where it was relative
    /// to the start, unless the edit moved the window itself.
    fn window_follows(mut self, s: &session::Model) -> Self {
        let delta = self.starts_at - s.starts_at;
        // An absurd start is refused right after; it must not overflow here first.
        let follow = |t: DateTime<Utc>| t.checked_add_signed(delta).unwrap_or(t);
        if self.booking_opens_at == s.booking_opens_at {
            self.booking_opens_at = follow(self.booking_opens_at);
        }
        if self.booking_closes_at == s.booking_closes_at {
            self.booking_closes_at = follow(self.booking_closes_at);
        }
        self
    }
}

/// Changes a session (its base's operators, or an admin) under `If-Match`; `apply` lays the
/// patch over the session as it is. Capacity never goes below what is taken (409
/// `capacity-below-taken` saying how much is), and a raise serves the waiting list; audiences
/// and the group limit never exclude a group already booked (409 `audience-in-use`,
/// `group-too-large`); a session with bookings that moves tells every school (who may then
/// cancel without the late-cancellation mark) and is refused (409 `overlapping-booking`) when
/// it would make any school's bookings overlap, unless the bureau sends `force`. The times of
/// a tour's leg stay (409 `part-of-tour`): the tour's route was checked with them.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    precondition: Precondition,
    apply: impl FnOnce(&session::Model) -> Result<SessionEdit>,
    force: bool,
    now: DateTime<Utc>,
) -> Result<SessionRecord> {
    let txn = begin_write(db).await?;
    let read = session::Entity::find_by_id(id).one(&txn).await?.ok_or_else(|| super::not_found(id))?;
    authorize(actor, Action::ManageSessions { base_id: read.base_id })?;
    // The schools of its bookings are locked before the session, the order in which a booking
    // takes them: none of them books a visit meanwhile that the new times would overlap.
    let schools = lock_schools(&txn, id).await?;
    let s = lock_exclusive(&txn, id).await?;
    if force && actor.role != Role::Admin {
        return Err(AppError::forbidden("only the bureau may force a change that makes bookings overlap"));
    }
    precondition.check(s.version)?;
    let status = SessionStatus::from_db(&s.status);
    if status == SessionStatus::Cancelled || s.starts_at <= now {
        let why = if status == SessionStatus::Cancelled { "is cancelled" } else { "has started" };
        return Err(AppError::conflict_rule("invalid-state", format!("the session {why}")));
    }
    let e = apply(&s)?.window_follows(&s);
    let base = bases::ensure_exists(&txn, s.base_id).await?;
    let input = SessionInput {
        starts_at: e.starts_at,
        ends_at: e.ends_at,
        capacity: e.capacity,
        audiences: e.audiences.clone(),
        booking_opens_at: Some(e.booking_opens_at),
        booking_closes_at: Some(e.booking_closes_at),
        max_group_size: e.max_group_size,
        pool_ids: vec![],
    };
    check(&input, BookingRules::of(&base), now)?;
    let audiences = validate::unique(e.audiences.clone());
    let before = get(&txn, id).await?;
    let active = booking::Entity::find()
        .filter(booking::Column::SessionId.eq(id))
        .filter(booking::Column::Status.is_in(BookingStatus::names(BookingStatus::ACTIVE)))
        .order_by_asc(booking::Column::Id)
        .all(&txn)
        .await?;
    if active.iter().any(|b| schools.binary_search(&b.school_id).is_err()) {
        return Err(AppError::conflict_rule("session-changing", "a school booked the session meanwhile; try again"));
    }
    check_groups(&active, &audiences, e.max_group_size)?;
    if e.capacity != s.capacity {
        set_capacity(&txn, s.own_pool_id, e.capacity, now).await?;
    }
    let moved = e.starts_at != s.starts_at || e.ends_at != s.ends_at;
    if moved {
        move_bookings(&txn, actor, &s, &active, (e.starts_at, e.ends_at), force, now).await?;
    }
    session::Entity::update_many()
        .col_expr(session::Column::StartsAt, Expr::value(e.starts_at))
        .col_expr(session::Column::EndsAt, Expr::value(e.ends_at))
        .col_expr(session::Column::Capacity, Expr::value(e.capacity))
        .col_expr(session::Column::Audiences, Expr::value(serde_json::to_value(&audiences).unwrap_or_default()))
        .col_expr(session::Column::BookingOpensAt, Expr::value(e.booking_opens_at))
        .col_expr(session::Column::BookingClosesAt, Expr::value(e.booking_closes_at))
        .col_expr(session::Column::MaxGroupSize, Expr::value(e.max_group_size))
        .col_expr(session::Column::Version, Expr::value(s.version + 1))
        .col_expr(session::Column::UpdatedAt, Expr::value(now))
        .filter(session::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    // Only sessions not started change, so this marks nothing today; it keeps the rule that
    // every write to a session (and its bookings, which move with it) tells the statistics.
    crate::domain::statistics::rollup::touched(&txn, &[s.starts_at, e.starts_at], now).await?;
    let after = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::updated("session.update", "session", id, &before, &after)).await?;
    txn.commit().await?;
    // More room, a wider audience or a larger group limit may let waiting groups in.
    if let Err(e) = bookings::promote_waitlist(db, id, now).await {
        tracing::warn!(session = %id, error = %e, "promotion after a session change failed; the sweep will retry");
    }
    get(db, id).await
}

/// Locks (in id order) the schools with active bookings of the session; answers their ids,
/// sorted.
async fn lock_schools(txn: &DatabaseTransaction, session_id: Uuid) -> Result<Vec<Uuid>> {
    let mut ids: Vec<Uuid> = booking::Entity::find()
        .select_only()
        .column(booking::Column::SchoolId)
        .filter(booking::Column::SessionId.eq(session_id))
        .filter(booking::Column::Status.is_in(BookingStatus::names(BookingStatus::ACTIVE)))
        .into_tuple()
        .all(txn)
        .await?;
    ids.sort();
    ids.dedup();
    school::Entity::find()
        .filter(school::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(school::Column::Id)
        .lock_exclusive()
        .all(txn)
        .await?;
    Ok(ids)
}

/// 409 when the new audiences or group limit would exclude a group already booked.
fn check_groups(active: &[booking::Model], audiences: &[Audience], max_group_size: Option<i32>) -> Result<()> {
    if let Some(b) = active.iter().find(|b| !audiences.contains(&Audience::from_db(&b.audience))) {
        let n = active.iter().filter(|o| o.audience == b.audience).count();
        return Err(AppError::conflict_rule(
            "audience-in-use",
            format!("{n} active bookings are for {}: keep that audience or cancel them first", b.audience),
        ));
    }
    if let Some(max) = max_group_size
        && let Some(b) = active.iter().max_by_key(|b| Party::of(b).visitors()).filter(|b| Party::of(b).visitors() > max)
    {
        return Err(AppError::conflict_rule(
            "group-too-large",
            format!("booking {} is a group of {}, above the limit of {max}", b.id, Party::of(b).visitors()),
        ));
    }
    Ok(())
}

/// Sets the session's own pool's capacity, only while what is taken fits.
async fn set_capacity(txn: &DatabaseTransaction, pool: Uuid, capacity: i32, now: DateTime<Utc>) -> Result<()> {
    let res = capacity_pool::Entity::update_many()
        .col_expr(capacity_pool::Column::Capacity, Expr::value(capacity))
        .col_expr(capacity_pool::Column::UpdatedAt, Expr::value(now))
        .filter(capacity_pool::Column::Id.eq(pool))
        .filter(capacity_pool::Column::Used.lte(capacity))
        .exec(txn)
        .await?;
    if res.rows_affected == 0 {
        let used = capacity_pool::Entity::find_by_id(pool).one(txn).await?.map_or(0, |p| p.used);
        return Err(AppError::conflict_rule(
            "capacity-below-taken",
            format!("{used} places are taken: the capacity cannot be below that (cancel bookings first)"),
        ));
    }
    Ok(())
}

/// Moves the session's active bookings to its new times, telling each school; refuses (unless
/// forced by the bureau) when a school would then have two visits at once.
async fn move_bookings(
    txn: &DatabaseTransaction,
    actor: &Actor,
    s: &session::Model,
    active: &[booking::Model],
    (starts_at, ends_at): (DateTime<Utc>, DateTime<Utc>),
    force: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(leg) = tour_leg::Entity::find().filter(tour_leg::Column::SessionId.eq(s.id)).one(txn).await? {
        return Err(AppError::conflict_rule(
            "part-of-tour",
            format!("the session is a leg of tour {}: its times cannot change", leg.tour_id),
        ));
    }
    if active.is_empty() {
        return Ok(());
    }
    let clashes = booking::Entity::find()
        .filter(booking::Column::SchoolId.is_in(active.iter().map(|b| b.school_id)))
        .filter(booking::Column::Status.is_in(BookingStatus::names(BookingStatus::ACTIVE)))
        .filter(booking::Column::SessionId.ne(s.id))
        .filter(booking::Column::StartsAt.lt(ends_at))
        .filter(booking::Column::EndsAt.gt(starts_at))
        .order_by_asc(booking::Column::Id)
        .all(txn)
        .await?;
    if !clashes.is_empty() && !force {
        let list: Vec<String> =
            clashes.iter().take(5).map(|c| format!("school {} (booking {})", c.school_id, c.id)).collect();
        return Err(AppError::conflict_rule(
            "overlapping-booking",
            format!(
                "the new times overlap other visits of {} booked schools: {}; the bureau may force it",
                clashes.len(),
                list.join(", ")
            ),
        ));
    }
    for b in active {
        let res = booking::Entity::update_many()
            .col_expr(booking::Column::StartsAt, Expr::value(starts_at))
            .col_expr(booking::Column::EndsAt, Expr::value(ends_at))
            .col_expr(booking::Column::SessionMovedAt, Expr::value(now))
            .col_expr(booking::Column::RemindedDays, Expr::value(Option::<i32>::None))
            .col_expr(booking::Column::Version, Expr::col(booking::Column::Version).add(1))
            .col_expr(booking::Column::UpdatedAt, Expr::value(now))
            .filter(booking::Column::Id.eq(b.id))
            .filter(booking::Column::Version.eq(b.version))
            .exec(txn)
            .await?;
        if res.rows_affected == 0 {
            return Err(AppError::conflict_rule("session-changing", "a booking changed meanwhile; try again"));
        }
        let after = booking::Entity::find_by_id(b.id).one(txn).await?;
        let message = format!(
            "The base moved your visit from {} to {}. If that no longer suits you, you may cancel \
             without a late-cancellation mark",
            local_time(s.starts_at),
            local_time(starts_at)
        );
        notifications::send(txn, b, "session_moved", message, now).await?;
        audit::record(txn, Some(actor), now, Change::updated("booking.session_moved", "booking", b.id, b, &after))
            .await?;
    }
    Ok(())
}
