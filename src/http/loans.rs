//! Exhibit sharing (展品共享): `/v1/exhibits/{id}/loans`, `/v1/exhibit-loans`, and an exhibit's
//! maintenance notes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use entity::exhibit_maintenance;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::enums::{LoanStatus, ReturnCondition};
use crate::domain::loans::{self, LoanFilter, LoanRecord, LoanRequest, LoanStep};
use crate::domain::validate::Validator;
use crate::error::{Problem, Result};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::http::{Page, PageParams, with_etag};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_loan))
        .routes(routes!(list_loans))
        .routes(routes!(get_loan))
        .routes(routes!(approve_loan))
        .routes(routes!(decline_loan))
        .routes(routes!(cancel_loan))
        .routes(routes!(dispatch_loan))
        .routes(routes!(return_loan))
        .routes(routes!(list_exhibit_maintenance))
}

/// A request to borrow an exhibit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "borrower_base_id": "019a0000-0000-7000-8000-000000000002",
    "starts_on": "2027-03-01",
    "ends_on": "2027-03-31",
    "purpose": "Science Week exhibition on the Earth's rotation"
}))]
pub struct LoanRequestBody {
    /// The base that borrows; the caller must operate it.
    pub borrower_base_id: Uuid,
    /// First day (local), today or later.
    #[schema(pattern = "^2[0-9]{3}-")]
    pub starts_on: NaiveDate,
    /// Last day (local), at most 366 days after the first.
    #[schema(pattern = "^2[0-9]{3}-")]
    pub ends_on: NaiveDate,
    /// What the exhibit is for, 1–2000 characters.
    #[schema(min_length = 1, max_length = 2000)]
    pub purpose: String,
}

