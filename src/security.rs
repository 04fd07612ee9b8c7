//! What every answer carries to keep browsers safe (`nosniff`, a strict content security
//! policy, no referrer), who may call the API from a web page of another origin (CORS: nobody,
//! unless configured), which address a request comes from (behind trusted proxies too), and
//! how many requests a caller may make (token buckets per account and per address).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use ipnet::IpNet;
use uuid::Uuid;

use crate::domain::auth;
use crate::error::AppError;
use crate::state::AppState;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

/// The API answers JSON, problems and calendars, never a page: nothing in them may load,
/// run or be framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The documentation page (Swagger UI, served from this process): its own scripts, styles,
/// images and the spec, nothing from elsewhere; the one inline style Swagger UI injects is
/// allowed by its hash (checked in a browser: the page renders every operation with no
/// policy violation).
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; img-src 'self' data:; \
     font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn csp(policy: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy))
}

/// Merges the documentation page's routes into `router`, with [`DOCS_CSP`].
pub fn with_docs<S: Clone + Send + Sync + 'static>(router: Router<S>, docs: Router<S>) -> Router<S> {
    router.merge(docs.layer(csp(DOCS_CSP)))
}

/// Adds the security headers to every answer of `router` (fallbacks included, so add it last):
/// `nosniff`, no referrer, no framing, and [`API_CSP`] where no other policy was set.
pub fn with_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let set = |name, value| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value));
    router
        .layer(csp(API_CSP))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
}

/// Reads one origin of `KEPU_CORS_ORIGINS` (`https://console.example.gov.cn`): a scheme, a
/// host and an optional port, nothing else.
pub fn parse_origin(origin: &str) -> Result<HeaderValue, String> {
    let o = origin.trim();
    let url = url::Url::parse(o).map_err(|e| format!("{o:?}: {e}"))?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && !o.ends_with('/');
    if !plain {
        return Err(format!("{o:?}: an origin is a scheme, a host and an optional port, as https://example.org"));
    }
    HeaderValue::from_str(o).map_err(|e| format!("{o:?}: {e}"))
}

/// Cross-origin calls from web pages of `origins` only (none: no CORS headers at all, so
/// browsers keep other origins out). Credentials are bearer tokens, never cookies.
pub fn cors(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let request_headers = ["authorization", "content-type", "if-match", "idempotency-key", "x-request-id"];
    let exposed = ["etag", "location", "retry-after", "ratelimit", "ratelimit-policy", "x-request-id"];
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers(request_headers.map(HeaderName::from_static))
            .expose_headers(exposed.map(HeaderName::from_static))
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

/// The address a request comes from: the TCP peer, or, when the peer is one of the
/// `trusted` proxies, the last address in `X-Forwarded-For` that is not a trusted proxy (each
/// proxy appends the address it was reached from; anything left of the first untrusted hop
/// may be forged by the client). The one rule behind rate limits, log-in and objection
/// throttles.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .map(|hop| hop.parse::<IpAddr>().or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip())))
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    hops.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer)
}

/// Reads one entry of `KEPU_TRUSTED_PROXIES`: an address (`10.0.0.5`) or a network
/// (`10.0.0.0/8`).
pub fn parse_proxy(entry: &str) -> Result<IpNet, String> {
    let e = entry.trim();
    e.parse::<IpNet>()
        .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{e:?}: an address or a network such as 10.0.0.0/8"))
}

/// Whose token bucket a request draws on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A signed-in account, whichever of its tokens and addresses it uses.
    Account(Uuid),
    /// Anyone without a valid token, by address.
    Address(IpAddr),
}

/// Seconds of requests a burst holds.
const BURST_SECONDS: u64 = 10;

/// Requests a caller may make: `per_minute` on average, with bursts of [`BURST_SECONDS`]' worth
/// at once. Zero: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
}

impl RateLimit {
    fn quota(self) -> Option<(Quota, u32)> {
        let rate = NonZeroU32::new(self.per_minute)?;
        let burst = NonZeroU32::new((self.per_minute / (60 / BURST_SECONDS as u32)).max(1))?;
        Some((Quota::per_minute(rate).allow_burst(burst), burst.get()))
    }
}

type Buckets = RateLimiter<Caller, DefaultKeyedStateStore<Caller>, DefaultClock, StateInformationMiddleware>;

/// The buckets of one kind of caller under one limit.
#[derive(Debug)]
struct Policy {
    name: &'static str,
    buckets: Buckets,
    per_minute: u32,
    burst: u32,
}

impl Policy {
    fn new(name: &'static str, limit: RateLimit) -> Option<Self> {
        let (quota, burst) = limit.quota()?;
        let buckets = RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>();
        Some(Self { name, buckets, per_minute: limit.per_minute, burst })
    }
}

/// One bucket per caller, kept in this process (each instance behind a load balancer keeps its
/// own: N instances let a caller make up to N times as many requests), by the GCRA of the
/// `governor` crate.
#[derive(Debug)]
pub struct Limiter {
    anonymous: Option<Policy>,
    accounts: Option<Policy>,
    clock: DefaultClock,
}

