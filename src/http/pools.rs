//! `/v1/capacity-pools`: capacity shared by several sessions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::capacity::{self, NewPool, PoolRecord};
use crate::domain::enums::PoolUnit;
use crate::error::{Problem, Result};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::http::{Page, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pools, create_pool))
        .routes(routes!(get_pool))
        .routes(routes!(attach_session))
        .routes(routes!(detach_session))
}

/// A new pool.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Science Week free tours", "unit": "visitors", "capacity": 2000}))]
pub struct NewPoolBody {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub unit: PoolUnit,
    /// 1–1000000, in the pool's unit.
    #[schema(minimum = 1, maximum = 1000000)]
    pub capacity: i32,
    /// The base whose sessions may draw on it (operators must give their base); absent for a
    /// city-wide pool (admin only).
    #[serde(default)]
    pub base_id: Option<Uuid>,
}

/// A pool and the sessions drawing on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolView {
    pub id: Uuid,
    pub name: String,
    pub unit: PoolUnit,
    pub capacity: i32,
    /// Taken by the bookings of its sessions.
    pub used: i32,
    pub free: i32,
    /// The base it belongs to; `null` for a city-wide pool.
    pub base_id: Option<Uuid>,
    /// Set when this is a session's own pool.
    pub session_id: Option<Uuid>,
    pub session_ids: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PoolView {
    fn of(r: PoolRecord) -> Self {
        let p = r.pool;
        Self {
            free: capacity::room(&p),
            unit: PoolUnit::from_db(&p.unit),
            id: p.id,
            name: p.name,
            capacity: p.capacity,
            used: p.used,
            base_id: p.base_id,
            session_id: p.session_id,
            session_ids: r.session_ids,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PoolListParams {
    /// A base: its shared pools and the city-wide pools its sessions draw on. Absent: every
    /// city-wide pool.
    pub base_id: Option<Uuid>,
}

/// List capacity pools
///
/// Public, like each pool. With `base_id`: what the base's operators plan with — the base's
/// shared pools (a daily cap, a guide pool) and the city-wide pools its sessions draw on, each
/// with `used`, `free` and the base's sessions attached (a session's own pool is shown with
/// the session). Without: every city-wide pool and all its sessions. By id.
#[utoipa::path(
    get, path = "/v1/capacity-pools", tag = "capacity", operation_id = "list_pools",
    params(PoolListParams, PageParams),
    responses(
        (status = 200, description = "A page of pools", body = Page<PoolView>),
        (status = 422, description = "`base_id`: no such base", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_pools(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<PoolListParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<PoolView>>> {
    let paged = capacity::list(&state.read_db, p.base_id, paging.parse()?).await?;
    Ok(Json(Page::from_paged(paged, PoolView::of)))
}

/// Create a capacity pool
///
/// An operator for its base (a daily visitor cap, a guide pool counted in groups), or an
/// admin for any base or city-wide (a Science Week quota shared by many bases).
#[utoipa::path(
    post, path = "/v1/capacity-pools", tag = "capacity", operation_id = "create_pool",
    request_body = NewPoolBody,
    security(("bearer" = [])),
    responses((status = 201, description = "Created", body = PoolView))
)]
async fn create_pool(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiJson(body): ApiJson<NewPoolBody>,
) -> Result<(StatusCode, Json<PoolView>)> {
    let new = NewPool { name: body.name, unit: body.unit, capacity: body.capacity, base_id: body.base_id };
    let created = capacity::create(&state.db, &actor, new, state.now()).await?;
    Ok((StatusCode::CREATED, Json(PoolView::of(created))))
}

/// Get a capacity pool
///
/// Public: its capacity, what is used, and the sessions drawing on it.
#[utoipa::path(
    get, path = "/v1/capacity-pools/{id}", tag = "capacity", operation_id = "get_pool",
    params(("id" = Uuid, Path, description = "Pool id")),
    responses(
        (status = 200, description = "The pool", body = PoolView),
        (status = 404, description = "No such pool", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_pool(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<PoolView>> {
    Ok(Json(PoolView::of(capacity::get(&state.db, id).await?)))
}

/// A session to attach.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachSession {
    pub session_id: Uuid,
}

/// Attach a session to a pool
///
/// Whoever owns the pool: the session's base operators for their base's pools; the bureau
/// (an admin) for a city-wide pool, which is its quota (an operator gets 403). The bookings the
/// session already has are counted into the pool; 409 if they don't fit.
#[utoipa::path(
    post, path = "/v1/capacity-pools/{id}/sessions", tag = "capacity", operation_id = "attach_session",
    params(("id" = Uuid, Path, description = "Pool id")),
    request_body = AttachSession,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The pool with the session attached", body = PoolView),
        (status = 404, description = "No such pool or session", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already attached, another base's pool, or the session's bookings don't fit", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn attach_session(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AttachSession>,
) -> Result<Json<PoolView>> {
    Ok(Json(PoolView::of(capacity::attach(&state.db, &actor, id, body.session_id, state.now()).await?)))
}

/// Detach a session from a pool
///
/// Whoever owns the pool, as for attaching (a city-wide pool: the bureau only). Gives back
/// what the session's bookings held in the pool.
#[utoipa::path(
    delete, path = "/v1/capacity-pools/{id}/sessions/{session_id}", tag = "capacity", operation_id = "detach_session",
    params(
        ("id" = Uuid, Path, description = "Pool id"),
        ("session_id" = Uuid, Path, description = "Session id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The pool without the session", body = PoolView),
        (status = 404, description = "No such pool, session, or link", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A session's own pool cannot be detached", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn detach_session(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath((id, session_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<PoolView>> {
    Ok(Json(PoolView::of(capacity::detach(&state.db, &actor, id, session_id, state.now()).await?)))
}
