//! The web console at `/`: pages for schools, bases, evaluators, districts, the bureau and the
//! public, as a small client of the JSON API (`/v1`). Its files are compiled into the binary
//! and served from memory with their own content security policy; nothing is loaded from
//! elsewhere.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::AppError;

/// The console's pages: its own scripts, styles and images, and the API of this origin. No
/// inline script or style, no framing, forms post nowhere but here.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A file of the console.
struct Asset {
    path: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $mime:expr) => {
        Asset { path: $path, mime: $mime, body: include_bytes!(concat!("assets/", $path)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/core.js", JS),
    asset!("js/i18n.js", JS),
    asset!("js/map.js", JS),
    asset!("js/public.js", JS),
    asset!("js/school.js", JS),
    asset!("js/operator.js", JS),
    asset!("js/review.js", JS),
    asset!("js/district.js", JS),
];

/// Each file's entity tag: a digest of its bytes, so a new build's files are fetched anew.
static ETAGS: LazyLock<HashMap<&'static str, String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = Sha256::digest(a.body);
            let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
            (a.path, format!("\"{hex}\""))
        })
        .collect()
});

/// The console's routes: `/` and `/assets/…`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            "/assets/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move { serve(&path, &headers) }),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONSOLE_CSP),
        ))
        // 110 KB of files, 33 KB gzipped.
        .layer(CompressionLayer::new())
}

/// Whether `path` is one of the console's (its requests are not rate limited: they are
/// constant answers from memory).
pub fn is_console_path(path: &str) -> bool {
    path == "/" || path.starts_with("/assets/")
}

/// The names of the console's files (for tests).
pub fn asset_paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.path)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return AppError::not_found(format!("no console file {path}")).into_response();
    };
    let etag = ETAGS.get(asset.path).cloned().unwrap_or_default();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    // Revalidated on every load (a 304 costs a round trip, not the file): a new release's files
    // are never mixed with an old one's.
    let common = [(header::ETAG, etag), (header::CACHE_CONTROL, "no-cache".to_string())];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (StatusCode::OK, common, [(header::CONTENT_TYPE, asset.mime)], asset.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_pages_import_is_embedded() {
        let embedded: Vec<&str> = asset_paths().collect();
        for a in ASSETS.iter().filter(|a| a.mime == JS || a.path == "index.html") {
            let text = std::str::from_utf8(a.body).expect("utf-8");
            for part in text.split(['\'', '"']).filter(|p| p.ends_with(".js") || p.ends_with(".css")) {
                let name = part.trim_start_matches("./").trim_start_matches("/assets/");
                let name = if a.path.starts_with("js/") && !name.starts_with("js/") && name.ends_with(".js") {
                    format!("js/{name}")
                } else {
                    name.to_string()
                };
                assert!(embedded.contains(&name.as_str()), "{} imports {part}, which is not embedded", a.path);
            }
        }
    }
}
