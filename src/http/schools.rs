//! `/v1/schools`: the schools that book visits.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use entity::school;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::access::{Action, authorize};
use crate::domain::enums::SchoolKind;
use crate::domain::geo::{LatLon, round_km};
use crate::domain::schools::{self, SchoolData, SchoolQuery};
use crate::domain::validate::Validator;
use crate::error::{AppError, Problem, Result};
use crate::http::DistrictCode;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, IfMatch};
use crate::http::{NearParams, Page, PageParams, apply_patch, filter_text, with_etag};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_schools, create_school)).routes(routes!(get_school, update_school))
}

/// A school as created, and the shape a patch is applied to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "广州市天河区华阳小学",
    "district_code": "440106",
    "address": "广州市天河区华阳街1号",
    "location": {"lat": 23.1402, "lon": 113.3325},
    "kind": "primary",
    "student_count": 1800
}))]
pub struct SchoolInput {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(value_type = DistrictCode)]
    pub district_code: String,
    #[schema(min_length = 1, max_length = 300)]
    pub address: String,
    /// WGS84; must lie inside the city's bounding box.
    pub location: LatLon,
    pub kind: SchoolKind,
    /// 0 to 100,000.
    #[schema(minimum = 0, maximum = 100000)]
    pub student_count: i32,
}

impl SchoolInput {
    fn of(m: &school::Model) -> Self {
        let d = SchoolData::of(m);
        Self {
            name: d.name,
            district_code: d.district_code,
            address: d.address,
            location: d.location,
            kind: d.kind,
            student_count: d.student_count,
        }
    }

    fn parse(self) -> Result<SchoolData> {
        let mut v = Validator::new();
        let name = v.text("name", &self.name, 200);
        let address = v.text("address", &self.address, 300);
        let location = match LatLon::parse_in_city(self.location.lat, self.location.lon, "location") {
            Ok(l) => Some(l),
            Err(e) => {
                v.extend(e);
                None
            }
        };
        let students = v.range("student_count", self.student_count, 0, 100_000);
        v.finish()?;
        let missing = || AppError::Internal(anyhow::anyhow!("validated field missing"));
        Ok(SchoolData {
            name: name.ok_or_else(missing)?,
            district_code: self.district_code.trim().to_string(),
            address: address.ok_or_else(missing)?,
            location: location.ok_or_else(missing)?,
            kind: self.kind,
            student_count: students.ok_or_else(missing)?,
        })
    }
}

/// Changes to a school: given fields replace the current ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"student_count": 1850}))]
pub struct SchoolPatch {
    #[schema(nullable = false, min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(value_type = DistrictCode, nullable = false, required = false)]
    pub district_code: Option<String>,
    #[schema(nullable = false, min_length = 1, max_length = 300)]
    pub address: Option<String>,
    #[schema(nullable = false)]
    pub location: Option<LatLon>,
    #[schema(nullable = false)]
    pub kind: Option<SchoolKind>,
    #[schema(nullable = false, minimum = 0, maximum = 100000)]
    pub student_count: Option<i32>,
}

/// A school as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchoolView {
    pub id: Uuid,
    #[schema(example = "广州市天河区华阳小学")]
    pub name: String,
    #[schema(value_type = DistrictCode)]
    pub district_code: String,
    pub address: String,
    pub location: LatLon,
    pub kind: SchoolKind,
    pub student_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Distance from `near`, in km (only in `near` searches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

impl SchoolView {
    fn of(m: school::Model, distance_km: Option<f64>) -> Self {
        Self {
            id: m.id,
            kind: SchoolKind::from_db(&m.kind),
            location: LatLon { lat: m.lat, lon: m.lon },
            name: m.name,
            district_code: m.district_code,
            address: m.address,
            student_count: m.student_count,
            created_at: m.created_at,
            updated_at: m.updated_at,
            distance_km: distance_km.map(round_km),
        }
    }
}

/// Filters of `GET /v1/schools`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SchoolSearchParams {
    /// District code.
    pub district: Option<String>,
    pub kind: Option<SchoolKind>,
    /// Text in the name.
    pub q: Option<String>,
}

/// Search schools
///
/// Any signed-in account.
#[utoipa::path(
    get, path = "/v1/schools", tag = "schools", operation_id = "list_schools",
    params(SchoolSearchParams, NearParams, PageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of schools", body = Page<SchoolView>))
)]
async fn list_schools(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiQuery(p): ApiQuery<SchoolSearchParams>,
    ApiQuery(near): ApiQuery<NearParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<SchoolView>>> {
    let page = paging.parse()?;
    let (near, radius_km) = near.parse()?;
    let query = SchoolQuery { near, radius_km, district: filter_text(p.district), kind: p.kind, q: filter_text(p.q) };
    let paged = schools::search(&state.read_db, &actor, &query, page).await?;
    Ok(Json(Page::from_paged(paged, |(s, d)| SchoolView::of(s, d))))
}

/// Register a school
///
/// Admin only.
#[utoipa::path(
    post, path = "/v1/schools", tag = "schools", operation_id = "create_school",
    request_body = SchoolInput,
    security(("bearer" = [])),
    responses((status = 201, description = "Created", body = SchoolView,
        headers(("ETag" = String, description = "Version of the school"))))
)]
async fn create_school(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiJson(input): ApiJson<SchoolInput>,
) -> Result<Response> {
    authorize(&actor, Action::CreateSchool)?;
    let m = schools::create(&state.db, &actor, input.parse()?, state.now()).await?;
    Ok(with_etag(m.version, (StatusCode::CREATED, Json(SchoolView::of(m, None)))))
}

/// Get a school
///
/// Any signed-in account.
#[utoipa::path(
    get, path = "/v1/schools/{id}", tag = "schools", operation_id = "get_school",
    params(("id" = Uuid, Path, description = "School id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The school", body = SchoolView,
            headers(("ETag" = String, description = "Version of the school"))),
        (status = 404, description = "No such school", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_school(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response> {
    authorize(&actor, Action::ReadSchools)?;
    let m = schools::get(&state.db, id).await?;
    Ok(with_etag(m.version, Json(SchoolView::of(m, None))))
}

/// Edit a school
///
/// An admin, or that school's own account, all but its district: district statistics and
/// fairness weights rest on it, so `district_code` is changed by an admin or the officer of
/// the school's district only (403 for the school). Requires `If-Match`.
#[utoipa::path(
    patch, path = "/v1/schools/{id}", tag = "schools", operation_id = "update_school",
    params(
        ("id" = Uuid, Path, description = "School id"),
        ("If-Match" = String, Header, description = "The ETag last read"),
    ),
    request_body = SchoolPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The edited school", body = SchoolView,
            headers(("ETag" = String, description = "New version of the school"))),
        (status = 404, description = "No such school", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The school changed since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "`If-Match` is missing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_school(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<serde_json::Value>,
) -> Result<Response> {
    let precondition = if_match.required()?;
    let m = schools::update(
        &state.db,
        &actor,
        id,
        precondition,
        |current| apply_patch::<SchoolPatch, _>(&SchoolInput::of(current), &patch)?.parse(),
        state.now(),
    )
    .await?;
    Ok(with_etag(m.version, Json(SchoolView::of(m, None))))
}
