//! `kepu bench search`: the search shapes a school and a map make, on a city-sized database
//! seeded by bulk SQL ([`super::city`]): latency at one client, throughput at many, and the
//! rows each request reads by the database's own counters (PostgreSQL), first at a tenth of
//! the city and then at the whole of it, so that growth shows in one run.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::json;

use crate::config::Config;
use crate::security::RateLimit;
use crate::state::{AppState, SystemClock};
use crate::{db, startup};

use super::{BenchDb, drive_for, emit, fresh_db, outcome, percentile, round2};

/// Settings of a search benchmark.
#[derive(Debug, Clone)]
pub struct SearchArgs {
    /// A PostgreSQL server URL (a fresh database is created on it) or nothing for a temp SQLite file.
    pub database: Option<String>,
    /// Bases of the whole city.
    pub bases: u64,
    /// Sessions per base, over the next 90 days.
    pub per_base: u64,
    /// Requests timed one after another, per shape.
    pub requests: usize,
    /// Concurrent clients of the throughput run.
    pub clients: usize,
    /// Seconds of the throughput run, per shape.
    pub seconds: u64,
    /// Measure at a tenth of the city first.
    pub growth: bool,
    /// Connections of kepu's pool (`None`: kepu's default).
    pub connections: Option<u32>,
    /// Keep the seeded database (its URL is printed) to look at plans afterwards.
    pub keep_database: bool,
}

/// Where the searches look from (Tianhe, as in the README).
const CENTRE: &str = "23.13,113.33";
/// Requests whose reads are counted, per shape.
const COUNTED: usize = 20;

/// A search shape: its name and the request it makes.
struct Shape {
    name: &'static str,
    path: String,
}

fn shapes(now: DateTime<Utc>) -> Vec<Shape> {
    let t = |d: DateTime<Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let week = format!("from={}&to={}", t(now), t(now + Duration::days(7)));
    let near = format!("near={CENTRE}");
    let shape = |name, path: String| Shape { name, path };
    vec![
        shape("sessions_list", "/v1/sessions?limit=20".into()),
        shape("sessions_list_page_5", "/v1/sessions?limit=20".into()),
        shape("sessions_near_10km_min_free_45", format!("/v1/sessions?{near}&radius_km=10&min_free=45&limit=20")),
        shape(
            "sessions_near_10km_min_free_45_next_7_days",
            format!("/v1/sessions?{near}&radius_km=10&min_free=45&{week}&limit=20"),
        ),
        shape("sessions_near_40km_90_days", format!("/v1/sessions?{near}&radius_km=40&limit=20")),
        shape("bases_nearest", format!("/v1/bases?{near}&limit=20")),
        shape("bases_near_10km", format!("/v1/bases?{near}&radius_km=10&limit=20")),
    ]
}

/// Runs the search benchmark and prints one JSON object per shape and city size.
pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    let bench_db = fresh_db(args.database.as_deref()).await?;
    let result = run(&args, &bench_db).await;
    if args.keep_database {
        eprintln!("kept the database: {}", bench_db.url);
    } else {
        bench_db.drop_db().await;
    }
    result
}

async fn run(args: &SearchArgs, bench_db: &BenchDb) -> anyhow::Result<()> {
    let mut config = Config::new(bench_db.url.clone());
    config.db_max_connections = args.connections;
    // A benchmark's clients share one address and one account: measure the service, not its limits.
    config.rate_anonymous = RateLimit { per_minute: 0 };
    config.rate_account = RateLimit { per_minute: 0 };
    let connections = config.pool_size();
    let db = db::connect(&config.database_url, connections).await?;
    db::migrate(&db).await?;
    let backend = db.get_database_backend();
    let database = if backend == DbBackend::Postgres { "postgres" } else { "sqlite" };
    let now = Utc::now();
    // As `kepu serve` runs: searches through their own pool.
    let state = startup::with_reads(AppState::new(db.clone(), config.clone(), Arc::new(SystemClock))).await?;
    let url = serve(state).await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.clients).build()?;
    let stages = if args.growth && args.bases >= 10 { vec![args.bases / 10, args.bases] } else { vec![args.bases] };
    let mut seeded = 0;
    let mut first_p50: std::collections::HashMap<&'static str, f64> = std::collections::HashMap::new();
    for (stage, target) in stages.iter().copied().enumerate() {
        let started = Instant::now();
        super::city::seed(&db, seeded, target, args.per_base, now, |done| {
            eprintln!("seeded {done} of {target} bases ({} sessions)", done * args.per_base);
        })
        .await?;
        seeded = target;
        analyze(&db).await?;
        let sessions = target * args.per_base;
        eprintln!("{sessions} sessions ready in {:.0} s; measuring …", started.elapsed().as_secs_f64());
        for shape in shapes(now) {
            let path = match shape.name {
                "sessions_list_page_5" => page(&client, &url, &shape.path, 5).await?,
                _ => shape.path.clone(),
            };
            let full = format!("{url}{path}");
            let items = client.get(&full).send().await?.json::<serde_json::Value>().await?["items"]
                .as_array()
                .map_or(0, Vec::len);
            // One client, one request after another.
            let mut latencies = Vec::with_capacity(args.requests);
            for _ in 0..args.requests {
                let t = Instant::now();
                outcome(client.get(&full).send().await, 200).await.map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies.sort_by(f64::total_cmp);
            let many = {
                let (client, full) = (client.clone(), full.clone());
                drive_for(args.clients, args.seconds, move |_| {
                    let (client, full) = (client.clone(), full.clone());
                    async move { outcome(client.get(&full).send().await, 200).await }
                })
                .await
            };
            let reads = match backend {
                DbBackend::Postgres => Some(rows_read(&config, &path).await?),
                _ => None,
            };
            let p50 = percentile(&latencies, 0.5);
            let growth = match stage {
                0 => {
                    first_p50.insert(shape.name, p50);
                    None
                }
                _ => first_p50.get(shape.name).map(|f| round2(p50 / f)),
            };
            emit(&json!({
                "bench": "search",
                "shape": shape.name,
                "database": database,
                "bases": target,
                "sessions": sessions,
                "items": items,
                "p50_ms": round2(p50),
                "p99_ms": round2(percentile(&latencies, 0.99)),
                "clients": args.clients,
                "requests_per_s": round2(many.per_s),
                "p50_ms_at_clients": round2(many.p50_ms),
                "http_errors": many.errors,
                "rows_read_per_request": reads.as_ref().map(|r| round2(r.rows as f64 / COUNTED as f64)),
                "whole_table_scans": reads.as_ref().map(|r| &r.seq_scans),
                "p50_vs_tenth_of_the_city": growth,
            }))?;
        }
    }
    db.close().await.ok();
    Ok(())
}

