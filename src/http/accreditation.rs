//! Accreditation: `/v1/accreditation-standards`, `/v1/accreditations`, `/v1/certificates`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use entity::{objection, review};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::access::{self, Actor};
use crate::domain::accreditation::{
    self, AccreditationFilter, AccreditationRecord, Application, Criterion, DraftChange, Figures, NewObjection,
    NewStandard, Requirement, Standard, Unmet,
};
use crate::domain::enums::{AccreditationStatus, ObjectionStatus, Subcategory};
use crate::error::{Problem, Result};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, ClientIp, IfMatch};
use crate::http::{Page, PageParams, with_etag};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_accreditation_standards, create_accreditation_standard))
        .routes(routes!(list_accreditations, create_accreditation))
        .routes(routes!(get_accreditation, edit_accreditation))
        .routes(routes!(submit_accreditation))
        .routes(routes!(recommend_accreditation))
        .routes(routes!(reject_accreditation))
        .routes(routes!(assign_accreditation))
        .routes(routes!(score_accreditation))
        .routes(routes!(start_public_notice))
        .routes(routes!(create_objection))
        .routes(routes!(resolve_objection))
        .routes(routes!(decide_accreditation))
        .routes(routes!(get_certificate))
}

/// List accreditation standards
///
/// Public. Every version, oldest first; the one in force is the latest that has taken effect.
#[utoipa::path(
    get, path = "/v1/accreditation-standards", tag = "accreditation", operation_id = "list_accreditation_standards",
    params(PageParams),
    responses((status = 200, description = "A page of versions", body = Page<Standard>))
)]
async fn list_accreditation_standards(
    State(state): State<AppState>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<Standard>>> {
    Ok(Json(Page::from_paged(accreditation::standards(&state.db, paging.parse()?).await?, |s| s)))
}

/// A new version of the accreditation standard.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStandardBody {
    #[schema(example = "2027", max_length = 40)]
    pub version: String,
    #[schema(pattern = "^2[0-9]{3}-")]
    pub effective_from: DateTime<Utc>,
    /// The minimums of every subcategory.
    pub requirements: BTreeMap<Subcategory, Requirement>,
    #[schema(min_items = 1)]
    pub scoring_sheet: Vec<Criterion>,
    /// Years a certificate is valid; default 5.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10, default = 5)]
    pub validity_years: Option<i32>,
}

/// Publish an accreditation standard
///
/// Admin only. A new version takes effect at `effective_from`.
#[utoipa::path(
    post, path = "/v1/accreditation-standards", tag = "accreditation", operation_id = "create_accreditation_standard",
    request_body = NewStandardBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Published", body = Standard),
        (status = 409, description = "The version exists", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_accreditation_standard(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiJson(b): ApiJson<NewStandardBody>,
) -> Result<(StatusCode, Json<Standard>)> {
    let s = NewStandard {
        version: b.version,
        effective_from: b.effective_from,
        requirements: b.requirements,
        scoring_sheet: b.scoring_sheet,
        validity_years: b.validity_years.unwrap_or(5),
    };
    Ok((StatusCode::CREATED, Json(accreditation::create_standard(&state.db, &actor, s, state.now()).await?)))
}

/// An expert's review of an application.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub evaluator_id: Uuid,
    pub assigned_at: DateTime<Utc>,
    pub scored_at: Option<DateTime<Utc>>,
    /// Points by criterion (or indicator).
    pub points: Option<BTreeMap<String, f64>>,
    pub total: Option<f64>,
    pub comment: Option<String>,
    /// Comments by criterion (or indicator).
    pub comments: Option<BTreeMap<String, String>>,
}

impl ReviewView {
    pub fn of(r: review::Model) -> Self {
        Self {
            evaluator_id: r.evaluator_id,
            assigned_at: r.assigned_at,
            scored_at: r.scored_at,
            points: r.points.and_then(|p| serde_json::from_value(p).ok()),
            total: r.total,
            comment: r.comment,
            comments: r.comments.and_then(|c| serde_json::from_value(c).ok()),
        }
    }
}

