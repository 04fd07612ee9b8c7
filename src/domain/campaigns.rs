//! Tour sign-up campaigns (科普游报名): the bureau offers tour departures for a season;
//! schools (a group) and citizens (a family of 1–4, no account) apply in a window; after it
//! closes one draw ([`lottery`]) decides who goes, from a seed committed to before the window
//! opened. Winners get places — a school a tour booking through the booking core, a citizen's
//! family places held on the tour and its legs — and the rest a waiting list in draw order.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use entity::{application, application_win, booking, campaign, campaign_tour, school, tour};
use sea_orm::sea_query::{Expr, Order};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use serde::Serialize;
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::capacity::{self, Party, PoolRef};
use crate::domain::enums::{BookingStatus, PoolUnit};
use crate::domain::lottery::{self, Entrant, Inputs, Offer, Published, Refusal, Verification, Win};
use crate::domain::page::{self, Cursor, PageRequest, Paged};
use crate::domain::sessions::city_offset;
use crate::domain::tours::{self, TourBookingRequest, TourRecord};
use crate::domain::validate::{self, Validator};
use crate::domain::{districts, notifications};
use crate::error::{AppError, Result, map_constraint};

/// Departures one applicant may win at most (the campaign's `max_wins` is 1 to this).
pub const MAX_WINS: i32 = 5;
/// Departures an applicant may list.
pub const MAX_PREFERENCES: usize = 5;
/// Departures a campaign may offer.
pub const MAX_TOURS: usize = 100;
/// People in a citizen's family.
pub const MAX_FAMILY: i32 = 4;
/// Citizens' applications one address may send to a campaign within an hour.
pub const APPLICATIONS_PER_ADDRESS_HOUR: u64 = 10;
/// Citizens' names and phone numbers are erased this long after the last departure.
pub const ERASE_AFTER_DAYS: i64 = 90;

pub const OPEN: &str = "open";
pub const DRAWN: &str = "drawn";
pub const SCHOOL: &str = "school";
pub const CITIZEN: &str = "citizen";
/// An application's status.
pub const APPLIED: &str = "applied";
pub const WON: &str = "won";
pub const WAITING: &str = "waiting";
/// A win's status.
pub const CONFIRMED: &str = "confirmed";
pub const REFUSED: &str = "refused";

/// A new campaign.
#[derive(Debug, Clone)]
pub struct CampaignInput {
    pub title: String,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub for_schools: bool,
    pub for_citizens: bool,
    pub max_wins: i32,
    pub tours: Vec<Uuid>,
}

/// A campaign with its departures and how many applied.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignRecord {
    #[serde(flatten)]
    pub campaign: campaign::Model,
    pub tours: Vec<Uuid>,
    pub applicants: u64,
}

fn not_found(id: Uuid) -> AppError {
    AppError::not_found(format!("no campaign with id {id}"))
}

/// The start of the school year `t` falls in: 1 September, city time.
pub fn school_year_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let local = t.with_timezone(&city_offset());
    let year = if local.month() >= 9 { local.year() } else { local.year() - 1 };
    city_offset().with_ymd_and_hms(year, 9, 1, 0, 0, 0).single().map_or(t, |d| d.to_utc())
}

