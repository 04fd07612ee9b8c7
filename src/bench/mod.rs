//! `kepu bench`: the benchmarks behind the README's performance claims, measured in one run
//! on a fresh database and printed as one JSON object per scenario. `booking`: throughput
//! over real HTTP against the raw database's own conditional updates; `search`: latency,
//! throughput and rows read of the search shapes on a city-sized database (`city`);
//! `lottery`: a simulated campaign draw's fairness and speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

pub mod booking;
pub mod city;
pub mod lottery;
pub mod search;
pub mod statistics;

pub use booking::{BenchArgs, booking};
pub use lottery::{LotteryArgs, lottery};
pub use search::{SearchArgs, search};
pub use statistics::{StatisticsArgs, statistics};

/// A fresh database for the run, dropped afterwards when it is PostgreSQL.
pub(crate) struct BenchDb {
    pub(crate) url: String,
    server: Option<(String, String)>,
    _dir: Option<std::path::PathBuf>,
}

pub(crate) async fn fresh_db(database: Option<&str>) -> anyhow::Result<BenchDb> {
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
    pub(crate) async fn drop_db(&self) {
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

/// What one or more stretches of load did.
#[derive(Default)]
pub(crate) struct Load {
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
pub(crate) struct Measured {
    pub(crate) per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) errors: std::collections::BTreeMap<String, usize>,
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Runs `op` from `clients` tasks for `span`; `op(i)` succeeds or names its failure (`i`
/// counts up across calls sharing `counter`).
pub(crate) async fn drive<F, Fut>(clients: usize, span: Duration, counter: Arc<AtomicUsize>, op: Arc<F>) -> Load
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
pub(crate) async fn drive_for<F, Fut>(clients: usize, seconds: u64, op: F) -> Measured
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    drive(clients, Duration::from_secs(seconds), Arc::new(AtomicUsize::new(0)), Arc::new(op)).await.measured()
}

/// Runs two loads by turns, `seconds` each in all, in stretches of about two seconds: a
/// machine whose speed drifts during the run (other work on it, CPU frequency) slows both
/// alike, so their ratio holds.
pub(crate) async fn drive_by_turns<A, AF, B, BF>(clients: usize, seconds: u64, a: A, b: B) -> (Measured, Measured)
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

/// Success, or the failure's status and problem slug (`409 capacity-exhausted`).
pub(crate) async fn outcome(res: reqwest::Result<reqwest::Response>, expected: u16) -> Result<(), String> {
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
pub(crate) fn emit(result: &serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{result}")?;
    out.flush()?;
    Ok(())
}
