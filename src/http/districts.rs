//! `/v1/districts`: the city's districts (reference data).

use axum::Json;
use axum::extract::State;
use entity::district;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::domain::districts;
use crate::domain::geo::LatLon;
use crate::error::{Problem, Result};
use crate::http::extract::ApiPath;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_districts)).routes(routes!(get_district))
}

/// A district of the city.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"code": "440106", "name_zh": "天河区", "name_en": "Tianhe", "seat": {"lat": 23.1382, "lon": 113.3299}}))]
pub struct DistrictView {
    /// GB/T 2260 code.
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// The district government seat (WGS84).
    pub seat: LatLon,
}

impl DistrictView {
    fn of(d: district::Model) -> Self {
        Self { code: d.code, name_zh: d.name_zh, name_en: d.name_en, seat: LatLon { lat: d.lat, lon: d.lon } }
    }
}

/// The districts' list.
#[derive(Debug, Serialize, ToSchema)]
pub struct DistrictList {
    pub items: Vec<DistrictView>,
}

/// List districts
///
/// Public. The 11 districts of Guangzhou.
#[utoipa::path(
    get, path = "/v1/districts", tag = "districts", operation_id = "list_districts",
    responses((status = 200, description = "All districts", body = DistrictList))
)]
async fn list_districts(State(state): State<AppState>) -> Result<Json<DistrictList>> {
    let items = districts::list(&state.db).await?.into_iter().map(DistrictView::of).collect();
    Ok(Json(DistrictList { items }))
}

/// Get a district
///
/// Public.
#[utoipa::path(
    get, path = "/v1/districts/{code}", tag = "districts", operation_id = "get_district",
    params(("code" = String, Path, description = "GB/T 2260 code", example = "440106")),
    responses(
        (status = 200, description = "The district", body = DistrictView),
        (status = 404, description = "No such district", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_district(State(state): State<AppState>, ApiPath(code): ApiPath<String>) -> Result<Json<DistrictView>> {
    Ok(Json(DistrictView::of(districts::get(&state.db, &code).await?)))
}