/// An objection to an application.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectionView {
    pub id: Uuid,
    pub accreditation_id: Uuid,
    /// Who objected, as they gave it: shown to the bureau alone (and to the objector in the
    /// answer to filing it); `null` for everyone else, the base's people included.
    pub name: Option<String>,
    /// How to reach the objector: the bureau's alone, as `name`.
    pub contact: Option<String>,
    pub reason: String,
    pub status: ObjectionStatus,
    pub resolution: Option<String>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl ObjectionView {
    /// The objection, with who objected only when `objector_shown`.
    fn of(o: objection::Model, objector_shown: bool) -> Self {
        let (name, contact) = if objector_shown { (o.name, o.contact) } else { (None, None) };
        Self {
            status: ObjectionStatus::from_db(&o.status),
            id: o.id,
            accreditation_id: o.accreditation_id,
            name,
            contact,
            reason: o.reason,
            resolution: o.resolution,
            created_at: o.created_at,
            resolved_at: o.resolved_at,
        }
    }
}

/// An accreditation application.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccreditationView {
    pub id: Uuid,
    pub base_id: Uuid,
    pub standard_id: Uuid,
    pub applicant_id: Uuid,
    pub status: AccreditationStatus,
    pub figures: Figures,
    pub evidence_links: Vec<String>,
    /// Conditions of the standard the figures do not meet, recorded at submission.
    pub unmet: Option<Vec<Unmet>>,
    pub district_comment: Option<String>,
    pub notice_starts_at: Option<DateTime<Utc>>,
    /// The public notice lasts 5 working days (Monday–Friday, Asia/Shanghai).
    pub notice_ends_at: Option<DateTime<Utc>>,
    pub decision_comment: Option<String>,
    #[schema(example = "GZKP-2026-0042")]
    pub certificate_number: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reviews: Vec<ReviewView>,
    /// The mean of the experts' totals.
    pub mean_score: Option<f64>,
    pub objections: Vec<ObjectionView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The base's names (in lists, so that a list needs no lookup per application).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_name_zh: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_name_en: Option<String>,
}

impl AccreditationView {
    /// The application as `actor` may see it.
    fn of(r: AccreditationRecord, actor: &Actor) -> Self {
        let objectors_shown = access::sees_objectors(actor);
        let mean_score = r.mean_score().map(|s| (s * 100.0).round() / 100.0);
        let a = r.accreditation;
        Self {
            id: a.id,
            base_id: a.base_id,
            standard_id: a.standard_id,
            applicant_id: a.applicant_id,
            status: AccreditationStatus::from_db(&a.status),
            figures: serde_json::from_value(a.figures).unwrap_or(Figures {
                exhibition_area_m2: 0.0,
                open_days_per_year: 0,
                free_days_for_students: 0,
                annual_visitors: 0,
                staff: 0,
                interactive_exhibits: 0,
            }),
            evidence_links: serde_json::from_value(a.evidence_links).unwrap_or_default(),
            unmet: a.unmet.and_then(|u| serde_json::from_value(u).ok()),
            district_comment: a.district_comment,
            notice_starts_at: a.notice_starts_at,
            notice_ends_at: a.notice_ends_at,
            decision_comment: a.decision_comment,
            certificate_number: a.certificate_number,
            decided_at: a.decided_at,
            reviews: r.reviews.into_iter().map(ReviewView::of).collect(),
            mean_score,
            objections: r.objections.into_iter().map(|o| ObjectionView::of(o, objectors_shown)).collect(),
            created_at: a.created_at,
            updated_at: a.updated_at,
            base_name_zh: None,
            base_name_en: None,
        }
    }
}

/// A new application.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccreditation {
    pub base_id: Uuid,
    pub figures: Figures,
    /// Links to evidence (photos, reports): http(s) URLs, at most 20.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub evidence_links: Vec<String>,
}

