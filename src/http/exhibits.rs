//! Exhibits: `/v1/bases/{id}/exhibits` and `/v1/exhibits/{id}`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use entity::exhibit;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::access::{Action, authorize};
use crate::domain::enums::{Audience, ExhibitKind, ExhibitStatus};
use crate::domain::exhibits::{self, ExhibitData, ExhibitQuery, ExhibitRecord, audiences_of};
use crate::domain::geo::round_km;
use crate::domain::validate::Validator;
use crate::error::{AppError, Problem, Result};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, IfMatch};
use crate::http::{NearParams, Page, PageParams, apply_patch, filter_text, with_etag};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_exhibits, create_exhibit))
        .routes(routes!(get_exhibit, update_exhibit, delete_exhibit))
        .routes(routes!(search_exhibits))
}

/// An exhibit as created, and the shape a patch is applied to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "傅科摆 Foucault pendulum",
    "description": "A 20 m pendulum that shows the Earth's rotation.",
    "hall": "Hall A",
    "kind": "interactive",
    "status": "on_display",
    "shareable": false,
    "audiences": ["primary_upper", "junior", "senior"]
}))]
pub struct ExhibitInput {
    /// 1–200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub hall: Option<String>,
    pub kind: ExhibitKind,
    /// Defaults to `on_display`.
    #[serde(default)]
    pub status: Option<ExhibitStatus>,
    /// Whether other bases may borrow it (展品共享). Defaults to false.
    #[serde(default)]
    pub shareable: Option<bool>,
    #[serde(default)]
    pub audiences: Vec<Audience>,
}

impl ExhibitInput {
    fn of(m: &exhibit::Model) -> Self {
        let d = ExhibitData::of(m);
        Self {
            name: d.name,
            description: d.description,
            hall: d.hall,
            kind: d.kind,
            status: Some(d.status),
            shareable: Some(d.shareable),
            audiences: d.audiences,
        }
    }

    fn parse(self) -> Result<ExhibitData> {
        let mut v = Validator::new();
        let name = v.text("name", &self.name, 200);
        let description = v.opt_text("description", self.description.as_deref(), 5000);
        let hall = v.opt_text("hall", self.hall.as_deref(), 100);
        v.finish()?;
        let missing = || AppError::Internal(anyhow::anyhow!("validated field missing"));
        let audiences = crate::domain::validate::unique(self.audiences);
        Ok(ExhibitData {
            name: name.ok_or_else(missing)?,
            description: description.ok_or_else(missing)?,
            hall: hall.ok_or_else(missing)?,
            kind: self.kind,
            status: self.status.unwrap_or(ExhibitStatus::OnDisplay),
            shareable: self.shareable.unwrap_or(false),
            audiences,
        })
    }
}

/// Changes to an exhibit: given fields replace; `null` clears an optional one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "maintenance"}))]
pub struct ExhibitPatch {
    #[schema(nullable = false, min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[schema(max_length = 100)]
    pub hall: Option<String>,
    #[schema(nullable = false)]
    pub kind: Option<ExhibitKind>,
    #[schema(nullable = false)]
    pub status: Option<ExhibitStatus>,
    #[schema(nullable = false)]
    pub shareable: Option<bool>,
    #[schema(nullable = false)]
    pub audiences: Option<Vec<Audience>>,
}

/// An exhibit as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExhibitView {
    pub id: Uuid,
    pub base_id: Uuid,
    #[schema(example = "傅科摆 Foucault pendulum")]
    pub name: String,
    pub description: Option<String>,
    pub hall: Option<String>,
    pub kind: ExhibitKind,
    pub status: ExhibitStatus,
    pub shareable: bool,
    pub audiences: Vec<Audience>,
    /// Present while the exhibit is out on loan (`status` `on_loan`): in the borrower's list
    /// it reads "on loan from `owner_base_name`"; `base_id` stays the owner's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_loan: Option<OnLoanView>,
    /// Distance from `near` to the exhibit's base, in km (only in `near` searches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The loan an exhibit is out on.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnLoanView {
    pub loan_id: Uuid,
    pub owner_base_id: Uuid,
    #[schema(example = "广东科学中心")]
    pub owner_base_name: String,
    pub borrower_base_id: Uuid,
    #[schema(example = "广州市第二少年宫")]
    pub borrower_base_name: String,
    /// The last day of the loan.
    pub ends_on: NaiveDate,
}

