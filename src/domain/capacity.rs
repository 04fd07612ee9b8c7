//! Capacity pools: the shared, limited places that sessions draw on. Places are taken and
//! given back only by conditional updates inside the database, in a fixed pool order, so any
//! number of kepu processes sharing one database never overbook; the table's CHECK constraint
//! refuses an overbooking even from a bug.

use chrono::{DateTime, Utc};
use entity::{booking, capacity_pool, session_pool};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ExprTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde::Serialize;
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::enums::{BookingStatus, PoolUnit};
use crate::domain::validate::Validator;
use crate::domain::{bases, sessions};
use crate::error::{AppError, Result};

/// The size of a visiting group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Party {
    pub students: i32,
    pub teachers: i32,
}

impl Party {
    pub fn of(b: &booking::Model) -> Self {
        Self { students: b.students, teachers: b.teachers }
    }

    pub fn visitors(self) -> i32 {
        self.students + self.teachers
    }

    /// What this party takes from a pool of `unit`.
    pub fn amount(self, unit: PoolUnit) -> i32 {
        match unit {
            PoolUnit::Visitors => self.visitors(),
            PoolUnit::Groups => 1,
        }
    }
}

/// What a writer needs of a pool: which row, and what a party takes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolRef {
    pub id: Uuid,
    pub unit: PoolUnit,
}

/// The references of pools, keeping their (id) order.
pub fn refs(pools: &[capacity_pool::Model]) -> Vec<PoolRef> {
    pools.iter().map(|p| PoolRef { id: p.id, unit: unit_of(p) }).collect()
}

fn unit_of(p: &capacity_pool::Model) -> PoolUnit {
    PoolUnit::from_db(&p.unit)
}

/// Units of pools read so far. A pool's unit is set when it is created and never changes (and
/// pools are not deleted), so a unit once read stays right in every process.
static UNITS: std::sync::LazyLock<moka::sync::Cache<Uuid, PoolUnit>> =
    std::sync::LazyLock::new(|| moka::sync::Cache::new(100_000));

/// The references of the pools `ids`, in the fixed order every writer takes them (by id);
/// units not seen before are read in one query. An id that names no pool is left out.
pub async fn refs_by_id(conn: &impl ConnectionTrait, ids: &[Uuid]) -> Result<Vec<PoolRef>> {
    let missing: Vec<Uuid> = ids.iter().filter(|id| !UNITS.contains_key(*id)).copied().collect();
    if !missing.is_empty() {
        for (id, unit) in capacity_pool::Entity::find()
            .select_only()
            .columns([capacity_pool::Column::Id, capacity_pool::Column::Unit])
            .filter(capacity_pool::Column::Id.is_in(missing))
            .into_tuple::<(Uuid, String)>()
            .all(conn)
            .await?
        {
            UNITS.insert(id, PoolUnit::from_db(&unit));
        }
    }
    let mut refs: Vec<PoolRef> =
        ids.iter().filter_map(|id| UNITS.get(id).map(|unit| PoolRef { id: *id, unit })).collect();
    refs.sort_by_key(|p| p.id);
    Ok(refs)
}

/// Room left in a pool.
pub fn room(p: &capacity_pool::Model) -> i32 {
    std::cmp::max(p.capacity - p.used, 0)
}

/// Free places of a session: the least room over its visitor pools, or 0 when a group pool is
/// full.
pub fn free_places(pools: &[capacity_pool::Model]) -> i32 {
    if pools.iter().any(|p| unit_of(p) == PoolUnit::Groups && room(p) == 0) {
        return 0;
    }
    pools.iter().filter(|p| unit_of(p) == PoolUnit::Visitors).map(room).min().unwrap_or(0)
}

/// [`free_places`] in SQL: the free places of the session whose id is the SQL expression
/// `session_id`, from every pool it draws on (a correlated subquery over the
/// `session_pools` primary key).
pub fn free_places_sql(session_id: &str) -> String {
    let (groups, visitors) = (PoolUnit::Groups.as_str(), PoolUnit::Visitors.as_str());
    format!(
        "(SELECT CASE WHEN MAX(CASE WHEN p.unit = '{groups}' AND p.used >= p.capacity THEN 1 ELSE 0 END) = 1 THEN 0 \
         ELSE COALESCE(MIN(CASE WHEN p.unit = '{visitors}' THEN \
         (CASE WHEN p.capacity > p.used THEN p.capacity - p.used ELSE 0 END) END), 0) END \
         FROM session_pools sp JOIN capacity_pools p ON p.id = sp.pool_id WHERE sp.session_id = {session_id})"
    )
}

