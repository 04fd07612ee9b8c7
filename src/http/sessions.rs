//! Sessions: `/v1/bases/{id}/sessions`, `/v1/sessions`, `/v1/sessions/{id}`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};
use entity::capacity_pool;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::capacity;
use crate::domain::enums::{Audience, PoolUnit, SessionStatus};
use crate::domain::geo::{LatLon, round_km};
use crate::domain::sessions::{
    self, Pattern, SessionEdit, SessionHit, SessionInput, SessionQuery, SessionRecord, Skipped,
};
use crate::domain::validate::Validator;
use crate::error::{Problem, Result};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, IfMatch};
use crate::http::{DistrictCode, NearParams, Page, PageParams, apply_patch, with_etag};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_session))
        .routes(routes!(generate_sessions))
        .routes(routes!(list_sessions))
        .routes(routes!(get_session, update_session))
        .routes(routes!(cancel_session))
        .routes(routes!(close_session))
        .routes(routes!(reopen_session))
}

/// A new session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "starts_at": "2026-12-08T01:30:00Z",
    "ends_at": "2026-12-08T03:00:00Z",
    "capacity": 120,
    "audiences": ["primary_upper", "junior"],
    "max_group_size": 60
}))]
pub struct NewSession {
    #[schema(pattern = "^2[0-9]{3}-")]
    pub starts_at: DateTime<Utc>,
    /// After `starts_at`, at most 12 hours later.
    #[schema(pattern = "^2[0-9]{3}-")]
    pub ends_at: DateTime<Utc>,
    /// Visitors (students + teachers), 1–100000: the session's own pool.
    #[schema(minimum = 1, maximum = 100000)]
    pub capacity: i32,
    #[schema(min_items = 1)]
    pub audiences: Vec<Audience>,
    /// Default: the base's `booking_rules.opens_days_before` before the start.
    #[serde(default)]
    #[schema(pattern = "^2[0-9]{3}-")]
    pub booking_opens_at: Option<DateTime<Utc>>,
    /// Default: the base's `booking_rules.closes_hours_before` before the start.
    #[serde(default)]
    #[schema(pattern = "^2[0-9]{3}-")]
    pub booking_closes_at: Option<DateTime<Utc>>,
    /// Further pools to draw on: the base's own pools, or (an admin only) city-wide ones.
    #[serde(default)]
    pub pool_ids: Vec<Uuid>,
    /// The largest group this session takes.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    pub max_group_size: Option<i32>,
}

impl NewSession {
    fn into_input(self) -> SessionInput {
        SessionInput {
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            capacity: self.capacity,
            audiences: self.audiences,
            booking_opens_at: self.booking_opens_at,
            booking_closes_at: self.booking_closes_at,
            max_group_size: self.max_group_size,
            pool_ids: self.pool_ids,
        }
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WeekdayName {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl WeekdayName {
    fn weekday(self) -> Weekday {
        match self {
            Self::Mon => Weekday::Mon,
            Self::Tue => Weekday::Tue,
            Self::Wed => Weekday::Wed,
            Self::Thu => Weekday::Thu,
            Self::Fri => Weekday::Fri,
            Self::Sat => Weekday::Sat,
            Self::Sun => Weekday::Sun,
        }
    }
}

/// Local start and end of a session in the day (Asia/Shanghai), `HH:MM`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeOfDay {
    #[schema(example = "09:30", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    #[schema(example = "11:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub end: String,
}

/// A weekly pattern of sessions over a date range.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "from_date": "2026-12-01",
    "to_date": "2026-12-31",
    "weekdays": ["tue", "thu"],
    "times": [{"start": "09:30", "end": "11:00"}, {"start": "14:00", "end": "15:30"}],
    "capacity": 120,
    "audiences": ["primary_upper", "junior"]
}))]
pub struct SessionPattern {
    #[schema(pattern = "^2[0-9]{3}-")]
    pub from_date: NaiveDate,
    /// At most 366 days after `from_date`.
    #[schema(pattern = "^2[0-9]{3}-")]
    pub to_date: NaiveDate,
    #[schema(min_items = 1)]
    pub weekdays: Vec<WeekdayName>,
    #[schema(min_items = 1)]
    pub times: Vec<TimeOfDay>,
    #[schema(minimum = 1, maximum = 100000)]
    pub capacity: i32,
    #[schema(min_items = 1)]
    pub audiences: Vec<Audience>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    pub max_group_size: Option<i32>,
    #[serde(default)]
    pub pool_ids: Vec<Uuid>,
}

