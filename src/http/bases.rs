//! `/v1/bases`: the registry of bases, with search by place and GeoJSON output.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::bases::{self, BaseData, BaseHit, BaseQuery, BaseRecord, BookingRules};
use crate::domain::enums::{Audience, BaseStatus, Category, Subcategory};
use crate::domain::geo::{LatLon, round_km};
use crate::domain::validate::{self, Validator};
use crate::error::{AppError, Problem, Result};
use crate::http::DistrictCode;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, IfMatch};
use crate::http::{NearParams, Page, PageParams, apply_patch, filter_text, with_etag};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_bases, create_base)).routes(routes!(get_base, update_base))
}

/// How to reach a base.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"phone": "020-3934 8080", "email": "info@gdsc.cn"}))]
pub struct Contact {
    #[schema(max_length = 32)]
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// A base as created (`POST`) and the shape a patch is applied to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name_zh": "广东科学中心",
    "name_en": "Guangdong Science Center",
    "host_org": "广东省科学技术厅",
    "category": "venue",
    "subcategory": "science_venue",
    "district_code": "440113",
    "address": "广州市番禺区小谷围街西环路168号",
    "location": {"lat": 23.0405, "lon": 113.3666},
    "exhibition_area_m2": 65000.0,
    "opening_hours": "Tue–Sun 09:30–17:30",
    "contact": {"phone": "020-3934 8080", "email": "info@gdsc.cn"},
    "themes": ["astronomy", "robotics"],
    "audiences": ["primary_upper", "junior"],
    "accessibility": "step-free entrances, lifts, accessible toilets"
}))]
pub struct BaseInput {
    /// Chinese name, 1–200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name_zh: String,
    /// English name, 1–200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name_en: String,
    /// The host organisation (依托单位).
    #[schema(min_length = 1, max_length = 200)]
    pub host_org: String,
    pub category: Category,
    pub subcategory: Subcategory,
    /// GB/T 2260 code of one of the city's districts.
    #[schema(value_type = DistrictCode)]
    pub district_code: String,
    #[schema(min_length = 1, max_length = 300)]
    pub address: String,
    /// WGS84; must lie inside the city's bounding box.
    pub location: LatLon,
    /// Exhibition area in m², 0 to 10,000,000.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 10000000.0)]
    pub exhibition_area_m2: Option<f64>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub opening_hours: Option<String>,
    #[serde(default)]
    pub contact: Option<Contact>,
    /// Up to 20 themes, compared case-insensitively.
    #[serde(default)]
    #[schema(max_items = 20, max_length = 50)]
    pub themes: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<Audience>,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub accessibility: Option<String>,
    /// Defaults to `applicant`; only an admin sets another status.
    #[serde(default)]
    pub status: Option<BaseStatus>,
    /// Defaults: booking opens 30 days and closes 24 hours before a session, no group limit.
    #[serde(default)]
    pub booking_rules: Option<BookingRules>,
}

impl BaseInput {
    fn of(r: &BaseRecord) -> Self {
        let d = r.data();
        Self {
            name_zh: d.name_zh,
            name_en: d.name_en,
            host_org: d.host_org,
            category: d.category,
            subcategory: d.subcategory,
            district_code: d.district_code,
            address: d.address,
            location: d.location,
            exhibition_area_m2: d.exhibition_area_m2,
            opening_hours: d.opening_hours,
            contact: Some(Contact { phone: d.contact_phone, email: d.contact_email }),
            themes: d.themes,
            audiences: d.audiences,
            accessibility: d.accessibility,
            status: Some(d.status),
            booking_rules: Some(d.booking_rules),
        }
    }

