//! The HTTP API under `/v1`: one module per resource, each exposing its `router()`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::domain::geo::LatLon;
use crate::domain::page::{PageRequest, Paged};
use crate::domain::validate::Validator;
use crate::error::{AppError, Result};
use crate::state::AppState;

pub mod accreditation;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod bases;
pub mod bookings;
pub mod campaigns;
pub mod disclosure;
pub mod districts;
pub mod evaluation;
pub mod exhibits;
pub mod extract;
pub mod health;
pub mod holidays;
pub mod loans;
pub mod pools;
pub mod schools;
pub mod sessions;
pub mod signage;
pub mod statistics;
pub mod tours;
pub mod users;
pub mod webhooks;

/// Every resource's routes, merged.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(audit::router())
        .merge(districts::router())
        .merge(bases::router())
        .merge(exhibits::router())
        .merge(loans::router())
        .merge(schools::router())
        .merge(sessions::router())
        .merge(pools::router())
        .merge(bookings::router())
        .merge(tours::router())
        .merge(campaigns::router())
        .merge(admin::router())
        .merge(accreditation::router())
        .merge(disclosure::router())
        .merge(evaluation::router())
        .merge(signage::router())
        .merge(statistics::router())
        .merge(holidays::router())
        .merge(webhooks::router())
}

/// A GB/T 2260 code of one of the city's districts (`GET /v1/districts`). Documentation only:
/// on the wire it is a string; a test keeps the pattern equal to the district data.
#[derive(ToSchema)]
#[schema(pattern = "^4401(03|04|05|06|11|12|13|14|15|17|18)$", example = "440106")]
#[expect(dead_code, reason = "documents the wire type of district codes")]
pub struct DistrictCode(String);

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(example = json!(null))]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn from_paged<U>(paged: Paged<U>, f: impl FnMut(U) -> T) -> Self {
        let next_cursor = paged.next.map(|c| c.encode());
        Self { items: paged.items.into_iter().map(f).collect(), next_cursor }
    }
}

/// `limit` and `cursor` of every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 500.
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn parse(&self) -> Result<PageRequest> {
        PageRequest::parse(self.limit, self.cursor.as_deref())
    }
}

/// `near` and `radius_km` of every distance search.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearParams {
    /// `LAT,LON` in decimal degrees (WGS84): sorts by great-circle distance from this point
    /// and adds `distance_km`.
    #[param(
        example = "23.1291,113.2644",
        pattern = r"^ *-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?) *, *-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?) *$"
    )]
    pub near: Option<String>,
    /// Radius around `near` in km (0 < R ≤ 500); requires `near`.
    #[param(exclusive_minimum = 0, maximum = 500, example = 15.0)]
    pub radius_km: Option<f64>,
}

impl NearParams {
    /// The centre and radius, checked: the radius needs a centre.
    pub fn parse(&self) -> Result<(Option<LatLon>, Option<f64>)> {
        let mut v = Validator::new();
        let center = self.near.as_deref().and_then(|n| v.check("near", LatLon::parse_pair(n)));
        if let Some(r) = self.radius_km {
            if self.near.is_none() {
                v.push("radius_km", "requires near=LAT,LON");
            } else if !(r.is_finite() && r > 0.0 && r <= 500.0) {
                v.push("radius_km", "must be greater than 0 and at most 500");
            }
        }
        v.finish()?;
        Ok((center, self.radius_km))
    }
}

/// A text filter of a query: trimmed; an empty value means "no filter".
pub fn filter_text(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A JSON response with an `ETag` of the stored version.
pub fn with_etag(version: i32, body: impl IntoResponse) -> Response {
    let mut res = body.into_response();
    if let Ok(v) = HeaderValue::from_str(&extract::etag(version)) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// Applies a patch: checks it against the patch type `P` (value types, unknown fields), lays
/// its fields over the current representation (top-level fields replace; `null` clears), and
/// reads the result as a whole `I`, so that a patched resource obeys exactly the rules of a
/// new one.
pub fn apply_patch<P: DeserializeOwned, I: Serialize + DeserializeOwned>(
    current: &I,
    patch: &serde_json::Value,
) -> Result<I> {
    let Some(fields) = patch.as_object() else {
        return Err(AppError::field("body", "must be a JSON object"));
    };
    extract::from_value::<P>(patch.clone())?;
    let mut merged = serde_json::to_value(current).map_err(anyhow::Error::from)?;
    if let Some(obj) = merged.as_object_mut() {
        for (k, v) in fields {
            obj.insert(k.clone(), v.clone());
        }
    }
    extract::from_value(merged)
}