impl SessionPattern {
    fn parse(self) -> Result<Pattern> {
        let mut v = Validator::new();
        // Exactly HH:MM, as documented: chrono would also read "9:30".
        let time = |s: &str| {
            NaiveTime::parse_from_str(s, "%H:%M")
                .ok()
                .filter(|t| t.format("%H:%M").to_string() == s)
                .ok_or_else(|| "must be HH:MM, e.g. 09:30".to_string())
        };
        let mut times = Vec::new();
        for (i, t) in self.times.iter().enumerate() {
            let start = v.check(&format!("times[{i}].start"), time(&t.start));
            let end = v.check(&format!("times[{i}].end"), time(&t.end));
            if let (Some(s), Some(e)) = (start, end) {
                times.push((s, e));
            }
        }
        v.finish()?;
        Ok(Pattern {
            from_date: self.from_date,
            to_date: self.to_date,
            weekdays: self.weekdays.into_iter().map(WeekdayName::weekday).collect(),
            times,
            capacity: self.capacity,
            audiences: self.audiences,
            max_group_size: self.max_group_size,
            pool_ids: self.pool_ids,
        })
    }
}

/// A pool's use, as seen from a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolUsage {
    pub id: Uuid,
    #[schema(example = "Science Week free tours")]
    pub name: String,
    pub unit: PoolUnit,
    pub capacity: i32,
    pub used: i32,
    /// Room left (in the pool's unit).
    pub free: i32,
    /// Whether this is the session's own pool.
    pub own: bool,
}

impl PoolUsage {
    fn of(p: &capacity_pool::Model, session_id: Uuid) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            unit: PoolUnit::from_db(&p.unit),
            capacity: p.capacity,
            used: p.used,
            free: capacity::room(p),
            own: p.session_id == Some(session_id),
        }
    }
}

/// The base of a session, in short.
#[derive(Debug, Serialize, ToSchema)]
pub struct BaseSummary {
    pub id: Uuid,
    pub name_zh: String,
    pub name_en: String,
    #[schema(value_type = DistrictCode)]
    pub district_code: String,
    pub location: LatLon,
}

/// A session as the API shows it; `free` is read live from its pools.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub base_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The session's own capacity in visitors.
    pub capacity: i32,
    /// Places free now: the least room over its pools.
    pub free: i32,
    pub audiences: Vec<Audience>,
    pub booking_opens_at: DateTime<Utc>,
    pub booking_closes_at: DateTime<Utc>,
    /// Whether a school can book it now: its base is accredited, it is open, and its booking
    /// window is open (a school's own limits aside).
    pub bookable_now: bool,
    pub max_group_size: Option<i32>,
    pub status: SessionStatus,
    pub pools: Vec<PoolUsage>,
    /// Bumped by every change; the `ETag` is this number in quotes.
    #[schema(example = 1)]
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The base (in searches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseSummary>,
    /// Distance from `near` to the base, in km (in `near` searches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

impl SessionView {
    pub fn of(r: SessionRecord, now: DateTime<Utc>) -> Self {
        let free = r.free();
        let audiences = r.audiences();
        let bookable_now = r.bookable_now(now);
        let s = r.session;
        Self {
            pools: r.pools.iter().map(|p| PoolUsage::of(p, s.id)).collect(),
            id: s.id,
            base_id: s.base_id,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            capacity: s.capacity,
            free,
            audiences,
            booking_opens_at: s.booking_opens_at,
            booking_closes_at: s.booking_closes_at,
            bookable_now,
            max_group_size: s.max_group_size,
            status: SessionStatus::from_db(&s.status),
            version: s.version,
            created_at: s.created_at,
            updated_at: s.updated_at,
            base: None,
            distance_km: None,
        }
    }

    fn hit(h: SessionHit, now: DateTime<Utc>) -> Self {
        let b = &h.record.base;
        Self {
            base: Some(BaseSummary {
                id: b.id,
                name_zh: b.name_zh.clone(),
                name_en: b.name_en.clone(),
                district_code: b.district_code.clone(),
                location: b.location,
            }),
            distance_km: h.distance_km.map(round_km),
            ..Self::of(h.record, now)
        }
    }
}

/// Create a session
///
/// The base's operators, or an admin. The session gets its own pool of `capacity` places and
/// may draw on further pools.
#[utoipa::path(
    post, path = "/v1/bases/{id}/sessions", tag = "sessions", operation_id = "create_session",
    params(("id" = Uuid, Path, description = "Base id")),
    request_body = NewSession,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = SessionView),
        (status = 404, description = "No such base", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_session(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(base_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewSession>,
) -> Result<(StatusCode, Json<SessionView>)> {
    let now = state.now();
    let record = sessions::create(&state.db, &actor, base_id, body.into_input(), now).await?;
    Ok((StatusCode::CREATED, Json(SessionView::of(record, now))))
}

/// What a pattern created and skipped.
#[derive(Debug, Serialize, ToSchema)]
pub struct Generated {
    pub created: Vec<SessionView>,
    pub skipped: Vec<SkippedSlot>,
}

/// A slot of a pattern that was not created.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedSlot {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[schema(example = "overlaps an existing session")]
    pub reason: String,
}

impl From<Skipped> for SkippedSlot {
    fn from(s: Skipped) -> Self {
        Self { starts_at: s.starts_at, ends_at: s.ends_at, reason: s.reason }
    }
}

/// Create sessions from a weekly pattern
///
/// Times are local (Asia/Shanghai). Slots in the past or overlapping an existing session of
/// the base are skipped and listed; at most 500 sessions at once.
#[utoipa::path(
    post, path = "/v1/bases/{id}/sessions/generate", tag = "sessions", operation_id = "generate_sessions",
    params(("id" = Uuid, Path, description = "Base id")),
    request_body = SessionPattern,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "What was created and skipped", body = Generated),
        (status = 404, description = "No such base", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn generate_sessions(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(base_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SessionPattern>,
) -> Result<(StatusCode, Json<Generated>)> {
    crate::domain::access::authorize(&actor, crate::domain::access::Action::ManageSessions { base_id })?;
    let now = state.now();
    let (created, skipped) = sessions::generate(&state.db, &actor, base_id, body.parse()?, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(Generated {
            created: created.into_iter().map(|r| SessionView::of(r, now)).collect(),
            skipped: skipped.into_iter().map(SkippedSlot::from).collect(),
        }),
    ))
}

/// Filters of `GET /v1/sessions`, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionSearchParams {
    /// Sessions of one base (whatever the base's standing); otherwise only accredited bases'
    /// sessions.
    pub base_id: Option<Uuid>,
    /// `true`: closed and cancelled sessions too, not only the open ones: a base's own
    /// schedule. Only with `base_id`.
    pub any_status: Option<bool>,
    /// Sessions starting at or after this time (default: now). RFC 3339; encode `+` as `%2B`.
    #[param(pattern = "^2[0-9]{3}-")]
    pub from: Option<DateTime<Utc>>,
    /// Sessions starting before this time (default: `from` + 90 days).
    #[param(pattern = "^2[0-9]{3}-")]
    pub to: Option<DateTime<Utc>>,
    /// At least this many free places.
    #[param(minimum = 0)]
    pub min_free: Option<i32>,
    pub audience: Option<Audience>,
    #[param(value_type = Option<DistrictCode>)]
    pub district: Option<String>,
    /// `true`: only sessions a school can book now (base accredited, booking window open);
    /// `false`: only those whose window has not opened or has closed.
    pub bookable: Option<bool>,
}