/// Makes a campaign (the bureau): its seed is drawn now and only the seed's SHA-256 is
/// published until the draw, so the window must open later than now.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    input: CampaignInput,
    now: DateTime<Utc>,
) -> Result<CampaignRecord> {
    authorize(actor, Action::ManageStandards)?;
    let mut v = Validator::new();
    let title = v.text("title", &input.title, 200);
    validate::sane_time("opens_at", Some(input.opens_at))?;
    validate::sane_time("closes_at", Some(input.closes_at))?;
    if input.opens_at <= now {
        v.push("opens_at", "must be later than now: the draw's seed is committed to before the window opens");
    }
    if input.closes_at <= input.opens_at {
        v.push("closes_at", "must be after opens_at");
    }
    if !input.for_schools && !input.for_citizens {
        v.push("for_citizens", "a campaign is for schools, citizens or both");
    }
    v.range("max_wins", input.max_wins, 1, MAX_WINS);
    if input.tours.is_empty() || input.tours.len() > MAX_TOURS {
        v.push("tours", format!("1 to {MAX_TOURS} tours"));
    }
    v.finish()?;
    let found: HashMap<Uuid, tour::Model> = tour::Entity::find()
        .filter(tour::Column::Id.is_in(input.tours.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    let mut v = Validator::new();
    let mut seen = std::collections::HashSet::new();
    for (i, id) in input.tours.iter().enumerate() {
        let field = format!("tours[{i}]");
        match found.get(id) {
            None => v.push(field, format!("no tour with id {id}")),
            Some(_) if !seen.insert(*id) => v.push(field, "the same tour twice"),
            Some(t) if t.status != tours::OPEN => v.push(field, "the tour is cancelled"),
            Some(t) if t.starts_at <= input.closes_at => v.push(field, "the tour starts before sign-up closes"),
            Some(_) => {}
        }
    }
    v.finish()?;
    let seed = lottery::new_seed();
    let id = Uuid::now_v7();
    let row = campaign::Model {
        id,
        title: title.unwrap_or_default(),
        opens_at: input.opens_at,
        closes_at: input.closes_at,
        for_schools: input.for_schools,
        for_citizens: input.for_citizens,
        max_wins: input.max_wins,
        seed_sha256: lottery::commitment(&seed),
        seed,
        status: OPEN.into(),
        drawn_at: None,
        draw: None,
        last_departure_at: found.values().map(|t| t.ends_at).max().unwrap_or(input.closes_at),
        citizens_erased_at: None,
        created_by: Some(actor.user_id),
        created_at: now,
        updated_at: now,
    };
    let txn = begin_write(db).await?;
    campaign::Entity::insert(campaign::ActiveModel::from(row)).exec_without_returning(&txn).await?;
    campaign_tour::Entity::insert_many(input.tours.iter().enumerate().map(|(i, t)| campaign_tour::ActiveModel {
        campaign_id: Set(id),
        tour_id: Set(*t),
        position: Set(i as i32 + 1),
    }))
    .exec_without_returning(&txn)
    .await?;
    let record = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::created("campaign", id, &record)).await?;
    txn.commit().await?;
    Ok(record)
}

pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<CampaignRecord> {
    let c = campaign::Entity::find_by_id(id).one(conn).await?.ok_or_else(|| not_found(id))?;
    record(conn, c).await
}

async fn record(conn: &impl ConnectionTrait, c: campaign::Model) -> Result<CampaignRecord> {
    let tours = campaign_tour::Entity::find()
        .filter(campaign_tour::Column::CampaignId.eq(c.id))
        .order_by_asc(campaign_tour::Column::Position)
        .all(conn)
        .await?
        .into_iter()
        .map(|t| t.tour_id)
        .collect();
    let applicants = application::Entity::find().filter(application::Column::CampaignId.eq(c.id)).count(conn).await?;
    Ok(CampaignRecord { campaign: c, tours, applicants })
}

/// Campaigns by the opening of their window, then id.
pub async fn list(conn: &impl ConnectionTrait, page: PageRequest) -> Result<Paged<CampaignRecord>> {
    let mut q = campaign::Entity::find();
    if let Some(after) = page.after {
        let at = after.at.unwrap_or(DateTime::<Utc>::MIN_UTC);
        q = q.filter(page::after(campaign::Column::OpensAt, at, campaign::Column::Id, after.id, Order::Asc));
    }
    let rows = q
        .order_by_asc(campaign::Column::OpensAt)
        .order_by_asc(campaign::Column::Id)
        .limit(page.limit + 1)
        .all(conn)
        .await?;
    let paged = Paged::from_overfetch(rows, page.limit, |c| Cursor::at(c.opens_at, c.id));
    let mut items = Vec::with_capacity(paged.items.len());
    for c in paged.items {
        items.push(record(conn, c).await?);
    }
    Ok(Paged { items, next: paged.next })
}

/// Who applies.
#[derive(Debug, Clone)]
pub enum Applicant {
    /// A school's group, by an account of the school (or the bureau).
    School { school_id: Uuid, students: i32, teachers: i32, contact_name: String, contact_phone: String },
    /// A citizen's family: no account; one application per phone number.
    Citizen { name: String, phone: String, people: i32, district_code: String },
}

/// An application as read back: a citizen's phone is masked for everyone but the bureau.
#[derive(Debug, Clone, Serialize)]
pub struct ApplicationRecord {
    #[serde(flatten)]
    pub application: application::Model,
    pub wins: Vec<application_win::Model>,
}

/// Applies to a campaign while its window is open. Citizens' applications are limited per
/// client address ([`APPLICATIONS_PER_ADDRESS_HOUR`]) and to one per phone number.
pub async fn apply(
    db: &DatabaseConnection,
    actor: Option<&Actor>,
    campaign_id: Uuid,
    who: Applicant,
    preferences: Vec<Uuid>,
    client_ip: &str,
    now: DateTime<Utc>,
) -> Result<ApplicationRecord> {
    let c = get(db, campaign_id).await?;
    if now < c.campaign.opens_at || now >= c.campaign.closes_at || c.campaign.status != OPEN {
        return Err(AppError::invalid_rule(
            "campaign-window-closed",
            format!(
                "applications are taken from {} to {}",
                crate::domain::sessions::local_time(c.campaign.opens_at),
                crate::domain::sessions::local_time(c.campaign.closes_at)
            ),
        ));
    }
    let mut v = Validator::new();
    if preferences.is_empty() || preferences.len() > MAX_PREFERENCES {
        return Err(AppError::field(
            "preferences",
            format!("1 to {MAX_PREFERENCES} of the campaign's tours, best first"),
        ));
    }
    for (i, p) in preferences.iter().enumerate() {
        if !c.tours.contains(p) {
            v.push(format!("preferences[{i}]"), "not a tour of this campaign");
        } else if preferences[..i].contains(p) {
            v.push(format!("preferences[{i}]"), "the same tour twice");
        }
    }
    let id = Uuid::now_v7();
    let mut row = application::Model {
        id,
        campaign_id,
        kind: String::new(),
        school_id: None,
        students: 0,
        teachers: 0,
        people: 0,
        name: None,
        phone: None,
        contact_name: None,
        contact_phone: None,
        client_ip: None,
        district_code: String::new(),
        preferences: serde_json::json!(preferences),
        status: APPLIED.into(),
        draw_position: None,
        created_by: actor.map(|a| a.user_id),
        created_at: now,
        updated_at: now,
    };
    match who {
        Applicant::School { school_id, students, teachers, contact_name, contact_phone } => {
            let Some(actor) = actor else {
                return Err(AppError::Unauthorized("a school applies signed in with its account".into()));
            };
            authorize(actor, Action::BookFor { school_id })?;
            if !c.campaign.for_schools {
                v.push("school_id", "this campaign is for citizens");
            }
            // The same party rules as a booking.
            let probe = crate::domain::bookings::BookingRequest {
                session_id: Uuid::nil(),
                school_id,
                students,
                teachers,
                audience: crate::domain::enums::Audience::Junior,
                contact_name: contact_name.clone(),
                contact_phone: contact_phone.clone(),
                needs: None,
                waitlist: false,
            };
            if let Err(AppError::Validation(errors)) = crate::domain::bookings::check_request(&probe) {
                v.extend(errors);
            }
            v.finish()?;
            let s = school::Entity::find_by_id(school_id)
                .one(db)
                .await?
                .ok_or_else(|| AppError::field("school_id", "no such school"))?;
            row.kind = SCHOOL.into();
            row.school_id = Some(school_id);
            (row.students, row.teachers, row.people) = (students, teachers, students + teachers);
            row.contact_name = Some(contact_name.trim().to_string());
            row.contact_phone = Some(contact_phone.trim().to_string());
            row.district_code = s.district_code;
        }
        Applicant::Citizen { name, phone, people, district_code } => {
            if !c.campaign.for_citizens {
                v.push("phone", "this campaign is for schools");
            }
            let name = v.text("name", &name, 50);
            let phone = v.check("phone", validate::mobile(&phone));
            v.range("people", people, 1, MAX_FAMILY);
            v.finish()?;
            districts::ensure_exists(db, &district_code, "district_code").await?;
            row.kind = CITIZEN.into();
            (row.name, row.phone, row.people) = (name, phone, people);
            row.client_ip = Some(client_ip.to_string());
            row.district_code = district_code;
        }
    }
    let txn = begin_write(db).await?;
    // Under the campaign's row lock (shared): an application either commits before the draw
    // reads the applications or finds the campaign drawn.
    let still_open = campaign::Entity::find_by_id(campaign_id).lock_shared().one(&txn).await?;
    if still_open.is_none_or(|c| c.status != OPEN) {
        return Err(AppError::invalid_rule("campaign-window-closed", "the campaign has been drawn"));
    }
    if let Some(ip) = &row.client_ip {
        check_address_limit(&txn, campaign_id, ip, now).await?;
    }
    application::Entity::insert(application::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(|e| {
            map_constraint(e, || {
                AppError::conflict_rule(
                    "already-applied",
                    "this school or phone number has applied to the campaign already",
                )
            })
        })?;
    let record = ApplicationRecord { application: row, wins: vec![] };
    let mut for_audit = masked(record.clone());
    for_audit.application.name = None;
    audit::record(&txn, actor, now, Change::created("application", id, &for_audit)).await?;
    txn.commit().await?;
    Ok(record)
}

/// At most [`APPLICATIONS_PER_ADDRESS_HOUR`] citizens' applications an hour from one address
/// to a campaign (429 beyond), counted under a lock on that pair, so that parallel requests
/// cannot all pass the count: on PostgreSQL a transaction-scoped advisory lock, on SQLite the
/// write lock [`begin_write`] holds already.
async fn check_address_limit(txn: &DatabaseTransaction, campaign_id: Uuid, ip: &str, now: DateTime<Utc>) -> Result<()> {
    const APPLICATION_LOCKS: i32 = 0x6b65_7075 + 2; // beside the log-in throttle's key spaces
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            [APPLICATION_LOCKS.into(), format!("{campaign_id}|{ip}").into()],
        ))
        .await?;
    }
    let recent = application::Entity::find()
        .filter(application::Column::CampaignId.eq(campaign_id))
        .filter(application::Column::ClientIp.eq(ip))
        .filter(application::Column::CreatedAt.gte(now - Duration::hours(1)))
        .count(txn)
        .await?;
    if recent >= APPLICATIONS_PER_ADDRESS_HOUR {
        return Err(AppError::RateLimited {
            detail: format!(
                "at most {APPLICATIONS_PER_ADDRESS_HOUR} applications an hour from one address to a campaign"
            ),
            retry_after_s: 3600,
        });
    }
    Ok(())
}

