//! Public disclosure (信息公开), no login: `/v1/public-notices`, `/v1/certificates`,
//! `/v1/evaluation-cycles/{id}/results`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use entity::base;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::accreditation::Certificate;
use crate::domain::disclosure::{self, CycleResult, Notice};
use crate::domain::enums::{Category, Grade, Subcategory};
use crate::domain::geo::LatLon;
use crate::error::{Problem, Result};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::{DistrictCode, Page, PageParams, filter_text};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_public_notices))
        .routes(routes!(list_certificates))
        .routes(routes!(list_cycle_results))
}

/// A base as the public reads it in what is disclosed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicBase {
    pub id: Uuid,
    pub name_zh: String,
    pub name_en: String,
    pub host_org: String,
    pub category: Category,
    pub subcategory: Subcategory,
    #[schema(value_type = DistrictCode)]
    pub district_code: String,
    pub address: String,
    pub location: LatLon,
}

impl PublicBase {
    fn of(b: base::Model) -> Self {
        Self {
            category: Category::from_db(&b.category),
            subcategory: Subcategory::from_db(&b.subcategory),
            location: LatLon { lat: b.lat, lon: b.lon },
            id: b.id,
            name_zh: b.name_zh,
            name_en: b.name_en,
            host_org: b.host_org,
            district_code: b.district_code,
            address: b.address,
        }
    }
}

/// An application for accreditation on public notice, and how to object to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicNotice {
    pub accreditation_id: Uuid,
    /// The base applying, and what for (its category and subcategory).
    pub base: PublicBase,
    /// The accreditation standard applied under.
    #[schema(example = "2026")]
    pub standard_version: String,
    pub notice_starts_at: Option<DateTime<Utc>>,
    pub notice_ends_at: Option<DateTime<Utc>>,
    /// Objections are taken until `notice_ends_at`.
    pub open_for_objections: bool,
    /// Where anyone, without signing in, files an objection (`POST`, with a reason).
    #[schema(example = "/v1/accreditations/0193a5d2-7c1e-7a3b-9f00-6b5a4f3e2d1c/objections")]
    pub object_at: String,
}

impl PublicNotice {
    fn of(n: Notice) -> Self {
        Self {
            object_at: format!("/v1/accreditations/{}/objections", n.accreditation_id),
            accreditation_id: n.accreditation_id,
            base: PublicBase::of(n.base),
            standard_version: n.standard_version,
            notice_starts_at: n.notice_starts_at,
            notice_ends_at: n.notice_ends_at,
            open_for_objections: n.open_for_objections,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DistrictParams {
    /// One district's (a GB/T 2260 code).
    pub district: Option<String>,
}

/// Applications on public notice
///
/// Public, no login: every accreditation application now on public notice (公示), with the
/// base, what it applied for, the notice's dates and where to object. By id.
#[utoipa::path(
    get, path = "/v1/public-notices", tag = "accreditation", operation_id = "list_public_notices",
    params(DistrictParams, PageParams),
    responses((status = 200, description = "A page of notices", body = Page<PublicNotice>))
)]
async fn list_public_notices(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<DistrictParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<PublicNotice>>> {
    let district = filter_text(p.district);
    let paged = disclosure::notices(&state.read_db, district.as_deref(), paging.parse()?, state.now()).await?;
    Ok(Json(Page::from_paged(paged, PublicNotice::of)))
}

/// Valid certificates
///
/// Public, no login: the certificates valid now (their bases accredited or in rectification,
/// not lapsed), by base; each can be checked with `GET /v1/certificates/{number}`.
#[utoipa::path(
    get, path = "/v1/certificates", tag = "accreditation", operation_id = "list_certificates",
    params(DistrictParams, PageParams),
    responses((status = 200, description = "A page of certificates", body = Page<Certificate>))
)]
async fn list_certificates(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<DistrictParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<Certificate>>> {
    let district = filter_text(p.district);
    let paged = disclosure::certificates(&state.read_db, district.as_deref(), paging.parse()?, state.now()).await?;
    Ok(Json(Page::from_paged(paged, |c| c)))
}

/// A base's final result in an evaluation cycle.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicResult {
    pub evaluation_id: Uuid,
    pub base: PublicBase,
    /// `annual`, or `re_evaluation` after a rectification.
    #[schema(example = "annual")]
    pub kind: String,
    #[schema(example = 86.5)]
    pub score: Option<f64>,
    pub grade: Option<Grade>,
    pub finalized_at: Option<DateTime<Utc>>,
}

/// A finalised cycle's results
///
/// Public, no login: the final score and grade of every base evaluated in the cycle, also of
/// bases revoked since. By evaluation id.
#[utoipa::path(
    get, path = "/v1/evaluation-cycles/{id}/results", tag = "evaluation", operation_id = "list_cycle_results",
    params(("id" = Uuid, Path, description = "Cycle id"), PageParams),
    responses(
        (status = 200, description = "A page of results", body = Page<PublicResult>),
        (status = 404, description = "No such cycle", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_cycle_results(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<PublicResult>>> {
    let paged = disclosure::results(&state.read_db, id, paging.parse()?).await?;
    Ok(Json(Page::from_paged(paged, |r: CycleResult| PublicResult {
        evaluation_id: r.evaluation_id,
        base: PublicBase::of(r.base),
        kind: r.kind,
        score: r.score,
        grade: r.grade.as_deref().map(Grade::from_db),
        finalized_at: r.finalized_at,
    })))
}
