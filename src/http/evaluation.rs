//! Annual evaluation: `/v1/evaluation-cycles`, `/v1/evaluations`, `/v1/bases/{id}/evaluations`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use entity::evaluation as evaluation_row;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::enums::{EvaluationKind, EvaluationStatus, Grade};
use crate::domain::evaluation::{self, Cycle, EvaluationRecord, Measured, Rubric};
use crate::error::{Problem, Result};
use crate::http::accreditation::{AssignBody, ReviewView, ScoresBody};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, MaybeAuthUser};
use crate::http::{Page, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_evaluation_cycles, create_evaluation_cycle))
        .routes(routes!(list_evaluations))
        .routes(routes!(get_evaluation))
        .routes(routes!(put_self_report))
        .routes(routes!(assign_evaluation))
        .routes(routes!(score_evaluation))
        .routes(routes!(finalize_evaluation))
        .routes(routes!(list_base_evaluations))
}

/// An evaluation cycle.
#[derive(Debug, Serialize, ToSchema)]
pub struct CycleView {
    pub id: Uuid,
    #[schema(example = 2026)]
    pub year: i32,
    pub rubric: Rubric,
    pub self_report_deadline: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// Evaluations opened with the cycle (only when it is created).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluations_opened: Option<usize>,
}

impl CycleView {
    fn of(c: Cycle, opened: Option<usize>) -> Self {
        Self {
            id: c.cycle.id,
            year: c.cycle.year,
            rubric: c.rubric,
            self_report_deadline: c.cycle.self_report_deadline,
            created_at: c.cycle.created_at,
            evaluations_opened: opened,
        }
    }
}

/// List evaluation cycles
///
/// Public: the cycles and their rubrics, newest first.
#[utoipa::path(
    get, path = "/v1/evaluation-cycles", tag = "evaluation", operation_id = "list_evaluation_cycles",
    params(PageParams),
    responses((status = 200, description = "A page of cycles", body = Page<CycleView>))
)]
async fn list_evaluation_cycles(
    State(state): State<AppState>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<CycleView>>> {
    Ok(Json(Page::from_paged(evaluation::cycles(&state.db, paging.parse()?).await?, |c| CycleView::of(c, None))))
}

/// A new cycle.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCycle {
    #[schema(minimum = 2000, maximum = 2999, example = 2026)]
    pub year: i32,
    pub rubric: Rubric,
    /// Bases file their self-reports until then.
    #[schema(pattern = "^2[0-9]{3}-")]
    pub self_report_deadline: DateTime<Utc>,
}