/// The pools a session draws on, in the fixed order every writer takes them (by id).
pub async fn pools_of_session(conn: &impl ConnectionTrait, session_id: Uuid) -> Result<Vec<capacity_pool::Model>> {
    Ok(capacity_pool::Entity::find()
        .filter(
            capacity_pool::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(session_pool::Column::PoolId)
                    .from(session_pool::Entity)
                    .and_where(session_pool::Column::SessionId.eq(session_id))
                    .take(),
            ),
        )
        .order_by_asc(capacity_pool::Column::Id)
        .all(conn)
        .await?)
}

/// The pools of the session whose id is the SQL expression `session_id`, as one JSON array
/// of `[id, name, unit, capacity, used, base_id, session_id, created_at, updated_at]` rows,
/// read by [`pools_from_json`]: a list's page reads its sessions' pools in the statement that
/// picks the page, from the same snapshot as their free places.
pub fn pools_json_sql(backend: sea_orm::DbBackend, session_id: &str) -> String {
    const COLUMNS: &str = "p.name, p.unit, p.capacity, p.used";
    let from =
        format!("FROM session_pools sp JOIN capacity_pools p ON p.id = sp.pool_id WHERE sp.session_id = {session_id}");
    match backend {
        sea_orm::DbBackend::Postgres => format!(
            "(SELECT COALESCE(json_agg(json_build_array(p.id, {COLUMNS}, p.base_id, p.session_id, p.created_at, \
             p.updated_at)), '[]') {from})"
        ),
        // UUIDs are blobs here: as hex (an absent one as '').
        _ => format!(
            "(SELECT json_group_array(json_array(lower(hex(p.id)), {COLUMNS}, lower(hex(p.base_id)), \
             lower(hex(p.session_id)), p.created_at, p.updated_at)) {from})"
        ),
    }
}

/// Reads the pools written by [`pools_json_sql`], in id order.
pub fn pools_from_json(v: &serde_json::Value) -> Result<Vec<capacity_pool::Model>> {
    let bad = || AppError::Internal(anyhow::anyhow!("unreadable pools of a session: {v}"));
    let id = |x: &serde_json::Value| x.as_str().filter(|s| !s.is_empty()).and_then(|s| Uuid::parse_str(s).ok());
    let time = |x: &serde_json::Value| serde_json::from_value::<DateTime<Utc>>(x.clone()).ok();
    let mut pools = Vec::new();
    for p in v.as_array().into_iter().flatten() {
        let int = |i: usize| p[i].as_i64().and_then(|n| i32::try_from(n).ok());
        pools.push(capacity_pool::Model {
            id: id(&p[0]).ok_or_else(bad)?,
            name: p[1].as_str().ok_or_else(bad)?.to_string(),
            unit: p[2].as_str().ok_or_else(bad)?.to_string(),
            capacity: int(3).ok_or_else(bad)?,
            used: int(4).ok_or_else(bad)?,
            base_id: id(&p[5]),
            session_id: id(&p[6]),
            created_at: time(&p[7]).ok_or_else(bad)?,
            updated_at: time(&p[8]).ok_or_else(bad)?,
        });
    }
    pools.sort_by_key(|p| p.id);
    Ok(pools)
}

/// Takes the party's places from every pool, in id order. `false` when a pool lacks room; the
/// caller must then roll back (a savepoint) what was taken before it.
pub async fn take(conn: &impl ConnectionTrait, pools: &[PoolRef], party: Party, now: DateTime<Utc>) -> Result<bool> {
    let takes: Vec<(PoolRef, Party)> = pools.iter().map(|p| (*p, party)).collect();
    take_all(conn, &takes, now).await
}

/// Takes places for several visits at once (the legs of a tour may share a city pool): what
/// each pool gives is added up and the pools are taken in id order, the order every writer
/// takes them. `false` when a pool lacks room; the caller must then roll back (a savepoint)
/// what was taken before it.
pub async fn take_all(conn: &impl ConnectionTrait, takes: &[(PoolRef, Party)], now: DateTime<Utc>) -> Result<bool> {
    shift(conn, &[], takes, now).await
}

