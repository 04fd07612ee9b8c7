//! `/v1/auth/token` and `/v1/me`: logging in and out, and who am I.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::domain::{auth, users};
use crate::error::{Problem, Result};
use crate::http::extract::{ApiJson, AuthUser, BearerToken, ClientIp};
use crate::http::users::UserView;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_token, delete_token)).routes(routes!(get_me))
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "admin", "password": "kepu-admin"}))]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// A bearer token.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"access_token": "kepu_3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "token_type": "Bearer", "expires_at": "2026-11-29T12:00:00Z"}))]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
}

/// Log in
///
/// Exchanges a username and password for a bearer token.
///
/// Failed log-ins are throttled so that guessing stays slow while nobody elsewhere can lock
/// an account out. A refused attempt is answered 429 with `Retry-After` (seconds), before its
/// password is looked at, and is not counted as a failure. The rules, with their defaults:
///
/// - **Per username and address**: after 3 failures on a username from one address, the next
///   attempt from there waits 1 s after the last failure, and each further failure doubles
///   the wait (2 s, 4 s, …) up to 15 minutes. These failures are remembered for 24 hours; a
///   log-in to that username from that address clears them.
/// - **Per address**: at most 50 failures from one address, for any usernames, within 15
///   minutes (`KEPU_LOGIN_FAILURES_PER_ADDRESS`).
/// - **Per account**: at most 100 failures on a username from all addresses within an hour
///   (`KEPU_LOGIN_FAILURES_PER_ACCOUNT_HOUR`). Beyond them only addresses the account logged
///   in from within the last 30 days may still try, each under its own waits.
///
/// So failures made elsewhere never refuse the right password from an address the account
/// logged in from lately. Attempts in flight count as failures until their password is
/// found right. An IPv6 client is counted by its /64.
#[utoipa::path(
    post, path = "/v1/auth/token", tag = "auth", operation_id = "create_token",
    request_body = Credentials,
    responses(
        (status = 201, description = "Logged in", body = TokenResponse),
        (status = 401, description = "Unknown username or wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed log-ins (see the rules above; the password was not checked), or too many requests from this address; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
async fn create_token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    let issued = auth::login(&state.db, &state.config, c.username.trim(), &c.password, &ip, state.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenResponse { access_token: issued.token, token_type: "Bearer".into(), expires_at: issued.expires_at }),
    ))
}

/// Log out
///
/// Revokes the bearer token of this request.
#[utoipa::path(
    delete, path = "/v1/auth/token", tag = "auth", operation_id = "delete_token",
    security(("bearer" = [])),
    responses((status = 204, description = "Revoked"))
)]
async fn delete_token(
    State(state): State<AppState>,
    _caller: AuthUser,
    BearerToken(token): BearerToken,
) -> Result<StatusCode> {
    auth::revoke(&state.db, &token, state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who am I
///
/// The account of the bearer token, with its role and scope.
#[utoipa::path(
    get, path = "/v1/me", tag = "auth", operation_id = "get_me",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's account", body = UserView))
)]
async fn get_me(State(state): State<AppState>, AuthUser(actor): AuthUser) -> Result<Json<UserView>> {
    Ok(Json(UserView::of(users::get(&state.db, actor.user_id).await?)))
}
