//! `kepu bench statistics`: the statistics a bureau and the public read, on the city of
//! `bench search` ([`super::city`]) with a season of visits behind it: one booking per session,
//! checked in, missed or cancelled. The server's clock stands after the last session, so
//! every session has been held and counts. Each shape is timed from the raw rows, then with
//! every month rolled up, then with the season's last month changed after its rollup and so
//! read raw (what an open month costs); the answers must be equal.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Datelike, Duration, Utc};
use sea_orm::{ConnectionTrait, DbBackend};
use serde_json::json;

use crate::config::Config;
use crate::domain::enums::Role;
use crate::domain::users::{self, Scope};
use crate::security::RateLimit;
use crate::state::{AppState, OffsetClock};
use crate::{db, startup};

use super::{emit, fresh_db, outcome, percentile, round2};

/// Settings of a statistics benchmark.
#[derive(Debug, Clone)]
pub struct StatisticsArgs {
    /// A PostgreSQL server URL (a fresh database is created on it) or nothing for a temp SQLite file.
    pub database: Option<String>,
    pub bases: u64,
    pub per_base: u64,
    /// Requests timed one after another, per shape.
    pub requests: usize,
    /// Keep the seeded database (its URL is printed) to look at plans afterwards.
    pub keep_database: bool,
}

/// Runs the statistics benchmark and prints one JSON object per shape.
pub async fn statistics(args: StatisticsArgs) -> anyhow::Result<()> {
    let bench_db = fresh_db(args.database.as_deref()).await?;
    let result = run(&args, &bench_db.url).await;
    if args.keep_database {
        eprintln!("kept the database: {}", bench_db.url);
    } else {
        bench_db.drop_db().await;
    }
    result
}

