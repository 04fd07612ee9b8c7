//! `/v1/audit`: the append-only audit log, for admins.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use entity::audit_log;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::access::{Action, authorize};
use crate::domain::audit::{self, AuditFilter};
use crate::error::Result;
use crate::http::extract::{ApiQuery, AuthUser};
use crate::http::{Page, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// One recorded change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    #[schema(example = "admin")]
    pub actor_username: Option<String>,
    #[schema(example = "base.update")]
    pub action: String,
    #[schema(example = "base")]
    pub entity: String,
    pub entity_id: String,
    /// The record before the change (absent on creation).
    pub before: Option<serde_json::Value>,
    /// The record after the change (absent on deletion).
    pub after: Option<serde_json::Value>,
    pub request_id: Option<String>,
}

impl AuditEntry {
    fn of(m: audit_log::Model) -> Self {
        Self {
            id: m.id,
            at: m.at,
            actor_id: m.actor_id,
            actor_username: m.actor_username,
            action: m.action,
            entity: m.entity,
            entity_id: m.entity_id,
            before: m.before,
            after: m.after,
            request_id: m.request_id,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entity kind: `base`, `exhibit`, `school`, `user`.
    pub entity: Option<String>,
    /// The entity's id.
    pub entity_id: Option<String>,
}

/// Read the audit log
///
/// Admin only. Newest first.
#[utoipa::path(
    get, path = "/v1/audit", tag = "audit", operation_id = "list_audit",
    params(AuditParams, PageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of changes, newest first", body = Page<AuditEntry>))
)]
async fn list_audit(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiQuery(p): ApiQuery<AuditParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<AuditEntry>>> {
    authorize(&actor, Action::ReadAudit)?;
    let page = paging.parse()?;
    let filter = AuditFilter { entity: p.entity, entity_id: p.entity_id };
    let paged = audit::list(&state.db, filter, page).await?;
    Ok(Json(Page::from_paged(paged, AuditEntry::of)))
}