/// An application with its citizen's phone masked (for everyone but the bureau, and for the
/// audit log, which outlives the erasure and so keeps no name either).
pub fn masked(mut r: ApplicationRecord) -> ApplicationRecord {
    r.application.phone = r.application.phone.as_deref().map(validate::mask_phone);
    r
}

async fn application_record(conn: &impl ConnectionTrait, a: application::Model) -> Result<ApplicationRecord> {
    let wins = application_win::Entity::find()
        .filter(application_win::Column::ApplicationId.eq(a.id))
        .order_by_asc(application_win::Column::Round)
        .all(conn)
        .await?;
    Ok(ApplicationRecord { application: a, wins })
}

/// An application: the school's accounts and the bureau by id; a citizen with its phone
/// number (404 for any other number, so that an id alone tells nothing).
pub async fn get_application(
    db: &DatabaseConnection,
    actor: Option<&Actor>,
    campaign_id: Uuid,
    id: Uuid,
    phone: Option<&str>,
) -> Result<ApplicationRecord> {
    let missing = || AppError::not_found(format!("no application {id} in campaign {campaign_id}"));
    let a = application::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|a| a.campaign_id == campaign_id)
        .ok_or_else(missing)?;
    let admin = actor.is_some_and(Actor::is_admin);
    let own_school = a.school_id.is_some_and(|s| actor.is_some_and(|x| x.school_id == Some(s)));
    let own_phone = match (&a.phone, phone.map(validate::mobile)) {
        (Some(stored), Some(Ok(given))) => *stored == given,
        _ => false,
    };
    if !(admin || own_school || own_phone) {
        return Err(missing());
    }
    let r = application_record(db, a).await?;
    Ok(if admin { r } else { masked(r) })
}

