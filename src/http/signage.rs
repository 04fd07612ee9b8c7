//! Signage: `/v1/signage-standards`, `/v1/bases/{id}/signs`, `/v1/signs`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use entity::{maintenance_item, sign, sign_inspection};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::access;
use crate::domain::enums::{SignCondition, SignKind, SignStatus};
use crate::domain::geo::{LatLon, round_km};
use crate::domain::signage::{self, Inspection, SignApplication, SignQuery, SignRecord, SignType, SignageStandard};
use crate::error::{Problem, Result};
use crate::http::bases::ListFormat;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, MaybeAuthUser};
use crate::http::{DistrictCode, NearParams, Page, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_signage_standards, publish_signage_standard))
        .routes(routes!(create_sign))
        .routes(routes!(list_signs))
        .routes(routes!(get_sign))
        .routes(routes!(approve_sign))
        .routes(routes!(reject_sign))
        .routes(routes!(install_sign))
        .routes(routes!(inspect_sign))
        .routes(routes!(close_maintenance))
        .routes(routes!(replace_sign))
        .routes(routes!(remove_sign))
}

/// List signage standards
///
/// Public. Every version, oldest first; new signs follow the latest.
#[utoipa::path(
    get, path = "/v1/signage-standards", tag = "signage", operation_id = "list_signage_standards",
    params(PageParams),
    responses((status = 200, description = "A page of versions", body = Page<SignageStandard>))
)]
async fn list_signage_standards(
    State(state): State<AppState>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<SignageStandard>>> {
    Ok(Json(Page::from_paged(signage::standards(&state.db, paging.parse()?).await?, |s| s)))
}

/// A new version of the signage standard.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSignageStandard {
    #[schema(example = "2027", max_length = 40)]
    pub version: String,
    #[schema(min_items = 1)]
    pub sign_types: Vec<SignType>,
}

/// What publishing did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    pub standard: SignageStandard,
    /// Installed signs of older versions, now `update_due`.
    pub signs_update_due: usize,
}

/// Publish a signage standard
///
/// Admin only. Every installed sign of an older version becomes `update_due`.
#[utoipa::path(
    post, path = "/v1/signage-standards", tag = "signage", operation_id = "publish_signage_standard",
    request_body = NewSignageStandard,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Published", body = Published),
        (status = 409, description = "The version exists", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn publish_signage_standard(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiJson(b): ApiJson<NewSignageStandard>,
) -> Result<(StatusCode, Json<Published>)> {
    let (standard, n) = signage::publish(&state.db, &actor, b.version, b.sign_types, state.now()).await?;
    Ok((StatusCode::CREATED, Json(Published { standard, signs_update_due: n })))
}

/// An inspection.
#[derive(Debug, Serialize, ToSchema)]
pub struct InspectionView {
    pub id: Uuid,
    /// The inspector's account: shown to the bureau, district officers and operators; `null`
    /// for the public and schools (public answers carry no account ids).
    pub inspector_id: Option<Uuid>,
    pub condition: SignCondition,
    pub photo_url: Option<String>,
    pub notes: Option<String>,
    pub inspected_at: DateTime<Utc>,
    pub next_due: DateTime<Utc>,
}

/// Repair work on a sign.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenanceView {
    pub id: Uuid,
    pub inspection_id: Uuid,
    /// `open` or `closed`.
    #[schema(example = "open")]
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

/// A sign.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignView {
    pub id: Uuid,
    pub base_id: Uuid,
    pub standard_id: Uuid,
    #[serde(rename = "type")]
    pub kind: SignKind,
    pub location: LatLon,
    pub road_name: Option<String>,
    pub status: SignStatus,
    pub traffic_police_ref: Option<String>,
    pub comment: Option<String>,
    pub installed_at: Option<DateTime<Utc>>,
    pub last_inspected_at: Option<DateTime<Utc>>,
    pub next_inspection_due: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Inspections, newest first (on a single sign).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspections: Option<Vec<InspectionView>>,
    /// Maintenance items, newest first (on a single sign).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Vec<MaintenanceView>>,
    /// Distance from `near`, in km.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
    /// The base's names (in lists, so that a list needs no lookup per sign).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_name_zh: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_name_en: Option<String>,
}

