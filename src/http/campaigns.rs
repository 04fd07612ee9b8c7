//! Tour sign-up campaigns: `/v1/campaigns`, applications, the draw and its verification.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::campaigns::{self, Applicant, ApplicationRecord, CampaignInput, CampaignRecord};
use crate::domain::lottery::{Published, Verification};
use crate::domain::validate::Validator;
use crate::error::{Problem, Result};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, ClientIp, MaybeAuthUser};
use crate::http::{DistrictCode, Page, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(get_campaign))
        .routes(routes!(apply, list_applications))
        .routes(routes!(get_application))
        .routes(routes!(draw_campaign, get_draw))
        .routes(routes!(verify_draw))
}

/// A new campaign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "2027 科技活动周 · 科普一日游",
    "opens_at": "2027-04-01T00:00:00Z",
    "closes_at": "2027-04-15T00:00:00Z",
    "for_schools": true,
    "for_citizens": true,
    "max_wins": 1,
    "tours": ["0193a5d2-7c1e-7a3b-9f00-1c2d3e4f5a6b"]
}))]
pub struct NewCampaign {
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// When sign-up opens: later than now (the seed is committed to before).
    #[schema(pattern = "^2[0-9]{3}-")]
    pub opens_at: DateTime<Utc>,
    #[schema(pattern = "^2[0-9]{3}-")]
    pub closes_at: DateTime<Utc>,
    pub for_schools: bool,
    pub for_citizens: bool,
    /// Departures one applicant may win at most.
    #[schema(minimum = 1, maximum = 5)]
    pub max_wins: i32,
    /// The departures (open tours starting after sign-up closes).
    #[schema(min_items = 1, max_items = 100)]
    pub tours: Vec<Uuid>,
}

/// A campaign as the API shows it: the seed's SHA-256 from the start, the seed itself only
/// in the published draw.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    pub id: Uuid,
    pub title: String,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub for_schools: bool,
    pub for_citizens: bool,
    pub max_wins: i32,
    /// The draw's commitment: SHA-256 (hex) of the seed kept secret until the draw.
    #[schema(example = "9f2c…")]
    pub seed_sha256: String,
    /// `open` (taking applications in its window, or waiting for the draw) or `drawn`.
    #[schema(example = "open")]
    pub status: String,
    pub drawn_at: Option<DateTime<Utc>>,
    pub tours: Vec<Uuid>,
    pub applicants: u64,
    /// When citizens' names and phone numbers are erased (90 days after the last departure).
    pub citizens_erased_after: DateTime<Utc>,
}

impl CampaignView {
    fn of(r: CampaignRecord) -> Self {
        let c = r.campaign;
        Self {
            id: c.id,
            title: c.title,
            opens_at: c.opens_at,
            closes_at: c.closes_at,
            for_schools: c.for_schools,
            for_citizens: c.for_citizens,
            max_wins: c.max_wins,
            seed_sha256: c.seed_sha256,
            status: c.status,
            drawn_at: c.drawn_at,
            tours: r.tours,
            applicants: r.applicants,
            citizens_erased_after: c.last_departure_at + chrono::Duration::days(campaigns::ERASE_AFTER_DAYS),
        }
    }
}

/// Make a campaign
///
/// The bureau. kepu draws the campaign's seed now and publishes only its SHA-256
/// (`seed_sha256`) until the draw, so sign-up must open later than now: nobody, the bureau
/// included, can choose the seed after seeing who applied.
#[utoipa::path(
    post, path = "/v1/campaigns", tag = "campaigns", operation_id = "create_campaign",
    request_body = NewCampaign,
    security(("bearer" = [])),
    responses((status = 201, description = "Made", body = CampaignView))
)]
async fn create_campaign(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiJson(body): ApiJson<NewCampaign>,
) -> Result<(StatusCode, Json<CampaignView>)> {
    let input = CampaignInput {
        title: body.title,
        opens_at: body.opens_at,
        closes_at: body.closes_at,
        for_schools: body.for_schools,
        for_citizens: body.for_citizens,
        max_wins: body.max_wins,
        tours: body.tours,
    };
    let record = campaigns::create(&state.db, &actor, input, state.now()).await?;
    Ok((StatusCode::CREATED, Json(CampaignView::of(record))))
}

