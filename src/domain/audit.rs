//! The append-only audit log: every state change, with who, when, what, before → after.

use chrono::{DateTime, Utc};
use entity::audit_log;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::access::Actor;
use crate::domain::page::{Cursor, PageRequest, Paged};
use crate::error::Result;

/// One change to write to the log.
pub struct Change<'a> {
    pub action: String,
    pub entity: &'a str,
    pub entity_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl<'a> Change<'a> {
    /// `<entity>.create`, with the new record.
    pub fn created(entity: &'a str, id: impl ToString, after: &impl Serialize) -> Self {
        Self {
            action: format!("{entity}.create"),
            entity,
            entity_id: id.to_string(),
            before: None,
            after: snapshot(after),
        }
    }

    /// `action`, with the record before and after.
    pub fn updated(
        action: impl Into<String>,
        entity: &'a str,
        id: impl ToString,
        before: &impl Serialize,
        after: &impl Serialize,
    ) -> Self {
        Self {
            action: action.into(),
            entity,
            entity_id: id.to_string(),
            before: snapshot(before),
            after: snapshot(after),
        }
    }

    /// `<entity>.delete`, with the record as it was.
    pub fn deleted(entity: &'a str, id: impl ToString, before: &impl Serialize) -> Self {
        Self {
            action: format!("{entity}.delete"),
            entity,
            entity_id: id.to_string(),
            before: snapshot(before),
            after: None,
        }
    }
}

/// The JSON snapshot of a record for the log.
pub fn snapshot(value: &impl Serialize) -> Option<serde_json::Value> {
    serde_json::to_value(value).ok()
}

/// Appends a change, inside the caller's transaction so that the log and the change commit
/// together.
pub async fn record(
    conn: &impl ConnectionTrait,
    actor: Option<&Actor>,
    now: DateTime<Utc>,
    change: Change<'_>,
) -> Result<()> {
    audit_log::Entity::insert(row(actor, now, change)).exec_without_returning(conn).await?;
    Ok(())
}

/// The log row of a change, for callers that batch their inserts.
pub fn row(actor: Option<&Actor>, now: DateTime<Utc>, change: Change<'_>) -> audit_log::ActiveModel {
    // kepu's own acts are recorded without an actor.
    let actor = actor.filter(|a| a.account_id().is_some());
    audit_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        at: Set(now),
        actor_id: Set(actor.map(|a| a.user_id)),
        actor_username: Set(actor.map(|a| a.username.clone())),
        action: Set(change.action),
        entity: Set(change.entity.to_string()),
        entity_id: Set(change.entity_id),
        before: Set(change.before),
        after: Set(change.after),
        request_id: Set(actor.and_then(|a| a.request_id.clone())),
    }
}

/// Filters of the audit listing.
#[derive(Debug, Default)]
pub struct AuditFilter {
    pub entity: Option<String>,
    pub entity_id: Option<String>,
}

/// The log, newest first.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: AuditFilter,
    page: PageRequest,
) -> Result<Paged<audit_log::Model>> {
    let mut q = audit_log::Entity::find();
    if let Some(e) = filter.entity {
        q = q.filter(audit_log::Column::Entity.eq(e));
    }
    if let Some(id) = filter.entity_id {
        q = q.filter(audit_log::Column::EntityId.eq(id));
    }
    if let Some(after) = page.after {
        q = q.filter(audit_log::Column::Id.lt(after.id));
    }
    let rows = q.order_by_desc(audit_log::Column::Id).limit(page.limit + 1).all(conn).await?;
    Ok(Paged::from_overfetch(rows, page.limit, |r| Cursor::id(r.id)))
}
