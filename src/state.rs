//! AppState: what every handler shares (database, settings, clock, metrics, verified tokens).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;

use crate::config::Config;
use crate::domain::auth::TokenCache;

/// The source of "now"; tests and the demo can move it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that runs with the system clock plus an adjustable offset: lets tests (and a demo)
/// move time forward to open booking windows, start sessions and end them.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: std::sync::atomic::AtomicI64,
}

impl OffsetClock {
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms.fetch_add(by.num_milliseconds(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[derive(Clone)]
pub struct AppState {
    /// The primary: every write, and every read that decides one.
    pub db: DatabaseConnection,
    /// Where searches and public lists read: a streaming replica when `DATABASE_READ_URL` is
    /// set, else the primary. Never trusted for a write's decision (free places, rules).
    pub read_db: DatabaseConnection,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Option<PrometheusHandle>,
    pub tokens: Arc<TokenCache>,
    /// Request-rate buckets of this process's callers.
    pub limiter: Arc<crate::security::Limiter>,
}

impl AppState {
    /// The state of one kepu process: its pool, settings and clock, with an empty token cache.
    pub fn new(db: DatabaseConnection, config: Config, clock: Arc<dyn Clock>) -> Self {
        crate::security::install_tls_provider();
        let tokens = Arc::new(TokenCache::new(config.auth_cache));
        let read_db = db.clone();
        let limiter = Arc::new(crate::security::Limiter::new(config.rate_anonymous, config.rate_account));
        let (config, metrics) = (Arc::new(config), crate::telemetry::metrics_handle());
        Self { db, read_db, config, clock, metrics, tokens, limiter }
    }

    /// Searches and public lists read from `read_db` (a replica) instead of the primary.
    pub fn with_read_db(mut self, read_db: DatabaseConnection) -> Self {
        self.read_db = read_db;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