/// The parts of a draft to replace; a field left out stays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"figures": {"exhibition_area_m2": 1350.0, "open_days_per_year": 290, "free_days_for_students": 30, "annual_visitors": 47000, "staff": 14, "interactive_exhibits": 28}}))]
pub struct DraftPatch {
    pub figures: Option<Figures>,
    /// Links to evidence (photos, reports): http(s) URLs, at most 20.
    #[schema(max_items = 20)]
    pub evidence_links: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccreditationListParams {
    pub base_id: Option<Uuid>,
    pub status: Option<AccreditationStatus>,
}

/// List accreditation applications
///
/// Scoped: the bureau sees all, a district officer its district's, an operator its bases',
/// an evaluator those assigned to it.
#[utoipa::path(
    get, path = "/v1/accreditations", tag = "accreditation", operation_id = "list_accreditations",
    params(AccreditationListParams, PageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of applications", body = Page<AccreditationView>))
)]
async fn list_accreditations(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiQuery(p): ApiQuery<AccreditationListParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<AccreditationView>>> {
    let page = paging.parse()?;
    let f = AccreditationFilter { base_id: p.base_id, status: p.status };
    let paged = accreditation::list(&state.db, &actor, &f, page).await?;
    let names =
        crate::domain::bases::both_names(&state.db, paged.items.iter().map(|r| r.accreditation.base_id)).await?;
    Ok(Json(Page::from_paged(paged, |r| {
        let (zh, en) = names.get(&r.accreditation.base_id).cloned().unzip();
        AccreditationView { base_name_zh: zh, base_name_en: en, ..AccreditationView::of(r, &actor) }
    })))
}

/// Apply for accreditation
///
/// The base's operators, or its district's officer. Opens a `draft` with the self-reported
/// figures, checked against the standard on submission.
#[utoipa::path(
    post, path = "/v1/accreditations", tag = "accreditation", operation_id = "create_accreditation",
    request_body = NewAccreditation,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A draft application", body = AccreditationView),
        (status = 409, description = "An application is already in progress", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_accreditation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiJson(b): ApiJson<NewAccreditation>,
) -> Result<(StatusCode, Json<AccreditationView>)> {
    let a = Application { base_id: b.base_id, figures: b.figures, evidence_links: b.evidence_links };
    Ok((
        StatusCode::CREATED,
        Json(AccreditationView::of(accreditation::apply(&state.db, &actor, a, state.now()).await?, &actor)),
    ))
}

/// Get an accreditation application
///
/// The bureau, the base's operators, the district's officer, the assigned experts.
#[utoipa::path(
    get, path = "/v1/accreditations/{id}", tag = "accreditation", operation_id = "get_accreditation",
    params(("id" = Uuid, Path, description = "Application id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The application", body = AccreditationView,
            headers(("ETag" = String, description = "Version of the application, for editing a draft"))),
        (status = 404, description = "No such application", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_accreditation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response> {
    let record = accreditation::get(&state.db, &actor, id).await?;
    Ok(with_etag(record.accreditation.version, Json(AccreditationView::of(record, &actor))))
}

/// Edit a draft application
///
/// Whoever may apply for the base, while the application is a `draft`: replaces its figures
/// or evidence links. Requires `If-Match` with the current `ETag`.
#[utoipa::path(
    patch, path = "/v1/accreditations/{id}", tag = "accreditation", operation_id = "edit_accreditation",
    params(
        ("id" = Uuid, Path, description = "Application id"),
        ("If-Match" = String, Header, description = "The ETag last read, e.g. `\"1\"`"),
    ),
    request_body = DraftPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The edited draft", body = AccreditationView,
            headers(("ETag" = String, description = "New version of the application"))),
        (status = 404, description = "No such application", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: the application is no longer a draft", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The application changed since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "`If-Match` is missing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn edit_accreditation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<DraftPatch>,
) -> Result<Response> {
    let change = DraftChange { figures: patch.figures, evidence_links: patch.evidence_links };
    let record = accreditation::edit_draft(&state.db, &actor, id, if_match.required()?, change, state.now()).await?;
    Ok(with_etag(record.accreditation.version, Json(AccreditationView::of(record, &actor))))
}

/// Submitting a draft.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// Submit even though the figures miss conditions of the standard; they are recorded for
    /// the reviewers.
    #[serde(default)]
    pub acknowledge_unmet: bool,
}

/// Submit an application
///
/// Checks the figures against the standard in force: every unmet condition is a 422 naming
/// it, unless `acknowledge_unmet` is true.
#[utoipa::path(
    post, path = "/v1/accreditations/{id}/submit", tag = "accreditation", operation_id = "submit_accreditation",
    params(("id" = Uuid, Path, description = "Application id")),
    request_body = SubmitBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Submitted", body = AccreditationView),
        (status = 404, description = "No such application", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: not a draft", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn submit_accreditation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<SubmitBody>,
) -> Result<Json<AccreditationView>> {
    Ok(Json(AccreditationView::of(
        accreditation::submit(&state.db, &actor, id, b.acknowledge_unmet, state.now()).await?,
        &actor,
    )))
}

/// A comment with a decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"comment": "meets the district's plan for science education"}))]
pub struct CommentBody {
    #[schema(min_length = 1, max_length = 2000)]
    pub comment: String,
}

/// Recommend an application
///
/// The district officer of the base's district, on a `submitted` application.
#[utoipa::path(
    post, path = "/v1/accreditations/{id}/recommend", tag = "accreditation", operation_id = "recommend_accreditation",
    params(("id" = Uuid, Path, description = "Application id")),
    request_body = CommentBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recommended", body = AccreditationView),
        (status = 404, description = "No such application", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn recommend_accreditation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<CommentBody>,
) -> Result<Json<AccreditationView>> {
    let r = accreditation::district_review(&state.db, &actor, id, true, b.comment, state.now()).await?;
    Ok(Json(AccreditationView::of(r, &actor)))
}

/// Reject an application at district level
///
/// The district officer of the base's district, on a `submitted` application.
#[utoipa::path(
    post, path = "/v1/accreditations/{id}/reject", tag = "accreditation", operation_id = "reject_accreditation",
    params(("id" = Uuid, Path, description = "Application id")),
    request_body = CommentBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rejected", body = AccreditationView),
        (status = 404, description = "No such application", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn reject_accreditation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<CommentBody>,
) -> Result<Json<AccreditationView>> {
    let r = accreditation::district_review(&state.db, &actor, id, false, b.comment, state.now()).await?;
    Ok(Json(AccreditationView::of(r, &actor)))
}

/// Experts to assign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    #[schema(min_items = 1)]
    pub evaluator_ids: Vec<Uuid>,
}

