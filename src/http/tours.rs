//! Science tours: `/v1/tours`, their bookings (`/v1/tours/{id}/bookings`,
//! `/v1/tour-bookings/{id}`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::access::Actor;
use crate::domain::enums::{Audience, BookingStatus, Role, SessionStatus};
use crate::domain::geo::{LatLon, round_km};
use crate::domain::tours::{self, Leg, TourBookingRecord, TourBookingRequest, TourInput, TourQuery, TourRecord};
use crate::error::{AppError, Problem, Result};
use crate::http::bookings::{BookingView, CancelBooking};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, Idempotent, made};
use crate::http::sessions::BaseSummary;
use crate::http::{DistrictCode, NearParams, Page, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tours, create_tour))
        .routes(routes!(get_tour))
        .routes(routes!(book_tour))
        .routes(routes!(get_tour_booking))
        .routes(routes!(cancel_tour_booking))
}

/// A new tour.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "科学周：天河科技一日游",
    "audience": "junior",
    "meeting_point": "天河体育中心南门",
    "meeting_location": {"lat": 23.1365, "lon": 113.3246},
    "places": 40,
    "legs": ["0193a5d2-7c1e-7a3b-9f00-1c2d3e4f5a6b", "0193a5d2-7c1e-7a3b-9f00-6b5a4f3e2d1c"]
}))]
pub struct NewTour {
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// Every leg's session must be for this audience.
    pub audience: Audience,
    /// Where the group meets the coach.
    #[schema(min_length = 1, max_length = 200)]
    pub meeting_point: String,
    pub meeting_location: LatLon,
    /// The tour's own places (a coach's seats), in visitors.
    #[schema(minimum = 1, maximum = 10000)]
    pub places: i32,
    /// The legs' sessions in visiting order: 2–5 open sessions at accredited bases, each
    /// reachable from the one before (see the operation's description).
    #[schema(min_items = 2, max_items = 5)]
    pub legs: Vec<Uuid>,
}

/// A leg of a tour.
#[derive(Debug, Serialize, ToSchema)]
pub struct TourLegView {
    /// 1 for the first leg.
    pub position: i32,
    pub session_id: Uuid,
    pub base: BaseSummary,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Free places of the leg's session now.
    pub free: i32,
    pub status: SessionStatus,
    /// Great-circle km from the previous leg's base (`null` for the first leg).
    pub travel_km: Option<f64>,
    /// Minutes a coach needs from the previous leg's base (`null` for the first leg).
    pub travel_minutes: Option<f64>,
}

impl TourLegView {
    fn of(l: &Leg) -> Self {
        let (s, b) = (&l.session.session, &l.session.base);
        Self {
            position: l.position,
            session_id: s.id,
            base: BaseSummary {
                id: b.id,
                name_zh: b.name_zh.clone(),
                name_en: b.name_en.clone(),
                district_code: b.district_code.clone(),
                location: b.location,
            },
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            free: l.session.free(),
            status: SessionStatus::from_db(&s.status),
            travel_km: l.travel_km.map(round_km),
            travel_minutes: l.travel_km.map(|km| tours::travel_minutes(km).ceil()),
        }
    }
}

