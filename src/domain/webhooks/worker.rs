//! The webhook outbox worker, safe with several kepu instances on one database. Each round it
//! (1) fans new notifications (`dispatched_at IS NULL`) out to the matching enabled
//! subscriptions as delivery rows, one per subscription and event (a unique key, so two
//! workers fanning out the same notice add one row), and (2) sends the due deliveries it
//! claims: a lease taken by a conditional UPDATE (rows locked `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL first), so that no two workers send one delivery at once. A delivery waits
//! while an earlier pending one of the same booking and subscription exists: notices of a
//! booking arrive in order. Nothing here runs in a request: a booking only writes its
//! notification row.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{notification, operator_base, user, webhook, webhook_delivery};
use rand::Rng;
use sea_orm::ExprTrait;
use sea_orm::sea_query::{Alias, Expr, Func, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::guard::{Guard, GuardedResolver};
use super::{TEST_EVENT, disable_failing, signature, status};
use crate::config::WebhookConfig;
use crate::db::begin_write;
use crate::domain::enums::Role;
use crate::error::Result;
use crate::state::Clock;

/// Notices fanned out per round.
const FAN_OUT_BATCH: u64 = 200;
/// Deliveries in flight per worker.
const IN_FLIGHT: usize = 32;
/// The part of an endpoint's answer or of an error kept in the log.
const MAX_ERROR: usize = 500;

/// The row of a new delivery, due now.
pub fn delivery_row(
    webhook_id: Uuid,
    event_id: Uuid,
    event_type: &str,
    booking_id: Option<Uuid>,
    payload: String,
    now: DateTime<Utc>,
) -> webhook_delivery::ActiveModel {
    webhook_delivery::ActiveModel {
        id: Set(Uuid::now_v7()),
        webhook_id: Set(webhook_id),
        event_id: Set(event_id),
        event_type: Set(event_type.into()),
        booking_id: Set(booking_id),
        payload: Set(payload),
        status: Set(status::PENDING.into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        lease_until: Set(None),
        lease_token: Set(None),
        last_status: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        delivered_at: Set(None),
    }
}

/// The body of a notice's event.
pub fn notice_payload(n: &notification::Model) -> String {
    json!({
        "type": n.kind,
        "timestamp": n.created_at,
        "data": {
            "id": n.id,
            "kind": n.kind,
            "message": n.message,
            "booking_id": n.booking_id,
            "school_id": n.school_id,
            "base_id": n.base_id,
            "user_id": n.user_id,
            "created_at": n.created_at,
        },
    })
    .to_string()
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub fanned_out: usize,
    pub claimed: usize,
}

/// A subscription with what its owner may read.
struct Subscriber {
    hook: webhook::Model,
    role: Role,
    school_id: Option<Uuid>,
    bases: HashSet<Uuid>,
}

impl Subscriber {
    fn receives(&self, n: &notification::Model) -> bool {
        let reads = if let Some(u) = n.user_id {
            u == self.hook.owner_id
        } else if let Some(s) = n.school_id {
            self.role == Role::School && self.school_id == Some(s)
        } else if let Some(b) = n.base_id {
            self.role == Role::Operator && self.bases.contains(&b)
        } else {
            false
        };
        reads && self.hook.event_types.split(',').any(|t| t == "*" || t == n.kind)
    }
}

/// One worker: its database, settings, clock and HTTP client.
#[derive(Clone)]
pub struct Worker {
    db: DatabaseConnection,
    config: Arc<WebhookConfig>,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    guard: Guard,
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(db: DatabaseConnection, config: WebhookConfig, clock: Arc<dyn Clock>) -> Self {
        crate::security::install_tls_provider();
        let guard = Guard::new(config.allow.clone());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())))
            .user_agent(concat!("kepu-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|e| panic!("the webhook client cannot be built: {e}"));
        Self { db, config: Arc::new(config), clock, client, guard, slots: Arc::new(Semaphore::new(IN_FLIGHT)) }
    }

    /// Runs rounds every poll interval until the process ends.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.config.poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.round().await {
                    tracing::warn!(error = %e, "webhook round failed; retrying next time");
                }
            }
        })
    }

    /// Fans new notices out, then starts sending what is due (without waiting for the answers).
    pub async fn round(&self) -> Result<Round> {
        let fanned_out = self.fan_out().await?;
        let claimed = self.send_due().await?;
        Ok(Round { fanned_out, claimed })
    }

    async fn fan_out(&self) -> Result<usize> {
        let now = self.clock.now();
        let txn = begin_write(&self.db).await?;
        let mut q = notification::Entity::find()
            .filter(notification::Column::DispatchedAt.is_null())
            .order_by_asc(notification::Column::Id)
            .limit(FAN_OUT_BATCH);
        if self.db.get_database_backend() == DbBackend::Postgres {
            q = q
                .lock_with_behavior(sea_orm::sea_query::LockType::Update, sea_orm::sea_query::LockBehavior::SkipLocked);
        }
        let notes = q.all(&txn).await?;
        if notes.is_empty() {
            return Ok(0);
        }
        let subscribers = subscribers(&txn).await?;
        let mut rows = Vec::new();
        for n in &notes {
            let payload = notice_payload(n);
            for s in subscribers.iter().filter(|s| s.receives(n)) {
                rows.push(delivery_row(s.hook.id, n.id, &n.kind, n.booking_id, payload.clone(), now));
            }
        }
        for chunk in rows.chunks(100) {
            webhook_delivery::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::columns([webhook_delivery::Column::WebhookId, webhook_delivery::Column::EventId])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        notification::Entity::update_many()
            .col_expr(notification::Column::DispatchedAt, Expr::value(now))
            .filter(notification::Column::Id.is_in(notes.iter().map(|n| n.id)))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(notes.len())
    }

    /// Claims up to the free slots' worth of due deliveries and sends each in a task of its own.
    async fn send_due(&self) -> Result<usize> {
        let free = self.slots.available_permits();
        if free == 0 {
            return Ok(0);
        }
        let claimed = self.claim(free as u64).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let ids: HashSet<Uuid> = claimed.iter().map(|d| d.webhook_id).collect();
        let hooks: HashMap<Uuid, webhook::Model> = webhook::Entity::find()
            .filter(webhook::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|h| (h.id, h))
            .collect();
        let n = claimed.len();
        for d in claimed {
            let Some(hook) = hooks.get(&d.webhook_id).cloned() else { continue };
            let Ok(permit) = self.slots.clone().acquire_owned().await else { break };
            let worker = self.clone();
            tokio::spawn(async move {
                let outcome = worker.attempt(&hook, &d).await;
                if let Err(e) = worker.record(&hook, &d, outcome).await {
                    tracing::warn!(error = %e, delivery = %d.id, "recording a webhook attempt failed; the lease will lapse");
                }
                drop(permit);
            });
        }
        Ok(n)
    }

    /// How long a claim holds a delivery: longer than any attempt.
    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.timeout * 3 + Duration::from_secs(10))
            .unwrap_or(chrono::Duration::minutes(1))
    }

    async fn claim(&self, limit: u64) -> Result<Vec<webhook_delivery::Model>> {
        use webhook_delivery::Column as D;
        let now = self.clock.now();
        let earlier = Alias::new("earlier");
        // An earlier pending delivery of the same booking to the same subscription holds this one.
        let held_back = Query::select()
            .expr(Expr::val(1))
            .from_as(webhook_delivery::Entity, earlier.clone())
            .and_where(Expr::col((earlier.clone(), D::WebhookId)).equals((webhook_delivery::Entity, D::WebhookId)))
            .and_where(Expr::col((earlier.clone(), D::BookingId)).equals((webhook_delivery::Entity, D::BookingId)))
            .and_where(Expr::col((earlier.clone(), D::Status)).eq(status::PENDING))
            .and_where(Expr::col((earlier.clone(), D::EventId)).lt(Expr::col((webhook_delivery::Entity, D::EventId))))
            .to_owned();
        let enabled = Query::select()
            .column(webhook::Column::Id)
            .from(webhook::Entity)
            .and_where(webhook::Column::Enabled.eq(true))
            .to_owned();
        let txn = begin_write(&self.db).await?;
        let mut q = webhook_delivery::Entity::find()
            .select_only()
            .column(D::Id)
            .filter(D::Status.eq(status::PENDING))
            .filter(D::NextAttemptAt.lte(now))
            .filter(D::LeaseUntil.is_null().or(D::LeaseUntil.lt(now)))
            .filter(D::WebhookId.in_subquery(enabled))
            .filter(Expr::exists(held_back).not())
            .order_by_asc(D::NextAttemptAt)
            .limit(limit);
        if self.db.get_database_backend() == DbBackend::Postgres {
            q = q
                .lock_with_behavior(sea_orm::sea_query::LockType::Update, sea_orm::sea_query::LockBehavior::SkipLocked);
        }
        let ids: Vec<Uuid> = q.into_tuple().all(&txn).await?;
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let token = Uuid::new_v4();
        webhook_delivery::Entity::update_many()
            .col_expr(D::LeaseUntil, Expr::value(now + self.lease()))
            .col_expr(D::LeaseToken, Expr::value(token))
            .filter(D::Id.is_in(ids))
            .filter(D::Status.eq(status::PENDING))
            .filter(D::LeaseUntil.is_null().or(D::LeaseUntil.lt(now)))
            .exec(&txn)
            .await?;
        let claimed = webhook_delivery::Entity::find().filter(D::LeaseToken.eq(token)).all(&txn).await?;
        txn.commit().await?;
        Ok(claimed)
    }

    /// One attempt: the answer's status, or what went wrong.
    async fn attempt(&self, hook: &webhook::Model, d: &webhook_delivery::Model) -> std::result::Result<u16, Failure> {
        let url = url::Url::parse(&hook.url).map_err(|e| Failure { status: None, error: format!("bad URL: {e}") })?;
        // An address in the URL is not resolved, so the resolver's check does not see it.
        if let Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) = url.host()
            && let Err(e) = self.guard.resolve(url.host_str().unwrap_or_default(), 0).await
        {
            return Err(Failure { status: None, error: format!("refused: {e}") });
        }
        let timestamp = Utc::now().timestamp();
        let id = d.event_id.to_string();
        let sig = signature::sign(&hook.secret, &id, timestamp, &d.payload);
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sig)
            .body(d.payload.clone())
            .send()
            .await;
        match sent {
            Ok(res) if res.status().is_success() => Ok(res.status().as_u16()),
            Ok(res) => {
                let status = res.status().as_u16();
                let text = res.text().await.unwrap_or_default();
                Err(Failure { status: Some(status), error: clip(&format!("HTTP {status}: {text}")) })
            }
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_connect() {
                    format!("could not connect: {}", source_chain(&e))
                } else {
                    source_chain(&e)
                };
                Err(Failure { status: None, error: clip(&what) })
            }
        }
    }

    /// Writes an attempt's outcome, if this worker still holds the delivery.
    async fn record(
        &self,
        hook: &webhook::Model,
        d: &webhook_delivery::Model,
        outcome: std::result::Result<u16, Failure>,
    ) -> Result<()> {
        use webhook_delivery::Column as D;
        let now = self.clock.now();
        let attempts = d.attempts + 1;
        let txn = begin_write(&self.db).await?;
        let mine = webhook_delivery::Entity::update_many()
            .col_expr(D::Attempts, Expr::value(attempts))
            .col_expr(D::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(D::LeaseToken, Expr::value(Option::<Uuid>::None))
            .filter(D::Id.eq(d.id))
            .filter(D::LeaseToken.eq(d.lease_token));
        match outcome {
            Ok(code) => {
                let done = mine
                    .col_expr(D::Status, Expr::value(status::DELIVERED))
                    .col_expr(D::DeliveredAt, Expr::value(now))
                    .col_expr(D::LastStatus, Expr::value(i32::from(code)))
                    .col_expr(D::LastError, Expr::value(Option::<String>::None))
                    .exec(&txn)
                    .await?;
                if done.rows_affected == 0 {
                    return Ok(());
                }
                webhook::Entity::update_many()
                    .col_expr(webhook::Column::ConsecutiveFailures, Expr::value(0))
                    .col_expr(webhook::Column::FailingSince, Expr::value(Option::<DateTime<Utc>>::None))
                    .filter(webhook::Column::Id.eq(hook.id))
                    .exec(&txn)
                    .await?;
                if d.event_type != TEST_EVENT {
                    notification::Entity::update_many()
                        .col_expr(notification::Column::DeliveredAt, Expr::value(now))
                        .filter(notification::Column::Id.eq(d.event_id))
                        .filter(notification::Column::DeliveredAt.is_null())
                        .exec(&txn)
                        .await?;
                }
            }
            Err(f) => {
                let wait = usize::try_from(d.attempts).ok().and_then(|i| self.config.retry_schedule.get(i));
                let mine = match wait {
                    Some(wait) => mine.col_expr(D::NextAttemptAt, Expr::value(now + jittered(*wait))),
                    None => mine.col_expr(D::Status, Expr::value(status::FAILED)),
                };
                let done = mine
                    .col_expr(D::LastStatus, Expr::value(f.status.map(i32::from)))
                    .col_expr(D::LastError, Expr::value(f.error))
                    .exec(&txn)
                    .await?;
                if done.rows_affected == 0 {
                    return Ok(());
                }
                webhook::Entity::update_many()
                    .col_expr(
                        webhook::Column::ConsecutiveFailures,
                        Expr::col(webhook::Column::ConsecutiveFailures).add(1),
                    )
                    .col_expr(
                        webhook::Column::FailingSince,
                        Func::coalesce([Expr::col(webhook::Column::FailingSince), Expr::value(now)]).into(),
                    )
                    .filter(webhook::Column::Id.eq(hook.id))
                    .exec(&txn)
                    .await?;
                if let Some(h) = webhook::Entity::find_by_id(hook.id).one(&txn).await?
                    && self.fails_for_good(&h, now)
                {
                    disable_failing(&txn, h, now).await?;
                }
            }
        }
        txn.commit().await?;
        Ok(())
    }

    /// The disabling rule: enough failed attempts in a row, the first long enough ago.
    fn fails_for_good(&self, h: &webhook::Model, now: DateTime<Utc>) -> bool {
        let span = chrono::Duration::from_std(self.config.disable_after).unwrap_or(chrono::Duration::MAX);
        h.enabled
            && u32::try_from(h.consecutive_failures).unwrap_or(0) >= self.config.disable_after_failures
            && h.failing_since.is_some_and(|since| now - since >= span)
    }
}