/// Assign experts
///
/// Admin only; the application goes to `expert_review`.
#[utoipa::path(
    post, path = "/v1/accreditations/{id}/assign", tag = "accreditation", operation_id = "assign_accreditation",
    params(("id" = Uuid, Path, description = "Application id")),
    request_body = AssignBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Assigned", body = AccreditationView),
        (status = 404, description = "No such application", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn assign_accreditation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<AssignBody>,
) -> Result<Json<AccreditationView>> {
    Ok(Json(AccreditationView::of(
        accreditation::assign(&state.db, &actor, id, b.evaluator_ids, state.now()).await?,
        &actor,
    )))
}

/// An expert's points.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"points": {"facilities": 26, "content": 25, "operations": 17, "schools": 15}, "comment": "strong school programme", "comments": {"facilities": "the planetarium projector is due for replacement"}}))]
pub struct ScoresBody {
    /// Points by criterion (accreditation) or indicator (evaluation), each within its maximum.
    pub points: BTreeMap<String, f64>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
    /// Comments by criterion (or indicator) key, each at most 1000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub comments: BTreeMap<String, String>,
}

impl ScoresBody {
    pub fn input(self) -> accreditation::ScoreInput {
        accreditation::ScoreInput { points: self.points, comment: self.comment, comments: self.comments }
    }
}

/// Score an application
///
/// An assigned expert, during `expert_review`, on the standard's scoring sheet. Scoring again
/// replaces the expert's earlier score.
#[utoipa::path(
    put, path = "/v1/accreditations/{id}/scores", tag = "accreditation", operation_id = "score_accreditation",
    params(("id" = Uuid, Path, description = "Application id")),
    request_body = ScoresBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Scored", body = AccreditationView),
        (status = 404, description = "No such application", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn score_accreditation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<ScoresBody>,
) -> Result<Json<AccreditationView>> {
    let r = accreditation::score(&state.db, &actor, id, b.input(), state.now()).await?;
    Ok(Json(AccreditationView::of(r, &actor)))
}