/// Open an evaluation cycle
///
/// Admin only. Opens one annual evaluation for every base accredited now.
#[utoipa::path(
    post, path = "/v1/evaluation-cycles", tag = "evaluation", operation_id = "create_evaluation_cycle",
    request_body = NewCycle,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Opened", body = CycleView),
        (status = 409, description = "A cycle for the year exists", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_evaluation_cycle(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiJson(b): ApiJson<NewCycle>,
) -> Result<(StatusCode, Json<CycleView>)> {
    let (cycle, n) =
        evaluation::open_cycle(&state.db, &actor, b.year, b.rubric, b.self_report_deadline, state.now()).await?;
    Ok((StatusCode::CREATED, Json(CycleView::of(cycle, Some(n)))))
}

/// An evaluation.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationView {
    pub id: Uuid,
    pub cycle_id: Uuid,
    pub year: i32,
    pub base_id: Uuid,
    pub kind: EvaluationKind,
    pub status: EvaluationStatus,
    /// What the base reports about its year (free-form, per the cycle's instructions).
    #[schema(value_type = Option<Object>)]
    pub self_report: Option<serde_json::Value>,
    /// What kepu measured for the base's year (live while open, frozen when finalised).
    pub measured: Measured,
    /// Points the rubric's threshold bands suggest from the measured figures.
    pub suggested_points: BTreeMap<String, f64>,
    pub reviews: Vec<ReviewView>,
    pub score: Option<f64>,
    pub grade: Option<Grade>,
    /// For a re-evaluation: the end of the rectification period.
    pub due_at: Option<DateTime<Utc>>,
    pub finalized_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EvaluationView {
    fn of(r: EvaluationRecord) -> Self {
        let measured = r.measured();
        let suggested_points = r
            .cycle
            .rubric
            .indicators()
            .filter_map(|i| evaluation::suggested(i, &measured).map(|p| (i.key.clone(), p)))
            .collect();
        let e = r.evaluation;
        Self {
            id: e.id,
            cycle_id: e.cycle_id,
            year: r.cycle.cycle.year,
            base_id: e.base_id,
            kind: EvaluationKind::from_db(&e.kind),
            status: EvaluationStatus::from_db(&e.status),
            self_report: e.self_report,
            measured,
            suggested_points,
            reviews: r.reviews.into_iter().map(ReviewView::of).collect(),
            score: e.score,
            grade: e.grade.as_deref().map(Grade::from_db),
            due_at: e.due_at,
            finalized_at: e.finalized_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A published result.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationResult {
    pub id: Uuid,
    pub cycle_id: Uuid,
    pub kind: EvaluationKind,
    pub score: Option<f64>,
    pub grade: Option<Grade>,
    pub finalized_at: Option<DateTime<Utc>>,
}

impl EvaluationResult {
    fn of(e: evaluation_row::Model) -> Self {
        Self {
            id: e.id,
            cycle_id: e.cycle_id,
            kind: EvaluationKind::from_db(&e.kind),
            score: e.score,
            grade: e.grade.as_deref().map(Grade::from_db),
            finalized_at: e.finalized_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvaluationListParams {
    pub cycle_id: Option<Uuid>,
    pub base_id: Option<Uuid>,
}

/// List evaluations
///
/// Open and final, with self-reports and points: the bureau all; an operator its bases'; an
/// evaluator those assigned to it; a district officer its district's bases'. Schools: 403.
#[utoipa::path(
    get, path = "/v1/evaluations", tag = "evaluation", operation_id = "list_evaluations",
    params(EvaluationListParams, PageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of evaluations", body = Page<EvaluationResult>))
)]
async fn list_evaluations(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiQuery(p): ApiQuery<EvaluationListParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<EvaluationResult>>> {
    let page = paging.parse()?;
    let paged = evaluation::list(&state.db, &actor, p.cycle_id, p.base_id, page).await?;
    Ok(Json(Page::from_paged(paged, EvaluationResult::of)))
}

/// Get an evaluation
///
/// With the base's measured figures beside its self-report, and the experts' scores. Read by
/// those who may list it: the bureau, the base's operators, the experts assigned to it, the
/// officer of the base's district; 403 for anyone else.
#[utoipa::path(
    get, path = "/v1/evaluations/{id}", tag = "evaluation", operation_id = "get_evaluation",
    params(("id" = Uuid, Path, description = "Evaluation id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The evaluation", body = EvaluationView),
        (status = 404, description = "No such evaluation", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_evaluation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<EvaluationView>> {
    Ok(Json(EvaluationView::of(evaluation::get(&state.db, &actor, id).await?)))
}

/// A self-report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"report": {"open_days": 290, "visitors": 52000, "school_programmes": "12 courses with 30 schools"}}))]
pub struct SelfReportBody {
    /// The base's figures and narrative, as a JSON object (at most 20000 bytes).
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

/// File the self-report
///
/// The base's operators, until the cycle's deadline (409 `deadline-passed`).
#[utoipa::path(
    put, path = "/v1/evaluations/{id}/self-report", tag = "evaluation", operation_id = "put_self_report",
    params(("id" = Uuid, Path, description = "Evaluation id")),
    request_body = SelfReportBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Filed", body = EvaluationView),
        (status = 404, description = "No such evaluation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`deadline-passed` or `invalid-state` (finalised)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn put_self_report(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<SelfReportBody>,
) -> Result<Json<EvaluationView>> {
    Ok(Json(EvaluationView::of(evaluation::self_report(&state.db, &actor, id, b.report, state.now()).await?)))
}

/// Assign experts to an evaluation
///
/// Admin only.
#[utoipa::path(
    post, path = "/v1/evaluations/{id}/assign", tag = "evaluation", operation_id = "assign_evaluation",
    params(("id" = Uuid, Path, description = "Evaluation id")),
    request_body = AssignBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Assigned", body = EvaluationView),
        (status = 404, description = "No such evaluation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state` (finalised)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn assign_evaluation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<AssignBody>,
) -> Result<Json<EvaluationView>> {
    Ok(Json(EvaluationView::of(evaluation::assign(&state.db, &actor, id, b.evaluator_ids, state.now()).await?)))
}

/// Score an evaluation
///
/// An assigned expert: points for every indicator of the rubric.
#[utoipa::path(
    put, path = "/v1/evaluations/{id}/scores", tag = "evaluation", operation_id = "score_evaluation",
    params(("id" = Uuid, Path, description = "Evaluation id")),
    request_body = ScoresBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Scored", body = EvaluationView),
        (status = 404, description = "No such evaluation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state` (finalised)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn score_evaluation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<ScoresBody>,
) -> Result<Json<EvaluationView>> {
    Ok(Json(EvaluationView::of(evaluation::score(&state.db, &actor, id, b.input(), state.now()).await?)))
}

/// Finalise an evaluation
///
/// Admin only. The score is the mean of the experts' totals; the grade follows (excellent ≥ 90,
/// good ≥ 70, pass ≥ 60, fail below). A finalised evaluation cannot change. A fail puts the base
/// in rectification for 6 months with a re-evaluation; a failed re-evaluation or a second
/// consecutive annual fail revokes it: its future sessions and their bookings are cancelled
/// (the schools notified) and its signs marked for removal.
#[utoipa::path(
    post, path = "/v1/evaluations/{id}/finalize", tag = "evaluation", operation_id = "finalize_evaluation",
    params(("id" = Uuid, Path, description = "Evaluation id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Finalised", body = EvaluationView),
        (status = 404, description = "No such evaluation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: finalised already, or nobody scored", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn finalize_evaluation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<EvaluationView>> {
    Ok(Json(EvaluationView::of(evaluation::finalize(&state.db, &actor, id, state.now()).await?)))
}

/// A base's evaluation results
///
/// Public for accredited bases (and those in rectification); otherwise for the bureau and the
/// base's operators. Finalised results, newest first.
#[utoipa::path(
    get, path = "/v1/bases/{id}/evaluations", tag = "evaluation", operation_id = "list_base_evaluations",
    params(("id" = Uuid, Path, description = "Base id"), PageParams),
    responses(
        (status = 200, description = "A page of published results", body = Page<EvaluationResult>),
        (status = 401, description = "Not public: sign in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not public and not yours", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such base", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_base_evaluations(
    State(state): State<AppState>,
    MaybeAuthUser(actor): MaybeAuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<EvaluationResult>>> {
    let rows = evaluation::results(&state.db, actor.as_ref(), id, paging.parse()?, state.now()).await?;
    Ok(Json(Page::from_paged(rows, EvaluationResult::of)))
}
