//! Science tours (科普一日游): a day route of 2–5 legs, each a session at an accredited base,
//! in time order with time to travel between them, a meeting point and a number of places
//! (the tour's own capacity pool). A school books a whole tour at once: every leg's places are
//! taken in one transaction, all or nothing, by the same booking core as a single visit
//! ([`bookings::book_together`]); each leg is a booking, so the school's limits, the calendar
//! feed, check-in and the statistics see it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{booking, capacity_pool, session, tour, tour_booking, tour_leg};
use sea_orm::sea_query::{Expr, ExprTrait, Order};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::bookings::{self, BookingRecord, BookingRequest};
use crate::domain::capacity::{self, PoolRef};
use crate::domain::enums::{Audience, BaseStatus, BookingStatus, PoolUnit, SessionStatus};
use crate::domain::geo::LatLon;
use crate::domain::idempotency::{self, Idempotency};
use crate::domain::page::{self, Cursor, PageRequest, Paged};
use crate::domain::sessions::{self, SessionRecord, local_time};
use crate::domain::validate::Validator;
use crate::domain::{bases, nearest, notifications};
use crate::error::{AppError, Result};

/// The fewest legs of a tour.
pub const MIN_LEGS: usize = 2;
/// The most legs of a tour.
pub const MAX_LEGS: usize = 5;
/// Roads are longer than the great circle by about this factor in the city.
pub const DETOUR_FACTOR: f64 = 1.4;
/// A coach's average speed in city traffic, km/h.
pub const COACH_KMH: f64 = 25.0;
/// Minutes to leave one base and settle at the next, on top of the drive.
pub const BUFFER_MINUTES: f64 = 15.0;

/// Minutes a coach needs between two bases `km` apart (great circle): the drive at
/// [`COACH_KMH`] over [`DETOUR_FACTOR`] times the distance, plus [`BUFFER_MINUTES`].
pub fn travel_minutes(km: f64) -> f64 {
    km * DETOUR_FACTOR / COACH_KMH * 60.0 + BUFFER_MINUTES
}

/// A tour's status: `open`, or `cancelled` by whoever made it.
pub const OPEN: &str = "open";
pub const CANCELLED: &str = "cancelled";

/// A new tour.
#[derive(Debug, Clone)]
pub struct TourInput {
    pub title: String,
    pub audience: Audience,
    pub meeting_point: String,
    pub meeting_location: LatLon,
    pub places: i32,
    /// The legs' sessions, in visiting order.
    pub legs: Vec<Uuid>,
}

/// A leg of a tour: its session (with base and pools) and the trip from the leg before.
#[derive(Debug, Clone, Serialize)]
pub struct Leg {
    pub position: i32,
    pub session: SessionRecord,
    /// Great-circle km from the previous leg's base (`None` for the first leg).
    pub travel_km: Option<f64>,
}

/// A tour with its own pool and its legs.
#[derive(Debug, Clone, Serialize)]
pub struct TourRecord {
    #[serde(flatten)]
    pub tour: tour::Model,
    pub pool: capacity_pool::Model,
    pub legs: Vec<Leg>,
}

impl TourRecord {
    /// Places free on the whole route: the least over the tour's own pool and every leg.
    pub fn free(&self) -> i32 {
        self.legs.iter().map(|l| l.session.free()).fold(capacity::room(&self.pool), std::cmp::Ord::min)
    }

    /// Whether a school may book it at `now`: the tour open and every leg bookable (base
    /// accredited, session open, its booking window open).
    pub fn bookable_now(&self, now: DateTime<Utc>) -> bool {
        self.tour.status == OPEN && self.legs.iter().all(|l| l.session.bookable_now(now))
    }

    /// Legs whose session is no longer open (cancelled or closed since the tour was made):
    /// the tour shows them and takes no bookings.
    pub fn broken_legs(&self) -> Vec<i32> {
        self.legs
            .iter()
            .filter(|l| SessionStatus::from_db(&l.session.session.status) != SessionStatus::Open)
            .map(|l| l.position)
            .collect()
    }
}

