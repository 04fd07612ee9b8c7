//! `/v1/admin`: the bureau's checks on the system itself.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::access::{Action, authorize};
use crate::domain::capacity;
use crate::error::Result;
use crate::http::extract::AuthUser;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_consistency))
}

/// A pool whose bookkeeping is wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolViolation {
    pub pool_id: Uuid,
    pub capacity: i32,
    pub used: i32,
    /// The sum of the holding bookings drawing on the pool.
    pub expected_used: i64,
}

/// The result of the consistency check.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"consistent": true, "violations": []}))]
pub struct Consistency {
    pub consistent: bool,
    pub violations: Vec<PoolViolation>,
}

/// Check capacity consistency
///
/// Admin only. For every pool: `used <= capacity` and `used` equals the sum of the active
/// bookings that draw on it. Answers the violations (none when consistent).
#[utoipa::path(
    get, path = "/v1/admin/consistency", tag = "admin", operation_id = "get_consistency",
    security(("bearer" = [])),
    responses((status = 200, description = "The check's result", body = Consistency))
)]
async fn get_consistency(State(state): State<AppState>, AuthUser(actor): AuthUser) -> Result<Json<Consistency>> {
    authorize(&actor, Action::ReadConsistency)?;
    let violations: Vec<PoolViolation> = capacity::violations(&state.db)
        .await?
        .into_iter()
        .map(|v| PoolViolation {
            pool_id: v.pool_id,
            capacity: v.capacity,
            used: v.used,
            expected_used: v.expected_used,
        })
        .collect();
    Ok(Json(Consistency { consistent: violations.is_empty(), violations }))
}