impl SignView {
    fn of(s: sign::Model, distance_km: Option<f64>) -> Self {
        Self {
            id: s.id,
            base_id: s.base_id,
            standard_id: s.standard_id,
            kind: SignKind::from_db(&s.kind),
            location: LatLon { lat: s.lat, lon: s.lon },
            road_name: s.road_name,
            status: SignStatus::from_db(&s.status),
            traffic_police_ref: s.traffic_police_ref,
            comment: s.comment,
            installed_at: s.installed_at,
            last_inspected_at: s.last_inspected_at,
            next_inspection_due: s.next_inspection_due,
            created_at: s.created_at,
            updated_at: s.updated_at,
            inspections: None,
            maintenance: None,
            distance_km: distance_km.map(round_km),
            base_name_zh: None,
            base_name_en: None,
        }
    }

    /// The sign with its inspections and maintenance; the inspectors' accounts only when
    /// `staff_shown` ([`access::sees_staff_accounts`]).
    fn full(r: SignRecord, staff_shown: bool) -> Self {
        let inspection = |i: sign_inspection::Model| InspectionView {
            id: i.id,
            inspector_id: staff_shown.then_some(i.inspector_id),
            condition: SignCondition::from_db(&i.condition),
            photo_url: i.photo_url,
            notes: i.notes,
            inspected_at: i.inspected_at,
            next_due: i.next_due,
        };
        let item = |m: maintenance_item::Model| MaintenanceView {
            id: m.id,
            inspection_id: m.inspection_id,
            status: m.status,
            opened_at: m.opened_at,
            closed_at: m.closed_at,
            note: m.note,
        };
        Self {
            inspections: Some(r.inspections.into_iter().map(inspection).collect()),
            maintenance: Some(r.maintenance.into_iter().map(item).collect()),
            ..Self::of(r.sign, None)
        }
    }
}

/// An installation application (报装).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "road_guide", "location": {"lat": 23.0450, "lon": 113.3700}, "road_name": "大学城中环西路"}))]
pub struct NewSign {
    #[serde(rename = "type")]
    pub kind: SignKind,
    /// Where it will stand: within the type's distance of the base.
    pub location: LatLon,
    /// The road, for a road guide sign.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub road_name: Option<String>,
    /// The standard it follows; default the latest.
    #[serde(default)]
    pub standard_version: Option<String>,
}

