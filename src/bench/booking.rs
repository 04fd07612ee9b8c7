//! `kepu bench booking`: bookings over real HTTP, on one hot session and spread over many,
//! against the same conditional updates issued directly on the database, by turns.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use chrono::Utc;
use entity::{booking, capacity_pool, school, session, session_pool};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ExprTrait, QueryFilter, Statement,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::config::Config;
use crate::domain::access::Actor;
use crate::domain::bases::{self, BaseData, BookingRules};
use crate::domain::enums::{Audience, BaseStatus, Category, Role, SchoolKind, Subcategory};
use crate::domain::geo::LatLon;
use crate::domain::sessions::{self, SessionInput};
use crate::domain::users::{self, Scope};
use crate::domain::{auth, capacity};
use crate::security::RateLimit;
use crate::state::{AppState, SystemClock};
use crate::{db, startup};

use super::{BenchDb, drive_by_turns, drive_for, emit, fresh_db, outcome, round2};

/// Settings of a benchmark run.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// A PostgreSQL server URL (a fresh database is created on it) or nothing for a temp SQLite file.
    pub database: Option<String>,
    pub clients: usize,
    pub seconds: u64,
    /// Connections of kepu's pool, which the raw path uses too (`None`: kepu's default).
    pub connections: Option<u32>,
    /// Bases of a city (100 sessions each) seeded first, beside the benchmark's own.
    pub city_bases: u64,
}

const PASSWORD: &str = "bench-password-1";
const SPREAD_SESSIONS: usize = 256;
/// Visitors per benchmark booking: 9 students and a teacher.
const STUDENTS: i32 = 9;
const TEACHERS: i32 = 1;

/// What the run books on: one hot session, many spread ones, and schools to book for.
struct Fixture {
    hot: Uuid,
    spread: Vec<Uuid>,
    schools: Vec<Uuid>,
    /// Pools of each session, for the raw path.
    pools: std::collections::HashMap<Uuid, Vec<Uuid>>,
}

async fn seed(db: &DatabaseConnection, schools_needed: usize) -> anyhow::Result<(Actor, Fixture)> {
    let now = Utc::now();
    let scope = Scope { role: Role::Admin, district_code: None, school_id: None, base_ids: vec![] };
    let admin = users::create(db, None, "admin".into(), PASSWORD.into(), scope, now).await?;
    let admin = auth::actor_of(db, admin.user).await?;
    let mut all_sessions = Vec::new();
    let mut base_ids = Vec::new();
    for b in 0..16 {
        let data = BaseData {
            name_zh: format!("基准基地{b}"),
            name_en: format!("Bench base {b}"),
            host_org: "bench".into(),
            category: Category::Venue,
            subcategory: Subcategory::ScienceVenue,
            district_code: "440106".into(),
            address: "bench".into(),
            location: LatLon { lat: 23.10 + f64::from(b) * 0.01, lon: 113.30 },
            exhibition_area_m2: None,
            opening_hours: None,
            contact_phone: None,
            contact_email: None,
            themes: vec![],
            audiences: vec![Audience::Junior],
            accessibility: None,
            status: BaseStatus::Accredited,
            booking_rules: BookingRules::default(),
        };
        let base = bases::create(db, &admin, data, now).await?;
        base_ids.push(base.base.id);
        for k in 0..=(SPREAD_SESSIONS / 16) {
            let starts = now + chrono::Duration::days(2) + chrono::Duration::hours(k as i64 * 2);
            let input = SessionInput {
                starts_at: starts,
                ends_at: starts + chrono::Duration::hours(1),
                capacity: 100_000,
                audiences: vec![Audience::Junior],
                booking_opens_at: None,
                booking_closes_at: None,
                max_group_size: None,
                pool_ids: vec![],
            };
            all_sessions.push(sessions::create(db, &admin, base.base.id, input, now).await?.session.id);
        }
    }
    // Room for any throughput: the benchmark measures speed, not exhaustion.
    capacity_pool::Entity::update_many()
        .col_expr(capacity_pool::Column::Capacity, Expr::value(i32::MAX / 2))
        .exec(db)
        .await?;
    session::Entity::update_many().col_expr(session::Column::Capacity, Expr::value(i32::MAX / 2)).exec(db).await?;
    let hot = all_sessions[0];
    let spread: Vec<Uuid> = all_sessions[1..=SPREAD_SESSIONS].to_vec();
    let mut pools = std::collections::HashMap::new();
    for s in &all_sessions {
        pools.insert(*s, capacity::pools_of_session(db, *s).await?.into_iter().map(|p| p.id).collect());
    }
    let mut schools = Vec::with_capacity(schools_needed);
    for chunk in (0..schools_needed).collect::<Vec<_>>().chunks(1000) {
        let rows: Vec<school::ActiveModel> = chunk
            .iter()
            .map(|i| {
                let id = Uuid::now_v7();
                schools.push(id);
                school::ActiveModel {
                    id: Set(id),
                    name: Set(format!("基准学校{i}")),
                    district_code: Set("440106".into()),
                    address: Set("bench".into()),
                    lat: Set(23.12),
                    lon: Set(113.31),
                    kind: Set(SchoolKind::Primary.as_str().into()),
                    student_count: Set(1000),
                    version: Set(1),
                    created_at: Set(now),
                    updated_at: Set(now),
                    feed_token_hash: Set(None),
                }
            })
            .collect();
        school::Entity::insert_many(rows).exec_without_returning(db).await?;
    }
    seed_history(db, &base_ids, &schools, now).await?;
    Ok((admin, Fixture { hot, spread, schools, pools }))
}

