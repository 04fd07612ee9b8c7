//! Webhook subscriptions: an account's URL that is sent, signed, the notifications the account
//! can read (a school its school's, an operator its bases', every account those addressed to
//! it). Who may subscribe and change what, the URL and event-type rules; the sending is
//! [`worker`]'s, the guard against server-side request forgery [`guard`]'s.

pub mod guard;
pub mod signature;
pub mod worker;

use chrono::{DateTime, Utc};
use entity::{webhook, webhook_delivery};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use crate::domain::access::Actor;
use crate::domain::audit::{self, Change};
use crate::domain::enums::Role;
use crate::domain::page::{Cursor, PageRequest, Paged};
use crate::domain::validate::Validator;
use crate::error::{AppError, Result};
use guard::Guard;

/// The event type of a test event (`POST /v1/webhooks/{id}/test`).
pub const TEST_EVENT: &str = "webhook.test";
/// The notification kind that tells an owner its subscription was disabled.
pub const DISABLED_KIND: &str = "webhook_disabled";
/// Subscriptions one account may hold.
pub const MAX_PER_ACCOUNT: u64 = 20;
const MAX_URL: usize = 2048;
const MAX_TYPES: usize = 50;

/// Delivery states.
pub mod status {
    pub const PENDING: &str = "pending";
    pub const DELIVERED: &str = "delivered";
    /// Given up: every attempt of the retry schedule failed.
    pub const FAILED: &str = "failed";
}

/// A subscription as asked for.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

/// A change to a subscription: only the fields given change.
#[derive(Debug, Clone, Default)]
pub struct WebhookEdit {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    /// `true` on a disabled subscription enables it again with its failures forgotten.
    pub enabled: Option<bool>,
}