/// Apply for a sign
///
/// The base's operators. The location is checked against the type's placement rule: 422
/// `sign-placement` says the distance found and allowed.
#[utoipa::path(
    post, path = "/v1/bases/{id}/signs", tag = "signage", operation_id = "create_sign",
    params(("id" = Uuid, Path, description = "Base id")),
    request_body = NewSign,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Requested", body = SignView),
        (status = 404, description = "No such base", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_sign(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(base_id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<NewSign>,
) -> Result<(StatusCode, Json<SignView>)> {
    let a = SignApplication {
        kind: b.kind,
        location: b.location,
        road_name: b.road_name,
        standard_version: b.standard_version,
    };
    let r = signage::apply(&state.db, &actor, base_id, a, state.now()).await?;
    Ok((StatusCode::CREATED, Json(SignView::full(r, access::sees_staff_accounts(Some(&actor))))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignSearchParams {
    #[param(value_type = Option<DistrictCode>)]
    pub district: Option<String>,
    pub base_id: Option<Uuid>,
    pub status: Option<SignStatus>,
    /// Sign type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<SignKind>,
    /// Signs whose next inspection is due before this time.
    #[param(pattern = "^2[0-9]{3}-")]
    pub inspection_due_before: Option<DateTime<Utc>>,
    /// `geojson` answers a GeoJSON FeatureCollection (as does `Accept: application/geo+json`).
    #[param(inline)]
    pub format: Option<ListFormat>,
}

/// List signs
///
/// Public: the district office's work list (`district`, `status`, `inspection_due_before`) and
/// a map layer (`format=geojson`).
#[utoipa::path(
    get, path = "/v1/signs", tag = "signage", operation_id = "list_signs",
    params(SignSearchParams, NearParams, PageParams),
    responses((status = 200, description = "A page of signs", content(
        (Page<SignView> = "application/json"),
        (crate::http::bases::BaseFeatureCollection = "application/geo+json"),
    )))
)]
async fn list_signs(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<SignSearchParams>,
    ApiQuery(near): ApiQuery<NearParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Response> {
    let page = paging.parse()?;
    let (near, radius_km) = near.parse()?;
    let q = SignQuery {
        district: p.district,
        base_id: p.base_id,
        status: p.status,
        kind: p.kind,
        inspection_due_before: p.inspection_due_before,
        near,
        radius_km,
    };
    let paged = signage::search(&state.read_db, &q, page).await?;
    let names = crate::domain::bases::both_names(&state.read_db, paged.items.iter().map(|(s, _)| s.base_id)).await?;
    let page = Page::from_paged(paged, |(s, d)| {
        let (zh, en) = names.get(&s.base_id).cloned().unzip();
        SignView { base_name_zh: zh, base_name_en: en, ..SignView::of(s, d) }
    });
    let geo = match p.format {
        Some(f) => f == ListFormat::Geojson,
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/geo+json")),
    };
    if !geo {
        return Ok(Json(page).into_response());
    }
    let features = page.items.iter().map(|s| (s.id, s.location, serde_json::to_value(s).unwrap_or_default())).collect();
    Ok(crate::http::bases::feature_collection(features, page.next_cursor))
}

/// Get a sign
///
/// Public, with its inspections and maintenance.
#[utoipa::path(
    get, path = "/v1/signs/{id}", tag = "signage", operation_id = "get_sign",
    params(("id" = Uuid, Path, description = "Sign id")),
    responses(
        (status = 200, description = "The sign", body = SignView),
        (status = 404, description = "No such sign", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_sign(
    State(state): State<AppState>,
    MaybeAuthUser(actor): MaybeAuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SignView>> {
    let staff_shown = access::sees_staff_accounts(actor.as_ref());
    Ok(Json(SignView::full(signage::get(&state.db, id).await?, staff_shown)))
}

/// Approving an application.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"traffic_police_ref": "穗交警设〔2026〕118号"}))]
pub struct ApproveBody {
    /// Required for a road guide sign: the traffic police's approval reference.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub traffic_police_ref: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
}

/// Approve a sign
///
/// The district officer of the base's district, on a `requested` sign.
#[utoipa::path(
    post, path = "/v1/signs/{id}/approve", tag = "signage", operation_id = "approve_sign",
    params(("id" = Uuid, Path, description = "Sign id")),
    request_body = ApproveBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Approved", body = SignView),
        (status = 404, description = "No such sign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn approve_sign(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<ApproveBody>,
) -> Result<Json<SignView>> {
    let r = signage::decide(&state.db, &actor, id, true, b.traffic_police_ref, b.comment, state.now()).await?;
    Ok(Json(SignView::full(r, access::sees_staff_accounts(Some(&actor)))))
}

/// Rejecting an application.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"comment": "blocks the pedestrian crossing"}))]
pub struct RejectBody {
    #[schema(min_length = 1, max_length = 2000)]
    pub comment: String,
}

/// Reject a sign
///
/// The district officer of the base's district, on a `requested` sign.
#[utoipa::path(
    post, path = "/v1/signs/{id}/reject", tag = "signage", operation_id = "reject_sign",
    params(("id" = Uuid, Path, description = "Sign id")),
    request_body = RejectBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rejected", body = SignView),
        (status = 404, description = "No such sign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn reject_sign(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<RejectBody>,
) -> Result<Json<SignView>> {
    Ok(Json(SignView::full(
        signage::decide(&state.db, &actor, id, false, None, Some(b.comment), state.now()).await?,
        access::sees_staff_accounts(Some(&actor)),
    )))
}

/// Report a sign installed
///
/// The base's operators, on an `approved` sign; its first inspection is due in a year.
#[utoipa::path(
    post, path = "/v1/signs/{id}/install", tag = "signage", operation_id = "install_sign",
    params(("id" = Uuid, Path, description = "Sign id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Installed", body = SignView),
        (status = 404, description = "No such sign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn install_sign(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SignView>> {
    Ok(Json(SignView::full(
        signage::install(&state.db, &actor, id, state.now()).await?,
        access::sees_staff_accounts(Some(&actor)),
    )))
}

/// An inspection's findings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"condition": "damaged", "photo_url": "https://photos.example.cn/sign-118.jpg", "notes": "corner bent"}))]
pub struct InspectionBody {
    pub condition: SignCondition,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub photo_url: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
    /// The next inspection; default in one year.
    #[serde(default)]
    #[schema(pattern = "^2[0-9]{3}-")]
    pub next_due: Option<DateTime<Utc>>,
}

/// Inspect a sign
///
/// The district officer of the base's district. `damaged` or `missing` opens a maintenance
/// item that the base closes.
#[utoipa::path(
    post, path = "/v1/signs/{id}/inspections", tag = "signage", operation_id = "inspect_sign",
    params(("id" = Uuid, Path, description = "Sign id")),
    request_body = InspectionBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded", body = SignView),
        (status = 404, description = "No such sign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: not standing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn inspect_sign(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<InspectionBody>,
) -> Result<(StatusCode, Json<SignView>)> {
    let i = Inspection { condition: b.condition, photo_url: b.photo_url, notes: b.notes, next_due: b.next_due };
    Ok((
        StatusCode::CREATED,
        Json(SignView::full(
            signage::inspect(&state.db, &actor, id, i, state.now()).await?,
            access::sees_staff_accounts(Some(&actor)),
        )),
    ))
}

/// Closing a maintenance item.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"note": "panel replaced on 2 December"}))]
pub struct CloseBody {
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

/// Close a maintenance item
///
/// The base's operators, once the sign is repaired.
#[utoipa::path(
    post, path = "/v1/signs/{id}/maintenance/{item_id}/close", tag = "signage", operation_id = "close_maintenance",
    params(("id" = Uuid, Path, description = "Sign id"), ("item_id" = Uuid, Path, description = "Maintenance item id")),
    request_body = CloseBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Closed", body = SignView),
        (status = 404, description = "No such sign or item", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn close_maintenance(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath((id, item_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(b): ApiJson<CloseBody>,
) -> Result<Json<SignView>> {
    Ok(Json(SignView::full(
        signage::close_maintenance(&state.db, &actor, id, item_id, b.note, state.now()).await?,
        access::sees_staff_accounts(Some(&actor)),
    )))
}

/// Report a sign replaced
///
/// The base's operators (or the district), on an `update_due` sign; its successor is a new
/// application.
#[utoipa::path(
    post, path = "/v1/signs/{id}/replace", tag = "signage", operation_id = "replace_sign",
    params(("id" = Uuid, Path, description = "Sign id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = SignView),
        (status = 404, description = "No such sign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn replace_sign(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SignView>> {
    Ok(Json(SignView::full(
        signage::retire(&state.db, &actor, id, true, state.now()).await?,
        access::sees_staff_accounts(Some(&actor)),
    )))
}

/// Report a sign removed
///
/// The base's operators or the district, on a standing sign (e.g. `removal_due` after a
/// revocation).
#[utoipa::path(
    post, path = "/v1/signs/{id}/remove", tag = "signage", operation_id = "remove_sign",
    params(("id" = Uuid, Path, description = "Sign id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Removed", body = SignView),
        (status = 404, description = "No such sign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn remove_sign(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SignView>> {
    Ok(Json(SignView::full(
        signage::retire(&state.db, &actor, id, false, state.now()).await?,
        access::sees_staff_accounts(Some(&actor)),
    )))
}
