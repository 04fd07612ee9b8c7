//! Webhook subscriptions under `/v1/webhooks`: subscribe, list, change, delete, rotate the
//! secret, send a test event, read the delivery log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use entity::{webhook, webhook_delivery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::webhooks::{self, NewWebhook, WebhookEdit, guard::Guard, status};
use crate::error::{Problem, Result};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::http::{Page, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(test_webhook))
        .routes(routes!(list_webhook_deliveries))
}

fn guard(state: &AppState) -> Guard {
    Guard::new(state.config.webhooks.allow.clone())
}

/// A subscription to an account's notifications.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "url": "https://school.example.cn/kepu/webhook",
    "event_types": ["booking_confirmed", "booking_cancelled", "visit_reminder"],
    "description": "our booking desk"
}))]
pub struct NewWebhookBody {
    /// http or https; must resolve to public addresses only (unless the admin allows a network).
    #[schema(max_length = 2048)]
    pub url: String,
    /// Notification kinds to receive (`booking_confirmed`, `visit_reminder`, `groups_tomorrow`,
    /// `webhook_disabled`, …); empty or `["*"]`: all.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub event_types: Vec<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// A change to a subscription: only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true}))]
pub struct WebhookPatch {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    #[schema(max_items = 50)]
    pub event_types: Option<Vec<String>>,
    /// `""` removes it.
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// `true` on a disabled subscription enables it again, its failures forgotten; the
    /// deliveries it holds are sent then. `false` pauses it.
    pub enabled: Option<bool>,
}

/// A webhook subscription (its secret is shown only when created or rotated).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a5d2-7c1e-7a3b-9f00-1c2d3e4f5a6b",
    "owner_id": "0193a5d2-7c1e-7a3b-9f00-6b5a4f3e2d1c",
    "url": "https://school.example.cn/kepu/webhook",
    "event_types": ["*"],
    "description": null,
    "enabled": true,
    "consecutive_failures": 0,
    "failing_since": null,
    "disabled_at": null,
    "disabled_reason": null,
    "created_at": "2026-11-30T08:00:00Z",
    "updated_at": "2026-11-30T08:00:00Z"
}))]
pub struct WebhookView {
    pub id: Uuid,
    /// The account whose notifications it receives.
    pub owner_id: Uuid,
    pub url: String,
    /// `["*"]`: all kinds.
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Failed attempts since the last delivered one.
    pub consecutive_failures: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why it was disabled (by kepu after repeated failures, or by its owner).
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookView {
    fn of(m: webhook::Model) -> Self {
        Self {
            id: m.id,
            owner_id: m.owner_id,
            event_types: webhooks::event_types(&m),
            url: m.url,
            description: m.description,
            enabled: m.enabled,
            consecutive_failures: m.consecutive_failures,
            failing_since: m.failing_since,
            disabled_at: m.disabled_at,
            disabled_reason: m.disabled_reason,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// A subscription with its signing secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a5d2-7c1e-7a3b-9f00-1c2d3e4f5a6b",
    "owner_id": "0193a5d2-7c1e-7a3b-9f00-6b5a4f3e2d1c",
    "url": "https://school.example.cn/kepu/webhook",
    "event_types": ["*"],
    "description": null,
    "enabled": true,
    "consecutive_failures": 0,
    "failing_since": null,
    "disabled_at": null,
    "disabled_reason": null,
    "created_at": "2026-11-30T08:00:00Z",
    "updated_at": "2026-11-30T08:00:00Z",
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAAAAAAAAAAA="
}))]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_` and the base64 of the HMAC-SHA256 key: keep it; kepu never shows it again.
    pub secret: String,
}

impl WebhookWithSecret {
    fn of(m: webhook::Model) -> Self {
        let secret = m.secret.clone();
        Self { webhook: WebhookView::of(m), secret }
    }
}

/// One event for a subscription and where its attempts stand.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a5d2-7c1e-7a3b-9f00-aaaaaaaaaaaa",
    "event_id": "0193a5d2-7c1e-7a3b-9f00-bbbbbbbbbbbb",
    "event_type": "booking_confirmed",
    "booking_id": "0193a5d2-7c1e-7a3b-9f00-cccccccccccc",
    "status": "pending",
    "attempts": 2,
    "last_status": 503,
    "last_error": "HTTP 503: busy",
    "next_attempt_at": "2026-11-30T08:02:35Z",
    "created_at": "2026-11-30T08:00:00Z",
    "delivered_at": null
}))]
pub struct DeliveryView {
    pub id: Uuid,
    /// The `webhook-id` header: the notification's id (the same on every retry).
    pub event_id: Uuid,
    pub event_type: String,
    pub booking_id: Option<Uuid>,
    /// `pending`, `delivered` or `failed` (given up after the last retry).
    #[schema(example = "delivered")]
    pub status: String,
    pub attempts: i32,
    /// The HTTP status of the last answer.
    pub last_status: Option<i32>,
    /// What went wrong last (the answer's start, a timeout, a refused address).
    pub last_error: Option<String>,
    /// When it is tried next (pending deliveries only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl DeliveryView {
    fn of(d: webhook_delivery::Model) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            booking_id: d.booking_id,
            next_attempt_at: (d.status == status::PENDING).then_some(d.next_attempt_at),
            status: d.status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookParams {
    /// Admins: one account's subscriptions (default: all).
    pub owner_id: Option<Uuid>,
}

/// Subscribe a URL to the account's notifications
///
/// Schools, operators, district officers and admins. The URL receives, signed, the
/// notifications the account can read (a school its school's, an operator its bases', every
/// account those addressed to it), as Standard Webhooks: headers `webhook-id`,
/// `webhook-timestamp`, `webhook-signature`. The answer carries the secret, shown only now.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks", operation_id = "create_webhook",
    request_body = NewWebhookBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Subscribed; keep the secret", body = WebhookWithSecret),
        (status = 409, description = "The account holds the most webhooks it may", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_webhook(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiJson(body): ApiJson<NewWebhookBody>,
) -> Result<(StatusCode, Json<WebhookWithSecret>)> {
    let new = NewWebhook { url: body.url, event_types: body.event_types, description: body.description };
    let m = webhooks::create(&state.db, &guard(&state), &actor, new, state.now()).await?;
    Ok((StatusCode::CREATED, Json(WebhookWithSecret::of(m))))
}

/// List webhook subscriptions
///
/// The account's own; an admin's: all, or one account's with `owner_id`. Oldest first.
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    params(WebhookParams, PageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of subscriptions", body = Page<WebhookView>))
)]
async fn list_webhooks(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiQuery(p): ApiQuery<WebhookParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<WebhookView>>> {
    let paged = webhooks::list(&state.db, &actor, p.owner_id, paging.parse()?).await?;
    Ok(Json(Page::from_paged(paged, WebhookView::of)))
}

/// Get a webhook subscription
///
/// Its owner, or an admin.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", tag = "webhooks", operation_id = "get_webhook",
    params(("id" = Uuid, Path, description = "Webhook id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The subscription", body = WebhookView),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_webhook(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<WebhookView>> {
    Ok(Json(WebhookView::of(webhooks::get(&state.db, &actor, id).await?)))
}

/// Change a webhook subscription
///
/// Its owner, or an admin: the URL (checked as when subscribing), the event types, the
/// description, or `enabled` (enabling a disabled subscription forgets its failures and sends
/// what it holds).
#[utoipa::path(
    patch, path = "/v1/webhooks/{id}", tag = "webhooks", operation_id = "update_webhook",
    params(("id" = Uuid, Path, description = "Webhook id")),
    request_body = WebhookPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed subscription", body = WebhookView),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_webhook(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<WebhookPatch>,
) -> Result<Json<WebhookView>> {
    let edit = WebhookEdit {
        url: body.url,
        event_types: body.event_types,
        description: body.description.map(|d| Some(d).filter(|d| !d.trim().is_empty())),
        enabled: body.enabled,
    };
    Ok(Json(WebhookView::of(webhooks::update(&state.db, &guard(&state), &actor, id, edit, state.now()).await?)))
}

/// Delete a webhook subscription
///
/// Its owner, or an admin; its delivery log goes with it.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "webhooks", operation_id = "delete_webhook",
    params(("id" = Uuid, Path, description = "Webhook id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_webhook(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response> {
    webhooks::delete(&state.db, &actor, id, state.now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Give a webhook subscription a new secret
///
/// Its owner, or an admin. Later attempts, retries included, are signed with the new secret,
/// shown only now.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", operation_id = "rotate_webhook_secret",
    params(("id" = Uuid, Path, description = "Webhook id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The subscription with its new secret", body = WebhookWithSecret),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<WebhookWithSecret>> {
    Ok(Json(WebhookWithSecret::of(webhooks::rotate_secret(&state.db, &actor, id, state.now()).await?)))
}

/// Send a test event
///
/// Its owner, or an admin: queues a `webhook.test` event, sent like any notice (signed,
/// retried, in the delivery log) within a moment.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/test", tag = "webhooks", operation_id = "test_webhook",
    params(("id" = Uuid, Path, description = "Webhook id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued; its delivery", body = DeliveryView),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The webhook is disabled", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn test_webhook(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<DeliveryView>)> {
    let d = webhooks::send_test(&state.db, &actor, id, state.now()).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::of(d))))
}

/// List a webhook's deliveries
///
/// Its owner, or an admin. Newest first: each event, its attempts, the last answer or error,
/// and when it is tried next.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    params(("id" = Uuid, Path, description = "Webhook id"), PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<DeliveryView>),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_webhook_deliveries(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<DeliveryView>>> {
    let paged = webhooks::deliveries(&state.db, &actor, id, paging.parse()?).await?;
    Ok(Json(Page::from_paged(paged, DeliveryView::of)))
}