/// An exhibit loan as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoanView {
    pub id: Uuid,
    pub exhibit_id: Uuid,
    #[schema(example = "傅科摆 Foucault pendulum")]
    pub exhibit_name: String,
    /// The owner: the exhibit stays its own throughout.
    pub owner_base_id: Uuid,
    pub owner_base_name: String,
    pub borrower_base_id: Uuid,
    pub borrower_base_name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub purpose: String,
    pub status: LoanStatus,
    /// The owner's conditions of its approval.
    pub conditions: Option<String>,
    pub decline_reason: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub returned_at: Option<DateTime<Utc>>,
    /// The condition report of the return.
    pub return_condition: Option<ReturnCondition>,
    pub return_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl LoanView {
    fn of(r: LoanRecord) -> Self {
        let l = r.loan;
        Self {
            id: l.id,
            exhibit_id: l.exhibit_id,
            exhibit_name: r.exhibit_name,
            owner_base_id: l.owner_base_id,
            owner_base_name: r.owner_base_name,
            borrower_base_id: l.borrower_base_id,
            borrower_base_name: r.borrower_base_name,
            starts_on: l.starts_on,
            ends_on: l.ends_on,
            purpose: l.purpose,
            status: LoanStatus::from_db(&l.status),
            conditions: l.conditions,
            decline_reason: l.decline_reason,
            decided_at: l.decided_at,
            dispatched_at: l.dispatched_at,
            returned_at: l.returned_at,
            return_condition: l.return_condition.as_deref().map(ReturnCondition::from_db),
            return_note: l.return_note,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }

    fn response(r: LoanRecord, status: StatusCode) -> Response {
        let version = r.loan.version;
        with_etag(version, (status, Json(Self::of(r))))
    }
}

/// Request an exhibit loan
///
/// An operator of the borrowing base (or an admin), for a shareable exhibit of another base
/// that is not in maintenance or retired, for days no approved or current loan of it holds.
/// The owner's operators are notified.
#[utoipa::path(
    post, path = "/v1/exhibits/{id}/loans", tag = "exhibits", operation_id = "request_loan",
    params(("id" = Uuid, Path, description = "Exhibit id")),
    request_body = LoanRequestBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Requested", body = LoanView,
            headers(("ETag" = String, description = "Version of the loan"))),
        (status = 404, description = "No such exhibit", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`not-shareable`, `exhibit-unavailable` (maintenance or retired) or `loan-overlap` (another loan holds some of those days)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
async fn request_loan(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(exhibit_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<LoanRequestBody>,
) -> Result<Response> {
    let mut v = Validator::new();
    let purpose = v.text("purpose", &body.purpose, 2000);
    v.year("starts_on", chrono::Datelike::year(&body.starts_on));
    v.year("ends_on", chrono::Datelike::year(&body.ends_on));
    v.finish()?;
    let req = LoanRequest {
        borrower_base_id: body.borrower_base_id,
        starts_on: body.starts_on,
        ends_on: body.ends_on,
        purpose: purpose.unwrap_or_default(),
    };
    let r = loans::request(&state.db, &actor, exhibit_id, req, state.now()).await?;
    Ok(LoanView::response(r, StatusCode::CREATED))
}

/// Filters of the loan list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoanListParams {
    /// Loans where this base lends or borrows.
    pub base_id: Option<Uuid>,
    pub exhibit_id: Option<Uuid>,
    pub status: Option<LoanStatus>,
}

/// List exhibit loans
///
/// Operators see the loans of their bases (lent and borrowed), district officers those with
/// either base in their district, the bureau all. Oldest first.
#[utoipa::path(
    get, path = "/v1/exhibit-loans", tag = "exhibits", operation_id = "list_loans",
    params(LoanListParams, PageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of loans", body = Page<LoanView>))
)]
async fn list_loans(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiQuery(p): ApiQuery<LoanListParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<LoanView>>> {
    let filter = LoanFilter { base_id: p.base_id, exhibit_id: p.exhibit_id, status: p.status };
    let paged = loans::list(&state.db, &actor, &filter, paging.parse()?).await?;
    Ok(Json(Page::from_paged(paged, LoanView::of)))
}

/// Get an exhibit loan
///
/// Both bases' operators, their districts' officers and the bureau; 404 for others.
#[utoipa::path(
    get, path = "/v1/exhibit-loans/{id}", tag = "exhibits", operation_id = "get_loan",
    params(("id" = Uuid, Path, description = "Loan id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The loan", body = LoanView,
            headers(("ETag" = String, description = "Version of the loan"))),
        (status = 404, description = "No such loan (or not yours to see)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_loan(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response> {
    Ok(LoanView::response(loans::get(&state.db, &actor, id).await?, StatusCode::OK))
}

async fn take_step(
    state: &AppState,
    actor: &crate::domain::access::Actor,
    id: Uuid,
    step: LoanStep,
) -> Result<Response> {
    Ok(LoanView::response(loans::step(&state.db, actor, id, step, state.now()).await?, StatusCode::OK))
}

/// An optional text, checked: at most 2000 characters, blank means none.
fn opt_note(field: &str, text: Option<String>) -> Result<Option<String>> {
    let mut v = Validator::new();
    let t = v.opt_text(field, text.as_deref(), 2000);
    v.finish()?;
    Ok(t.flatten())
}

/// Approving a loan.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"conditions": "Insured by the borrower; moved by the owner's technicians only"}))]
pub struct ApproveLoanBody {
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub conditions: Option<String>,
}

/// Approve an exhibit loan
///
/// An operator of the owning base, on a `requested` loan, with its conditions. Other requests
/// for overlapping days are declined at once and their borrowers told.
#[utoipa::path(
    post, path = "/v1/exhibit-loans/{id}/approve", tag = "exhibits", operation_id = "approve_loan",
    params(("id" = Uuid, Path, description = "Loan id")),
    request_body = ApproveLoanBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Approved", body = LoanView),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`loan-state`, `loan-overlap`, `not-shareable`, `exhibit-unavailable` or `loan-period-over`",
            body = Problem, content_type = "application/problem+json"),
    )
)]
async fn approve_loan(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ApproveLoanBody>,
) -> Result<Response> {
    let conditions = opt_note("conditions", body.conditions)?;
    take_step(&state, &actor, id, LoanStep::Approve { conditions }).await
}