/// List campaigns
///
/// Public, by the opening of sign-up.
#[utoipa::path(
    get, path = "/v1/campaigns", tag = "campaigns", operation_id = "list_campaigns",
    params(PageParams),
    responses((status = 200, description = "A page of campaigns", body = Page<CampaignView>))
)]
async fn list_campaigns(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<CampaignView>>> {
    let paged = campaigns::list(&state.read_db, page.parse()?).await?;
    Ok(Json(Page::from_paged(paged, CampaignView::of)))
}

/// Get a campaign
///
/// Public.
#[utoipa::path(
    get, path = "/v1/campaigns/{id}", tag = "campaigns", operation_id = "get_campaign",
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The campaign", body = CampaignView),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_campaign(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<CampaignView>> {
    Ok(Json(CampaignView::of(campaigns::get(&state.db, id).await?)))
}

/// Who applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicantKind {
    School,
    Citizen,
}

/// An application: a school's group (signed in) or a citizen's family (no account).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "citizen",
    "name": "陈女士",
    "phone": "138 0013 8000",
    "people": 3,
    "district_code": "440106",
    "preferences": ["0193a5d2-7c1e-7a3b-9f00-1c2d3e4f5a6b"]
}))]
pub struct NewApplication {
    pub kind: ApplicantKind,
    /// Tours of the campaign, best first (1–5).
    #[schema(min_items = 1, max_items = 5)]
    pub preferences: Vec<Uuid>,
    /// A school: which (its own account, or the bureau).
    #[serde(default)]
    pub school_id: Option<Uuid>,
    /// A school: its group.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    pub students: Option<i32>,
    /// A school: at least one per 20 students.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub teachers: Option<i32>,
    /// A school: who to reach about the visits.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub contact_name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 32)]
    pub contact_phone: Option<String>,
    /// A citizen: the applicant's name.
    #[serde(default)]
    #[schema(max_length = 50)]
    pub name: Option<String>,
    /// A citizen: a mobile number (one application per number and campaign; shown masked to
    /// everyone but the bureau; erased 90 days after the last departure).
    #[serde(default)]
    #[schema(max_length = 32)]
    pub phone: Option<String>,
    /// A citizen: people in the family, 1–4.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 4)]
    pub people: Option<i32>,
    /// A citizen: the district the family lives in.
    #[serde(default)]
    #[schema(value_type = Option<DistrictCode>)]
    pub district_code: Option<String>,
}

/// A departure won.
#[derive(Debug, Serialize, ToSchema)]
pub struct WinView {
    pub tour_id: Uuid,
    /// The draw's round (1: everyone's first).
    pub round: i32,
    /// `confirmed` (places held), or `refused` (a school's booking rule stood in the way: see
    /// `note`).
    pub status: String,
    /// A school's tour booking.
    pub tour_booking_id: Option<Uuid>,
    pub note: Option<String>,
}

/// An application as its applicant (and the bureau) sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationView {
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub kind: ApplicantKind,
    pub school_id: Option<Uuid>,
    pub people: i32,
    pub name: Option<String>,
    /// Masked (`138******00`) for everyone but the bureau; `null` once erased.
    pub phone: Option<String>,
    #[schema(value_type = DistrictCode)]
    pub district_code: String,
    pub preferences: Vec<Uuid>,
    /// `applied` until the draw, then `won` or `waiting`.
    #[schema(example = "applied")]
    pub status: String,
    /// Place in the draw's order (1 first).
    pub draw_position: Option<i32>,
    pub wins: Vec<WinView>,
    pub created_at: DateTime<Utc>,
}