fn not_found(id: Uuid) -> AppError {
    AppError::not_found(format!("no tour with id {id}"))
}

/// The district a tour belongs to: that of all its legs' bases, or `None` when they are in
/// several districts (the bureau's alone).
fn district_of(legs: &[&SessionRecord]) -> Option<String> {
    let first = legs.first()?.base.district_code.clone();
    legs.iter().all(|l| l.base.district_code == first).then_some(first)
}

/// Checks the legs: each session exists, is open and in the future, at an accredited base,
/// for the tour's audience, and each can be reached from the one before in time.
fn check_legs(input: &TourInput, found: &HashMap<Uuid, SessionRecord>, now: DateTime<Utc>, v: &mut Validator) {
    let mut prev: Option<(usize, &SessionRecord)> = None;
    for (i, id) in input.legs.iter().enumerate() {
        let field = format!("legs[{i}]");
        let Some(s) = found.get(id) else {
            v.push(field, format!("no session with id {id}"));
            continue;
        };
        let status = SessionStatus::from_db(&s.session.status);
        if status != SessionStatus::Open {
            v.push(&field, format!("the session is {status}"));
        } else if s.session.starts_at <= now {
            v.push(&field, "the session has started");
        }
        if bases::status_at(&s.base.status, s.base.valid_until, now) != BaseStatus::Accredited {
            v.push(&field, format!("{} is not an accredited base", s.base.name_en));
        }
        if !s.audiences().contains(&input.audience) {
            v.push(&field, format!("the session is not for {}", input.audience));
        }
        if let Some((j, p)) = prev {
            let gap = (s.session.starts_at - p.session.ends_at).num_minutes();
            let km = p.base.location.distance_km(s.base.location);
            let needed = travel_minutes(km);
            if gap < 0 {
                v.push(
                    &field,
                    format!(
                        "leg {} starts at {}, before leg {} ends at {}: legs must be in time order",
                        i + 1,
                        local_time(s.session.starts_at),
                        j + 1,
                        local_time(p.session.ends_at)
                    ),
                );
            } else if (gap as f64) < needed {
                v.push(
                    &field,
                    format!(
                        "leg {} cannot be reached from leg {} in time: {km:.1} km takes {needed:.0} min by coach \
                         ({DETOUR_FACTOR} × distance at {COACH_KMH} km/h + {BUFFER_MINUTES} min), {gap} min are \
                         planned, {:.0} min missing",
                        i + 1,
                        j + 1,
                        needed - gap as f64
                    ),
                );
            }
        }
        prev = Some((i, s));
    }
}