/// Find sessions
///
/// Public. Open sessions, with free places read live: "where can I take 45 pupils next week
/// within 15 km?" is `near=…&radius_km=15&from=…&to=…&min_free=45`. With `near`, sorted by
/// distance, then start, then id; otherwise by start, then id. Pages are cut at the previous
/// page's last session (keyset): a session whose free places change between two pages moves
/// in or out of a `min_free` filter, but no session is shown twice and none that matched
/// throughout is skipped.
#[utoipa::path(
    get, path = "/v1/sessions", tag = "sessions", operation_id = "list_sessions",
    params(SessionSearchParams, NearParams, PageParams),
    responses((status = 200, description = "A page of sessions", body = Page<SessionView>))
)]
async fn list_sessions(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<SessionSearchParams>,
    ApiQuery(near): ApiQuery<NearParams>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<SessionView>>> {
    let _timer = crate::telemetry::time_search(if near.near.is_some() { "sessions_near" } else { "sessions_list" });
    let page = page.parse()?;
    let (near, radius_km) = near.parse()?;
    let query = SessionQuery {
        any_status: p.any_status.unwrap_or(false),
        base_id: p.base_id,
        near,
        radius_km,
        from: p.from,
        to: p.to,
        min_free: p.min_free,
        audience: p.audience,
        district: p.district,
        bookable: p.bookable,
    };
    let now = state.now();
    let paged = sessions::search(&state.read_db, &query, page, now).await?;
    Ok(Json(Page::from_paged(paged, |h| SessionView::hit(h, now))))
}

/// Get a session
///
/// Public. `free` and each pool's `used` are read live.
#[utoipa::path(
    get, path = "/v1/sessions/{id}", tag = "sessions", operation_id = "get_session",
    params(("id" = Uuid, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session", body = SessionView,
            headers(("ETag" = String, description = "Version of the session, for `If-Match`"))),
        (status = 404, description = "No such session", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_session(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Response> {
    let record = sessions::get(&state.db, id).await?;
    Ok(with_etag(record.session.version, Json(SessionView::of(record, state.now()))))
}

/// Fields of a session to change; those left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"capacity": 140, "max_group_size": 70}))]
#[allow(dead_code)]
pub struct SessionPatch {
    #[schema(pattern = "^2[0-9]{3}-")]
    starts_at: Option<DateTime<Utc>>,
    #[schema(pattern = "^2[0-9]{3}-")]
    ends_at: Option<DateTime<Utc>>,
    /// The session's own pool, in visitors: not below what is taken.
    #[schema(minimum = 1, maximum = 100000)]
    capacity: Option<i32>,
    #[schema(min_items = 1)]
    audiences: Option<Vec<Audience>>,
    /// Moves with `starts_at` unless given.
    #[schema(pattern = "^2[0-9]{3}-")]
    booking_opens_at: Option<DateTime<Utc>>,
    /// Moves with `starts_at` unless given.
    #[schema(pattern = "^2[0-9]{3}-")]
    booking_closes_at: Option<DateTime<Utc>>,
    /// `null` removes the session's own limit.
    #[schema(minimum = 1, maximum = 100000)]
    max_group_size: Option<i32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionPatchParams {
    /// The bureau only: move the session even if that makes some school's bookings overlap.
    #[serde(default)]
    pub force: bool,
}

/// Change a session
///
/// The base's operators, or an admin, before it starts, with `If-Match` (the `ETag` last
/// read). `capacity` (its own pool) never goes below what is taken (409
/// `capacity-below-taken` saying how much is); raised, the waiting list is served at once.
/// `audiences` and `max_group_size` never exclude a group already booked (409
/// `audience-in-use`, `group-too-large`). New times move every booking with the session:
/// each school is notified and may cancel without the late-cancellation mark, its calendar
/// event keeps its UID with the next sequence; a move that would make any school's bookings
/// overlap is refused (409 `overlapping-booking` naming them) unless the bureau sends
/// `force=true`. A tour's leg keeps its times (409 `part-of-tour`).
#[utoipa::path(
    patch, path = "/v1/sessions/{id}", tag = "sessions", operation_id = "update_session",
    params(
        ("id" = Uuid, Path, description = "Session id"),
        ("If-Match" = String, Header, description = "The ETag last read, e.g. `\"1\"`"),
        SessionPatchParams,
    ),
    request_body = SessionPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed session", body = SessionView,
            headers(("ETag" = String, description = "New version of the session"))),
        (status = 403, description = "Not the base's operator; or `force` by anyone but the bureau", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`capacity-below-taken`, `audience-in-use`, `group-too-large`, `overlapping-booking`, `part-of-tour`, `invalid-state` (cancelled or started)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The session changed since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (`starts_at` in the past, `ends_at` before it, `capacity` out of range…)", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "`If-Match` is missing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_session(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<SessionPatchParams>,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<serde_json::Value>,
) -> Result<Response> {
    let precondition = if_match.required()?;
    let now = state.now();
    let apply = |s: &entity::session::Model| apply_patch::<SessionPatch, _>(&SessionEdit::of(s), &patch);
    let record = sessions::update(&state.db, &actor, id, precondition, apply, params.force, now).await?;
    Ok(with_etag(record.session.version, Json(SessionView::of(record, now))))
}

/// Why a session or booking is cancelled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "the hall is closed for repairs"}))]
pub struct CancelSession {
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// Cancel a session
///
/// The base's operators, or an admin, before it starts. Every booking on it is cancelled, its
/// places given back, and each school notified.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/cancel", tag = "sessions", operation_id = "cancel_session",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = CancelSession,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cancelled session", body = SessionView),
        (status = 404, description = "No such session", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: already cancelled, or it has started", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_session(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CancelSession>,
) -> Result<Json<SessionView>> {
    let record = sessions::cancel(&state.db, &actor, id, &body.reason, state.now()).await?;
    Ok(Json(SessionView::of(record, state.now())))
}

/// Close a session to new bookings
///
/// The base's operators, or an admin. The bookings it has stay (and its waiting list still
/// moves up when places free); new bookings are answered 409 `session-not-open`, and it no
/// longer appears among bookable sessions.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/close", tag = "sessions", operation_id = "close_session",
    params(("id" = Uuid, Path, description = "Session id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The closed session", body = SessionView),
        (status = 404, description = "No such session", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: the session is not open", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn close_session(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SessionView>> {
    let now = state.now();
    Ok(Json(SessionView::of(sessions::set_open(&state.db, &actor, id, false, now).await?, now)))
}

/// Open a closed session again
///
/// The base's operators, or an admin, before the session starts.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/reopen", tag = "sessions", operation_id = "reopen_session",
    params(("id" = Uuid, Path, description = "Session id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The session, open again", body = SessionView),
        (status = 404, description = "No such session", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: the session is not closed, or has started", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn reopen_session(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SessionView>> {
    let now = state.now();
    Ok(Json(SessionView::of(sessions::set_open(&state.db, &actor, id, true, now).await?, now)))
}