/// Days of past visits the benchmark's database starts with.
const HISTORY_DAYS: i64 = 365;
/// Checked-in visits per past session.
const HISTORY_VISITS: usize = 4;

/// A year of past visits, a session a day at every base with a few checked-in school groups
/// each: a live database is not empty, and its planner statistics describe tables of that
/// size (on empty tables PostgreSQL plans scans that stay cached while the tables grow).
async fn seed_history(
    db: &DatabaseConnection,
    base_ids: &[Uuid],
    schools: &[Uuid],
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let (mut sessions, mut pools, mut links, mut visits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (b, base_id) in base_ids.iter().enumerate() {
        for day in 1..=HISTORY_DAYS {
            let starts = now - chrono::Duration::days(day) + chrono::Duration::hours(b as i64 % 8);
            let ends = starts + chrono::Duration::hours(1);
            let (id, pool) = (Uuid::now_v7(), Uuid::now_v7());
            let used = HISTORY_VISITS as i32 * (STUDENTS + TEACHERS);
            pools.push(capacity_pool::ActiveModel::from(capacity_pool::Model {
                id: pool,
                name: format!("session {id}"),
                unit: "visitors".into(),
                capacity: 100,
                used,
                base_id: Some(*base_id),
                session_id: Some(id),
                created_at: starts,
                updated_at: starts,
            }));
            sessions.push(session::ActiveModel::from(session::Model {
                id,
                base_id: *base_id,
                starts_at: starts,
                ends_at: ends,
                capacity: 100,
                audiences: json!(["junior"]),
                booking_opens_at: starts - chrono::Duration::days(30),
                booking_closes_at: starts - chrono::Duration::hours(24),
                max_group_size: None,
                status: "open".into(),
                own_pool_id: pool,
                version: 1,
                created_at: starts,
                updated_at: starts,
            }));
            links.push(session_pool::ActiveModel::from(session_pool::Model { session_id: id, pool_id: pool }));
            for v in 0..HISTORY_VISITS {
                let school_id = schools[(visits.len() * 7919 + v) % schools.len()];
                visits.push(booking::ActiveModel::from(booking::Model {
                    id: Uuid::now_v7(),
                    session_id: id,
                    base_id: *base_id,
                    school_id,
                    students: STUDENTS,
                    teachers: TEACHERS,
                    audience: "junior".into(),
                    contact_name: "bench".into(),
                    contact_phone: "020 0000 0000".into(),
                    needs: None,
                    status: "checked_in".into(),
                    code: "HIST01".into(),
                    starts_at: starts,
                    ends_at: ends,
                    created_by: None,
                    cancelled_at: None,
                    cancel_reason: None,
                    late_cancellation: false,
                    checked_in_at: Some(starts),
                    students_present: Some(STUDENTS),
                    teachers_present: Some(TEACHERS),
                    created_at: starts - chrono::Duration::days(7),
                    updated_at: starts,
                    tour_booking_id: None,
                    version: 1,
                    session_moved_at: None,
                    reminded_days: None,
                }));
            }
        }
    }
    for chunk in pools.chunks(1000) {
        capacity_pool::Entity::insert_many(chunk.to_vec()).exec_without_returning(db).await?;
    }
    for chunk in sessions.chunks(1000) {
        session::Entity::insert_many(chunk.to_vec()).exec_without_returning(db).await?;
    }
    for chunk in links.chunks(1000) {
        session_pool::Entity::insert_many(chunk.to_vec()).exec_without_returning(db).await?;
    }
    for chunk in visits.chunks(1000) {
        booking::Entity::insert_many(chunk.to_vec()).exec_without_returning(db).await?;
    }
    Ok(())
}

/// The raw database path: the same conditional pool updates and booking insert, in one
/// transaction, no HTTP and no rules.
async fn raw_booking(db: &DatabaseConnection, session: Uuid, pools: &[Uuid], school: Uuid) -> Result<(), String> {
    let backend = db.get_database_backend();
    let amount = STUDENTS + TEACHERS;
    let run = async {
        let txn = db.begin().await?;
        for p in pools {
            let res = capacity_pool::Entity::update_many()
                .col_expr(capacity_pool::Column::Used, Expr::col(capacity_pool::Column::Used).add(amount))
                .filter(capacity_pool::Column::Id.eq(*p))
                .filter(
                    Expr::col(capacity_pool::Column::Used).add(amount).lte(Expr::col(capacity_pool::Column::Capacity)),
                )
                .exec(&txn)
                .await?;
            if res.rows_affected == 0 {
                txn.rollback().await?;
                return Ok::<bool, sea_orm::DbErr>(false);
            }
        }
        let now = Utc::now();
        let sql = "INSERT INTO bookings (id, session_id, base_id, school_id, students, teachers, audience, contact_name, \
                   contact_phone, status, code, starts_at, ends_at, late_cancellation, created_at, updated_at) \
                   SELECT $1, s.id, s.base_id, $2, $3, $4, 'junior', 'bench', '020 0000 0000', 'confirmed', 'BENCH1', \
                   s.starts_at, s.ends_at, FALSE, $5, $5 FROM sessions s WHERE s.id = $6";
        // `$n` binds by number on both backends (SQLite numbers a repeated `$5` once).
        let values: Vec<sea_orm::Value> =
            vec![Uuid::now_v7().into(), school.into(), STUDENTS.into(), TEACHERS.into(), now.into(), session.into()];
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        txn.commit().await?;
        Ok(true)
    };
    match run.await {
        Ok(true) => Ok(()),
        Ok(false) => Err("full".into()),
        Err(e) => Err(format!("db: {e}")),
    }
}

/// Runs the booking benchmark and prints one JSON object per scenario.
pub async fn booking(args: BenchArgs) -> anyhow::Result<()> {
    let bench_db = fresh_db(args.database.as_deref()).await?;
    let result = run(&args, &bench_db).await;
    bench_db.drop_db().await;
    result
}

async fn run(args: &BenchArgs, bench_db: &BenchDb) -> anyhow::Result<()> {
    let backend = if bench_db.url.starts_with("postgres") { "postgres" } else { "sqlite" };
    let mut config = Config::new(bench_db.url.clone());
    config.db_max_connections = args.connections;
    // A benchmark's clients share one address and one account: measure the service, not its limits.
    config.rate_anonymous = RateLimit { per_minute: 0 };
    config.rate_account = RateLimit { per_minute: 0 };
    // kepu and the raw path share one pool: the same connections, as many as kepu would open.
    let connections = config.pool_size();
    let db = db::connect(&config.database_url, connections).await?;
    db::migrate(&db).await?;
    let schools_needed = (args.clients * args.seconds as usize * 400).clamp(20_000, 400_000);
    eprintln!("seeding {schools_needed} schools and {} sessions …", SPREAD_SESSIONS + 1);
    let (_admin, fx) = seed(&db, schools_needed).await?;
    if args.city_bases > 0 {
        super::city::seed(&db, 0, args.city_bases, 100, Utc::now(), |done| {
            eprintln!("seeded {done} of {} city bases", args.city_bases);
        })
        .await?;
    }
    // A live database has planner statistics and a visibility map kept by autovacuum; a
    // freshly seeded one gets them now.
    if backend == "postgres" {
        db.execute_unprepared("VACUUM ANALYZE").await?;
    }
    let fx = Arc::new(fx);
    let state = startup::with_reads(AppState::new(db.clone(), config, Arc::new(SystemClock))).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    // As `kepu serve` runs: the webhook worker reads every booking's notification beside the
    // bookings (to hand it to subscriptions; here there are none).
    let worker = startup::spawn_webhook_worker(state.clone());
    tokio::spawn(startup::serve(listener, state, std::future::pending()));
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.clients).build()?;
    let token = {
        let r: serde_json::Value = client
            .post(format!("{url}/v1/auth/token"))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        r["access_token"].as_str().context("no token")?.to_string()
    };
    let next_school = Arc::new(AtomicUsize::new(0));

    for scenario in ["hot_session", "spread_sessions"] {
        let pick = {
            let fx = fx.clone();
            move |i: usize| if scenario == "hot_session" { fx.hot } else { fx.spread[i % fx.spread.len()] }
        };
        eprintln!("{scenario}: bookings over HTTP and on the raw database path, {} s each, by turns …", args.seconds);
        // The load generator shares the cores with kepu and PostgreSQL: what it can prepare once
        // (the address, the header, the body's fixed part) it does not redo per request.
        let http = {
            let bookings_url = reqwest::Url::parse(&format!("{url}/v1/bookings"))?;
            let auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
            let (client, fx, next_school, pick) = (client.clone(), fx.clone(), next_school.clone(), pick.clone());
            move |i| {
                let (client, bookings_url, auth, fx, next_school) =
                    (client.clone(), bookings_url.clone(), auth.clone(), fx.clone(), next_school.clone());
                let session = pick(i);
                async move {
                    let k = next_school.fetch_add(1, Ordering::Relaxed);
                    let Some(school) = fx.schools.get(k) else { return Err("out of schools".into()) };
                    let body = format!(
                        r#"{{"session_id":"{session}","school_id":"{school}","students":{STUDENTS},"teachers":{TEACHERS},"audience":"junior","contact_name":"bench","contact_phone":"020 0000 0000"}}"#
                    );
                    let req = client
                        .post(bookings_url)
                        .header(reqwest::header::AUTHORIZATION, auth)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body);
                    outcome(req.send().await, 201).await
                }
            }
        };
        let raw = {
            let (db, fx, pick) = (db.clone(), fx.clone(), pick.clone());
            move |i| {
                let (db, fx) = (db.clone(), fx.clone());
                let session = pick(i);
                async move {
                    let pools = fx.pools.get(&session).cloned().unwrap_or_default();
                    raw_booking(&db, session, &pools, *fx.schools.last().unwrap_or(&fx.hot)).await
                }
            }
        };
        let (http, raw) = drive_by_turns(args.clients, args.seconds, http, raw).await;
        // The pools this run books on (a seeded city's pools hold places without bookings).
        let ours: std::collections::HashSet<Uuid> = fx.pools.values().flatten().copied().collect();
        let violations = capacity::violations(&db).await?.iter().filter(|v| ours.contains(&v.pool_id)).count();
        let over: u64 = capacity_pool::Entity::find()
            .filter(Expr::col(capacity_pool::Column::Used).gt(Expr::col(capacity_pool::Column::Capacity)))
            .all(&db)
            .await?
            .len() as u64;
        emit(&json!({
            "scenario": scenario,
            "database": backend,
            "clients": args.clients,
            "connections": connections,
            "seconds": args.seconds,
            "city_sessions": args.city_bases * 100,
            "bookings_per_s": round2(http.per_s),
            "raw_db_per_s": round2(raw.per_s),
            "ratio": round2(if raw.per_s > 0.0 { http.per_s / raw.per_s } else { 0.0 }),
            "p50_ms": round2(http.p50_ms),
            "p99_ms": round2(http.p99_ms),
            "http_errors": http.errors,
            "overbooked": over + violations as u64,
        }))?;
    }

    let search = {
        let (client, url) = (client.clone(), url.clone());
        drive_for(args.clients, args.seconds.div_ceil(2), move |i| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let path = if i % 2 == 0 {
                    "/v1/sessions?near=23.13,113.31&radius_km=15&min_free=45&limit=20"
                } else {
                    "/v1/bases?near=23.13,113.31&radius_km=15&limit=20"
                };
                outcome(client.get(format!("{url}{path}")).send().await, 200).await
            }
        })
        .await
    };
    emit(&json!({
        "scenario": "search_near",
        "database": backend,
        "clients": args.clients,
        "seconds": args.seconds.div_ceil(2),
        "requests_per_s": round2(search.per_s),
        "p50_ms": round2(search.p50_ms),
        "p99_ms": round2(search.p99_ms),
        "http_errors": search.errors,
    }))?;
    worker.abort();
    db.close().await.ok();
    Ok(())
}