/// Makes a tour: the bureau anywhere, a district officer when every leg is in its district.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    input: TourInput,
    now: DateTime<Utc>,
) -> Result<TourRecord> {
    let mut v = Validator::new();
    let title = v.text("title", &input.title, 200);
    let meeting_point = v.text("meeting_point", &input.meeting_point, 200);
    v.range("places", input.places, 1, 10_000);
    if !(MIN_LEGS..=MAX_LEGS).contains(&input.legs.len()) {
        v.push("legs", format!("a tour has {MIN_LEGS} to {MAX_LEGS} legs"));
    } else {
        for (i, id) in input.legs.iter().enumerate() {
            if input.legs[..i].contains(id) {
                v.push(format!("legs[{i}]"), "the same session twice");
            }
        }
    }
    v.finish()?;
    let found = sessions::records(db, &input.legs).await?;
    let legs: Vec<&SessionRecord> = input.legs.iter().filter_map(|id| found.get(id)).collect();
    // Who may make it first: a caller without the right learns nothing about the sessions.
    let district = district_of(&legs);
    authorize(actor, Action::ManageTours { district_code: district.as_deref() })?;
    let mut v = Validator::new();
    check_legs(&input, &found, now, &mut v);
    v.finish()?;
    let (title, meeting_point) = (title.unwrap_or_default(), meeting_point.unwrap_or_default());

    let txn = begin_write(db).await?;
    // Every leg's session, shared: none is cancelled while the tour is being made.
    for id in &input.legs {
        let s = sessions::lock_shared(&txn, *id).await?;
        if SessionStatus::from_db(&s.status) != SessionStatus::Open {
            return Err(AppError::field("legs", "a leg's session was cancelled meanwhile"));
        }
    }
    let id = Uuid::now_v7();
    let pool = capacity_pool::Model {
        id: Uuid::now_v7(),
        name: format!("tour: {title}"),
        unit: PoolUnit::Visitors.as_str().into(),
        capacity: input.places,
        used: 0,
        base_id: None,
        session_id: None,
        created_at: now,
        updated_at: now,
    };
    capacity_pool::Entity::insert(capacity_pool::ActiveModel::from(pool.clone())).exec_without_returning(&txn).await?;
    let first = legs.first().map(|l| l.session.starts_at).unwrap_or(now);
    let last = legs.last().map(|l| l.session.ends_at).unwrap_or(now);
    let row = tour::Model {
        id,
        title,
        audience: input.audience.as_str().into(),
        meeting_point,
        lat: input.meeting_location.lat,
        lon: input.meeting_location.lon,
        places: input.places,
        pool_id: pool.id,
        district_code: district,
        status: OPEN.into(),
        starts_at: first,
        ends_at: last,
        created_by: actor.account_id(),
        created_at: now,
        updated_at: now,
    };
    tour::Entity::insert(tour::ActiveModel::from(row)).exec_without_returning(&txn).await?;
    tour_leg::Entity::insert_many(input.legs.iter().enumerate().map(|(i, s)| tour_leg::ActiveModel {
        tour_id: Set(id),
        position: Set(i as i32 + 1),
        session_id: Set(*s),
    }))
    .exec_without_returning(&txn)
    .await?;
    let record = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::created("tour", id, &record)).await?;
    txn.commit().await?;
    Ok(record)
}

/// Reads tours whole: their pools and legs (with sessions, bases and pools), in the order given.
async fn records(conn: &impl ConnectionTrait, tours: Vec<tour::Model>) -> Result<Vec<TourRecord>> {
    let ids: Vec<Uuid> = tours.iter().map(|t| t.id).collect();
    let legs = tour_leg::Entity::find()
        .filter(tour_leg::Column::TourId.is_in(ids))
        .order_by_asc(tour_leg::Column::TourId)
        .order_by_asc(tour_leg::Column::Position)
        .all(conn)
        .await?;
    let session_ids: Vec<Uuid> = legs.iter().map(|l| l.session_id).collect();
    let sessions = sessions::records(conn, &session_ids).await?;
    let mut pools: HashMap<Uuid, capacity_pool::Model> = capacity_pool::Entity::find()
        .filter(capacity_pool::Column::Id.is_in(tours.iter().map(|t| t.pool_id)))
        .all(conn)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let mut out = Vec::with_capacity(tours.len());
    for t in tours {
        let mut prev: Option<LatLon> = None;
        let mut mine = Vec::new();
        for l in legs.iter().filter(|l| l.tour_id == t.id) {
            let Some(s) = sessions.get(&l.session_id) else { continue };
            let at = s.base.location;
            mine.push(Leg { position: l.position, session: s.clone(), travel_km: prev.map(|p| p.distance_km(at)) });
            prev = Some(at);
        }
        let pool = pools
            .remove(&t.pool_id)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("tour {} has no pool {}", t.id, t.pool_id)))?;
        out.push(TourRecord { tour: t, pool, legs: mine });
    }
    Ok(out)
}

pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<TourRecord> {
    let t = tour::Entity::find_by_id(id).one(conn).await?.ok_or_else(|| not_found(id))?;
    records(conn, vec![t]).await?.pop().ok_or_else(|| not_found(id))
}

/// The filters of a tour search.
#[derive(Debug, Clone, Default)]
pub struct TourQuery {
    pub near: Option<LatLon>,
    pub radius_km: Option<f64>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub audience: Option<Audience>,
    pub min_free: Option<i32>,
    /// Tours with a leg at this base (its operators' view).
    pub base_id: Option<Uuid>,
}

/// `min_free` in SQL: the tour's own pool and every leg's session have at least `m` free
/// places ([`capacity::free_places_sql`] per leg, over the `tour_legs` key). `m` is a checked
/// integer, written into the text.
fn min_free_condition(m: i32) -> Expr {
    let leg_free = capacity::free_places_sql("tl.session_id");
    Expr::cust(format!(
        "(SELECT p.capacity - p.used FROM capacity_pools p WHERE p.id = tours.pool_id) >= {m} \
         AND NOT EXISTS (SELECT 1 FROM tour_legs tl WHERE tl.tour_id = tours.id AND {leg_free} < {m})"
    ))
}

/// Finds open tours starting in the window (default: from now, 90 days), nearest first from
/// `near` (its meeting point), otherwise by start; filtered and paged in the database.
pub async fn search(
    conn: &DatabaseConnection,
    q: &TourQuery,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<Paged<(TourRecord, Option<f64>)>> {
    let (from, to) = sessions::search_window(q.from, q.to, q.min_free, now)?;
    let mut cond = Condition::all()
        .add(tour::Column::Status.eq(OPEN))
        .add(tour::Column::StartsAt.gte(from))
        .add(tour::Column::StartsAt.lt(to));
    if let Some(a) = q.audience {
        cond = cond.add(tour::Column::Audience.eq(a.as_str()));
    }
    if let Some(m) = q.min_free {
        cond = cond.add(min_free_condition(m));
    }
    if let Some(b) = q.base_id {
        let legs_at_base = sea_orm::sea_query::Query::select()
            .column(tour_leg::Column::TourId)
            .from(tour_leg::Entity)
            .inner_join(
                session::Entity,
                Expr::col((session::Entity, session::Column::Id))
                    .equals((tour_leg::Entity, tour_leg::Column::SessionId)),
            )
            .and_where(Expr::col((session::Entity, session::Column::BaseId)).eq(b))
            .take();
        cond = cond.add(tour::Column::Id.in_subquery(legs_at_base));
    }
    match q.near {
        Some(center) => {
            let cols = [tour::Column::Id, tour::Column::Lat, tour::Column::Lon];
            let near = nearest::page_of_rows::<tour::Entity>(conn, cond, cols, center, q.radius_km, page).await?;
            let distances: Vec<f64> = near.items.iter().map(|(_, d)| *d).collect();
            let rows = records(conn, near.items.into_iter().map(|(t, _)| t).collect()).await?;
            Ok(Paged { items: rows.into_iter().zip(distances).map(|(r, d)| (r, Some(d))).collect(), next: near.next })
        }
        None => {
            if let Some(after) = page.after {
                let at = after.at.unwrap_or(DateTime::<Utc>::MIN_UTC);
                cond = cond.add(page::after(tour::Column::StartsAt, at, tour::Column::Id, after.id, Order::Asc));
            }
            let rows = tour::Entity::find()
                .filter(cond)
                .order_by_asc(tour::Column::StartsAt)
                .order_by_asc(tour::Column::Id)
                .limit(page.limit + 1)
                .all(conn)
                .await?;
            let paged = Paged::from_overfetch(rows, page.limit, |t| Cursor::at(t.starts_at, t.id));
            let next = paged.next;
            let rows = records(conn, paged.items).await?;
            Ok(Paged { items: rows.into_iter().map(|r| (r, None)).collect(), next })
        }
    }
}

/// A booking of a whole tour for a school's group.
#[derive(Debug, Clone)]
pub struct TourBookingRequest {
    pub school_id: Uuid,
    pub students: i32,
    pub teachers: i32,
    pub contact_name: String,
    pub contact_phone: String,
    pub needs: Option<String>,
}

/// A tour booking with its legs (bookings, in visiting order).
#[derive(Debug, Clone, Serialize)]
pub struct TourBookingRecord {
    #[serde(flatten)]
    pub booking: tour_booking::Model,
    pub legs: Vec<BookingRecord>,
}

/// A new tour booking, or the first answer to its `Idempotency-Key`.
pub type TourBooked = idempotency::Made<TourBookingRecord>;

/// Books a whole tour for a school: every leg confirmed and every leg's places (and the
/// tour's own) taken in one transaction, or nothing (409 naming the rule, or
/// `capacity-exhausted` with the places left on the route). No waiting list: a tour is booked
/// whole or not at all.
pub async fn book(
    db: &DatabaseConnection,
    actor: &Actor,
    tour_id: Uuid,
    req: TourBookingRequest,
    idem: Option<Idempotency>,
    render: impl Fn(&TourBookingRecord) -> (u16, serde_json::Value),
    now: DateTime<Utc>,
) -> Result<TourBooked> {
    authorize(actor, Action::BookFor { school_id: req.school_id })?;
    if let Some(idem) = &idem
        && let Some(replay) = idempotency::find(db, actor.user_id, idem).await?
    {
        return Ok(TourBooked::Replay(replay));
    }
    let tour = get(db, tour_id).await?;
    if tour.tour.status != OPEN {
        return Err(AppError::conflict_rule("tour-not-open", "the tour is cancelled"));
    }
    let broken = tour.broken_legs();
    if !broken.is_empty() {
        return Err(AppError::conflict_rule(
            "tour-not-open",
            format!("the session of leg {broken:?} is no longer open: the tour takes no bookings"),
        ));
    }
    bookings::check_request(&leg_requests(&tour, &req)[0])?;
    let (t, r, key, show) = (&tour, &req, idem.as_ref(), &render);
    let made = bookings::attempt_fresh(move || async move {
        let txn = begin_write(db).await?;
        let record = match book_in(&txn, actor, t, r, now).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                txn.rollback().await?;
                return Ok(None);
            }
            // A retry that waited for the school's lock behind its first request breaks a rule
            // against that request's legs: the first answer is the one to give.
            Err(e) => {
                txn.rollback().await?;
                if let Some(idem) = key
                    && let Some(replay) = idempotency::find(db, actor.user_id, idem).await?
                {
                    return Ok(Some(TourBooked::Replay(replay)));
                }
                return Err(e);
            }
        };
        // A request with the same key that held the school's lock before us has answered.
        if let Some(idem) = key {
            if let Some(replay) = idempotency::find(&txn, actor.user_id, idem).await? {
                txn.rollback().await?;
                return Ok(Some(TourBooked::Replay(replay)));
            }
            if !idempotency::store(&txn, actor.user_id, idem, show(&record), now).await? {
                txn.rollback().await?;
                return Ok(Some(TourBooked::Replay(idempotency::taken(db, actor.user_id, idem).await?)));
            }
        }
        txn.commit().await?;
        Ok(Some(TourBooked::New(Box::new(record))))
    })
    .await;
    let outcome = match &made {
        Ok(TourBooked::New(_)) => Some(crate::telemetry::BookingOutcome::Confirmed),
        Ok(TourBooked::Replay(_)) => None,
        Err(e) if e.status().is_client_error() => Some(crate::telemetry::BookingOutcome::Refused(e.slug())),
        Err(_) => None,
    };
    if let Some(o) = outcome {
        crate::telemetry::record_booking(o);
    }
    made
}

