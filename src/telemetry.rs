//! Logs (tracing), request ids, Prometheus metrics, and the guard that turns any bare error
//! response (timeouts, panics, unknown routes) into a problem document.

use std::sync::OnceLock;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Unit, describe_counter, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
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
}

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
