//! Exhibits: `/v1/bases/{id}/exhibits` and `/v1/exhibits/{id}`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use entity::exhibit;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::access::{Action, authorize};
use crate::domain::enums::{Audience, ExhibitKind, ExhibitStatus};
use crate::domain::exhibits::{self, ExhibitData, audiences_of};
use crate::domain::validate::Validator;
use crate::error::{AppError, Problem, Result};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, IfMatch};
use crate::http::{Page, PageParams, apply_patch, with_etag};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_exhibits, create_exhibit)).routes(routes!(
        get_exhibit,
        update_exhibit,
        delete_exhibit
    ))
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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ExhibitView {
    fn of(m: exhibit::Model) -> Self {
        Self {
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
/// Public.
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
    Ok(with_etag(created.version, (StatusCode::CREATED, Json(ExhibitView::of(created)))))
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
    let m = exhibits::get(&state.db, id).await?;
    Ok(with_etag(m.version, Json(ExhibitView::of(m))))
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
    Ok(with_etag(m.version, Json(ExhibitView::of(m))))
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