/// Checks a URL: http or https, a host, no credentials, and every address the host resolves
/// to permitted by the guard.
pub async fn parse_url(url: &str, guard: &Guard) -> std::result::Result<String, String> {
    let url = url.trim();
    if url.is_empty() || url.len() > MAX_URL {
        return Err(format!("must be an http or https URL of at most {MAX_URL} characters"));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("must be http or https, not {}", parsed.scheme()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let Some(host) = parsed.host_str() else { return Err("must name a host".into()) };
    let port = parsed.port_or_known_default().unwrap_or(80);
    guard.resolve(host, port).await.map_err(|e| format!("is not allowed: {e}"))?;
    Ok(parsed.to_string())
}

/// The event types, stored as a comma-separated list; empty or `*`: all.
pub fn parse_event_types(v: &mut Validator, types: &[String]) -> Option<String> {
    let parsed = v.list("event_types", types, MAX_TYPES, |t| {
        let t = t.trim();
        let ok = t == "*"
            || (!t.is_empty()
                && t.len() <= 64
                && t.starts_with(|c: char| c.is_ascii_lowercase())
                && t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'));
        if ok { Ok(t.to_string()) } else { Err("must be a notification kind such as booking_confirmed, or *".into()) }
    })?;
    Some(if parsed.is_empty() || parsed.iter().any(|t| t == "*") { "*".into() } else { parsed.join(",") })
}

/// The event types of a stored subscription.
pub fn event_types(m: &webhook::Model) -> Vec<String> {
    m.event_types.split(',').map(str::to_string).collect()
}

fn may_subscribe(actor: &Actor) -> Result<()> {
    match actor.role {
        Role::School | Role::Operator | Role::DistrictOfficer | Role::Admin => Ok(()),
        r @ Role::Evaluator => Err(AppError::forbidden(format!("a {r} account receives no notifications"))),
    }
}

/// The subscription, if the actor may see and change it: its owner's or any for an admin.
async fn owned(conn: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<webhook::Model> {
    let m = webhook::Entity::find_by_id(id).one(conn).await?.ok_or_else(|| AppError::not_found("no such webhook"))?;
    if m.owner_id != actor.user_id && !actor.is_admin() {
        return Err(AppError::forbidden(format!("webhook {id} belongs to another account")));
    }
    Ok(m)
}

/// Subscribes the actor's account. The answer carries the secret: the only time it is shown.
#[tracing::instrument(skip(db, guard, actor, new), err)]
pub async fn create(
    db: &DatabaseConnection,
    guard: &Guard,
    actor: &Actor,
    new: NewWebhook,
    now: DateTime<Utc>,
) -> Result<webhook::Model> {
    may_subscribe(actor)?;
    let mut v = Validator::new();
    let url = v.check("url", parse_url(&new.url, guard).await);
    let types = parse_event_types(&mut v, &new.event_types);
    let description = v.opt_text("description", new.description.as_deref(), 500);
    v.finish()?;
    let (Some(url), Some(types), Some(description)) = (url, types, description) else {
        unreachable!("validated above")
    };
    let txn = crate::db::begin_write(db).await?;
    let held = webhook::Entity::find().filter(webhook::Column::OwnerId.eq(actor.user_id)).count(&txn).await?;
    if held >= MAX_PER_ACCOUNT {
        return Err(AppError::conflict_rule(
            "webhook-limit",
            format!("an account holds at most {MAX_PER_ACCOUNT} webhooks; delete one first"),
        ));
    }
    let m = webhook::ActiveModel {
        id: Set(Uuid::now_v7()),
        owner_id: Set(actor.user_id),
        url: Set(url),
        event_types: Set(types),
        description: Set(description),
        secret: Set(signature::new_secret()),
        enabled: Set(true),
        consecutive_failures: Set(0),
        failing_since: Set(None),
        disabled_at: Set(None),
        disabled_reason: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    audit::record(&txn, Some(actor), now, Change::created("webhook", m.id, &m)).await?;
    txn.commit().await?;
    Ok(m)
}

/// The actor's subscriptions (an admin: all, or one account's), oldest first.
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    owner_id: Option<Uuid>,
    page: PageRequest,
) -> Result<Paged<webhook::Model>> {
    may_subscribe(actor)?;
    let owner = match owner_id {
        Some(o) if o != actor.user_id && !actor.is_admin() => {
            return Err(AppError::forbidden("only an admin reads another account's webhooks"));
        }
        Some(o) => Some(o),
        None if actor.is_admin() => None,
        None => Some(actor.user_id),
    };
    let mut q = webhook::Entity::find();
    if let Some(o) = owner {
        q = q.filter(webhook::Column::OwnerId.eq(o));
    }
    if let Some(after) = page.after {
        q = q.filter(webhook::Column::Id.gt(after.id));
    }
    let rows = q.order_by_asc(webhook::Column::Id).limit(page.limit + 1).all(db).await?;
    Ok(Paged::from_overfetch(rows, page.limit, |w| Cursor::id(w.id)))
}

pub async fn get(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<webhook::Model> {
    owned(db, actor, id).await
}

/// Changes a subscription; enabling a disabled one forgets its failures.
#[tracing::instrument(skip(db, guard, actor, edit), err)]
pub async fn update(
    db: &DatabaseConnection,
    guard: &Guard,
    actor: &Actor,
    id: Uuid,
    edit: WebhookEdit,
    now: DateTime<Utc>,
) -> Result<webhook::Model> {
    let mut v = Validator::new();
    let url = match &edit.url {
        Some(u) => v.check("url", parse_url(u, guard).await),
        None => None,
    };
    let types = edit.event_types.as_ref().and_then(|t| parse_event_types(&mut v, t));
    let description = match &edit.description {
        Some(d) => v.opt_text("description", d.as_deref(), 500),
        None => None,
    };
    v.finish()?;
    let txn = crate::db::begin_write(db).await?;
    let before = owned(&txn, actor, id).await?;
    let mut m = before.clone().into_active_model();
    if let Some(u) = url {
        m.url = Set(u);
    }
    if let Some(t) = types {
        m.event_types = Set(t);
    }
    if let Some(d) = description {
        m.description = Set(d);
    }
    match edit.enabled {
        Some(true) if !before.enabled => {
            m.enabled = Set(true);
            m.consecutive_failures = Set(0);
            m.failing_since = Set(None);
            m.disabled_at = Set(None);
            m.disabled_reason = Set(None);
        }
        Some(false) if before.enabled => {
            m.enabled = Set(false);
            m.disabled_at = Set(Some(now));
            m.disabled_reason = Set(Some("disabled by its owner".into()));
        }
        _ => {}
    }
    m.updated_at = Set(now);
    let after = m.update(&txn).await?;
    audit::record(&txn, Some(actor), now, Change::updated("webhook.update", "webhook", id, &before, &after)).await?;
    txn.commit().await?;
    Ok(after)
}

/// Deletes a subscription and its delivery log.
pub async fn delete(db: &DatabaseConnection, actor: &Actor, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    let txn = crate::db::begin_write(db).await?;
    let before = owned(&txn, actor, id).await?;
    webhook::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(&txn, Some(actor), now, Change::deleted("webhook", id, &before)).await?;
    txn.commit().await?;
    Ok(())
}

/// A new secret for a subscription (the old one stops signing at once); shown once.
pub async fn rotate_secret(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<webhook::Model> {
    let txn = crate::db::begin_write(db).await?;
    let before = owned(&txn, actor, id).await?;
    let mut m = before.clone().into_active_model();
    m.secret = Set(signature::new_secret());
    m.updated_at = Set(now);
    let after = m.update(&txn).await?;
    audit::record(&txn, Some(actor), now, Change::updated("webhook.rotate_secret", "webhook", id, &before, &after))
        .await?;
    txn.commit().await?;
    Ok(after)
}

/// Queues a `webhook.test` event for the subscription, sent by the worker like any other.
pub async fn send_test(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<webhook_delivery::Model> {
    let hook = owned(db, actor, id).await?;
    if !hook.enabled {
        return Err(AppError::conflict_rule("webhook-disabled", "the webhook is disabled; enable it first"));
    }
    let event_id = Uuid::now_v7();
    let payload = json!({
        "type": TEST_EVENT,
        "timestamp": now,
        "data": {"webhook_id": id, "message": "A test event from kepu: your endpoint is reached and can check the signature."},
    });
    let row = worker::delivery_row(id, event_id, TEST_EVENT, None, payload.to_string(), now);
    Ok(row.insert(db).await?)
}

/// A subscription's deliveries, newest first.
pub async fn deliveries(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    page: PageRequest,
) -> Result<Paged<webhook_delivery::Model>> {
    owned(db, actor, id).await?;
    let mut q = webhook_delivery::Entity::find().filter(webhook_delivery::Column::WebhookId.eq(id));
    if let Some(after) = page.after {
        q = q.filter(webhook_delivery::Column::Id.lt(after.id));
    }
    let rows = q.order_by_desc(webhook_delivery::Column::Id).limit(page.limit + 1).all(db).await?;
    Ok(Paged::from_overfetch(rows, page.limit, |d| Cursor::id(d.id)))
}

/// Disables a subscription that keeps failing and tells its owner, in the caller's transaction.
pub(crate) async fn disable_failing(
    txn: &sea_orm::DatabaseTransaction,
    hook: webhook::Model,
    now: DateTime<Utc>,
) -> Result<()> {
    let reason = format!(
        "{} delivery attempts in a row failed, the first at {}",
        hook.consecutive_failures,
        hook.failing_since.unwrap_or(now).to_rfc3339()
    );
    let updated = webhook::Entity::update_many()
        .col_expr(webhook::Column::Enabled, Expr::value(false))
        .col_expr(webhook::Column::DisabledAt, Expr::value(now))
        .col_expr(webhook::Column::DisabledReason, Expr::value(reason.clone()))
        .col_expr(webhook::Column::UpdatedAt, Expr::value(now))
        .filter(webhook::Column::Id.eq(hook.id))
        .filter(webhook::Column::Enabled.eq(true))
        .exec(txn)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(());
    }
    let after = webhook::Model {
        enabled: false,
        disabled_at: Some(now),
        disabled_reason: Some(reason.clone()),
        updated_at: now,
        ..hook.clone()
    };
    audit::record(txn, None, now, Change::updated("webhook.disable", "webhook", hook.id, &hook, &after)).await?;
    let message = format!(
        "Your webhook to {} was disabled: {reason}. Fix the endpoint, then enable it again (PATCH /v1/webhooks/{} with enabled: true); what was not delivered is sent then.",
        hook.url, hook.id
    );
    crate::domain::notifications::to_user(txn, hook.owner_id, DISABLED_KIND, message, now).await
}
