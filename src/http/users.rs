//! `/v1/users`: accounts, managed by admins.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::access::{Action, authorize};
use crate::domain::enums::Role;
use crate::domain::users::{self, Scope, UserChange, UserRecord};
use crate::domain::validate::Validator;
use crate::error::{Problem, Result};
use crate::http::DistrictCode;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::http::{Page, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_users, create_user)).routes(routes!(get_user, update_user))
}

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "username": "op-gdsc",
    "password": "a long passphrase",
    "role": "operator",
    "base_ids": ["0193a5d2-7c1e-7a3b-9f00-1c2d3e4f5a6b"]
}))]
pub struct NewUser {
    /// 2–64 characters: lower-case letters, digits, `.`, `_`, `-`, `@`.
    #[schema(pattern = "^[a-z0-9._@-]{2,64}$")]
    pub username: String,
    /// At least 10 characters.
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
    pub role: Role,
    /// Required for (and only for) `district_officer`.
    #[serde(default)]
    #[schema(value_type = Option<DistrictCode>)]
    pub district_code: Option<String>,
    /// Required for (and only for) `operator`.
    #[serde(default)]
    pub base_ids: Vec<Uuid>,
    /// Required for (and only for) `school`.
    #[serde(default)]
    pub school_id: Option<Uuid>,
}

/// Changes to an account; a new role must come with its scope. Any change ends the
/// account's sessions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"disabled": true}))]
pub struct UserPatch {
    #[serde(default)]
    #[schema(min_length = 10, max_length = 256)]
    pub password: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    #[schema(value_type = Option<DistrictCode>)]
    pub district_code: Option<String>,
    #[serde(default)]
    pub base_ids: Option<Vec<Uuid>>,
    #[serde(default)]
    pub school_id: Option<Uuid>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// An account as the API shows it (never its password).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    #[schema(example = "op-gdsc")]
    pub username: String,
    pub role: Role,
    #[schema(value_type = Option<DistrictCode>)]
    pub district_code: Option<String>,
    pub school_id: Option<Uuid>,
    pub base_ids: Vec<Uuid>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl UserView {
    pub fn of(r: UserRecord) -> Self {
        let u = r.user;
        Self {
            id: u.id,
            role: Role::from_db(&u.role),
            username: u.username,
            district_code: u.district_code,
            school_id: u.school_id,
            base_ids: r.base_ids,
            disabled: u.disabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    pub role: Option<Role>,
}

/// List accounts
///
/// Admin only.
#[utoipa::path(
    get, path = "/v1/users", tag = "accounts", operation_id = "list_users",
    params(UserListParams, PageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of accounts", body = Page<UserView>))
)]
async fn list_users(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiQuery(p): ApiQuery<UserListParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<UserView>>> {
    authorize(&actor, Action::ManageUsers)?;
    let page = paging.parse()?;
    let paged = users::list(&state.db, &actor, p.role, page).await?;
    Ok(Json(Page::from_paged(paged, UserView::of)))
}

/// Create an account
///
/// Admin only. Each role carries exactly its scope.
#[utoipa::path(
    post, path = "/v1/users", tag = "accounts", operation_id = "create_user",
    request_body = NewUser,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 409, description = "The username is taken", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_user(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>)> {
    let scope = Scope {
        role: body.role,
        district_code: body.district_code,
        school_id: body.school_id,
        base_ids: dedup(body.base_ids),
    };
    let created = users::create(&state.db, Some(&actor), body.username, body.password, scope, state.now()).await?;
    Ok((StatusCode::CREATED, Json(UserView::of(created))))
}

fn dedup(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids.dedup();
    ids
}

/// Get an account
///
/// Admin only.
#[utoipa::path(
    get, path = "/v1/users/{id}", tag = "accounts", operation_id = "get_user",
    params(("id" = Uuid, Path, description = "Account id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = UserView),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_user(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<UserView>> {
    authorize(&actor, Action::ManageUsers)?;
    Ok(Json(UserView::of(users::get(&state.db, id).await?)))
}

/// Change an account
///
/// Admin only: password, role and scope, or disable it. Ends the account's sessions.
#[utoipa::path(
    patch, path = "/v1/users/{id}", tag = "accounts", operation_id = "update_user",
    params(("id" = Uuid, Path, description = "Account id")),
    request_body = UserPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed account", body = UserView),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An admin cannot disable or demote itself", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_user(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UserPatch>,
) -> Result<Json<UserView>> {
    authorize(&actor, Action::ManageUsers)?;
    let mut v = Validator::new();
    let scope_given =
        body.district_code.is_some() || !body.base_ids.as_ref().is_none_or(Vec::is_empty) || body.school_id.is_some();
    if body.role.is_none() && scope_given {
        v.push("role", "is required when changing district_code, base_ids or school_id");
    }
    v.finish()?;
    let change = UserChange {
        password: body.password,
        scope: body.role.map(|role| Scope {
            role,
            district_code: body.district_code,
            school_id: body.school_id,
            base_ids: dedup(body.base_ids.unwrap_or_default()),
        }),
        disabled: body.disabled,
    };
    Ok(Json(UserView::of(users::update(&state.db, &actor, id, change, state.now()).await?)))
}
