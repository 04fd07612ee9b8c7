//! Changing a booking the way plans change: its size and contacts ([`edit`]: more people take
//! the difference from every pool of the session, fewer give it back), or its session
//! ([`move_to`]: the new places taken and the old given back in one transaction). Both run the
//! booking core's checks ([`check_request`], [`lock_and_load`], [`check_session`],
//! [`check_school`]) and change places only through [`capacity::shift`]; a change that breaks
//! a rule or does not fit writes nothing.

use chrono::{DateTime, Utc};
use entity::booking;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    BookingRecord, BookingRequest, GuardedRow, attempt_fresh, check_request, check_school, check_session, get_record,
    guarded_query, lock_and_load, offer_freed_places, split_guarded,
};
use crate::db::begin_write;
use crate::domain::Precondition;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::capacity::{self, Party, PoolRef};
use crate::domain::enums::{Audience, BookingStatus};
use crate::domain::idempotency::{self, Idempotency, Made};
use crate::domain::notifications;
use crate::domain::sessions::{self, local_time};
use crate::error::{AppError, Result};

/// What a school may change of a booking (a whole representation: a patch is laid over the
/// current one, so an edited booking obeys exactly the rules of a new one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingEdit {
    pub students: i32,
    pub teachers: i32,
    pub contact_name: String,
    pub contact_phone: String,
    pub needs: Option<String>,
}

impl BookingEdit {
    pub fn of(b: &booking::Model) -> Self {
        Self {
            students: b.students,
            teachers: b.teachers,
            contact_name: b.contact_name.clone(),
            contact_phone: b.contact_phone.clone(),
            needs: b.needs.clone(),
        }
    }

    fn party(&self) -> Party {
        Party { students: self.students, teachers: self.teachers }
    }
}

/// The request `b` would be if it were made now, on `session_id`, as `e` says.
fn request_of(b: &booking::Model, e: &BookingEdit, session_id: Uuid) -> BookingRequest {
    BookingRequest {
        session_id,
        school_id: b.school_id,
        students: e.students,
        teachers: e.teachers,
        audience: Audience::from_db(&b.audience),
        contact_name: e.contact_name.clone(),
        contact_phone: e.contact_phone.clone(),
        needs: e.needs.clone(),
        waitlist: false,
    }
}

/// 409 unless `b` may still change: active (confirmed or waiting), not a leg of a tour booking
/// (the tour booking changes as a whole), not started.
fn changeable(b: &BookingRecord, now: DateTime<Utc>) -> Result<()> {
    let status = b.status();
    if !matches!(status, BookingStatus::Confirmed | BookingStatus::Waitlisted) {
        return Err(AppError::conflict_rule("invalid-state", format!("a {status} booking cannot be changed")));
    }
    if let Some(tour_booking) = b.booking.tour_booking_id {
        return Err(AppError::conflict_rule(
            "part-of-tour",
            format!("this visit is a leg of tour booking {tour_booking}: change the tour booking"),
        ));
    }
    if b.booking.starts_at <= now {
        return Err(AppError::conflict_rule("invalid-state", "the visit has started"));
    }
    Ok(())
}

/// Reads the booking again under the locks: 412 when it is no longer the version the change
/// was made from.
async fn reread(txn: &DatabaseTransaction, id: Uuid, version: i32) -> Result<BookingRecord> {
    let before = get_record(txn, id).await?;
    Precondition::Version(version).check(before.booking.version)?;
    Ok(before)
}

