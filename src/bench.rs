//! `kepu bench`: booking throughput over real HTTP against the raw database's own
//! conditional-update throughput, measured in one run on a fresh database, and search
//! latency. Prints one JSON object per scenario.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
use crate::state::{AppState, SystemClock};
use crate::{db, startup};

/// Settings of a benchmark run.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// A PostgreSQL server URL (a fresh database is created on it) or nothing for a temp SQLite file.
    pub database: Option<String>,
    pub clients: usize,
    pub seconds: u64,
    /// Connections of kepu's pool, which the raw path uses too (`None`: kepu's default).
    pub connections: Option<u32>,
}

const PASSWORD: &str = "bench-password-1";
const SPREAD_SESSIONS: usize = 256;
/// Visitors per benchmark booking: 9 students and a teacher.
const STUDENTS: i32 = 9;
const TEACHERS: i32 = 1;

/// A fresh database for the run, dropped afterwards when it is PostgreSQL.
struct BenchDb {
    url: String,
    server: Option<(String, String)>,
    _dir: Option<std::path::PathBuf>,
}

async fn fresh_db(database: Option<&str>) -> anyhow::Result<BenchDb> {
    match database {
        Some(url) if url.starts_with("postgres") => {
            let name = format!("kepu_bench_{}", Uuid::new_v4().simple());
            let admin = sea_orm::Database::connect(url).await.context("connecting to the PostgreSQL server")?;
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
            admin.close().await.ok();
            // Keep the server part and any options (`?sslmode=…`); replace the database name.
            let (path, query) = url.split_once('?').map_or((url, None), |(p, q)| (p, Some(q)));
            let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
            let db_url = match query {
                Some(q) => format!("{base}/{name}?{q}"),
                None => format!("{base}/{name}"),
            };
            Ok(BenchDb { url: db_url, server: Some((url.to_string(), name)), _dir: None })
        }
        Some(url) => Ok(BenchDb { url: url.to_string(), server: None, _dir: None }),
        None => {
            let dir = std::env::temp_dir().join(format!("kepu-bench-{}", Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir)?;
            let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
            Ok(BenchDb { url, server: None, _dir: Some(dir) })
        }
    }
}

impl BenchDb {
    async fn drop_db(&self) {
        if let Some((server, name)) = &self.server
            && let Ok(admin) = sea_orm::Database::connect(server.as_str()).await
        {
            let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
        if let Some(dir) = &self._dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

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

/// What one or more stretches of load did.
#[derive(Default)]
struct Load {
    /// Latencies of the operations that succeeded, in ms.
    latencies: Vec<f64>,
    /// Failures by kind (an HTTP status, or `transport`).
    errors: std::collections::BTreeMap<String, usize>,
    seconds: f64,
}

impl Load {
    fn add(&mut self, other: Load) {
        self.latencies.extend(other.latencies);
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        self.seconds += other.seconds;
    }

    fn measured(mut self) -> Measured {
        self.latencies.sort_by(f64::total_cmp);
        Measured {
            per_s: if self.seconds > 0.0 { self.latencies.len() as f64 / self.seconds } else { 0.0 },
            p50_ms: percentile(&self.latencies, 0.5),
            p99_ms: percentile(&self.latencies, 0.99),
            errors: self.errors,
        }
    }
}

/// Throughput and latency of a load.
struct Measured {
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: std::collections::BTreeMap<String, usize>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Runs `op` from `clients` tasks for `span`; `op(i)` succeeds or names its failure (`i`
/// counts up across calls sharing `counter`).
async fn drive<F, Fut>(clients: usize, span: Duration, counter: Arc<AtomicUsize>, op: Arc<F>) -> Load
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let start = Instant::now();
    let deadline = start + span;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (op, counter) = (op.clone(), counter.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = std::collections::BTreeMap::<String, usize>::new();
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    match op(i).await {
                        Ok(()) => latencies.push(t.elapsed().as_secs_f64() * 1000.0),
                        Err(kind) => *errors.entry(kind).or_default() += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut load = Load::default();
    for t in tasks {
        if let Ok((latencies, errors)) = t.await {
            load.add(Load { latencies, errors, seconds: 0.0 });
        }
    }
    load.seconds = start.elapsed().as_secs_f64();
    load
}

/// Runs `op` for `seconds` in all.
async fn drive_for<F, Fut>(clients: usize, seconds: u64, op: F) -> Measured
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    drive(clients, Duration::from_secs(seconds), Arc::new(AtomicUsize::new(0)), Arc::new(op)).await.measured()
}

/// Runs two loads by turns, `seconds` each in all, in stretches of about two seconds: a
/// machine whose speed drifts during the run (other work on it, CPU frequency) slows both
/// alike, so their ratio holds.
async fn drive_by_turns<A, AF, B, BF>(clients: usize, seconds: u64, a: A, b: B) -> (Measured, Measured)
where
    A: Fn(usize) -> AF + Send + Sync + 'static,
    AF: std::future::Future<Output = Result<(), String>> + Send,
    B: Fn(usize) -> BF + Send + Sync + 'static,
    BF: std::future::Future<Output = Result<(), String>> + Send,
{
    let turns = std::cmp::max(seconds / 2, 1);
    let span = Duration::from_secs(seconds).div_f64(turns as f64);
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (a_count, b_count) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (mut a_load, mut b_load) = (Load::default(), Load::default());
    for _ in 0..turns {
        a_load.add(drive(clients, span, a_count.clone(), a.clone()).await);
        b_load.add(drive(clients, span, b_count.clone(), b.clone()).await);
    }
    (a_load.measured(), b_load.measured())
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

/// Success, or the failure's status and problem slug (`409 capacity-exhausted`).
async fn outcome(res: reqwest::Result<reqwest::Response>, expected: u16) -> Result<(), String> {
    match res {
        Ok(r) if r.status().as_u16() == expected => {
            r.bytes().await.map_err(|_| "transport".to_string())?;
            Ok(())
        }
        Ok(r) => {
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            let slug = body["type"].as_str().and_then(|t| t.rsplit('/').next()).unwrap_or("");
            Err(format!("{status} {slug}").trim().to_string())
        }
        Err(_) => Err("transport".into()),
    }
}

/// Prints one result line. A closed stdout (`| head -1`) is an error the caller sees, not a
/// panic that would skip dropping the benchmark's database.
fn emit(result: &serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{result}")?;
    out.flush()?;
    Ok(())
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
    // kepu and the raw path share one pool: the same connections, as many as kepu would open.
    let connections = config.pool_size();
    let db = db::connect(&config.database_url, connections).await?;
    db::migrate(&db).await?;
    let schools_needed = (args.clients * args.seconds as usize * 400).clamp(20_000, 400_000);
    eprintln!("seeding {schools_needed} schools and {} sessions …", SPREAD_SESSIONS + 1);
    let (_admin, fx) = seed(&db, schools_needed).await?;
    // A live database has planner statistics and a visibility map kept by autovacuum; a
    // freshly seeded one gets them now.
    if backend == "postgres" {
        db.execute_unprepared("VACUUM ANALYZE").await?;
    }
    let fx = Arc::new(fx);
    let state = AppState::new(db.clone(), config, Arc::new(SystemClock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
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
        let violations = capacity::violations(&db).await?.len();
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
    db.close().await.ok();
    Ok(())
}