/// Start the public notice
///
/// Admin only, once every assigned expert has scored. The notice (公示) lasts 5 working days.
#[utoipa::path(
    post, path = "/v1/accreditations/{id}/start-public-notice", tag = "accreditation", operation_id = "start_public_notice",
    params(("id" = Uuid, Path, description = "Application id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "On public notice", body = AccreditationView),
        (status = 404, description = "No such application", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: not in expert review, or experts still to score", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn start_public_notice(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AccreditationView>> {
    Ok(Json(AccreditationView::of(accreditation::start_notice(&state.db, &actor, id, state.now()).await?, &actor)))
}

/// An objection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "张先生", "contact": "zhang@example.cn", "reason": "the exhibition hall has been closed since March"}))]
pub struct NewObjectionBody {
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub contact: Option<String>,
    #[schema(min_length = 1, max_length = 2000)]
    pub reason: String,
}

/// File an objection
///
/// Anyone, without signing in, during the public notice; at most 5 an hour from one address
/// (429). An open objection blocks the decision until the bureau resolves it.
#[utoipa::path(
    post, path = "/v1/accreditations/{id}/objections", tag = "accreditation", operation_id = "create_objection",
    params(("id" = Uuid, Path, description = "Application id")),
    request_body = NewObjectionBody,
    responses(
        (status = 201, description = "Filed", body = ObjectionView),
        (status = 404, description = "No such application", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: not on public notice", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many objections from this address", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_objection(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<NewObjectionBody>,
) -> Result<(StatusCode, Json<ObjectionView>)> {
    let o = NewObjection { name: b.name, contact: b.contact, reason: b.reason };
    Ok((
        StatusCode::CREATED,
        Json(ObjectionView::of(accreditation::object(&state.db, id, o, &ip, state.now()).await?, true)),
    ))
}

/// How an objection was resolved.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Upheld,
    Dismissed,
}

/// Resolving an objection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"outcome": "dismissed", "resolution": "the hall reopened in May; site visit on 3 June confirmed"}))]
pub struct ResolveBody {
    pub outcome: Outcome,
    #[schema(min_length = 1, max_length = 2000)]
    pub resolution: String,
}

/// Resolve an objection
///
/// Admin only.
#[utoipa::path(
    post, path = "/v1/accreditations/{id}/objections/{objection_id}/resolve", tag = "accreditation", operation_id = "resolve_objection",
    params(("id" = Uuid, Path, description = "Application id"), ("objection_id" = Uuid, Path, description = "Objection id")),
    request_body = ResolveBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Resolved", body = AccreditationView),
        (status = 404, description = "No such application or objection", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already resolved", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn resolve_objection(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath((id, objection_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(b): ApiJson<ResolveBody>,
) -> Result<Json<AccreditationView>> {
    let upheld = b.outcome == Outcome::Upheld;
    let r = accreditation::resolve_objection(&state.db, &actor, id, objection_id, upheld, b.resolution, state.now())
        .await?;
    Ok(Json(AccreditationView::of(r, &actor)))
}

/// The bureau's decision.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Accredited,
    Rejected,
}

/// Deciding an application.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"decision": "accredited", "comment": "approved by the bureau's meeting of 8 December"}))]
pub struct DecideBody {
    pub decision: Decision,
    #[schema(min_length = 1, max_length = 2000)]
    pub comment: String,
}

/// Decide an application
///
/// Admin only, after the public notice has ended and with no open objection (409
/// `open-objections`). Accreditation issues a certificate `GZKP-<year>-<nnnn>`, valid for the
/// standard's years, and makes the base accredited.
#[utoipa::path(
    post, path = "/v1/accreditations/{id}/decide", tag = "accreditation", operation_id = "decide_accreditation",
    params(("id" = Uuid, Path, description = "Application id")),
    request_body = DecideBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Decided", body = AccreditationView),
        (status = 404, description = "No such application", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state` (notice still running) or `open-objections`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn decide_accreditation(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<DecideBody>,
) -> Result<Json<AccreditationView>> {
    let accredit = b.decision == Decision::Accredited;
    let r = accreditation::decide(&state.db, &actor, id, accredit, b.comment, state.now()).await?;
    Ok(Json(AccreditationView::of(r, &actor)))
}

/// Verify a certificate
///
/// Public: verifies a plaque's certificate number — the base, whether it is valid, until when.
#[utoipa::path(
    get, path = "/v1/certificates/{number}", tag = "accreditation", operation_id = "get_certificate",
    params(("number" = String, Path, description = "Certificate number", example = "GZKP-2026-0042")),
    responses(
        (status = 200, description = "The certificate", body = accreditation::Certificate),
        (status = 404, description = "No such certificate", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_certificate(
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<accreditation::Certificate>> {
    Ok(Json(accreditation::certificate(&state.db, number.trim(), state.now()).await?))
}