/// Gives places back and takes others in one step (a booking resized or moved): what each
/// pool gains and loses is netted, and the pools are written in id order, the order every
/// writer takes them; a pool that nets to more is taken only while it has room. `false` when
/// one lacks room; the caller must then roll back (a savepoint) what was written before it.
/// The one way places change hands: [`take_all`] and [`release_all`] are its halves.
pub async fn shift(
    conn: &impl ConnectionTrait,
    gives: &[(PoolRef, Party)],
    takes: &[(PoolRef, Party)],
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut amounts: std::collections::BTreeMap<Uuid, i32> = std::collections::BTreeMap::new();
    for (p, party) in takes {
        *amounts.entry(p.id).or_default() += party.amount(p.unit);
    }
    for (p, party) in gives {
        *amounts.entry(p.id).or_default() -= party.amount(p.unit);
    }
    for (pool, amount) in amounts {
        if amount > 0 && conn.execute(&add_used(pool, amount, now)).await?.rows_affected() == 0 {
            return Ok(false);
        }
        if amount < 0 {
            sub_used(conn, pool, -amount, now).await?;
        }
    }
    Ok(true)
}

/// The conditional update that takes a party's places from one pool: it changes no row when
/// the pool lacks room.
pub fn take_statement(p: PoolRef, party: Party, now: DateTime<Utc>) -> sea_orm::sea_query::UpdateStatement {
    add_used(p.id, party.amount(p.unit), now)
}

/// `used += amount` on one pool, only while it stays within capacity: the one conditional
/// update by which places are ever taken (it changes no row when they do not fit).
fn add_used(pool: Uuid, amount: i32, now: DateTime<Utc>) -> sea_orm::sea_query::UpdateStatement {
    sea_orm::sea_query::Query::update()
        .table(capacity_pool::Entity)
        .value(capacity_pool::Column::Used, Expr::col(capacity_pool::Column::Used).add(amount))
        .value(capacity_pool::Column::UpdatedAt, now)
        .and_where(capacity_pool::Column::Id.eq(pool))
        .and_where(Expr::col(capacity_pool::Column::Used).add(amount).lte(Expr::col(capacity_pool::Column::Capacity)))
        .take()
}

/// `used -= amount` on one pool, only while at least that much is used; giving back more than
/// a pool holds is a bookkeeping bug, answered as one (never as a negative count).
async fn sub_used(conn: &impl ConnectionTrait, pool: Uuid, amount: i32, now: DateTime<Utc>) -> Result<()> {
    let stmt = sea_orm::sea_query::Query::update()
        .table(capacity_pool::Entity)
        .value(capacity_pool::Column::Used, Expr::col(capacity_pool::Column::Used).sub(amount))
        .value(capacity_pool::Column::UpdatedAt, now)
        .and_where(capacity_pool::Column::Id.eq(pool))
        .and_where(capacity_pool::Column::Used.gte(amount))
        .take();
    if conn.execute(&stmt).await?.rows_affected() == 0 {
        return Err(AppError::Internal(anyhow::anyhow!("pool {pool} holds fewer than the {amount} places given back")));
    }
    Ok(())
}

/// Gives the party's places back to every pool.
pub async fn release(conn: &impl ConnectionTrait, pools: &[PoolRef], party: Party, now: DateTime<Utc>) -> Result<()> {
    let gives: Vec<(PoolRef, Party)> = pools.iter().map(|p| (*p, party)).collect();
    release_all(conn, &gives, now).await
}

/// Gives places back for several visits at once ([`take_all`]'s mirror, through [`shift`]): the
/// pools are written in id order, the order every writer takes them (a tour booking's
/// cancellation against a booking of the same tour cannot deadlock).
pub async fn release_all(conn: &impl ConnectionTrait, gives: &[(PoolRef, Party)], now: DateTime<Utc>) -> Result<()> {
    shift(conn, gives, &[], now).await.map(|_| ())
}

/// A new pool's fields.
#[derive(Debug, Clone)]
pub struct NewPool {
    pub name: String,
    pub unit: PoolUnit,
    pub capacity: i32,
    pub base_id: Option<Uuid>,
}