/// The booking requests of a tour booking's legs.
fn leg_requests(tour: &TourRecord, req: &TourBookingRequest) -> Vec<BookingRequest> {
    tour.legs
        .iter()
        .map(|l| BookingRequest {
            session_id: l.session.session.id,
            school_id: req.school_id,
            students: req.students,
            teachers: req.teachers,
            audience: Audience::from_db(&tour.tour.audience),
            contact_name: req.contact_name.clone(),
            contact_phone: req.contact_phone.clone(),
            needs: req.needs.clone(),
            waitlist: false,
        })
        .collect()
}

/// Books a whole tour in the caller's transaction ([`bookings::book_together`], the tour's
/// own pool included): the tour booking, its legs, the school's notification and the audit
/// entry. `Ok(None)` when a leg's pools changed meanwhile (nothing written: try again).
pub async fn book_in(
    txn: &DatabaseTransaction,
    actor: &Actor,
    t: &TourRecord,
    r: &TourBookingRequest,
    now: DateTime<Utc>,
) -> Result<Option<TourBookingRecord>> {
    let reqs = leg_requests(t, r);
    let tour_pool = [PoolRef { id: t.pool.id, unit: PoolUnit::Visitors }];
    let id = Uuid::now_v7();
    let code = bookings::new_code();
    let Some(legs) = bookings::book_together(txn, actor, &reqs, (id, &code), &tour_pool, now).await? else {
        return Ok(None);
    };
    let row = tour_booking::Model {
        id,
        tour_id: t.tour.id,
        school_id: r.school_id,
        students: r.students,
        teachers: r.teachers,
        contact_name: legs[0].contact_name.clone(),
        contact_phone: legs[0].contact_phone.clone(),
        needs: legs[0].needs.clone(),
        status: BookingStatus::Confirmed.as_str().into(),
        code: code.clone(),
        created_by: actor.account_id(),
        cancelled_at: None,
        cancel_reason: None,
        created_at: now,
        updated_at: now,
    };
    tour_booking::Entity::insert(tour_booking::ActiveModel::from(row.clone())).exec_without_returning(txn).await?;
    let record = TourBookingRecord {
        booking: row,
        legs: legs.iter().cloned().map(|b| BookingRecord { booking: b, waitlist_position: None }).collect(),
    };
    notifications::send(
        txn,
        &legs[0],
        "tour_booking_confirmed",
        format!(
            "Tour \"{}\" confirmed for {}: {} visits from {}, meet at {}; check-in code {} at every base",
            t.tour.title,
            local_time(t.tour.starts_at),
            legs.len(),
            local_time(legs[0].starts_at),
            t.tour.meeting_point,
            code
        ),
        now,
    )
    .await?;
    audit::record(txn, Some(actor), now, Change::created("tour_booking", id, &record)).await?;
    Ok(Some(record))
}