/// A tour as the API shows it; `free` is read live.
#[derive(Debug, Serialize, ToSchema)]
pub struct TourView {
    pub id: Uuid,
    pub title: String,
    pub audience: Audience,
    pub meeting_point: String,
    pub meeting_location: LatLon,
    /// The tour's own places.
    pub places: i32,
    /// Places free on the whole route now: the least over the tour's own places and every leg.
    pub free: i32,
    /// `open` or `cancelled`.
    #[schema(example = "open")]
    pub status: String,
    /// Whether a school can book it now: open, and every leg's session bookable now.
    pub bookable_now: bool,
    /// Positions of legs whose session is no longer open: the tour takes no bookings.
    pub legs_not_open: Vec<i32>,
    /// The district of every leg (`null`: legs in several districts, the bureau's tour).
    #[schema(value_type = Option<DistrictCode>)]
    pub district_code: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub legs: Vec<TourLegView>,
    pub created_at: DateTime<Utc>,
    /// Distance from `near` to the meeting point, in km (in `near` searches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

impl TourView {
    fn of(r: &TourRecord, distance_km: Option<f64>, now: DateTime<Utc>) -> Self {
        let t = &r.tour;
        Self {
            id: t.id,
            title: t.title.clone(),
            audience: Audience::from_db(&t.audience),
            meeting_point: t.meeting_point.clone(),
            meeting_location: LatLon { lat: t.lat, lon: t.lon },
            places: t.places,
            free: r.free(),
            status: t.status.clone(),
            bookable_now: r.bookable_now(now),
            legs_not_open: r.broken_legs(),
            district_code: t.district_code.clone(),
            starts_at: t.starts_at,
            ends_at: t.ends_at,
            legs: r.legs.iter().map(TourLegView::of).collect(),
            created_at: t.created_at,
            distance_km: distance_km.map(round_km),
        }
    }
}

/// Make a tour
///
/// The bureau, or a district officer when every leg is at a base of its district. A tour is
/// 2–5 legs, each an open session at an accredited base for the tour's audience, in time
/// order. Between two legs a coach needs the great-circle distance × 1.4 (detour) at 25 km/h,
/// plus 15 minutes; a leg that cannot be reached in time is a 422 naming the leg
/// (`legs[i]`), the distance and the minutes missing. The tour gets its own pool of `places`.
#[utoipa::path(
    post, path = "/v1/tours", tag = "tours", operation_id = "create_tour",
    request_body = NewTour,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Made", body = TourView),
        (status = 403, description = "Not the bureau nor the officer of every leg's district", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_tour(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiJson(body): ApiJson<NewTour>,
) -> Result<(StatusCode, Json<TourView>)> {
    let location = LatLon::parse_in_city(body.meeting_location.lat, body.meeting_location.lon, "meeting_location")
        .map_err(AppError::Validation)?;
    let input = TourInput {
        title: body.title,
        audience: body.audience,
        meeting_point: body.meeting_point,
        meeting_location: location,
        places: body.places,
        legs: body.legs,
    };
    let now = state.now();
    let record = tours::create(&state.db, &actor, input, now).await?;
    Ok((StatusCode::CREATED, Json(TourView::of(&record, None, now))))
}

/// Filters of `GET /v1/tours`, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TourSearchParams {
    /// Tours starting at or after this time (default: now).
    #[param(pattern = "^2[0-9]{3}-")]
    pub from: Option<DateTime<Utc>>,
    /// Tours starting before this time (default: `from` + 90 days).
    #[param(pattern = "^2[0-9]{3}-")]
    pub to: Option<DateTime<Utc>>,
    pub audience: Option<Audience>,
    /// At least this many places free on the whole route.
    #[param(minimum = 0)]
    pub min_free: Option<i32>,
    /// Tours with a leg at this base.
    pub base_id: Option<Uuid>,
}

/// Find tours
///
/// Public. Open tours, with free places read live (the least over the tour's own places and
/// every leg). With `near`, sorted by the distance of the meeting point, then id; otherwise by
/// start, then id. Pages are cut at the previous page's last tour (keyset).
#[utoipa::path(
    get, path = "/v1/tours", tag = "tours", operation_id = "list_tours",
    params(TourSearchParams, NearParams, PageParams),
    responses((status = 200, description = "A page of tours", body = Page<TourView>))
)]
async fn list_tours(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<TourSearchParams>,
    ApiQuery(near): ApiQuery<NearParams>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<TourView>>> {
    let page = page.parse()?;
    let (near, radius_km) = near.parse()?;
    let query = TourQuery {
        near,
        radius_km,
        from: p.from,
        to: p.to,
        audience: p.audience,
        min_free: p.min_free,
        base_id: p.base_id,
    };
    let now = state.now();
    let paged = tours::search(&state.read_db, &query, page, now).await?;
    Ok(Json(Page::from_paged(paged, |(r, d)| TourView::of(&r, d, now))))
}

/// Get a tour
///
/// Public, with free places read live.
#[utoipa::path(
    get, path = "/v1/tours/{id}", tag = "tours", operation_id = "get_tour",
    params(("id" = Uuid, Path, description = "Tour id")),
    responses(
        (status = 200, description = "The tour", body = TourView),
        (status = 404, description = "No such tour", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_tour(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> Result<Json<TourView>> {
    let record = tours::get(&state.db, id).await?;
    Ok(Json(TourView::of(&record, None, state.now())))
}

/// A school's booking of a whole tour.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "school_id": "0193a5d2-7c1e-7a3b-9f00-6b5a4f3e2d1c",
    "students": 36,
    "teachers": 2,
    "contact_name": "李老师",
    "contact_phone": "138 0000 1234"
}))]
pub struct NewTourBooking {
    /// A school account books for its own school; an admin for any.
    pub school_id: Uuid,
    #[schema(minimum = 1, maximum = 10000)]
    pub students: i32,
    /// At least one per 20 students.
    #[schema(minimum = 1, maximum = 1000)]
    pub teachers: i32,
    #[schema(min_length = 1, max_length = 100)]
    pub contact_name: String,
    #[schema(max_length = 32)]
    pub contact_phone: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub needs: Option<String>,
}