impl ApplicationView {
    fn of(r: ApplicationRecord) -> Self {
        let a = r.application;
        Self {
            id: a.id,
            campaign_id: a.campaign_id,
            kind: if a.kind == campaigns::SCHOOL { ApplicantKind::School } else { ApplicantKind::Citizen },
            school_id: a.school_id,
            people: a.people,
            name: a.name,
            phone: a.phone,
            district_code: a.district_code,
            preferences: serde_json::from_value(a.preferences).unwrap_or_default(),
            status: a.status,
            draw_position: a.draw_position,
            wins: r
                .wins
                .into_iter()
                .map(|w| WinView {
                    tour_id: w.tour_id,
                    round: w.round,
                    status: w.status,
                    tour_booking_id: w.tour_booking_id,
                    note: w.note,
                })
                .collect(),
            created_at: a.created_at,
        }
    }
}

/// List a campaign's applications
///
/// A school account: its school's application (at most one), with its result after the draw —
/// so a school finds it again from any browser. The bureau: every application, by id. Others
/// 403.
#[utoipa::path(
    get, path = "/v1/campaigns/{id}/applications", tag = "campaigns", operation_id = "list_applications",
    params(("id" = Uuid, Path, description = "Campaign id"), PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of applications", body = Page<ApplicationView>),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_applications(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<ApplicationView>>> {
    let paged = campaigns::applications(&state.read_db, &actor, id, page.parse()?).await?;
    Ok(Json(Page::from_paged(paged, ApplicationView::of)))
}