async fn guarded_rows(
    txn: &DatabaseTransaction,
    b: &booking::Model,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<GuardedRow>> {
    use sea_orm::FromQueryResult;
    let stmt = txn.get_database_backend().build(&guarded_query(b.school_id, session_id, &[b.id], now));
    Ok(GuardedRow::find_by_statement(stmt).all(txn).await?)
}

/// Writes the changed booking only while it is still at `before`'s version, as the next one.
async fn write(
    txn: &DatabaseTransaction,
    before: &booking::Model,
    set: Vec<(booking::Column, sea_orm::sea_query::SimpleExpr)>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut q = booking::Entity::update_many()
        .col_expr(booking::Column::Version, Expr::col(booking::Column::Version).add(1))
        .col_expr(booking::Column::UpdatedAt, Expr::value(now));
    for (col, value) in set {
        q = q.col_expr(col, value);
    }
    let res = q
        .filter(booking::Column::Id.eq(before.id))
        .filter(booking::Column::Version.eq(before.version))
        .exec(txn)
        .await?;
    if res.rows_affected == 0 {
        return Err(AppError::PreconditionFailed("the booking changed meanwhile; fetch it again".into()));
    }
    // A visit changes only before it starts (into a later one), so this marks nothing today;
    // it keeps the rule that every write to a booking tells the statistics.
    crate::domain::statistics::rollup::touched(txn, &[before.starts_at], now).await
}

/// 409 `capacity-exhausted`: the session's free places, and how many more the group needs.
async fn no_room(conn: &impl ConnectionTrait, session_id: Uuid, needs: i32) -> Result<AppError> {
    let free = capacity::free_places(&capacity::pools_of_session(conn, session_id).await?);
    Ok(AppError::conflict_rule(
        "capacity-exhausted",
        format!("{free} places left and the change needs {needs} more; nothing was changed"),
    ))
}

fn pairs(pools: &[PoolRef], party: Party) -> Vec<(PoolRef, Party)> {
    pools.iter().map(|p| (*p, party)).collect()
}

/// Changes a booking's size, contact or needs (its school, or an admin), under `If-Match`.
/// `apply` lays the patch over the booking as it is. A new size is checked like a new booking
/// (teachers per 20 pupils, the session's and the base's group limits, the booking window) and
/// a confirmed booking takes or gives the difference on every pool of its session in the same
/// transaction (409 `capacity-exhausted` saying how many are left, and nothing changed, when it
/// does not fit); places given back go to waiting groups.
pub async fn edit(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    precondition: Precondition,
    apply: impl FnOnce(&booking::Model) -> Result<BookingEdit>,
    now: DateTime<Utc>,
) -> Result<BookingRecord> {
    let current = get_record(db, id).await?;
    let b = &current.booking;
    authorize(actor, Action::BookFor { school_id: b.school_id })?;
    precondition.check(b.version)?;
    changeable(&current, now)?;
    let e = apply(b)?;
    check_request(&request_of(b, &e, b.session_id))?;
    let (after, freed) = attempt_fresh(|| edit_attempt(db, actor, b, &e, now)).await?;
    offer_freed_places(db, &freed, now).await;
    Ok(after)
}

/// One transaction of [`edit`]; `None` when the session's pool set changed meanwhile.
async fn edit_attempt(
    db: &DatabaseConnection,
    actor: &Actor,
    read: &booking::Model,
    e: &BookingEdit,
    now: DateTime<Utc>,
) -> Result<Option<(BookingRecord, Vec<Uuid>)>> {
    let txn = begin_write(db).await?;
    let target = lock_and_load(&txn, read.school_id, read.session_id).await?;
    let before = reread(&txn, read.id, read.version).await?;
    let b = &before.booking;
    changeable(&before, now)?;
    let (old, new) = (Party::of(b), e.party());
    let (held, current_pools) = split_guarded(guarded_rows(&txn, b, b.session_id, now).await?);
    if !target.pools_are(&current_pools) {
        return Ok(None);
    }
    if old != new {
        check_session(&request_of(b, e, b.session_id), &target, now)?;
        check_school(&held, &[], &target, now)?;
    }
    let needs = e.needs.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    // The booking's row first, then the pools': the order every writer takes them.
    write(
        &txn,
        b,
        vec![
            (booking::Column::Students, Expr::value(e.students)),
            (booking::Column::Teachers, Expr::value(e.teachers)),
            (booking::Column::ContactName, Expr::value(e.contact_name.trim())),
            (booking::Column::ContactPhone, Expr::value(e.contact_phone.trim())),
            (booking::Column::Needs, Expr::value(needs)),
        ],
        now,
    )
    .await?;
    let confirmed = before.status() == BookingStatus::Confirmed;
    if confirmed && !capacity::shift(&txn, &pairs(&target.pools, old), &pairs(&target.pools, new), now).await? {
        return Err(no_room(&txn, b.session_id, new.visitors() - old.visitors()).await?);
    }
    let after = get_record(&txn, b.id).await?;
    if old != new {
        let message = format!(
            "The visit on {} is now for {} students and {} teachers",
            local_time(b.starts_at),
            new.students,
            new.teachers
        );
        notifications::send(&txn, &after.booking, "booking_changed", message, now).await?;
    }
    audit::record(&txn, Some(actor), now, Change::updated("booking.update", "booking", b.id, &before, &after)).await?;
    txn.commit().await?;
    // A confirmed group that shrank left room; a waiting one that shrank may now fit.
    let shrank = new.visitors() < old.visitors();
    let freed = if shrank { target.pools.iter().map(|p| p.id).collect() } else { vec![] };
    Ok(Some((after, freed)))
}

/// Moves a booking to another session (its school, or an admin), under `If-Match` and with an
/// optional `Idempotency-Key`: every rule is checked for the new session as for a new booking,
/// the booking itself not counting against its school's limits or overlaps; the new places
/// are taken and the old given back in one transaction ([`capacity::shift`]: a pool both
/// sessions share changes only by the difference). If anything fails the booking stays where
/// it was, untouched. The old session's waiting list moves up. A waiting booking that moves
/// is confirmed on the new session, or refused when that has no room.
#[allow(clippy::too_many_arguments)]
pub async fn move_to(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    precondition: Precondition,
    session_id: Uuid,
    idem: Option<Idempotency>,
    render: impl Fn(&BookingRecord) -> (u16, serde_json::Value),
    now: DateTime<Utc>,
) -> Result<Made<BookingRecord>> {
    let current = get_record(db, id).await?;
    let b = &current.booking;
    authorize(actor, Action::BookFor { school_id: b.school_id })?;
    if let Some(idem) = &idem
        && let Some(replay) = idempotency::find(db, actor.user_id, idem).await?
    {
        return Ok(Made::Replay(replay));
    }
    precondition.check(b.version)?;
    changeable(&current, now)?;
    if b.session_id == session_id {
        return Err(AppError::field("session_id", "the booking is already in this session"));
    }
    let (key, show) = (idem.as_ref(), &render);
    let (made, freed) = attempt_fresh(|| move_attempt(db, actor, b, session_id, key, show, now)).await?;
    offer_freed_places(db, &freed, now).await;
    Ok(made)
}

/// One transaction of [`move_to`]; `None` when the new session's pool set changed meanwhile.
async fn move_attempt(
    db: &DatabaseConnection,
    actor: &Actor,
    read: &booking::Model,
    session_id: Uuid,
    idem: Option<&Idempotency>,
    render: &impl Fn(&BookingRecord) -> (u16, serde_json::Value),
    now: DateTime<Utc>,
) -> Result<Option<(Made<BookingRecord>, Vec<Uuid>)>> {
    let txn = begin_write(db).await?;
    let target = lock_and_load(&txn, read.school_id, session_id).await?;
    if let Some(idem) = idem
        && let Some(replay) = idempotency::find(&txn, actor.user_id, idem).await?
    {
        return Ok(Some((Made::Replay(replay), vec![])));
    }
    let before = reread(&txn, read.id, read.version).await?;
    let b = &before.booking;
    changeable(&before, now)?;
    let req = request_of(b, &BookingEdit::of(b), session_id);
    check_session(&req, &target, now)?;
    // The old session's pool set stays put until commit, as for a cancellation.
    sessions::lock_shared(&txn, b.session_id).await?;
    let (held, current_pools) = split_guarded(guarded_rows(&txn, b, session_id, now).await?);
    if !target.pools_are(&current_pools) {
        return Ok(None);
    }
    check_school(&held, &[], &target, now)?;
    let party = Party::of(b);
    let was_confirmed = before.status() == BookingStatus::Confirmed;
    let old_pools = match was_confirmed {
        true => capacity::refs(&capacity::pools_of_session(&txn, b.session_id).await?),
        false => vec![],
    };
    let s = &target.row;
    // The booking's row first, then the pools': the order every writer takes them.
    write(
        &txn,
        b,
        vec![
            (booking::Column::SessionId, Expr::value(s.id)),
            (booking::Column::BaseId, Expr::value(s.base_id)),
            (booking::Column::StartsAt, Expr::value(s.starts_at)),
            (booking::Column::EndsAt, Expr::value(s.ends_at)),
            (booking::Column::Status, Expr::value(BookingStatus::Confirmed.as_str())),
            (booking::Column::SessionMovedAt, Expr::value(Option::<DateTime<Utc>>::None)),
            (booking::Column::RemindedDays, Expr::value(Option::<i32>::None)),
        ],
        now,
    )
    .await?;
    if !capacity::shift(&txn, &pairs(&old_pools, party), &pairs(&target.pools, party), now).await? {
        return Err(no_room(&txn, session_id, party.visitors()).await?);
    }
    let after = get_record(&txn, b.id).await?;
    if let Some(idem) = idem
        && !idempotency::store(&txn, actor.user_id, idem, render(&after), now).await?
    {
        txn.rollback().await?;
        return Ok(Some((Made::Replay(idempotency::taken(db, actor.user_id, idem).await?), vec![])));
    }
    let message = format!(
        "The visit on {} moved to {} at {}; check-in code {}",
        local_time(b.starts_at),
        local_time(s.starts_at),
        s.base_name_en,
        b.code
    );
    notifications::send(&txn, &after.booking, "booking_moved", message, now).await?;
    audit::record(&txn, Some(actor), now, Change::updated("booking.move", "booking", b.id, &before, &after)).await?;
    txn.commit().await?;
    let freed = old_pools.iter().map(|p| p.id).collect();
    Ok(Some((Made::New(Box::new(after)), freed)))
}