/// Why an attempt failed.
#[derive(Debug)]
struct Failure {
    status: Option<u16>,
    error: String,
}

fn clip(s: &str) -> String {
    s.chars().take(MAX_ERROR).collect()
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// A wait with ±20 % jitter, so that deliveries failing together do not retry together.
fn jittered(wait: Duration) -> chrono::Duration {
    let factor = rand::rng().random_range(0.8..=1.2);
    chrono::Duration::from_std(wait.mul_f64(factor)).unwrap_or(chrono::Duration::days(1))
}

/// The enabled subscriptions of active accounts, with what each owner may read.
async fn subscribers(conn: &impl sea_orm::ConnectionTrait) -> Result<Vec<Subscriber>> {
    let hooks = webhook::Entity::find().filter(webhook::Column::Enabled.eq(true)).all(conn).await?;
    if hooks.is_empty() {
        return Ok(vec![]);
    }
    let owners: HashSet<Uuid> = hooks.iter().map(|h| h.owner_id).collect();
    let users: HashMap<Uuid, user::Model> = user::Entity::find()
        .filter(user::Column::Id.is_in(owners.iter().copied()))
        .filter(user::Column::Disabled.eq(false))
        .all(conn)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let mut bases: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
    for ob in operator_base::Entity::find()
        .filter(operator_base::Column::UserId.is_in(owners.iter().copied()))
        .all(conn)
        .await?
    {
        bases.entry(ob.user_id).or_default().insert(ob.base_id);
    }
    Ok(hooks
        .into_iter()
        .filter_map(|hook| {
            let u = users.get(&hook.owner_id)?;
            let role = Role::parse(&u.role).ok()?;
            Some(Subscriber {
                role,
                school_id: u.school_id,
                bases: bases.get(&u.id).cloned().unwrap_or_default(),
                hook,
            })
        })
        .collect())
}
