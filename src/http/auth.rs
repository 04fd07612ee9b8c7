//! `/v1/auth/token` and `/v1/me`: logging in and out, and who am I.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::domain::{auth, users};
use crate::error::AppError;
use crate::error::{Problem, Result};
use crate::http::extract::{ApiJson, AuthUser, BearerToken, ClientIp, SESSION_COOKIE, session_cookie};
use crate::http::users::UserView;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, delete_token))
        .routes(routes!(create_session, get_session, delete_session))
        .routes(routes!(get_me))
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

/// A console session: its CSRF token, to send as `X-CSRF-Token` with every request that
/// changes something.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"csrf_token": "q7Lw0n3Xv1xk5m2bQ0yH8sJ4dT6uR9cE", "expires_at": "2026-11-29T12:00:00Z"}))]
pub struct ConsoleSession {
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// The `Set-Cookie` value of a session (`Secure` when the request came over TLS, as a proxy in
/// front says with `X-Forwarded-Proto: https`), or of its end (`max_age_s` 0).
fn session_cookie_header(token: &str, max_age_s: i64, headers: &HeaderMap) -> HeaderValue {
    let tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")));
    let secure = if tls { "; Secure" } else { "" };
    let value =
        format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", max_age_s.max(0));
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("kepu_session=; Path=/; Max-Age=0"))
}

/// Log in to the console
///
/// As `POST /v1/auth/token` (the same throttling), but the token is set as the `kepu_session`
/// cookie (`HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` behind TLS) for the web console
/// at `/`, and the answer is the session's CSRF token: every request the cookie signs in that
/// is not GET, HEAD or OPTIONS must carry it as `X-CSRF-Token` (403 otherwise). Scripts and
/// other clients should use bearer tokens.
#[utoipa::path(
    post, path = "/v1/auth/session", tag = "auth", operation_id = "create_console_session",
    request_body = Credentials,
    responses(
        (status = 201, description = "Logged in; the session cookie is set", body = ConsoleSession,
            headers(("Set-Cookie" = String, description = "`kepu_session=…; Path=/; HttpOnly; SameSite=Strict; Max-Age=…`"))),
        (status = 401, description = "Unknown username or wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed log-ins or requests; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
async fn create_session(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<Response> {
    let now = state.now();
    let issued = auth::login(&state.db, &state.config, c.username.trim(), &c.password, &ip, now).await?;
    // The browser's previous session, if any, ends: one session per log-in.
    if let Some(previous) = session_cookie(&headers) {
        auth::revoke(&state.db, &previous, now).await?;
    }
    let cookie = session_cookie_header(&issued.token, (issued.expires_at - now).num_seconds(), &headers);
    let body = ConsoleSession { csrf_token: auth::csrf_token(&issued.token), expires_at: issued.expires_at };
    Ok((StatusCode::CREATED, [(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// The console session
///
/// The session of the `kepu_session` cookie, with its CSRF token (a page reloaded learns it
/// here). 401 without a cookie or when its session ended (the cookie is then cleared).
#[utoipa::path(
    get, path = "/v1/auth/session", tag = "auth", operation_id = "get_console_session",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The session", body = ConsoleSession),
        (status = 401, description = "No session, or it ended", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_session(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let token = session_cookie(&headers).ok_or_else(|| AppError::Unauthorized("no console session".into()))?;
    let now = state.now();
    match auth::session_expiry(&state.db, &state.tokens, &token, now).await {
        Ok(expires_at) => Ok(Json(ConsoleSession { csrf_token: auth::csrf_token(&token), expires_at }).into_response()),
        // An ended session's cookie is cleared; any other failure leaves it be.
        Err(e @ AppError::Unauthorized(_)) => {
            let mut res = e.into_response();
            res.headers_mut().insert(header::SET_COOKIE, session_cookie_header("", 0, &headers));
            Ok(res)
        }
        Err(e) => Err(e),
    }
}

/// Log out of the console
///
/// Revokes the cookie's session on the server and clears the cookie. Needs the session's
/// `X-CSRF-Token`.
#[utoipa::path(
    delete, path = "/v1/auth/session", tag = "auth", operation_id = "delete_console_session",
    security(("session_cookie" = [])),
    params(("X-CSRF-Token" = String, Header, description = "The session's CSRF token")),
    responses(
        (status = 204, description = "Logged out; the cookie is cleared",
            headers(("Set-Cookie" = String, description = "`kepu_session=; Max-Age=0`"))),
        (status = 401, description = "No session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Without the session's CSRF token", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_session(State(state): State<AppState>, _caller: AuthUser, headers: HeaderMap) -> Result<Response> {
    let token = session_cookie(&headers).ok_or_else(|| AppError::Unauthorized("no console session".into()))?;
    auth::revoke(&state.db, &token, state.now()).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, session_cookie_header("", 0, &headers))]).into_response())
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
