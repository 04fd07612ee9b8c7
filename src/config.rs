//! Settings from the environment and flags (DATABASE_URL, KEPU_BIND, …), with their defaults.

use std::time::Duration;

/// The embedded default: a SQLite file in the working directory, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://kepu.db?mode=rwc";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    /// A read-only replica of the database (a PostgreSQL streaming replica) for searches and
    /// public lists; `None`: the primary serves them.
    pub database_read_url: Option<String>,
    /// Lifetime of a bearer token.
    pub token_ttl: Duration,
    /// Failed log-ins from one client address are counted over this window.
    pub login_window: Duration,
    /// Failed log-ins from one client address (for any usernames) within `login_window`
    /// before that address is answered 429.
    pub login_max_per_client: u64,
    /// Failed log-ins for one username, from all addresses, within an hour before only the
    /// addresses the account logged in from lately may still try (others are answered 429).
    pub login_account_failures_per_hour: u64,
    /// A request taking longer than this is answered 503.
    pub request_timeout: Duration,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Size of the database connection pool (`None`: [`Config::pool_size`]'s default).
    pub db_max_connections: Option<u32>,
    /// How long a verified bearer token is trusted without looking it up again (zero: always
    /// look it up). A revocation or account change made through another kepu process takes
    /// effect within this time; one made through this process at once.
    pub auth_cache: Duration,
    /// Where people reach this service (`https://kepu.example.gov.cn`), for links in what it
    /// sends out (calendar feeds); `None`: links are paths.
    pub public_url: Option<String>,
    /// Origins whose web pages may call the API (CORS); empty: none.
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// Proxies whose `X-Forwarded-For` names the client (addresses or networks); empty: the
    /// TCP peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Requests a minute for callers without a valid token, per address (0: no limit).
    pub rate_anonymous: crate::security::RateLimit,
    /// Requests a minute per signed-in account (0: no limit).
    pub rate_account: crate::security::RateLimit,
    /// Days before a visit that the sweep reminds its school (empty: no reminders).
    pub reminder_days: Vec<u32>,
    /// Webhook delivery: the outbox worker's settings.
    pub webhooks: WebhookConfig,
}

/// How webhooks are delivered ([`crate::domain::webhooks`]).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Networks a webhook URL may reach although they are not public (loopback, private, …);
    /// empty: public addresses only.
    pub allow: Vec<ipnet::IpNet>,
    /// How often the worker looks for new notifications and due deliveries.
    pub poll: Duration,
    /// How long one attempt may take (connecting, sending, the answer's status).
    pub timeout: Duration,
    /// The waits between attempts, in order (each with ±20 % jitter); after the last one's
    /// attempt fails too, the delivery is given up. The default adds up to about a day.
    pub retry_schedule: Vec<Duration>,
    /// A subscription is disabled after this many failed attempts in a row …
    pub disable_after_failures: u32,
    /// … the first of them at least this long ago.
    pub disable_after: Duration,
}

/// 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h: 11 attempts over about 23.7 hours.
pub const DEFAULT_WEBHOOK_RETRIES: [u64; 10] = [5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800];

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            retry_schedule: DEFAULT_WEBHOOK_RETRIES.iter().map(|s| Duration::from_secs(*s)).collect(),
            disable_after_failures: 10,
            disable_after: Duration::from_secs(12 * 3600),
        }
    }
}

impl Config {
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            database_read_url: None,
            token_ttl: Duration::from_secs(12 * 3600),
            login_window: Duration::from_secs(15 * 60),
            login_max_per_client: 50,
            login_account_failures_per_hour: 100,
            request_timeout: Duration::from_secs(30),
            body_limit_bytes: 256 * 1024,
            db_max_connections: None,
            auth_cache: Duration::from_secs(5),
            public_url: None,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            rate_anonymous: crate::security::RateLimit { per_minute: 600 },
            rate_account: crate::security::RateLimit { per_minute: 1200 },
            reminder_days: crate::domain::reminders::DEFAULT_DAYS.to_vec(),
            webhooks: WebhookConfig::default(),
        }
    }

    /// The connection pool's size: as set, or 8 for SQLite (one writer at a time anyway) and
    /// for PostgreSQL 4 per CPU core of this host, 4 to 32. Bookings are short CPU-bound
    /// transactions: more connections than the cores can serve only queue inside the database,
    /// where a waiting transaction holds its locks, instead of in the pool, where it holds
    /// none (on 2 cores, 8 connections booked a hot session 1.4 times as fast as 32).
    pub fn pool_size(&self) -> u32 {
        self.db_max_connections.unwrap_or_else(|| {
            if self.database_url.starts_with("sqlite:") {
                8
            } else {
                let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
                u32::try_from(cores * 4).unwrap_or(32).clamp(4, 32)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn the_pool_follows_the_backend_and_the_cores_unless_set() {
        assert_eq!(Config::new("sqlite://kepu.db?mode=rwc").pool_size(), 8);
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get) as u32;
        let pg = Config::new("postgres://kepu@db/kepu").pool_size();
        assert_eq!(pg, (cores * 4).clamp(4, 32));
        let mut set = Config::new("postgres://kepu@db/kepu");
        set.db_max_connections = Some(3);
        assert_eq!(set.pool_size(), 3);
    }
}