impl ExhibitView {
    pub fn of(r: ExhibitRecord) -> Self {
        let m = r.exhibit;
        Self {
            on_loan: r.on_loan.map(|l| OnLoanView {
                loan_id: l.loan_id,
                owner_base_id: l.owner_base_id,
                owner_base_name: l.owner_base_name,
                borrower_base_id: l.borrower_base_id,
                borrower_base_name: l.borrower_base_name,
                ends_on: l.ends_on,
            }),
            distance_km: r.distance_km.map(round_km),
            audiences: audiences_of(&m),
            id: m.id,
            base_id: m.base_id,
            kind: ExhibitKind::from_db(&m.kind),
            status: ExhibitStatus::from_db(&m.status),
            name: m.name,
            description: m.description,
            hall: m.hall,
            shareable: m.shareable,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// List a base's exhibits
///
/// Public. Its own exhibits, and those out on loan to it (with `on_loan`), by id.
#[utoipa::path(
    get, path = "/v1/bases/{id}/exhibits", tag = "exhibits", operation_id = "list_exhibits",
    params(("id" = Uuid, Path, description = "Base id"), PageParams),
    responses(
        (status = 200, description = "A page of exhibits", body = Page<ExhibitView>),
        (status = 404, description = "No such base", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_exhibits(
    State(state): State<AppState>,
    ApiPath(base_id): ApiPath<Uuid>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> Result<Json<Page<ExhibitView>>> {
    let paged = exhibits::list(&state.db, base_id, p.parse()?).await?;
    Ok(Json(Page::from_paged(paged, ExhibitView::of)))
}

/// Add an exhibit to a base
///
/// An operator of the base, or an admin.
#[utoipa::path(
    post, path = "/v1/bases/{id}/exhibits", tag = "exhibits", operation_id = "create_exhibit",
    params(("id" = Uuid, Path, description = "Base id")),
    request_body = ExhibitInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = ExhibitView,
            headers(("ETag" = String, description = "Version of the exhibit"))),
        (status = 404, description = "No such base", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_exhibit(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(base_id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<ExhibitInput>,
) -> Result<Response> {
    authorize(&actor, Action::EditExhibits { base_id })?;
    let created = exhibits::create(&state.db, &actor, base_id, input.parse()?, state.now()).await?;
    let version = created.version;
    let record = ExhibitRecord { exhibit: created, on_loan: None, distance_km: None };
    Ok(with_etag(version, (StatusCode::CREATED, Json(ExhibitView::of(record)))))
}

/// Get an exhibit
///
/// Public.
#[utoipa::path(
    get, path = "/v1/exhibits/{id}", tag = "exhibits", operation_id = "get_exhibit",
    params(("id" = Uuid, Path, description = "Exhibit id")),
    responses(
        (status = 200, description = "The exhibit", body = ExhibitView,
            headers(("ETag" = String, description = "Version of the exhibit"))),
        (status = 404, description = "No such exhibit", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_exhibit(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Response> {
    let r = exhibits::get_record(&state.db, id).await?;
    Ok(with_etag(r.exhibit.version, Json(ExhibitView::of(r))))
}

/// Edit an exhibit
///
/// An operator of its base, or an admin. Requires `If-Match`.
#[utoipa::path(
    patch, path = "/v1/exhibits/{id}", tag = "exhibits", operation_id = "update_exhibit",
    params(
        ("id" = Uuid, Path, description = "Exhibit id"),
        ("If-Match" = String, Header, description = "The ETag last read, e.g. `\"3\"`"),
    ),
    request_body = ExhibitPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The edited exhibit", body = ExhibitView,
            headers(("ETag" = String, description = "New version of the exhibit"))),
        (status = 404, description = "No such exhibit", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The exhibit changed since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "`If-Match` is missing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_exhibit(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<serde_json::Value>,
) -> Result<Response> {
    let precondition = if_match.required()?;
    let m = exhibits::update(
        &state.db,
        &actor,
        id,
        precondition,
        |current| apply_patch::<ExhibitPatch, _>(&ExhibitInput::of(current), &patch)?.parse(),
        state.now(),
    )
    .await?;
    let r = exhibits::get_record(&state.db, m.id).await?;
    Ok(with_etag(r.exhibit.version, Json(ExhibitView::of(r))))
}

/// Delete an exhibit
///
/// An operator of its base, or an admin. `If-Match`, when sent, must match.
#[utoipa::path(
    delete, path = "/v1/exhibits/{id}", tag = "exhibits", operation_id = "delete_exhibit",
    params(
        ("id" = Uuid, Path, description = "Exhibit id"),
        ("If-Match" = Option<String>, Header, description = "Optional ETag to guard the deletion"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such exhibit", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The exhibit changed since it was read", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_exhibit(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    if_match: IfMatch,
) -> Result<Response> {
    exhibits::delete(&state.db, &actor, id, if_match.optional(), state.now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Filters of the city-wide exhibit search.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExhibitSearchParams {
    /// Only exhibits that other bases may borrow (展品共享), or only those they may not.
    pub shareable: Option<bool>,
    pub kind: Option<ExhibitKind>,
    pub status: Option<ExhibitStatus>,
    /// A theme of the exhibit's base, e.g. `astronomy`.
    pub theme: Option<String>,
    pub audience: Option<Audience>,
    /// The exhibit's base is in this district (GB/T 2260 code).
    pub district: Option<String>,
    pub base_id: Option<Uuid>,
    /// Text in the name or description (case-insensitive).
    pub q: Option<String>,
    /// Free to borrow from this day (local, `YYYY-MM-DD`): not in maintenance or retired and
    /// not promised or lent on any day of `from`..=`to`.
    #[param(pattern = "^2[0-9]{3}-")]
    pub from: Option<NaiveDate>,
    /// Last day it must be free (default: `from`); requires `from`.
    #[param(pattern = "^2[0-9]{3}-")]
    pub to: Option<NaiveDate>,
    /// Only exhibits that have never been sent out on a loan.
    pub never_lent: Option<bool>,
}

impl ExhibitSearchParams {
    fn parse(self, near: crate::http::NearParams, today: NaiveDate) -> Result<ExhibitQuery> {
        let (center, radius_km) = near.parse()?;
        let mut v = Validator::new();
        for (field, d) in [("from", self.from), ("to", self.to)] {
            if let Some(d) = d {
                v.year(field, chrono::Datelike::year(&d));
            }
        }
        v.finish()?;
        let available = match (self.from, self.to) {
            (Some(from), to) => {
                let to = to.unwrap_or(from);
                if to < from {
                    return Err(AppError::field("to", "must be on or after from"));
                }
                if (to - from).num_days() + 1 > crate::domain::loans::MAX_LOAN_DAYS {
                    return Err(AppError::field("to", "the period is longer than the longest loan"));
                }
                Some((from, to))
            }
            (None, Some(_)) => return Err(AppError::field("to", "requires from")),
            (None, None) => None,
        };
        Ok(ExhibitQuery {
            shareable: self.shareable,
            kind: self.kind,
            status: self.status,
            theme: filter_text(self.theme),
            audience: self.audience,
            district: filter_text(self.district),
            base_id: self.base_id,
            q: filter_text(self.q),
            near: center,
            radius_km,
            available,
            today,
            never_lent: self.never_lent.unwrap_or(false),
        })
    }
}

/// Search exhibits across the city
///
/// Public. How a base finds an exhibit to borrow: `shareable=true` with a kind, a theme of
/// its base, an audience, text, `near`/`radius_km` (sorted by the distance of the exhibit's
/// base) and the days it must be free (`from`, `to`).
#[utoipa::path(
    get, path = "/v1/exhibits", tag = "exhibits", operation_id = "search_exhibits",
    params(ExhibitSearchParams, NearParams, PageParams),
    responses(
        (status = 200, description = "A page of exhibits", body = Page<ExhibitView>),
    )
)]
async fn search_exhibits(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<ExhibitSearchParams>,
    ApiQuery(near): ApiQuery<NearParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<ExhibitView>>> {
    let page = paging.parse()?;
    let query = p.parse(near, crate::domain::loans::local_day(state.now()))?;
    let paged = exhibits::search(&state.read_db, &query, page).await?;
    Ok(Json(Page::from_paged(paged, ExhibitView::of)))
}
