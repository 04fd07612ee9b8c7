//! Builds the router and the OpenAPI document from the same code, and serves them with
//! graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::middleware;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Config;
use crate::error::AppError;
use crate::openapi::{ApiDoc, Links, StandardErrors, TextPatterns};
use crate::state::{AppState, SystemClock};
use crate::{db, http, security, telemetry};

fn split() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut spec) = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(http::router()).split_for_parts();
    StandardErrors.modify(&mut spec);
    Links.modify(&mut spec);
    TextPatterns.modify(&mut spec);
    (router, spec)
}

/// The OpenAPI document of the real router.
pub fn openapi() -> utoipa::openapi::OpenApi {
    split().1
}

/// The OpenAPI document as committed in `openapi/openapi.json`.
pub fn openapi_json() -> String {
    let mut s = openapi().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

async fn not_found() -> AppError {
    AppError::not_found("no such route")
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// The whole application: API, docs page, middleware.
pub fn app(state: AppState) -> Router {
    let (router, spec) = split();
    let request_id = HeaderName::from_static(telemetry::REQUEST_ID);
    let timeout = state.config.request_timeout;
    let body_limit = state.config.body_limit_bytes;
    let cors = security::cors(&state.config.cors_origins);
    let docs = Router::from(SwaggerUi::new("/docs").url("/openapi.json", spec));
    let router = security::with_docs(router, docs)
        .merge(crate::console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let router = router
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), security::rate_limit))
        .layer(middleware::from_fn(telemetry::track_metrics))
        .layer(middleware::from_fn(telemetry::problem_guard))
        .layer(CatchPanicLayer::new())
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(telemetry::REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    // Every answer, a timeout's and a caught panic's included, carries the security headers.
    let router = security::with_headers(router).layer(middleware::from_fn(telemetry::screen_request_id));
    match cors {
        Some(cors) => router.layer(cors).with_state(state),
        None => router.with_state(state),
    }
}

/// Connects, migrates and builds the state.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let db = db::connect(&config.database_url, config.pool_size()).await?;
    db::migrate(&db).await?;
    with_reads(AppState::new(db, config, Arc::new(SystemClock))).await
}

/// Gives searches a pool of their own ([`db::connect_reads`]): on the replica when
/// `DATABASE_READ_URL` is set, else beside the primary's pool (PostgreSQL; SQLite reads through
/// the one pool).
pub async fn with_reads(state: AppState) -> anyhow::Result<AppState> {
    let url = match &state.config.database_read_url {
        Some(url) => url.clone(),
        None if state.db.get_database_backend() == sea_orm::DbBackend::Postgres => state.config.database_url.clone(),
        None => return Ok(state),
    };
    let reads = db::connect_reads(&url, state.config.pool_size()).await?;
    Ok(state.with_read_db(reads))
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limiter = state.limiter.clone();
    let forget_idle = tokio::spawn(async move {
        let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            limiter.forget_idle();
        }
    });
    let app = app(state);
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    forget_idle.abort();
    served
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Months of statistics one sweep rolls up at most (a first sweep over years of history takes
/// a few).
const ROLLUP_MONTHS_PER_SWEEP: usize = 3;

/// Runs the sweeps (no-shows, expiries, promotions, old idempotency keys, reminders, lapsed
/// certificates, erasure, the statistics rollup) every `every`, until the process ends. Safe
/// in several processes at once: each reminder is sent once, each month rolled up by one.
pub fn spawn_sweeper(state: AppState, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match crate::domain::bookings::sweep(&state.db, state.now()).await {
                Ok(r) if r != Default::default() => tracing::info!(?r, "sweep"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweep failed; retrying next time"),
            }
            match crate::domain::reminders::send(&state.db, &state.config.reminder_days, state.now()).await {
                Ok(r) if r != Default::default() => tracing::info!(?r, "reminders sent"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reminders failed; retrying next time"),
            }
            match crate::domain::evaluation::revoke_unrectified(&state.db, state.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(revoked = n, "bases revoked: rectification ended unpassed"),
                Err(e) => tracing::warn!(error = %e, "rectification sweep failed; retrying next time"),
            }
            match crate::domain::accreditation::expire_certificates(&state.db, state.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "certificates expired"),
                Err(e) => tracing::warn!(error = %e, "certificate sweep failed; retrying next time"),
            }
            match crate::domain::campaigns::sweep(&state.db, state.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(erased = n, "citizens' contact details erased"),
                Err(e) => tracing::warn!(error = %e, "erasure sweep failed; retrying next time"),
            }
            match crate::domain::statistics::rollup::roll_up(&state.db, state.now(), ROLLUP_MONTHS_PER_SWEEP).await {
                Ok(r) if r.rolled > 0 => tracing::info!(?r, "statistics rolled up"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "statistics rollup failed; retrying next time"),
            }
        }
    })
}

/// Delivers webhooks from the notifications outbox every poll interval, until the process
/// ends. Safe in several processes at once: each delivery is sent by one worker at a time.
pub fn spawn_webhook_worker(state: AppState) -> tokio::task::JoinHandle<()> {
    crate::domain::webhooks::worker::Worker::new(state.db.clone(), state.config.webhooks.clone(), state.clock.clone())
        .spawn()
}
