//! Logs (tracing), request ids, Prometheus metrics, and the guard that turns any bare error
//! response (timeouts, panics, unknown routes) into a problem document.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{DatabaseConnection, DatabaseConnectionType};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::error::{AppError, PROBLEM_JSON};

/// Installs the log subscriber: human-readable, or JSON lines with `KEPU_LOG_FORMAT=json`.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_env("KEPU_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let json = std::env::var("KEPU_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry.with(fmt::layer().json().with_current_span(true)).try_init()
    } else {
        registry.with(fmt::layer().compact()).try_init()
    };
}

const HTTP_REQUESTS: &str = "http_requests_total";
const HTTP_DURATION: &str = "http_request_duration_seconds";
const BOOKINGS: &str = "kepu_bookings_total";
const RATE_LIMITED: &str = "kepu_rate_limited_total";
const SEARCH_DURATION: &str = "kepu_search_duration_seconds";
const DB_POOL_CONNECTIONS: &str = "kepu_db_pool_connections";
const DB_POOL_MAX: &str = "kepu_db_pool_max_connections";

/// The process-wide Prometheus recorder (a recorder can be installed once per process).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HTTP_DURATION.into()),
                    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
                )
                .ok()?
                // Searches answer in tens of milliseconds: finer buckets there.
                .set_buckets_for_metric(
                    Matcher::Full(SEARCH_DURATION.into()),
                    &[0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5],
                )
                .ok()?
                .install_recorder()
                .ok()?;
            describe_metrics();
            Some(handle)
        })
        .clone()
}

/// Gives every metric its `# HELP` text (a family without one fails `promtool check
/// metrics`). A family is exported once it has a value.
fn describe_metrics() {
    describe_counter!(HTTP_REQUESTS, Unit::Count, "HTTP requests answered, by method, route template and status.");
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by method, route template and status."
    );
    describe_counter!(
        BOOKINGS,
        Unit::Count,
        "Booking requests by outcome: confirmed, waitlisted, or refused with the problem's slug as reason \
         (capacity-exhausted, school-booking-limit, ...). Idempotent replays are not counted."
    );
    describe_histogram!(
        SEARCH_DURATION,
        Unit::Seconds,
        "Time to answer a search of sessions or bases, by shape: sessions_near, sessions_list, bases_near, bases_list."
    );
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        Unit::Count,
        "Database pool connections by state (in_use, idle), read when /metrics is scraped."
    );
    describe_gauge!(DB_POOL_MAX, Unit::Count, "The database pool's maximum number of connections.");
    describe_counter!(
        RATE_LIMITED,
        Unit::Count,
        "Requests refused 429 by the request-rate limits, by policy: anonymous (per address) or account."
    );
}

/// Counts one request refused by the rate limits of `policy` (`anonymous` or `account`).
pub fn record_rate_limited(policy: &'static str) {
    metrics::counter!(RATE_LIMITED, "policy" => policy).increment(1);
}

/// The longest `x-request-id` a caller may bring.
pub const MAX_REQUEST_ID: usize = 128;

/// Whether a caller's `x-request-id` is kept (echoed, logged, written to the audit log): at
/// most [`MAX_REQUEST_ID`] visible ASCII characters (`!` to `~`, no spaces or controls).
pub fn acceptable_request_id(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= MAX_REQUEST_ID && value.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Drops a caller's `x-request-id` that is not [`acceptable_request_id`], so that the next
/// layer makes a new one.
pub async fn screen_request_id(mut req: Request, next: Next) -> Response {
    let refused = req.headers().get_all(REQUEST_ID).iter().count() > 1
        || req.headers().get(REQUEST_ID).is_some_and(|v| !acceptable_request_id(v.as_bytes()));
    if refused {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
}

/// The request id's header.
pub const REQUEST_ID: &str = "x-request-id";

/// Counts every request and its latency by method, route template and status.
pub async fn track_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(start.elapsed().as_secs_f64());
    res
}

/// What became of a booking request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingOutcome {
    Confirmed,
    Waitlisted,
    /// Refused, with the problem's slug: a fixed set of values, never an id or free text.
    Refused(&'static str),
}

/// Counts a booking request in `kepu_bookings_total`.
pub fn record_booking(outcome: BookingOutcome) {
    let counter = match outcome {
        BookingOutcome::Confirmed => metrics::counter!(BOOKINGS, "outcome" => "confirmed"),
        BookingOutcome::Waitlisted => metrics::counter!(BOOKINGS, "outcome" => "waitlisted"),
        BookingOutcome::Refused(reason) => metrics::counter!(BOOKINGS, "outcome" => "refused", "reason" => reason),
    };
    counter.increment(1);
}

/// Records one search's latency in `kepu_search_duration_seconds` by its shape (a fixed name
/// such as `sessions_near`).
pub fn record_search(shape: &'static str, elapsed: Duration) {
    metrics::histogram!(SEARCH_DURATION, "shape" => shape).record(elapsed.as_secs_f64());
}

/// Times a search from its creation until it is dropped, when the handler returns: one line at
/// the top of a handler, whatever the handler's body becomes. A handler that panics records
/// nothing.
#[must_use = "the search is timed until this is dropped"]
pub struct SearchTimer {
    shape: &'static str,
    started: Instant,
}

/// Starts timing a search of this shape.
pub fn time_search(shape: &'static str) -> SearchTimer {
    SearchTimer { shape, started: Instant::now() }
}

impl Drop for SearchTimer {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            record_search(self.shape, self.started.elapsed());
        }
    }
}

/// Reads the database pool's connections in use and idle into `kepu_db_pool_connections`; called
/// when `/metrics` is scraped, so the figures are as of the scrape.
pub fn record_db_pool(db: &DatabaseConnection) {
    let (size, idle, max) = match &db.inner {
        DatabaseConnectionType::SqlxPostgresPoolConnection(_) => pool_usage(db.get_postgres_connection_pool()),
        DatabaseConnectionType::SqlxSqlitePoolConnection(_) => pool_usage(db.get_sqlite_connection_pool()),
        _ => return,
    };
    metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(f64::from(size.saturating_sub(idle)));
    metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
    metrics::gauge!(DB_POOL_MAX).set(f64::from(max));
}

/// A pool's open connections, idle ones among them, and its maximum.
fn pool_usage<D: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<D>) -> (u32, u32, u32) {
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
    (pool.size(), idle, pool.options().get_max_connections())
}

/// Any error response that is not already a problem (a timeout, a caught panic, a body
/// limit, a method not allowed) becomes one, so that every error has the same shape.
pub async fn problem_guard(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    if is_problem {
        return res;
    }
    let err = match status.as_u16() {
        404 => AppError::not_found("no such route"),
        405 => AppError::MethodNotAllowed,
        408 | 503 | 504 => AppError::Unavailable("the request took too long".into()),
        413 => AppError::PayloadTooLarge,
        415 => AppError::UnsupportedMediaType,
        400 => AppError::MalformedJson("the request could not be read".into()),
        s if s >= 500 => AppError::Internal(anyhow::anyhow!("unhandled {s} response")),
        s => {
            tracing::warn!(status = s, "bare error response converted to a problem");
            AppError::Conflict(format!("request failed with status {s}"))
        }
    };
    let (mut parts, _) = res.into_parts();
    let problem = err.into_response();
    let (pparts, body) = problem.into_parts();
    parts.status = pparts.status;
    parts.headers.remove(header::CONTENT_LENGTH);
    for (k, v) in pparts.headers.iter() {
        parts.headers.insert(k, v.clone());
    }
    Response::from_parts(parts, Body::new(body))
}
