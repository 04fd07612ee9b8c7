//! What every answer carries to keep browsers safe (`nosniff`, a strict content security
//! policy, no referrer), and who may call the API from a web page of another origin (CORS:
//! nobody, unless configured).

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
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