    /// Every rule of a base's profile, each failure naming its field.
    fn parse(self) -> Result<BaseData> {
        let mut v = Validator::new();
        let name_zh = v.text("name_zh", &self.name_zh, 200);
        let name_en = v.text("name_en", &self.name_en, 200);
        let host_org = v.text("host_org", &self.host_org, 200);
        let address = v.text("address", &self.address, 300);
        let location = match LatLon::parse_in_city(self.location.lat, self.location.lon, "location") {
            Ok(l) => Some(l),
            Err(e) => {
                v.extend(e);
                None
            }
        };
        let area = match self.exhibition_area_m2 {
            Some(a) if !a.is_finite() => {
                v.push("exhibition_area_m2", "must be a number");
                None
            }
            Some(a) => v.range("exhibition_area_m2", a, 0.0, 10_000_000.0).map(Some),
            None => Some(None),
        };
        let opening_hours = v.opt_text("opening_hours", self.opening_hours.as_deref(), 500);
        let contact = self.contact.unwrap_or_default();
        let phone = v.check("contact.phone", validate::opt_phone(contact.phone.as_deref()));
        let email = match contact.email.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(e) => v.check("contact.email", validate::email(e)).map(Some),
        };
        let themes = v.list("themes", &self.themes, 20, |t| validate::text(t, 50).map(|t| bases::normalize_theme(&t)));
        let accessibility = v.opt_text("accessibility", self.accessibility.as_deref(), 1000);
        let audiences = validate::unique(self.audiences);
        let booking_rules = self.booking_rules.unwrap_or_default();
        v.extend(booking_rules.check("booking_rules"));
        v.finish()?;
        let missing = || AppError::Internal(anyhow::anyhow!("validated field missing"));
        Ok(BaseData {
            name_zh: name_zh.ok_or_else(missing)?,
            name_en: name_en.ok_or_else(missing)?,
            host_org: host_org.ok_or_else(missing)?,
            category: self.category,
            subcategory: self.subcategory,
            district_code: self.district_code.trim().to_string(),
            address: address.ok_or_else(missing)?,
            location: location.ok_or_else(missing)?,
            exhibition_area_m2: area.ok_or_else(missing)?,
            opening_hours: opening_hours.ok_or_else(missing)?,
            contact_phone: phone.ok_or_else(missing)?,
            contact_email: email.ok_or_else(missing)?,
            themes: themes.ok_or_else(missing)?,
            audiences,
            accessibility: accessibility.ok_or_else(missing)?,
            status: self.status.unwrap_or(BaseStatus::Applicant),
            booking_rules,
        })
    }
}

/// Changes to a base: the fields given replace the current ones; `null` clears an optional
/// field. Requires `If-Match`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"opening_hours": "Tue–Sun 09:00–17:00", "themes": ["astronomy", "space"]}))]
pub struct BasePatch {
    #[schema(nullable = false, min_length = 1, max_length = 200)]
    pub name_zh: Option<String>,
    #[schema(nullable = false, min_length = 1, max_length = 200)]
    pub name_en: Option<String>,
    #[schema(nullable = false, min_length = 1, max_length = 200)]
    pub host_org: Option<String>,
    #[schema(nullable = false)]
    pub category: Option<Category>,
    #[schema(nullable = false)]
    pub subcategory: Option<Subcategory>,
    /// Admin only.
    #[schema(value_type = DistrictCode, nullable = false, required = false)]
    pub district_code: Option<String>,
    #[schema(nullable = false, min_length = 1, max_length = 300)]
    pub address: Option<String>,
    #[schema(nullable = false)]
    pub location: Option<LatLon>,
    #[schema(minimum = 0.0, maximum = 10000000.0)]
    pub exhibition_area_m2: Option<f64>,
    #[schema(max_length = 500)]
    pub opening_hours: Option<String>,
    pub contact: Option<Contact>,
    #[schema(nullable = false, max_items = 20, max_length = 50)]
    pub themes: Option<Vec<String>>,
    #[schema(nullable = false)]
    pub audiences: Option<Vec<Audience>>,
    #[schema(max_length = 1000)]
    pub accessibility: Option<String>,
    /// Admin only.
    #[schema(nullable = false)]
    pub status: Option<BaseStatus>,
    #[schema(nullable = false)]
    pub booking_rules: Option<BookingRules>,
}