async fn run(args: &StatisticsArgs, url: &str) -> anyhow::Result<()> {
    let mut config = Config::new(url.to_string());
    config.rate_anonymous = RateLimit { per_minute: 0 };
    config.rate_account = RateLimit { per_minute: 0 };
    let db = db::connect(&config.database_url, config.pool_size()).await?;
    db::migrate(&db).await?;
    let backend = db.get_database_backend();
    let now = Utc::now();
    let started = Instant::now();
    super::city::seed(&db, 0, args.bases, args.per_base, now, |done| {
        eprintln!("seeded {done} of {} bases", args.bases);
    })
    .await?;
    super::city::seed_visits(&db, 0, args.bases, args.per_base, super::city::first_day(now), now).await?;
    match backend {
        DbBackend::Postgres => {
            db.execute_unprepared("VACUUM ANALYZE").await?;
            db.execute_unprepared("CHECKPOINT").await.ok();
        }
        _ => {
            db.execute_unprepared("ANALYZE").await?;
        }
    }
    let sessions = args.bases * args.per_base;
    eprintln!("{sessions} sessions and their bookings ready in {:.0} s; measuring …", started.elapsed().as_secs_f64());

    // After the season: every seeded session has been held.
    let clock = Arc::new(OffsetClock::default());
    clock.advance(Duration::days(super::city::DAYS + 2));
    let state = startup::with_reads(AppState::new(db.clone(), config.clone(), clock.clone())).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(startup::serve(listener, state, std::future::pending()));
    let client = reqwest::Client::new();
    // The bureau, for what only it and the districts read.
    const PASSWORD: &str = "bench-password-1";
    let scope = Scope { role: Role::Admin, district_code: None, school_id: None, base_ids: vec![] };
    users::create(&db, None, "admin".into(), PASSWORD.into(), scope, now).await?;
    let login: serde_json::Value = client
        .post(format!("{base_url}/v1/auth/token"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"].as_str().unwrap_or_default().to_string();
    let base = super::city::base_id(0);
    let district: String = <entity::base::Entity as sea_orm::EntityTrait>::find_by_id(base)
        .one(&db)
        .await?
        .map(|b| b.district_code)
        .unwrap_or_default();

    // The year that holds most of the season.
    let year = (super::city::first_day(now) + Duration::days(super::city::DAYS / 2)).year();
    let shapes = vec![
        ("city_year", format!("/v1/statistics?scope=city&year={year}")),
        ("city_by_month", format!("/v1/statistics?scope=city&year={year}&period=month")),
        ("districts_by_quarter", format!("/v1/statistics?scope=district&year={year}&period=quarter")),
        ("one_district_by_month", format!("/v1/statistics?scope=district&id=440106&year={year}&period=month")),
        (
            "one_district_by_month_csv",
            format!("/v1/statistics?scope=district&id=440106&year={year}&period=month&format=csv"),
        ),
        ("one_base_by_month", format!("/v1/statistics?scope=base&id={base}&year={year}&period=month")),
        ("district_report_of_the_base", format!("/v1/districts/{district}/report?year={year}")),
    ];
    let database = if backend == DbBackend::Postgres { "postgres" } else { "sqlite" };
    // Every shape three ways: from the raw rows (nothing rolled up yet); with every month
    // rolled up; and with the last month read raw again.
    let mut answers: std::collections::BTreeMap<&str, serde_json::Value> = Default::default();
    let mut raw_p50: std::collections::BTreeMap<&str, f64> = Default::default();
    for source in ["raw", "rolled_up", "last_month_changed"] {
        match source {
            "rolled_up" => {
                let t = Instant::now();
                let mut report = crate::domain::statistics::rollup::RollupReport::default();
                loop {
                    let r = crate::domain::statistics::rollup::roll_up(&db, state_now(&clock), 12).await?;
                    report.rolled += r.rolled;
                    if r.rolled == 0 {
                        break;
                    }
                }
                emit(&json!({
                    "bench": "statistics",
                    "shape": "roll_up_every_month",
                    "database": database,
                    "sessions": sessions,
                    "months_rolled": report.rolled,
                    "seconds": round2(t.elapsed().as_secs_f64()),
                }))?;
            }
            "last_month_changed" => {
                // A change to the season's last month after its rollup: that month is read from
                // the raw rows until the sweep rolls it up again (what the open month costs).
                let last = super::city::first_day(now) + Duration::days(super::city::DAYS - 1);
                crate::domain::statistics::rollup::touched(&db, &[last], state_now(&clock)).await?;
            }
            _ => {}
        }
        for (name, path) in &shapes {
            let full = format!("{base_url}{path}");
            let mut first: serde_json::Value = if name.ends_with("csv") {
                json!(null)
            } else {
                client.get(&full).bearer_auth(&token).send().await?.json().await?
            };
            // A report says when it was made; the rest must be the same.
            if let Some(report) = first.as_object_mut() {
                report.remove("generated_at");
            }
            // The same answer whatever is rolled up.
            if !name.ends_with("csv") {
                if let Some(raw) = answers.get(name) {
                    anyhow::ensure!(raw == &first, "{name}: the rollup answered otherwise than the raw rows");
                } else {
                    answers.insert(name, first.clone());
                }
            }
            // What the answer counted: its rows' sessions, or a report's totals.
            let held: i64 = match first["rows"].as_array() {
                Some(rows) => rows.iter().filter_map(|r| r["sessions_held"].as_i64()).sum(),
                None => first["totals"]["sessions_held"].as_i64().unwrap_or(0),
            };
            let requests = if source == "raw" { args.requests.div_ceil(4) } else { args.requests };
            let mut latencies = Vec::with_capacity(requests);
            for _ in 0..requests {
                let t = Instant::now();
                outcome(client.get(&full).bearer_auth(&token).send().await, 200)
                    .await
                    .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies.sort_by(f64::total_cmp);
            let p50 = percentile(&latencies, 0.5);
            if source == "raw" {
                raw_p50.insert(name, p50);
            }
            emit(&json!({
                "bench": "statistics",
                "shape": name,
                "source": source,
                "database": database,
                "bases": args.bases,
                "sessions": sessions,
                "bookings": sessions,
                "year": year,
                "sessions_held_counted": if name.ends_with("csv") { None } else { Some(held) },
                "p50_ms": round2(p50),
                "p99_ms": round2(percentile(&latencies, 0.99)),
                "raw_over_this": raw_p50.get(name).map(|raw| round2(raw / p50.max(0.001))),
            }))?;
        }
    }
    db.close().await.ok();
    Ok(())
}

fn state_now(clock: &OffsetClock) -> chrono::DateTime<Utc> {
    crate::state::Clock::now(clock)
}