/// Apply to a campaign
///
/// While sign-up is open (422 `campaign-window-closed` otherwise). A school applies signed in
/// (`kind: school`, its group checked by the booking rules); a citizen applies without an
/// account (`kind: citizen`, a family of 1–4, one application per mobile number: 409
/// `already-applied`), at most 10 an hour from one address (429). Keep the answer's `id`: with
/// the phone number it finds the result after the draw.
#[utoipa::path(
    post, path = "/v1/campaigns/{id}/applications", tag = "campaigns", operation_id = "apply",
    params(("id" = Uuid, Path, description = "Campaign id")),
    request_body = NewApplication,
    responses(
        (status = 201, description = "Applied", body = ApplicationView),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already-applied`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn apply(
    State(state): State<AppState>,
    MaybeAuthUser(actor): MaybeAuthUser,
    ClientIp(client_ip): ClientIp,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewApplication>,
) -> Result<(StatusCode, Json<ApplicationView>)> {
    let mut v = Validator::new();
    let mut need = |field: &str, present: bool| {
        if !present {
            v.push(field, "required for this kind of applicant");
        }
    };
    let who = match body.kind {
        ApplicantKind::School => {
            need("school_id", body.school_id.is_some());
            need("students", body.students.is_some());
            need("teachers", body.teachers.is_some());
            need("contact_name", body.contact_name.is_some());
            need("contact_phone", body.contact_phone.is_some());
            Applicant::School {
                school_id: body.school_id.unwrap_or_default(),
                students: body.students.unwrap_or_default(),
                teachers: body.teachers.unwrap_or_default(),
                contact_name: body.contact_name.unwrap_or_default(),
                contact_phone: body.contact_phone.unwrap_or_default(),
            }
        }
        ApplicantKind::Citizen => {
            need("name", body.name.is_some());
            need("phone", body.phone.is_some());
            need("people", body.people.is_some());
            need("district_code", body.district_code.is_some());
            Applicant::Citizen {
                name: body.name.unwrap_or_default(),
                phone: body.phone.unwrap_or_default(),
                people: body.people.unwrap_or_default(),
                district_code: body.district_code.unwrap_or_default(),
            }
        }
    };
    v.finish()?;
    let now = state.now();
    let record = campaigns::apply(&state.db, actor.as_ref(), id, who, body.preferences, &client_ip, now).await?;
    Ok((StatusCode::CREATED, Json(ApplicationView::of(campaigns::masked(record)))))
}

/// How a citizen proves an application is theirs.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationLookup {
    /// A citizen: the mobile number applied with.
    pub phone: Option<String>,
}

/// Get an application and its result
///
/// A citizen with the application's id and its `phone`; a school's account its own; the
/// bureau any. Anyone else (or a wrong number) gets 404.
#[utoipa::path(
    get, path = "/v1/campaigns/{id}/applications/{application_id}", tag = "campaigns", operation_id = "get_application",
    params(
        ("id" = Uuid, Path, description = "Campaign id"),
        ("application_id" = Uuid, Path, description = "Application id"),
        ApplicationLookup,
    ),
    responses(
        (status = 200, description = "The application", body = ApplicationView),
        (status = 404, description = "No such application, or not yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_application(
    State(state): State<AppState>,
    MaybeAuthUser(actor): MaybeAuthUser,
    ApiPath((id, application_id)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(q): ApiQuery<ApplicationLookup>,
) -> Result<Json<ApplicationView>> {
    let r = campaigns::get_application(&state.db, actor.as_ref(), id, application_id, q.phone.as_deref()).await?;
    Ok(Json(ApplicationView::of(r)))
}

/// Draw the campaign
///
/// The bureau, after sign-up closed (409 `campaign-not-closed` before). Idempotent: drawing
/// again, also from another instance at the same moment, answers the one draw. Weights,
/// order and rounds are those of `GET /v1/campaigns/{id}/draw`; winning schools get tour
/// bookings (a booking rule a school breaks refuses that win, with the reason), winning
/// families places held on the tour; the rest wait in draw order.
#[utoipa::path(
    post, path = "/v1/campaigns/{id}/draw", tag = "campaigns", operation_id = "draw_campaign",
    params(("id" = Uuid, Path, description = "Campaign id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Drawn", body = CampaignView),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`campaign-not-closed`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn draw_campaign(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CampaignView>> {
    Ok(Json(CampaignView::of(campaigns::draw(&state.db, &actor, id, state.now()).await?)))
}

/// The published draw
///
/// Public, after the draw: the seed and its commitment, every input (departures and places,
/// applicants pseudonymised with their district, party, visits and preferences, the
/// districts' earlier shares), the weights, the order, the places given per round and the
/// waiting list. The rules (`kepu-draw-1`): weight = 1/(1 + visits this school year) (1 for a
/// citizen) × district factor, the factor being the district's share of applicants ÷ its
/// share of the school year's earlier places, between 1 and 2 (1 before any draw); u =
/// SHA-256(seed ‖ "|" ‖ pseudonym) as a number in (0, 1); order by ln(u)/weight, largest
/// first; in each round every applicant in order gets its first listed departure it has not
/// won that has room for its party. `kepu draw verify --file` recomputes it offline.
#[utoipa::path(
    get, path = "/v1/campaigns/{id}/draw", tag = "campaigns", operation_id = "get_draw",
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The published draw", body = Published),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`campaign-not-drawn`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_draw(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<Published>> {
    Ok(Json(campaigns::published(&state.db, id).await?))
}

/// What a verification found.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationView {
    /// Whether the seed hashes to the commitment and the weights, order, places and waiting
    /// list are exactly those the rules give.
    pub matches: bool,
    /// What differs.
    pub problems: Vec<String>,
}

/// Verify the published draw
///
/// Public: computes the draw again from what `GET /v1/campaigns/{id}/draw` publishes, and
/// checks that its commitment is the `seed_sha256` the campaign showed before sign-up opened
/// and that its entrants are the campaign's applications.
#[utoipa::path(
    get, path = "/v1/campaigns/{id}/draw/verification", tag = "campaigns", operation_id = "verify_draw",
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The verification", body = VerificationView),
        (status = 404, description = "No such campaign", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`campaign-not-drawn`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn verify_draw(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<VerificationView>> {
    let Verification { matches, problems } = campaigns::verify(&state.db, id).await?;
    Ok(Json(VerificationView { matches, problems }))
}