/// A base as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BaseView {
    pub id: Uuid,
    #[schema(example = "广东科学中心")]
    pub name_zh: String,
    #[schema(example = "Guangdong Science Center")]
    pub name_en: String,
    pub host_org: String,
    pub category: Category,
    pub subcategory: Subcategory,
    #[schema(value_type = DistrictCode)]
    pub district_code: String,
    pub address: String,
    pub location: LatLon,
    pub exhibition_area_m2: Option<f64>,
    pub opening_hours: Option<String>,
    pub contact: Contact,
    pub themes: Vec<String>,
    pub audiences: Vec<Audience>,
    pub accessibility: Option<String>,
    /// The status now: a lapsed certificate shows as `expired`.
    pub status: BaseStatus,
    pub booking_rules: BookingRules,
    /// The accreditation certificate (`GZKP-<year>-<nnnn>`), once accredited.
    #[schema(example = "GZKP-2026-0042")]
    pub certificate_number: Option<String>,
    /// End of the certificate's validity.
    pub valid_until: Option<DateTime<Utc>>,
    /// While in rectification (整改): the deadline of the re-evaluation.
    pub rectification_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Great-circle distance from `near`, in km (only in `near` searches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

impl BaseView {
    fn of(r: BaseRecord, distance_km: Option<f64>, now: DateTime<Utc>) -> Self {
        let status = bases::effective_status(&r.base, now);
        let booking_rules = BookingRules::of(&r.base);
        let b = r.base;
        Self {
            id: b.id,
            name_zh: b.name_zh,
            name_en: b.name_en,
            host_org: b.host_org,
            category: Category::from_db(&b.category),
            subcategory: Subcategory::from_db(&b.subcategory),
            district_code: b.district_code,
            address: b.address,
            location: LatLon { lat: b.lat, lon: b.lon },
            exhibition_area_m2: b.exhibition_area_m2,
            opening_hours: b.opening_hours,
            contact: Contact { phone: b.contact_phone, email: b.contact_email },
            themes: r.themes,
            audiences: r.audiences,
            accessibility: b.accessibility,
            status,
            booking_rules,
            certificate_number: b.certificate_number,
            valid_until: b.valid_until,
            rectification_until: b.rectification_until,
            created_at: b.created_at,
            updated_at: b.updated_at,
            distance_km: distance_km.map(round_km),
        }
    }
}

/// Output format of a base search.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum ListFormat {
    Json,
    Geojson,
}

/// Filters of `GET /v1/bases`, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BaseSearchParams {
    /// District code.
    #[param(example = "440106")]
    pub district: Option<String>,
    pub category: Option<Category>,
    pub subcategory: Option<Subcategory>,
    /// A theme, case-insensitive.
    pub theme: Option<String>,
    pub audience: Option<Audience>,
    pub status: Option<BaseStatus>,
    /// Text in either name, case-insensitive.
    pub q: Option<String>,
    /// `geojson` answers a GeoJSON FeatureCollection (as does `Accept: application/geo+json`).
    #[param(inline)]
    pub format: Option<ListFormat>,
}

/// A GeoJSON Point geometry (RFC 7946: `[lon, lat]`).
#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the GeoJSON shape; the body is built with the geojson crate")]
pub struct PointGeometry {
    #[schema(example = "Point")]
    r#type: String,
    /// `[longitude, latitude]`.
    #[schema(example = json!([113.3666, 23.0405]))]
    coordinates: Vec<f64>,
}

/// A base as a GeoJSON Feature; its properties are the base without `location`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the GeoJSON shape; the body is built with the geojson crate")]
pub struct BaseFeature {
    #[schema(example = "Feature")]
    r#type: String,
    id: Uuid,
    geometry: PointGeometry,
    properties: serde_json::Value,
}

/// A page of bases as a GeoJSON FeatureCollection (RFC 7946).
#[derive(ToSchema)]
#[expect(dead_code, reason = "documents the GeoJSON shape; the body is built with the geojson crate")]
pub struct BaseFeatureCollection {
    #[schema(example = "FeatureCollection")]
    r#type: String,
    features: Vec<BaseFeature>,
    /// Pass as `cursor` to get the next page.
    next_cursor: Option<String>,
}

fn geojson_page(page: Page<BaseView>) -> Response {
    let features = page.items.iter().map(|b| (b.id, b.location, serde_json::to_value(b).unwrap_or_default())).collect();
    feature_collection(features, page.next_cursor)
}