/// A campaign's applications a caller may list: a school account its school's (one at most),
/// the bureau every one, by id. Others: 403.
pub async fn applications(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    campaign_id: Uuid,
    page: PageRequest,
) -> Result<Paged<ApplicationRecord>> {
    get(conn, campaign_id).await?;
    let mut q = application::Entity::find().filter(application::Column::CampaignId.eq(campaign_id));
    if !actor.is_admin() {
        let school = actor.school_id.ok_or_else(|| {
            AppError::forbidden(format!("a {} account has no applications; a school's and the bureau's do", actor.role))
        })?;
        q = q.filter(application::Column::SchoolId.eq(school));
    }
    if let Some(after) = page.after {
        q = q.filter(application::Column::Id.gt(after.id));
    }
    let rows = q.order_by_asc(application::Column::Id).limit(page.limit + 1).all(conn).await?;
    let paged = Paged::from_overfetch(rows, page.limit, |a| Cursor::id(a.id));
    let mut items = Vec::with_capacity(paged.items.len());
    for a in paged.items {
        let r = application_record(conn, a).await?;
        items.push(if actor.is_admin() { r } else { masked(r) });
    }
    Ok(Paged { items, next: paged.next })
}

/// How many checked-in visits each school made since `since`.
async fn visits_since(
    conn: &impl ConnectionTrait,
    schools: &[Uuid],
    since: DateTime<Utc>,
) -> Result<HashMap<Uuid, u32>> {
    if schools.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, i64)> = booking::Entity::find()
        .select_only()
        .column(booking::Column::SchoolId)
        .column_as(booking::Column::Id.count(), "n")
        .filter(booking::Column::SchoolId.is_in(schools.iter().copied()))
        .filter(booking::Column::Status.eq(BookingStatus::CheckedIn.as_str()))
        .filter(booking::Column::StartsAt.gte(since))
        .group_by(booking::Column::SchoolId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|(s, n)| (s, u32::try_from(n).unwrap_or(u32::MAX))).collect())
}