/// A tour booking: its legs are bookings, one per leg, sharing one check-in code.
#[derive(Debug, Serialize, ToSchema)]
pub struct TourBookingView {
    pub id: Uuid,
    pub tour_id: Uuid,
    pub school_id: Uuid,
    pub students: i32,
    pub teachers: i32,
    pub contact_name: String,
    pub contact_phone: String,
    pub needs: Option<String>,
    pub status: BookingStatus,
    /// The code the group shows at every leg (shown to the school and admins).
    #[schema(example = "K7M2QX")]
    pub code: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    /// The legs' bookings, in visiting order.
    pub legs: Vec<BookingView>,
    pub created_at: DateTime<Utc>,
}

impl TourBookingView {
    fn of(r: TourBookingRecord, viewer: &Actor) -> Self {
        let b = r.booking;
        Self {
            id: b.id,
            tour_id: b.tour_id,
            school_id: b.school_id,
            students: b.students,
            teachers: b.teachers,
            contact_name: b.contact_name,
            contact_phone: b.contact_phone,
            needs: b.needs,
            status: BookingStatus::from_db(&b.status),
            code: matches!(viewer.role, Role::Admin | Role::School).then_some(b.code),
            cancelled_at: b.cancelled_at,
            cancel_reason: b.cancel_reason,
            legs: r.legs.into_iter().map(|l| BookingView::of(l, viewer)).collect(),
            created_at: b.created_at,
        }
    }
}

/// Book a tour
///
/// A school account for its school (an admin for any school). Every leg is booked in one
/// transaction, all or nothing: each leg's session and the school are checked by the same
/// rules as a single booking (the legs of one tour booking do not count as overlapping each
/// other), and the group's places are taken from the tour's own places and every pool of every
/// leg. 201 with the legs, all `confirmed`; 409 `capacity-exhausted` (the detail says how
/// many places are left on the route) or the rule a leg breaks, and nothing booked. A tour has
/// no waiting list. With an `Idempotency-Key` the same key and body replay the first answer.
#[utoipa::path(
    post, path = "/v1/tours/{id}/bookings", tag = "tours", operation_id = "book_tour",
    params(
        ("id" = Uuid, Path, description = "Tour id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: 1–200 characters, unique per request"),
    ),
    request_body = NewTourBooking,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Booked, every leg confirmed", body = TourBookingView),
        (status = 404, description = "No such tour", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`capacity-exhausted`, `tour-not-open` (cancelled, or a leg's session no longer open), or a leg's `school-booking-limit`, `overlapping-booking`, `school-suspended`, `base-not-accredited`, `session-not-open`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn book_tour(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    Idempotent { key, body }: Idempotent<NewTourBooking>,
) -> Result<Response> {
    let req = TourBookingRequest {
        school_id: body.school_id,
        students: body.students,
        teachers: body.teachers,
        contact_name: body.contact_name,
        contact_phone: body.contact_phone,
        needs: body.needs,
    };
    let render =
        |r: &TourBookingRecord| (201, serde_json::to_value(TourBookingView::of(r.clone(), &actor)).unwrap_or_default());
    let key = key.map(|k| k.scoped(id));
    Ok(made(tours::book(&state.db, &actor, id, req, key, render, state.now()).await?, render))
}

/// Get a tour booking
///
/// Its school, the bureau, the tour's district officer, or the operators of a leg's base.
#[utoipa::path(
    get, path = "/v1/tour-bookings/{id}", tag = "tours", operation_id = "get_tour_booking",
    params(("id" = Uuid, Path, description = "Tour booking id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tour booking", body = TourBookingView),
        (status = 404, description = "No such tour booking", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_tour_booking(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<TourBookingView>> {
    let record = tours::get_booking(&state.db, &actor, id).await?;
    Ok(Json(TourBookingView::of(record, &actor)))
}

/// Cancel a tour booking
///
/// The school before the tour starts; the bureau or the tour's district officer at any time,
/// with a reason. Every leg is cancelled (a late cancellation when under 24 hours before that
/// leg), and the freed places go to each leg's waiting list. A leg alone cannot be cancelled
/// (`POST /v1/bookings/{id}/cancel` answers 409 `part-of-tour`).
#[utoipa::path(
    post, path = "/v1/tour-bookings/{id}/cancel", tag = "tours", operation_id = "cancel_tour_booking",
    params(("id" = Uuid, Path, description = "Tour booking id")),
    request_body = CancelBooking,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cancelled tour booking", body = TourBookingView),
        (status = 404, description = "No such tour booking", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: already cancelled, or the tour has started", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_tour_booking(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CancelBooking>,
) -> Result<Json<TourBookingView>> {
    let record = tours::cancel_booking(&state.db, &actor, id, body.reason, state.now()).await?;
    Ok(Json(TourBookingView::of(record, &actor)))
}