/// A GeoJSON FeatureCollection (RFC 7946: `[lon, lat]`) of points, each with the item's own
/// fields (but its location) as properties, and the next page's cursor as a foreign member.
pub fn feature_collection(items: Vec<(Uuid, LatLon, serde_json::Value)>, next_cursor: Option<String>) -> Response {
    let features = items
        .into_iter()
        .map(|(id, at, value)| {
            let mut properties = match value {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            properties.remove("location");
            geojson::Feature {
                bbox: None,
                geometry: Some(geojson::Geometry::new_point([at.lon, at.lat])),
                id: Some(geojson::feature::Id::String(id.to_string())),
                properties: Some(properties),
                foreign_members: None,
            }
        })
        .collect();
    let mut members = serde_json::Map::new();
    members.insert("next_cursor".into(), serde_json::to_value(next_cursor).unwrap_or_default());
    let fc = geojson::FeatureCollection { bbox: None, features, foreign_members: Some(members) };
    let body = serde_json::to_vec(&fc).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/geo+json")], body).into_response()
}

/// Search bases
///
/// Public. Filters combine freely; `near` sorts by great-circle distance and cuts at
/// `radius_km`. Answers GeoJSON with `format=geojson` or `Accept: application/geo+json`.
#[utoipa::path(
    get, path = "/v1/bases", tag = "bases", operation_id = "list_bases",
    params(BaseSearchParams, NearParams, PageParams),
    responses(
        (status = 200, description = "A page of bases", content(
            (Page<BaseView> = "application/json"),
            (BaseFeatureCollection = "application/geo+json"),
        )),
    )
)]
async fn list_bases(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<BaseSearchParams>,
    ApiQuery(near): ApiQuery<NearParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Response> {
    let _timer = crate::telemetry::time_search(if near.near.is_some() { "bases_near" } else { "bases_list" });
    let page = paging.parse()?;
    let (near, radius_km) = near.parse()?;
    let wants_geojson = match p.format {
        Some(f) => f == ListFormat::Geojson,
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/geo+json")),
    };
    let query = BaseQuery {
        near,
        radius_km,
        district: filter_text(p.district),
        category: p.category,
        subcategory: p.subcategory,
        theme: filter_text(p.theme),
        audience: p.audience,
        status: p.status,
        q: filter_text(p.q),
    };
    let paged = bases::search(&state.read_db, &query, page, state.now()).await?;
    let page = Page::from_paged(paged, |h: BaseHit| BaseView::of(h.record, h.distance_km, state.now()));
    Ok(if wants_geojson { geojson_page(page) } else { Json(page).into_response() })
}

/// Create a base
///
/// An admin, or a district officer in its own district. The base starts as `applicant`.
#[utoipa::path(
    post, path = "/v1/bases", tag = "bases", operation_id = "create_base",
    request_body = BaseInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; `ETag` carries its version", body = BaseView,
            headers(("ETag" = String, description = "Version of the base"))),
    )
)]
async fn create_base(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiJson(input): ApiJson<BaseInput>,
) -> Result<Response> {
    crate::domain::access::authorize(
        &actor,
        crate::domain::access::Action::CreateBase { district_code: input.district_code.trim() },
    )?;
    let data = input.parse()?;
    let record = bases::create(&state.db, &actor, data, state.now()).await?;
    let version = record.base.version;
    Ok(with_etag(version, (StatusCode::CREATED, Json(BaseView::of(record, None, state.now())))))
}

/// Get a base
///
/// Public. The `ETag` is what `PATCH` needs in `If-Match`.
#[utoipa::path(
    get, path = "/v1/bases/{id}", tag = "bases", operation_id = "get_base",
    params(("id" = Uuid, Path, description = "Base id")),
    responses(
        (status = 200, description = "The base", body = BaseView,
            headers(("ETag" = String, description = "Version of the base"))),
        (status = 404, description = "No such base", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_base(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Response> {
    let record = bases::get(&state.db, id).await?;
    let version = record.base.version;
    Ok(with_etag(version, Json(BaseView::of(record, None, state.now()))))
}

/// Edit a base
///
/// An admin or an operator of the base; only an admin changes `status` or `district_code`.
/// Requires `If-Match` with the current `ETag`.
#[utoipa::path(
    patch, path = "/v1/bases/{id}", tag = "bases", operation_id = "update_base",
    params(
        ("id" = Uuid, Path, description = "Base id"),
        ("If-Match" = String, Header, description = "The ETag last read, e.g. `\"3\"`"),
    ),
    request_body = BasePatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The edited base", body = BaseView,
            headers(("ETag" = String, description = "New version of the base"))),
        (status = 404, description = "No such base", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The base changed since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "`If-Match` is missing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_base(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<serde_json::Value>,
) -> Result<Response> {
    let precondition = if_match.required()?;
    let record = bases::update(
        &state.db,
        &actor,
        id,
        precondition,
        |current| apply_patch::<BasePatch, _>(&BaseInput::of(current), &patch)?.parse(),
        state.now(),
    )
    .await?;
    let version = record.base.version;
    Ok(with_etag(version, Json(BaseView::of(record, None, state.now()))))
}