/// Reads a tour booking with its legs.
async fn booking_record(conn: &impl ConnectionTrait, id: Uuid) -> Result<TourBookingRecord> {
    let row = tour_booking::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no tour booking with id {id}")))?;
    let mut legs = Vec::new();
    for b in booking::Entity::find()
        .filter(booking::Column::TourBookingId.eq(id))
        .order_by_asc(booking::Column::StartsAt)
        .all(conn)
        .await?
    {
        legs.push(BookingRecord { booking: b, waitlist_position: None });
    }
    Ok(TourBookingRecord { booking: row, legs })
}

/// Who may read a tour booking: its school, the bureau, the district officer of the tour's
/// district, and the operators of a leg's base (as for each leg's booking).
async fn readable_by(conn: &impl ConnectionTrait, actor: &Actor, r: &TourBookingRecord) -> Result<bool> {
    if actor.is_admin() || actor.school_id == Some(r.booking.school_id) {
        return Ok(true);
    }
    if r.legs.iter().any(|l| actor.operates(l.booking.base_id)) {
        return Ok(true);
    }
    let t = tour::Entity::find_by_id(r.booking.tour_id).one(conn).await?;
    Ok(t.is_some_and(|t| authorize(actor, Action::ManageTours { district_code: t.district_code.as_deref() }).is_ok()))
}