/// A caller's standing after a request: what is left of its burst, or how long to wait.
struct Standing<'a> {
    policy: &'a Policy,
    remaining: u32,
    wait: Option<Duration>,
}

impl Limiter {
    pub fn new(anonymous: RateLimit, accounts: RateLimit) -> Self {
        Self {
            anonymous: Policy::new("anonymous", anonymous),
            accounts: Policy::new("account", accounts),
            clock: DefaultClock::default(),
        }
    }

    fn check(&self, caller: &Caller) -> Option<Standing<'_>> {
        let policy = match caller {
            Caller::Account(_) => self.accounts.as_ref()?,
            Caller::Address(_) => self.anonymous.as_ref()?,
        };
        Some(match policy.buckets.check_key(caller) {
            Ok(snapshot) => Standing { policy, remaining: snapshot.remaining_burst_capacity(), wait: None },
            Err(not_until) => Standing { policy, remaining: 0, wait: Some(not_until.wait_time_from(self.clock.now())) },
        })
    }

    /// Forgets the buckets of callers that have been quiet long enough to be full again.
    pub fn forget_idle(&self) {
        for policy in [&self.anonymous, &self.accounts].into_iter().flatten() {
            policy.buckets.retain_recent();
            policy.buckets.shrink_to_fit();
        }
    }
}

/// Liveness, readiness and metrics are never limited: probes and scrapers must get through.
pub fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics") || crate::console::is_console_path(path)
}

/// Limits request rates: a signed-in account's requests draw on its own bucket (resolved from
/// its bearer token), anyone else's on its address's. Over the limit: 429 `rate-limited` with
/// `Retry-After`; every limited answer carries the `RateLimit-Policy` and `RateLimit` fields
/// (IETF draft-ietf-httpapi-ratelimit-headers).
pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let (token, address) = credentials_of(&state, &req);
    let caller = account_of(&state, token).await.map_or(Caller::Address(address), Caller::Account);
    let Some(standing) = state.limiter.check(&caller) else {
        return next.run(req).await;
    };
    let retry_after = standing.wait.map(|w| u64::try_from(w.as_millis().div_ceil(1000)).unwrap_or(u64::MAX).max(1));
    let policy = standing.policy;
    let mut response = match retry_after {
        Some(secs) => {
            crate::telemetry::record_rate_limited(policy.name);
            AppError::RateLimited {
                detail: format!(
                    "too many requests: {} callers may make {} a minute (bursts of {}); try again in {secs} s",
                    policy.name, policy.per_minute, policy.burst
                ),
                retry_after_s: secs,
            }
            .into_response()
        }
        None => next.run(req).await,
    };
    // The burst refills in BURST_SECONDS: the policy's window; `t` is when it is full again.
    let used = u64::from(policy.burst - standing.remaining.min(policy.burst));
    let reset = retry_after.unwrap_or_else(|| (used * BURST_SECONDS).div_ceil(u64::from(policy.burst)));
    let fields = [
        ("ratelimit-policy", format!("\"{}\";q={};w={BURST_SECONDS}", policy.name, policy.burst)),
        ("ratelimit", format!("\"{}\";r={};t={reset}", policy.name, standing.remaining)),
    ];
    for (name, value) in fields {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(HeaderName::from_static(name), v);
        }
    }
    response
}

/// The bearer token of a request, if any, and its client's address.
fn credentials_of(state: &AppState, req: &Request) -> (Option<String>, IpAddr) {
    let headers = req.headers();
    let token = crate::http::extract::bearer_of(headers)
        .ok()
        .flatten()
        .or_else(|| crate::http::extract::session_cookie(headers));
    (token, address_of(state, headers, req.extensions().get::<ConnectInfo<SocketAddr>>()))
}

/// The account behind a valid bearer token.
async fn account_of(state: &AppState, token: Option<String>) -> Option<Uuid> {
    let actor = auth::authenticate(&state.db, &state.tokens, &token?, state.now()).await.ok()?;
    Some(actor.user_id)
}

/// The client's address of a request ([`client_address`] with the configured proxies).
pub fn address_of(state: &AppState, headers: &HeaderMap, peer: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    let peer = peer.map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(a)| a.ip());
    client_address(peer, headers, &state.config.trusted_proxies)
}

/// Installs the process's crypto provider for outgoing TLS (webhook deliveries over https):
/// ring, the one the database driver already builds. Idempotent.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::parse_origin;

    #[test]
    fn an_origin_is_a_scheme_a_host_and_a_port() {
        assert!(parse_origin("https://console.example.gov.cn").is_ok());
        assert!(parse_origin(" http://127.0.0.1:5173 ").is_ok());
        for bad in
            ["*", "console.example.gov.cn", "https://x.cn/", "https://x.cn/app", "ftp://x.cn", "https://u@x.cn", ""]
        {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