/// Each district's share of the places won in the school year's draws before `campaign`.
async fn prior_place_shares(
    conn: &impl ConnectionTrait,
    campaign: Uuid,
    since: DateTime<Utc>,
) -> Result<BTreeMap<String, f64>> {
    #[derive(FromQueryResult)]
    struct Row {
        district_code: String,
        people: i64,
    }
    let sql = "SELECT a.district_code AS district_code, SUM(w.people) AS people FROM application_wins w \
        JOIN applications a ON a.id = w.application_id JOIN campaigns c ON c.id = a.campaign_id \
        WHERE w.status = $1 AND c.drawn_at >= $2 AND c.id <> $3 GROUP BY a.district_code";
    let stmt = Statement::from_sql_and_values(
        conn.get_database_backend(),
        sql,
        [CONFIRMED.into(), since.into(), campaign.into()],
    );
    let rows = Row::find_by_statement(stmt).all(conn).await?;
    let total: i64 = rows.iter().map(|r| r.people).sum();
    Ok(if total == 0 {
        BTreeMap::new()
    } else {
        rows.into_iter().map(|r| (r.district_code, r.people as f64 / total as f64)).collect()
    })
}

/// The draw's inputs: each departure's free places now, and every application.
async fn inputs(
    conn: &impl ConnectionTrait,
    c: &CampaignRecord,
    tours: &[TourRecord],
    apps: &[application::Model],
    now: DateTime<Utc>,
) -> Result<Inputs> {
    let since = school_year_start(now);
    let schools: Vec<Uuid> = apps.iter().filter_map(|a| a.school_id).collect();
    let visits = visits_since(conn, &schools, since).await?;
    let entrants = apps
        .iter()
        .map(|a| Entrant {
            pseudonym: lottery::pseudonym(c.campaign.id, a.id),
            district: a.district_code.clone(),
            party: a.people,
            visits: a.school_id.map(|s| visits.get(&s).copied().unwrap_or(0)),
            preferences: serde_json::from_value(a.preferences.clone()).unwrap_or_default(),
        })
        .collect();
    Ok(Inputs {
        max_wins: u32::try_from(c.campaign.max_wins).unwrap_or(1),
        offers: tours
            .iter()
            .map(|t| Offer { departure: t.tour.id, places: if t.bookable_now(now) { t.free().max(0) } else { 0 } })
            .collect(),
        prior_place_shares: prior_place_shares(conn, c.campaign.id, since).await?,
        entrants,
    })
}

/// Gives one win its places in a savepoint: a school's tour booking through the booking core
/// (a rule the school breaks refuses the win, with the reason), a citizen's family places on
/// the tour's own pool and every leg's pools.
async fn take_win(
    txn: &DatabaseTransaction,
    actor: &Actor,
    a: &application::Model,
    t: &TourRecord,
    now: DateTime<Utc>,
) -> Result<(String, Option<Uuid>, Option<String>)> {
    let sp = txn.begin().await?;
    let outcome = match a.school_id {
        Some(school_id) => {
            let req = TourBookingRequest {
                school_id,
                students: a.students,
                teachers: a.teachers,
                contact_name: a.contact_name.clone().unwrap_or_default(),
                contact_phone: a.contact_phone.clone().unwrap_or_default(),
                needs: None,
            };
            match tours::book_in(&sp, actor, t, &req, now).await {
                Ok(Some(b)) => Ok(Some(b.booking.id)),
                Ok(None) => Err("a leg's capacity pools were being changed".to_string()),
                Err(e) if e.status().is_client_error() => Err(e.slug().to_string()),
                Err(e) => return Err(e),
            }
        }
        None if !t.bookable_now(now) => Err("the tour takes no bookings now".to_string()),
        None => {
            let party = Party { students: a.people, teachers: 0 };
            let mut takes = vec![(PoolRef { id: t.pool.id, unit: PoolUnit::Visitors }, party)];
            for leg in &t.legs {
                takes.extend(capacity::refs(&leg.session.pools).into_iter().map(|p| (p, party)));
            }
            if capacity::take_all(&sp, &takes, now).await? { Ok(None) } else { Err("no room left".to_string()) }
        }
    };
    match outcome {
        Ok(booking) => {
            sp.commit().await?;
            Ok((CONFIRMED.into(), booking, None))
        }
        Err(why) => {
            sp.rollback().await?;
            Ok((REFUSED.into(), None, Some(why)))
        }
    }
}