/// A pool with the sessions that draw on it.
#[derive(Debug, Clone, Serialize)]
pub struct PoolRecord {
    #[serde(flatten)]
    pub pool: capacity_pool::Model,
    pub session_ids: Vec<Uuid>,
}

pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<PoolRecord> {
    let pool = capacity_pool::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no capacity pool with id {id}")))?;
    let session_ids = session_pool::Entity::find()
        .filter(session_pool::Column::PoolId.eq(id))
        .order_by_asc(session_pool::Column::SessionId)
        .all(conn)
        .await?
        .into_iter()
        .map(|l| l.session_id)
        .collect();
    Ok(PoolRecord { pool, session_ids })
}

/// The pools a base's operators plan with (`base_id`): the base's shared pools and the
/// city-wide pools its sessions draw on, each with the base's sessions drawing on it (a
/// session's own pool is shown with the session); or, without a base, every city-wide pool
/// with all its sessions. By id, a page at a time.
pub async fn list(
    conn: &impl ConnectionTrait,
    base_id: Option<Uuid>,
    page: crate::domain::page::PageRequest,
) -> Result<crate::domain::page::Paged<PoolRecord>> {
    use crate::domain::page::{Cursor, Paged};
    use entity::session;
    use sea_orm::sea_query::Query;
    if let Some(b) = base_id {
        bases::ensure_exists(conn, b).await.map_err(|_| AppError::field("base_id", "no such base"))?;
    }
    let city = capacity_pool::Column::BaseId.is_null();
    let mut q = capacity_pool::Entity::find().filter(capacity_pool::Column::SessionId.is_null());
    if let Some(b) = base_id {
        let drawn_on = Query::select()
            .column((session_pool::Entity, session_pool::Column::PoolId))
            .from(session_pool::Entity)
            .inner_join(
                session::Entity,
                Expr::col((session::Entity, session::Column::Id))
                    .equals((session_pool::Entity, session_pool::Column::SessionId)),
            )
            .and_where(Expr::col((session::Entity, session::Column::BaseId)).eq(b))
            .take();
        q = q.filter(
            sea_orm::Condition::any()
                .add(capacity_pool::Column::BaseId.eq(b))
                .add(sea_orm::Condition::all().add(city).add(capacity_pool::Column::Id.in_subquery(drawn_on))),
        );
    } else {
        q = q.filter(city);
    }
    if let Some(after) = page.after {
        q = q.filter(capacity_pool::Column::Id.gt(after.id));
    }
    let pools = q.order_by_asc(capacity_pool::Column::Id).limit(page.limit + 1).all(conn).await?;
    let paged = Paged::from_overfetch(pools, page.limit, |p| Cursor::id(p.id));
    let ids: Vec<Uuid> = paged.items.iter().map(|p| p.id).collect();
    let mut links = session_pool::Entity::find()
        .select_only()
        .columns([session_pool::Column::PoolId, session_pool::Column::SessionId])
        .filter(session_pool::Column::PoolId.is_in(ids))
        .order_by_asc(session_pool::Column::SessionId);
    if let Some(b) = base_id {
        links = links.filter(
            session_pool::Column::SessionId.in_subquery(
                Query::select()
                    .column(session::Column::Id)
                    .from(session::Entity)
                    .and_where(session::Column::BaseId.eq(b))
                    .take(),
            ),
        );
    }
    let links: Vec<(Uuid, Uuid)> = links.into_tuple().all(conn).await?;
    let items = paged
        .items
        .into_iter()
        .map(|pool| {
            let session_ids = links.iter().filter(|(p, _)| *p == pool.id).map(|(_, s)| *s).collect();
            PoolRecord { pool, session_ids }
        })
        .collect();
    Ok(Paged { items, next: paged.next })
}