async fn serve(state: AppState) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(startup::serve(listener, state, std::future::pending()));
    Ok(url)
}

/// The path of page `n` of a list, following `next_cursor`.
async fn page(client: &reqwest::Client, url: &str, path: &str, n: usize) -> anyhow::Result<String> {
    let mut at = path.to_string();
    for _ in 1..n {
        let body: serde_json::Value = client.get(format!("{url}{at}")).send().await?.json().await?;
        let cursor = body["next_cursor"].as_str().context("the list ended before the page")?;
        at = format!("{path}&cursor={cursor}");
    }
    Ok(at)
}

/// Fresh planner statistics, as a live database keeps them.
async fn analyze(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        db.execute_unprepared("ANALYZE").await?;
        return Ok(());
    }
    db.execute_unprepared("VACUUM ANALYZE").await?;
    // Write the seeding's dirty pages now, not in a checkpoint during the measurement (best
    // effort: it needs a superuser or the pg_checkpoint role).
    if let Err(e) = db.execute_unprepared("CHECKPOINT").await {
        eprintln!("no CHECKPOINT before measuring ({e}); a checkpoint may fall into the run");
    }
    Ok(())
}

/// What PostgreSQL counted for some requests.
#[derive(Debug, Clone, Default)]
struct Reads {
    /// Rows read from tables, by scans and through indexes.
    rows: i64,
    /// Scans of a whole table, by table.
    seq_scans: std::collections::BTreeMap<String, i64>,
}

async fn table_counters(db: &DatabaseConnection) -> anyhow::Result<std::collections::BTreeMap<String, (i64, i64)>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT relname, CAST(seq_tup_read + COALESCE(idx_tup_fetch, 0) AS BIGINT) AS rows, \
             CAST(seq_scan AS BIGINT) AS scans FROM pg_stat_user_tables",
        ))
        .await?;
    let mut out = std::collections::BTreeMap::new();
    for r in rows {
        out.insert(r.try_get::<String>("", "relname")?, (r.try_get("", "rows")?, r.try_get("", "scans")?));
    }
    Ok(out)
}

/// Rows read by [`COUNTED`] requests of `path`, served by a kepu of its own whose one
/// connection flushes its counters before they are read.
async fn rows_read(config: &Config, path: &str) -> anyhow::Result<Reads> {
    let probe = db::connect_reads(&config.database_url, 1).await?;
    let state = AppState::new(probe.clone(), config.clone(), Arc::new(SystemClock)).with_read_db(probe.clone());
    let url = serve(state).await?;
    let client = reqwest::Client::new();
    // The first request warms the connection (catalogue reads are not the search's).
    outcome(client.get(format!("{url}{path}")).send().await, 200).await.map_err(anyhow::Error::msg)?;
    flush(&probe).await;
    let before = table_counters(&probe).await?;
    for _ in 0..COUNTED {
        outcome(client.get(format!("{url}{path}")).send().await, 200).await.map_err(anyhow::Error::msg)?;
    }
    flush(&probe).await;
    let after = table_counters(&probe).await?;
    probe.close().await.ok();
    let mut reads = Reads::default();
    for (table, (rows, scans)) in after {
        let (rows0, scans0) = before.get(&table).copied().unwrap_or_default();
        reads.rows += rows - rows0;
        if scans > scans0 {
            reads.seq_scans.insert(table, scans - scans0);
        }
    }
    Ok(reads)
}

/// Makes this connection's pending table counters visible (PostgreSQL 15+ flushes them at
/// most once a second otherwise).
async fn flush(db: &DatabaseConnection) {
    let _ = db.execute_unprepared("SELECT pg_stat_force_next_flush()").await;
    let _ = db.execute_unprepared("SELECT pg_stat_clear_snapshot()").await;
}