/// Draws the campaign (the bureau, after the window closed). Idempotent: a second draw, also
/// one racing from another instance, answers the first draw's result (the campaign's row is
/// locked and its status read under the lock).
pub async fn draw(db: &DatabaseConnection, actor: &Actor, id: Uuid, now: DateTime<Utc>) -> Result<CampaignRecord> {
    authorize(actor, Action::ManageStandards)?;
    let txn = begin_write(db).await?;
    let c = campaign::Entity::find_by_id(id).lock_exclusive().one(&txn).await?.ok_or_else(|| not_found(id))?;
    if c.status == DRAWN {
        let r = record(&txn, c).await?;
        txn.rollback().await?;
        return Ok(r);
    }
    if now < c.closes_at {
        return Err(AppError::conflict_rule(
            "campaign-not-closed",
            format!("the draw is after sign-up closes at {}", crate::domain::sessions::local_time(c.closes_at)),
        ));
    }
    let c = record(&txn, c).await?;
    let apps = application::Entity::find()
        .filter(application::Column::CampaignId.eq(id))
        .order_by_asc(application::Column::Id)
        .all(&txn)
        .await?;
    let mut tours_by_id = HashMap::new();
    for t in &c.tours {
        tours_by_id.insert(*t, tours::get(&txn, *t).await?);
    }
    let tour_list: Vec<TourRecord> = c.tours.iter().filter_map(|t| tours_by_id.get(t).cloned()).collect();
    let inputs = inputs(&txn, &c, &tour_list, &apps, now).await?;
    let outcome = lottery::draw(&c.campaign.seed, &inputs);
    let by_name: HashMap<String, &application::Model> =
        apps.iter().map(|a| (lottery::pseudonym(id, a.id), a)).collect();
    // The winning schools' rows first, in id order, before any pool: a school's own booking
    // meanwhile takes its school's row, then pools, in the same order (no deadlock).
    let mut winners: Vec<Uuid> =
        outcome.wins.iter().filter_map(|w| by_name.get(&w.pseudonym).and_then(|a| a.school_id)).collect();
    winners.sort();
    winners.dedup();
    if !winners.is_empty() {
        school::Entity::find()
            .filter(school::Column::Id.is_in(winners))
            .order_by_asc(school::Column::Id)
            .lock_exclusive()
            .all(&txn)
            .await?;
    }
    let mut won: HashMap<Uuid, usize> = HashMap::new();
    let mut refused = Vec::new();
    for w in &outcome.wins {
        let (Some(a), Some(t)) = (by_name.get(&w.pseudonym), tours_by_id.get(&w.departure)) else { continue };
        let (status, tour_booking_id, note) = take_win(&txn, actor, a, t, now).await?;
        if status == CONFIRMED {
            *won.entry(a.id).or_default() += 1;
        } else {
            let reason = note.clone().unwrap_or_default();
            refused.push(Refusal { pseudonym: w.pseudonym.clone(), departure: w.departure, reason });
        }
        application_win::Entity::insert(application_win::ActiveModel {
            application_id: Set(a.id),
            tour_id: Set(w.departure),
            round: Set(w.round as i32),
            people: Set(a.people),
            status: Set(status),
            tour_booking_id: Set(tour_booking_id),
            note: Set(note),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    for (position, r) in outcome.order.iter().enumerate() {
        let Some(a) = by_name.get(&r.pseudonym) else { continue };
        let status = if won.contains_key(&a.id) { WON } else { WAITING };
        application::Entity::update_many()
            .col_expr(application::Column::Status, Expr::value(status))
            .col_expr(application::Column::DrawPosition, Expr::value(position as i32 + 1))
            .col_expr(application::Column::UpdatedAt, Expr::value(now))
            .filter(application::Column::Id.eq(a.id))
            .exec(&txn)
            .await?;
        if let Some(school) = a.school_id {
            let message = match won.get(&a.id) {
                Some(n) => format!(
                    "\"{}\": your group won {n} departure(s) in the draw; see your tour bookings",
                    c.campaign.title
                ),
                None => format!("\"{}\": your group is number {} on the waiting list", c.campaign.title, position + 1),
            };
            let kind = if won.contains_key(&a.id) { "campaign_won" } else { "campaign_waiting" };
            notifications::to_school(&txn, school, kind, message, now).await?;
        }
    }
    // Room that refused wins left goes to the waiting list, in draw order.
    let mut from_waiting_list = Vec::new();
    if !refused.is_empty() {
        for t in &c.tours {
            from_waiting_list.extend(serve_in(&txn, &c.campaign, *t, now).await?);
        }
    }
    let published = Published {
        seed_sha256: c.campaign.seed_sha256.clone(),
        seed: c.campaign.seed.clone(),
        inputs,
        outcome,
        applied: lottery::Applied { refused, from_waiting_list },
    };
    let draw = serde_json::to_value(&published).map_err(anyhow::Error::from)?;
    campaign::Entity::update_many()
        .col_expr(campaign::Column::Status, Expr::value(DRAWN))
        .col_expr(campaign::Column::DrawnAt, Expr::value(now))
        .col_expr(campaign::Column::Draw, Expr::value(draw))
        .col_expr(campaign::Column::UpdatedAt, Expr::value(now))
        .filter(campaign::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    let after = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::updated("campaign.draw", "campaign", id, &c, &after)).await?;
    txn.commit().await?;
    Ok(after)
}

/// Offers a tour's freed places to the waiting lists of the drawn campaigns that offered it
/// ([`serve_in`], each campaign in its own transaction under its row lock). Answers how many
/// applicants were served.
pub async fn serve_waiting(db: &DatabaseConnection, tour_id: Uuid, now: DateTime<Utc>) -> Result<usize> {
    let campaigns: Vec<Uuid> = campaign_tour::Entity::find()
        .filter(campaign_tour::Column::TourId.eq(tour_id))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.campaign_id)
        .collect();
    let mut served = 0;
    for campaign_id in campaigns {
        let txn = begin_write(db).await?;
        let Some(c) = campaign::Entity::find_by_id(campaign_id).lock_exclusive().one(&txn).await? else { continue };
        if c.status != DRAWN {
            continue;
        }
        let given = serve_in(&txn, &c, tour_id, now).await?;
        served += given.len();
        if !given.is_empty()
            && let Some(mut doc) = c.draw.clone().and_then(|d| serde_json::from_value::<Published>(d).ok())
        {
            doc.applied.from_waiting_list.extend(given);
            let doc = serde_json::to_value(&doc).map_err(anyhow::Error::from)?;
            campaign::Entity::update_many()
                .col_expr(campaign::Column::Draw, Expr::value(doc))
                .filter(campaign::Column::Id.eq(campaign_id))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
    }
    Ok(served)
}

/// Gives a tour's room to the campaign's waiting applicants who listed it, in draw order,
/// first that fits (a party too large is passed over for the next), each as a win of round 0
/// ([`take_win`]: a school a tour booking, a family its places); a school is told. In the
/// caller's transaction, which holds the campaign's row lock. Answers the wins given.
async fn serve_in(
    txn: &DatabaseTransaction,
    c: &campaign::Model,
    tour_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Win>> {
    let bureau = Actor::system();
    let mut given = Vec::new();
    let waiting = application::Entity::find()
        .filter(application::Column::CampaignId.eq(c.id))
        .filter(application::Column::Status.eq(WAITING))
        .order_by_asc(application::Column::DrawPosition)
        .all(txn)
        .await?;
    // Who was given or refused this tour already (never offered it twice): one read.
    let tried: std::collections::HashSet<Uuid> = application_win::Entity::find()
        .filter(application_win::Column::TourId.eq(tour_id))
        .all(txn)
        .await?
        .into_iter()
        .map(|w| w.application_id)
        .collect();
    // The tour is read again only after places were taken from it.
    let mut t = tours::get(txn, tour_id).await?;
    for a in waiting {
        if !t.bookable_now(now) || t.free() <= 0 {
            break;
        }
        let wants: Vec<Uuid> = serde_json::from_value(a.preferences.clone()).unwrap_or_default();
        // Not one who did not list it, does not fit, or was refused it already.
        if !wants.contains(&tour_id) || a.people > t.free() || tried.contains(&a.id) {
            continue;
        }
        let (status, tour_booking_id, note) = take_win(txn, &bureau, &a, &t, now).await?;
        if status != CONFIRMED {
            continue;
        }
        t = tours::get(txn, tour_id).await?;
        application_win::Entity::insert(application_win::ActiveModel {
            application_id: Set(a.id),
            tour_id: Set(tour_id),
            round: Set(0),
            people: Set(a.people),
            status: Set(status),
            tour_booking_id: Set(tour_booking_id),
            note: Set(note),
        })
        .exec_without_returning(txn)
        .await?;
        application::Entity::update_many()
            .col_expr(application::Column::Status, Expr::value(WON))
            .col_expr(application::Column::UpdatedAt, Expr::value(now))
            .filter(application::Column::Id.eq(a.id))
            .exec(txn)
            .await?;
        if let Some(school) = a.school_id {
            let message = format!("\"{}\": a place freed up and your group has it; see your tour bookings", c.title);
            notifications::to_school(txn, school, "campaign_won", message, now).await?;
        }
        given.push(Win { pseudonym: lottery::pseudonym(c.id, a.id), departure: tour_id, round: 0 });
    }
    Ok(given)
}

/// The published draw of a drawn campaign (409 before the draw).
pub async fn published(conn: &impl ConnectionTrait, id: Uuid) -> Result<Published> {
    let c = campaign::Entity::find_by_id(id).one(conn).await?.ok_or_else(|| not_found(id))?;
    match c.draw {
        Some(d) if c.status == DRAWN => {
            serde_json::from_value(d).map_err(|e| AppError::Internal(anyhow::anyhow!("unreadable draw of {id}: {e}")))
        }
        _ => Err(AppError::conflict_rule("campaign-not-drawn", "the campaign has not been drawn yet")),
    }
}

/// Verifies a campaign's published draw ([`lottery::verify`]) and, beyond what the published
/// document can say of itself, that its commitment is the one the campaign published before
/// sign-up opened and that its entrants are the campaign's applications.
pub async fn verify(conn: &impl ConnectionTrait, id: Uuid) -> Result<Verification> {
    let published = published(conn, id).await?;
    let c = get(conn, id).await?;
    let mut v = lottery::verify(&published);
    if published.seed_sha256 != c.campaign.seed_sha256 {
        v.problems.push("the draw's commitment is not the one the campaign published before sign-up".into());
    }
    let ids: Vec<Uuid> = application::Entity::find()
        .select_only()
        .column(application::Column::Id)
        .filter(application::Column::CampaignId.eq(id))
        .into_tuple()
        .all(conn)
        .await?;
    let mut expected: Vec<String> = ids.iter().map(|a| lottery::pseudonym(id, *a)).collect();
    let mut entrants: Vec<String> = published.inputs.entrants.iter().map(|e| e.pseudonym.clone()).collect();
    expected.sort();
    entrants.sort();
    if expected != entrants {
        v.problems.push("the draw's entrants are not the campaign's applications".into());
    }
    v.matches = v.problems.is_empty();
    Ok(v)
}

/// Erases citizens' names, phone numbers and addresses [`ERASE_AFTER_DAYS`] after a
/// campaign's last departure. Answers how many applications were erased.
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64> {
    let due: Vec<Uuid> = campaign::Entity::find()
        .select_only()
        .column(campaign::Column::Id)
        .filter(campaign::Column::LastDepartureAt.lt(now - Duration::days(ERASE_AFTER_DAYS)))
        .filter(campaign::Column::CitizensErasedAt.is_null())
        .limit(100)
        .into_tuple()
        .all(db)
        .await?;
    let mut erased = 0;
    for id in due {
        let txn = begin_write(db).await?;
        erased += application::Entity::update_many()
            .col_expr(application::Column::Name, Expr::value(Option::<String>::None))
            .col_expr(application::Column::Phone, Expr::value(Option::<String>::None))
            .col_expr(application::Column::ClientIp, Expr::value(Option::<String>::None))
            .filter(application::Column::CampaignId.eq(id))
            .filter(application::Column::Kind.eq(CITIZEN))
            .exec(&txn)
            .await?
            .rows_affected;
        campaign::Entity::update_many()
            .col_expr(campaign::Column::CitizensErasedAt, Expr::value(now))
            .filter(campaign::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
    }
    Ok(erased)
}