/// Creates a pool: an operator for its own base, an admin for any base or city-wide.
pub async fn create(db: &DatabaseConnection, actor: &Actor, new: NewPool, now: DateTime<Utc>) -> Result<PoolRecord> {
    match new.base_id {
        Some(base_id) => authorize(actor, Action::ManageSessions { base_id })?,
        None => authorize(actor, Action::ManageCityPools)?,
    }
    let mut v = Validator::new();
    let name = v.text("name", &new.name, 200);
    v.range("capacity", new.capacity, 1, 1_000_000);
    v.finish()?;
    let txn = begin_write(db).await?;
    if let Some(base_id) = new.base_id {
        bases::ensure_exists(&txn, base_id).await.map_err(|_| AppError::field("base_id", "no such base"))?;
    }
    let id = Uuid::now_v7();
    capacity_pool::Entity::insert(capacity_pool::ActiveModel {
        id: Set(id),
        name: Set(name.unwrap_or_default()),
        unit: Set(new.unit.as_str().into()),
        capacity: Set(new.capacity),
        used: Set(0),
        base_id: Set(new.base_id),
        session_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    let created = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::created("capacity_pool", id, &created)).await?;
    txn.commit().await?;
    Ok(created)
}

/// May `actor` make a session of `base_id` draw on `pool`, or stop it drawing? Whoever owns a
/// pool decides: a base's pools are its operators' (for that base's sessions only); a
/// city-wide pool is the bureau's quota, so only the bureau attaches and detaches sessions
/// there; a session's own pool is never shared. The one rule behind attaching, detaching and
/// naming pools when creating sessions.
pub fn authorize_link(actor: &Actor, pool: &capacity_pool::Model, base_id: Uuid) -> Result<()> {
    if pool.base_id.is_none() && pool.session_id.is_none() {
        return authorize(actor, Action::ManageCityPools);
    }
    authorize(actor, Action::ManageSessions { base_id })?;
    match pool.base_id {
        Some(b) if b != base_id => {
            Err(AppError::conflict_rule("pool-of-another-base", "this pool belongs to another base"))
        }
        _ if pool.session_id.is_some() => {
            Err(AppError::conflict_rule("own-pool", "a session's own pool cannot be shared"))
        }
        _ => Ok(()),
    }
}

/// The places a session's holding bookings take from a pool of `unit`.
async fn held_by_session(conn: &impl ConnectionTrait, session_id: Uuid, unit: PoolUnit) -> Result<i32> {
    let holding = booking::Entity::find()
        .filter(booking::Column::SessionId.eq(session_id))
        .filter(booking::Column::Status.is_in(BookingStatus::names(BookingStatus::HOLDING)))
        .all(conn)
        .await?;
    Ok(holding.iter().map(|b| Party::of(b).amount(unit)).sum())
}

/// Attaches a session to a pool, counting the bookings it already has; 409 if they don't fit.
pub async fn attach(
    db: &DatabaseConnection,
    actor: &Actor,
    pool_id: Uuid,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<PoolRecord> {
    let txn = begin_write(db).await?;
    // Excludes bookings of this session while its pool set changes.
    let s = sessions::lock_exclusive(&txn, session_id).await?;
    let before = get(&txn, pool_id).await?;
    authorize_link(actor, &before.pool, s.base_id)?;
    if before.session_ids.contains(&session_id) {
        return Err(AppError::Conflict("the session already draws on this pool".into()));
    }
    let held = held_by_session(&txn, session_id, unit_of(&before.pool)).await?;
    if txn.execute(&add_used(pool_id, held, now)).await?.rows_affected() == 0 {
        return Err(AppError::conflict_rule(
            "capacity-exhausted",
            format!("the session's bookings take {held} and the pool has {} left", room(&before.pool)),
        ));
    }
    session_pool::Entity::insert(session_pool::ActiveModel { session_id: Set(session_id), pool_id: Set(pool_id) })
        .exec_without_returning(&txn)
        .await?;
    let after = get(&txn, pool_id).await?;
    audit::record(
        &txn,
        Some(actor),
        now,
        Change::updated("capacity_pool.attach", "capacity_pool", pool_id, &before, &after),
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}

/// Detaches a session from a pool, giving back what its bookings held there.
pub async fn detach(
    db: &DatabaseConnection,
    actor: &Actor,
    pool_id: Uuid,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<PoolRecord> {
    let txn = begin_write(db).await?;
    let s = sessions::lock_exclusive(&txn, session_id).await?;
    let before = get(&txn, pool_id).await?;
    authorize_link(actor, &before.pool, s.base_id)?;
    if !before.session_ids.contains(&session_id) {
        return Err(AppError::not_found("the session does not draw on this pool"));
    }
    let held = held_by_session(&txn, session_id, unit_of(&before.pool)).await?;
    sub_used(&txn, pool_id, held, now).await?;
    session_pool::Entity::delete_many()
        .filter(session_pool::Column::SessionId.eq(session_id))
        .filter(session_pool::Column::PoolId.eq(pool_id))
        .exec(&txn)
        .await?;
    let after = get(&txn, pool_id).await?;
    audit::record(
        &txn,
        Some(actor),
        now,
        Change::updated("capacity_pool.detach", "capacity_pool", pool_id, &before, &after),
    )
    .await?;
    txn.commit().await?;
    // The session lost a constraint and the pool gained room: offer both to waiting groups.
    crate::domain::bookings::offer_freed_places(db, &[pool_id], now).await;
    if let Err(e) = crate::domain::bookings::promote_waitlist(db, session_id, now).await {
        tracing::warn!(session = %session_id, error = %e, "promotion after detach failed; the sweep will retry");
    }
    Ok(after)
}

/// A pool whose bookkeeping is wrong.
#[derive(Debug, Clone, Serialize, FromQueryResult)]
pub struct Violation {
    pub pool_id: Uuid,
    pub capacity: i32,
    pub used: i32,
    /// The sum of the holding bookings that draw on the pool.
    pub expected_used: i64,
}

/// Every pool where `used > capacity` or `used` differs from what the holding bookings that
/// draw on it take: the bookings of its sessions; for a tour's own pool the tour's confirmed
/// tour bookings; and the citizens' families a campaign's draw gave the tour (on the tour's
/// pool and every leg's pools).
pub async fn violations(db: &DatabaseConnection) -> Result<Vec<Violation>> {
    let holding =
        BookingStatus::names(BookingStatus::HOLDING).iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
    let (groups, confirmed) = (PoolUnit::Groups.as_str(), BookingStatus::Confirmed.as_str());
    let citizen = crate::domain::campaigns::CITIZEN;
    let sql = format!(
        "SELECT p.id AS pool_id, p.capacity AS capacity, p.used AS used, COALESCE(SUM(d.amount), 0) AS expected_used \
         FROM capacity_pools p LEFT JOIN ( \
           SELECT sp.pool_id AS pool_id, CASE WHEN q.unit = '{groups}' THEN 1 ELSE b.students + b.teachers END AS amount \
           FROM session_pools sp JOIN capacity_pools q ON q.id = sp.pool_id \
           JOIN bookings b ON b.session_id = sp.session_id AND b.status IN ({holding}) \
           UNION ALL \
           SELECT t.pool_id, tb.students + tb.teachers FROM tours t \
           JOIN tour_bookings tb ON tb.tour_id = t.id AND tb.status = '{confirmed}' \
           UNION ALL \
           SELECT t.pool_id, w.people FROM application_wins w JOIN tours t ON t.id = w.tour_id \
           JOIN applications a ON a.id = w.application_id AND a.kind = '{citizen}' WHERE w.status = '{confirmed}' \
           UNION ALL \
           SELECT sp.pool_id, CASE WHEN q.unit = '{groups}' THEN 1 ELSE w.people END FROM application_wins w \
           JOIN applications a ON a.id = w.application_id AND a.kind = '{citizen}' \
           JOIN tour_legs tl ON tl.tour_id = w.tour_id JOIN session_pools sp ON sp.session_id = tl.session_id \
           JOIN capacity_pools q ON q.id = sp.pool_id WHERE w.status = '{confirmed}' \
         ) d ON d.pool_id = p.id \
         GROUP BY p.id, p.capacity, p.used \
         HAVING p.used > p.capacity OR p.used <> COALESCE(SUM(d.amount), 0)"
    );
    let stmt = Statement::from_string(db.get_database_backend(), sql);
    Ok(Violation::find_by_statement(stmt).all(db).await?)
}

/// Sessions drawing on any of `pools` (to offer freed places to their waiting lists).
pub async fn sessions_sharing(conn: &impl ConnectionTrait, pools: &[Uuid]) -> Result<Vec<Uuid>> {
    let mut ids: Vec<Uuid> = session_pool::Entity::find()
        .filter(session_pool::Column::PoolId.is_in(pools.to_vec()))
        .all(conn)
        .await?
        .into_iter()
        .map(|l| l.session_id)
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}