pub async fn get_booking(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<TourBookingRecord> {
    let r = booking_record(db, id).await?;
    if !readable_by(db, actor, &r).await? {
        return Err(AppError::not_found(format!("no tour booking with id {id}")));
    }
    Ok(r)
}

/// Cancels a tour booking whole: the school before the tour starts; the bureau or the
/// tour's district officer at any time, with a reason. Every active leg is cancelled as a
/// single booking is ([`bookings::cancel_in`]: late when under 24 h before it), the tour's own
/// places are given back, and the freed places go to the legs' waiting lists.
pub async fn cancel_booking(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<TourBookingRecord> {
    let txn = begin_write(db).await?;
    let before = booking_record(&txn, id).await?;
    let t = tour::Entity::find_by_id(before.booking.tour_id).one(&txn).await?.ok_or_else(|| not_found(id))?;
    let as_organiser = authorize(actor, Action::ManageTours { district_code: t.district_code.as_deref() }).is_ok();
    if !as_organiser {
        authorize(actor, Action::BookFor { school_id: before.booking.school_id })?;
        if before.legs.iter().any(|l| l.booking.starts_at <= now) {
            return Err(AppError::conflict_rule("invalid-state", "the tour has started; ask the bureau to cancel it"));
        }
    }
    let mut v = Validator::new();
    let reason = v.opt_text("reason", reason.as_deref(), 500).flatten();
    v.finish()?;
    if as_organiser && actor.school_id != Some(before.booking.school_id) && reason.is_none() {
        return Err(AppError::field("reason", "the bureau or a district must give a reason to cancel"));
    }
    // Conditional: of two cancellations at once, one changes the row and the other is told.
    let changed = tour_booking::Entity::update_many()
        .col_expr(tour_booking::Column::Status, Expr::value(BookingStatus::Cancelled.as_str()))
        .col_expr(tour_booking::Column::CancelledAt, Expr::value(now))
        .col_expr(tour_booking::Column::CancelReason, Expr::value(reason.clone()))
        .col_expr(tour_booking::Column::UpdatedAt, Expr::value(now))
        .filter(tour_booking::Column::Id.eq(id))
        .filter(tour_booking::Column::Status.eq(BookingStatus::Confirmed.as_str()))
        .exec(&txn)
        .await?;
    if changed.rows_affected == 0 {
        return Err(AppError::conflict_rule(
            "invalid-state",
            format!("a {} tour booking cannot be cancelled", before.booking.status),
        ));
    }
    let party = capacity::Party { students: before.booking.students, teachers: before.booking.teachers };
    let mut gives = vec![(PoolRef { id: t.pool_id, unit: PoolUnit::Visitors }, party)];
    for leg in &before.legs {
        if BookingStatus::ACTIVE.contains(&leg.status()) {
            gives.extend(bookings::cancel_in(&txn, actor, leg, reason.clone(), now).await?.1);
        }
    }
    // Every place back at once, in pool order (as a booking of the same tour takes them).
    capacity::release_all(&txn, &gives, now).await?;
    let mut freed: Vec<Uuid> = gives.iter().map(|(p, _)| p.id).collect();
    let after = booking_record(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::updated("tour_booking.cancel", "tour_booking", id, &before, &after))
        .await?;
    txn.commit().await?;
    freed.sort();
    freed.dedup();
    // The tour's own places go first to the waiting applicants of campaigns that offered it,
    // then the legs' places to the sessions' waiting lists.
    if let Err(e) = crate::domain::campaigns::serve_waiting(db, t.id, now).await {
        tracing::warn!(tour = %t.id, error = %e, "serving a campaign's waiting list failed");
    }
    bookings::offer_freed_places(db, &freed, now).await;
    Ok(after)
}