/// Declining a loan.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "The pendulum is booked for our own open day"}))]
pub struct DeclineLoanBody {
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// Decline an exhibit loan
///
/// An operator of the owning base, on a `requested` loan.
#[utoipa::path(
    post, path = "/v1/exhibit-loans/{id}/decline", tag = "exhibits", operation_id = "decline_loan",
    params(("id" = Uuid, Path, description = "Loan id")),
    request_body = DeclineLoanBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Declined", body = LoanView),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`loan-state`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn decline_loan(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<DeclineLoanBody>,
) -> Result<Response> {
    let reason = opt_note("reason", body.reason)?;
    take_step(&state, &actor, id, LoanStep::Decline { reason }).await
}

/// Cancel an exhibit loan
///
/// An operator of either base, before the exhibit leaves (`requested` or `approved`).
#[utoipa::path(
    post, path = "/v1/exhibit-loans/{id}/cancel", tag = "exhibits", operation_id = "cancel_loan",
    params(("id" = Uuid, Path, description = "Loan id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled", body = LoanView),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`loan-state`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_loan(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response> {
    take_step(&state, &actor, id, LoanStep::Cancel).await
}

/// Dispatch a lent exhibit
///
/// An operator of the owning base, on an `approved` loan: the exhibit shows `on_loan` and
/// appears in the borrower's exhibit list.
#[utoipa::path(
    post, path = "/v1/exhibit-loans/{id}/dispatch", tag = "exhibits", operation_id = "dispatch_loan",
    params(("id" = Uuid, Path, description = "Loan id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "On loan", body = LoanView),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`loan-state`, `exhibit-out` (still on an earlier loan), `exhibit-unavailable` or `loan-period-over`",
            body = Problem, content_type = "application/problem+json"),
    )
)]
async fn dispatch_loan(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response> {
    take_step(&state, &actor, id, LoanStep::Dispatch).await
}

/// The condition report of a return.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"condition": "damaged", "note": "Pendulum wire frayed; bob scratched"}))]
pub struct ReturnLoanBody {
    pub condition: ReturnCondition,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

/// Record a lent exhibit's return
///
/// An operator of the owning base, on an `on_loan` loan, with a condition report: `good` puts
/// the exhibit back on display; `damaged` puts it in maintenance and opens a maintenance note.
#[utoipa::path(
    post, path = "/v1/exhibit-loans/{id}/return", tag = "exhibits", operation_id = "return_loan",
    params(("id" = Uuid, Path, description = "Loan id")),
    request_body = ReturnLoanBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Returned", body = LoanView),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`loan-state`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn return_loan(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ReturnLoanBody>,
) -> Result<Response> {
    let note = opt_note("note", body.note)?;
    take_step(&state, &actor, id, LoanStep::Return { condition: body.condition, note }).await
}

/// A maintenance note on an exhibit.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenanceNoteView {
    pub id: Uuid,
    pub exhibit_id: Uuid,
    /// The loan whose return opened it.
    pub loan_id: Option<Uuid>,
    #[schema(example = "Pendulum wire frayed; bob scratched")]
    pub note: String,
    pub opened_at: DateTime<Utc>,
    /// Set when the owner puts the exhibit back on display.
    pub closed_at: Option<DateTime<Utc>>,
}

impl MaintenanceNoteView {
    fn of(m: exhibit_maintenance::Model) -> Self {
        Self {
            id: m.id,
            exhibit_id: m.exhibit_id,
            loan_id: m.loan_id,
            note: m.note,
            opened_at: m.opened_at,
            closed_at: m.closed_at,
        }
    }
}

/// List an exhibit's maintenance notes
///
/// The operators of the exhibit's base (or an admin). Opened by damaged returns; closed when
/// the exhibit is put back on display.
#[utoipa::path(
    get, path = "/v1/exhibits/{id}/maintenance", tag = "exhibits", operation_id = "list_exhibit_maintenance",
    params(("id" = Uuid, Path, description = "Exhibit id"), PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of notes", body = Page<MaintenanceNoteView>),
        (status = 404, description = "No such exhibit", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_exhibit_maintenance(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Response> {
    let paged = loans::maintenance_notes(&state.db, &actor, id, paging.parse()?).await?;
    Ok(Json(Page::from_paged(paged, MaintenanceNoteView::of)).into_response())
}
