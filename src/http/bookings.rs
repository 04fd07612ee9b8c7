//! Bookings: `/v1/bookings`, cancellation, check-in, the school's calendar feed, and the
//! notifications they produce.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use entity::notification;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::domain::access::{Action, Actor, authorize};
use crate::domain::bookings::{self, BookingEdit, BookingFilter, BookingRecord, BookingRequest, CheckIn};
use crate::domain::calendar;
use crate::domain::enums::{Audience, BookingStatus, Role};
use crate::domain::notifications::{self, NotificationFilter};
use crate::error::{AppError, Problem, Result};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, Idempotent, IfMatch, MaybeAuthUser, made};
use crate::http::{Page, PageParams, apply_patch, with_etag};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_bookings, create_booking))
        .routes(routes!(get_booking, update_booking))
        .routes(routes!(move_booking))
        .routes(routes!(cancel_booking))
        .routes(routes!(check_in_booking))
        .routes(routes!(check_in_at_gate))
        .routes(routes!(school_calendar))
        .routes(routes!(create_calendar_token))
        .routes(routes!(list_notifications))
}

/// A booking request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "session_id": "0193a5d2-7c1e-7a3b-9f00-1c2d3e4f5a6b",
    "school_id": "0193a5d2-7c1e-7a3b-9f00-6b5a4f3e2d1c",
    "students": 45,
    "teachers": 3,
    "audience": "primary_upper",
    "contact_name": "李老师",
    "contact_phone": "138 0000 1234",
    "needs": "one wheelchair user",
    "waitlist": true
}))]
pub struct NewBooking {
    pub session_id: Uuid,
    /// A school account books for its own school; an admin for any.
    pub school_id: Uuid,
    /// At least 1.
    #[schema(minimum = 1, maximum = 10000)]
    pub students: i32,
    /// At least one per 20 students.
    #[schema(minimum = 1, maximum = 1000)]
    pub teachers: i32,
    /// Must be one of the session's audiences.
    pub audience: Audience,
    #[schema(min_length = 1, max_length = 100)]
    pub contact_name: String,
    #[schema(max_length = 32)]
    pub contact_phone: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub needs: Option<String>,
    /// When the session is full: wait for a place (202) instead of 409.
    #[serde(default)]
    pub waitlist: bool,
}

/// A booking as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    pub id: Uuid,
    pub session_id: Uuid,
    pub base_id: Uuid,
    pub school_id: Uuid,
    pub students: i32,
    pub teachers: i32,
    pub audience: Audience,
    pub contact_name: String,
    pub contact_phone: String,
    pub needs: Option<String>,
    pub status: BookingStatus,
    /// The short code the group shows at check-in (shown to the school and admins).
    #[schema(example = "K7M2QX")]
    pub code: Option<String>,
    /// Place in the session's waiting list, while waitlisted.
    pub waitlist_position: Option<u64>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    /// Cancelled less than 24 hours before the start.
    pub late_cancellation: bool,
    pub checked_in_at: Option<DateTime<Utc>>,
    pub students_present: Option<i32>,
    pub teachers_present: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The tour booking this visit is a leg of.
    pub tour_booking_id: Option<Uuid>,
    /// Bumped by every change; the `ETag` is this number in quotes.
    #[schema(example = 2)]
    pub version: i32,
    /// When the base last moved the session's times under this booking: cancelling is never
    /// late after that.
    pub session_moved_at: Option<DateTime<Utc>>,
}

impl BookingView {
    /// The code is for the school (and the bureau); the base reads it from the group.
    pub fn of(r: BookingRecord, viewer: &Actor) -> Self {
        let b = r.booking;
        let show_code = matches!(viewer.role, Role::Admin | Role::School);
        Self {
            status: BookingStatus::from_db(&b.status),
            audience: Audience::from_db(&b.audience),
            code: show_code.then_some(b.code),
            waitlist_position: r.waitlist_position,
            id: b.id,
            session_id: b.session_id,
            base_id: b.base_id,
            school_id: b.school_id,
            students: b.students,
            teachers: b.teachers,
            contact_name: b.contact_name,
            contact_phone: b.contact_phone,
            needs: b.needs,
            starts_at: b.starts_at,
            ends_at: b.ends_at,
            cancelled_at: b.cancelled_at,
            cancel_reason: b.cancel_reason,
            late_cancellation: b.late_cancellation,
            checked_in_at: b.checked_in_at,
            students_present: b.students_present,
            teachers_present: b.teachers_present,
            created_at: b.created_at,
            updated_at: b.updated_at,
            tour_booking_id: b.tour_booking_id,
            version: b.version,
            session_moved_at: b.session_moved_at,
        }
    }
}

/// Book a visit
///
/// A school account for its school (an admin for any school). 201 `confirmed` with a check-in
/// `code` when every pool of the session has room, taken atomically; when full, 409
/// `capacity-exhausted`, or 202 `waitlisted` with a position if `waitlist` is true. With an
/// `Idempotency-Key`, the same key and body replay the first answer (`Idempotent-Replayed:
/// true`); the same key with another body is 422. Keys are kept at least 24 hours per account.
#[utoipa::path(
    post, path = "/v1/bookings", tag = "bookings", operation_id = "create_booking",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: 1–200 characters, unique per request")),
    request_body = NewBooking,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Confirmed", body = BookingView),
        (status = 202, description = "Full: on the waiting list", body = BookingView),
        (status = 409, description = "`capacity-exhausted` (the detail says how many places are left), `school-booking-limit`, `overlapping-booking`, `school-suspended`, `base-not-accredited`, `session-not-open`, or `session-changing` (an operator kept changing the session's pools meanwhile: retry)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_booking(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    Idempotent { key, body }: Idempotent<NewBooking>,
) -> Result<Response> {
    let req = BookingRequest {
        session_id: body.session_id,
        school_id: body.school_id,
        students: body.students,
        teachers: body.teachers,
        audience: body.audience,
        contact_name: body.contact_name,
        contact_phone: body.contact_phone,
        needs: body.needs,
        waitlist: body.waitlist,
    };
    let render = |r: &BookingRecord| {
        let status = if r.status() == BookingStatus::Waitlisted { 202 } else { 201 };
        (status, serde_json::to_value(BookingView::of(r.clone(), &actor)).unwrap_or_default())
    };
    Ok(made(bookings::create(&state.db, &actor, req, key, render, state.now()).await?, render))
}

/// Get a booking
///
/// Its school, its base's operators, its district's officer, or an admin.
#[utoipa::path(
    get, path = "/v1/bookings/{id}", tag = "bookings", operation_id = "get_booking",
    params(("id" = Uuid, Path, description = "Booking id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The booking", body = BookingView,
            headers(("ETag" = String, description = "Version of the booking, for `If-Match`"))),
        (status = 404, description = "No such booking", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_booking(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response> {
    let record = bookings::get(&state.db, &actor, id).await?;
    Ok(with_etag(record.booking.version, Json(BookingView::of(record, &actor))))
}

/// Fields of a booking to change; those left out stay as they are, `needs: null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"students": 48, "teachers": 3}))]
#[allow(dead_code)]
pub struct BookingPatch {
    #[schema(minimum = 1, maximum = 10000)]
    students: Option<i32>,
    #[schema(minimum = 1, maximum = 1000)]
    teachers: Option<i32>,
    #[schema(max_length = 100)]
    contact_name: Option<String>,
    #[schema(example = "138 0000 1234")]
    contact_phone: Option<String>,
    #[schema(max_length = 2000)]
    needs: Option<String>,
}

/// Change a booking
///
/// Its school (or an admin), before the visit starts, with `If-Match` (the `ETag` last read):
/// the group's size, the contact, the needs. A new size is checked like a new booking (one
/// teacher per 20 students, the session's and the base's group limits, the booking window).
/// A confirmed booking that grows takes the difference from every pool of its session in the
/// same transaction; when it does not fit, 409 `capacity-exhausted` says how many places are
/// left and nothing changes. One that shrinks gives places back and the waiting list moves up.
/// A leg of a tour booking changes with its tour booking (409 `part-of-tour`).
#[utoipa::path(
    patch, path = "/v1/bookings/{id}", tag = "bookings", operation_id = "update_booking",
    params(
        ("id" = Uuid, Path, description = "Booking id"),
        ("If-Match" = String, Header, description = "The ETag last read, e.g. `\"2\"`"),
    ),
    request_body = BookingPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed booking", body = BookingView,
            headers(("ETag" = String, description = "New version of the booking"))),
        (status = 403, description = "Not the booking's school", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such booking", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`capacity-exhausted` (how many places are left), `invalid-state` (not active, or started), `part-of-tour`, `session-not-open`, `base-not-accredited`", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The booking changed since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (`teachers`: one per 20 students; `students`: a group limit; `booking-window-closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "`If-Match` is missing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_booking(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    if_match: IfMatch,
    ApiJson(patch): ApiJson<serde_json::Value>,
) -> Result<Response> {
    let precondition = if_match.required()?;
    let apply = |b: &entity::booking::Model| apply_patch::<BookingPatch, _>(&BookingEdit::of(b), &patch);
    let record = bookings::edit(&state.db, &actor, id, precondition, apply, state.now()).await?;
    Ok(with_etag(record.booking.version, Json(BookingView::of(record, &actor))))
}

/// Where a booking moves.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"session_id": "0193a5d2-7c1e-7a3b-9f00-1c2d3e4f5a6c"}))]
pub struct MoveBooking {
    /// The session to move to (at this base or another).
    pub session_id: Uuid,
}

/// Move a booking to another session
///
/// Its school (or an admin), before the visit starts, with `If-Match` (two moves of one
/// booking cannot both win: the second gets 412) and optionally an `Idempotency-Key`. Every
/// rule is checked for the new session as for a new booking, the booking itself not counting
/// against its school's limits or overlaps; the new places are taken and the old given back
/// in one transaction, so the booking is always in exactly one session. If anything fails it
/// stays where it was, untouched. The old session's waiting list moves up. The check-in code
/// and the calendar event (same UID, next sequence) stay.
#[utoipa::path(
    post, path = "/v1/bookings/{id}/move", tag = "bookings", operation_id = "move_booking",
    params(
        ("id" = Uuid, Path, description = "Booking id"),
        ("If-Match" = String, Header, description = "The ETag last read, e.g. `\"2\"`"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: 1–200 characters, unique per request"),
    ),
    request_body = MoveBooking,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The booking, in its new session", body = BookingView),
        (status = 403, description = "Not the booking's school", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such booking", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`capacity-exhausted` (how many places are left), `session-not-open` (cancelled, closed or started), `base-not-accredited`, `school-booking-limit`, `overlapping-booking`, `school-suspended`, `invalid-state`, `part-of-tour`, `session-changing`", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The booking changed since it was read (another move won)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`session_id`: no such session, or the booking's own; `audience`, `students` or `booking-window-closed` for the new session", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "`If-Match` is missing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn move_booking(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    if_match: IfMatch,
    Idempotent { key, body }: Idempotent<MoveBooking>,
) -> Result<Response> {
    let precondition = if_match.required()?;
    let key = key.map(|k| k.scoped(id));
    let render =
        |r: &BookingRecord| (200, serde_json::to_value(BookingView::of(r.clone(), &actor)).unwrap_or_default());
    let moved =
        bookings::move_to(&state.db, &actor, id, precondition, body.session_id, key, render, state.now()).await?;
    Ok(made(moved, render))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BookingListParams {
    pub session_id: Option<Uuid>,
    pub school_id: Option<Uuid>,
    pub status: Option<BookingStatus>,
    /// Visits starting at or after this time.
    #[param(pattern = "^2[0-9]{3}-")]
    pub from: Option<DateTime<Utc>>,
    /// Visits starting before this time.
    #[param(pattern = "^2[0-9]{3}-")]
    pub to: Option<DateTime<Utc>>,
}

/// List bookings
///
/// Scoped to the caller: a school sees its own, an operator its bases', a district officer
/// its district's, an admin all.
#[utoipa::path(
    get, path = "/v1/bookings", tag = "bookings", operation_id = "list_bookings",
    params(BookingListParams, PageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of bookings", body = Page<BookingView>))
)]
async fn list_bookings(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiQuery(p): ApiQuery<BookingListParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<BookingView>>> {
    let page = paging.parse()?;
    let filter =
        BookingFilter { session_id: p.session_id, school_id: p.school_id, status: p.status, from: p.from, to: p.to };
    let paged = bookings::list(&state.db, &actor, &filter, page).await?;
    Ok(Json(Page::from_paged(paged, |r| BookingView::of(r, &actor))))
}

/// Why a booking is cancelled.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "the class has an exam that day"}))]
pub struct CancelBooking {
    /// Required when a base or an admin cancels.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// Cancel a booking
///
/// The school before the visit starts; the base's operators and admins at any time, with a
/// reason. Less than 24 hours before the start it is recorded as a late cancellation. Freed
/// places go to waiting groups, first come first served.
#[utoipa::path(
    post, path = "/v1/bookings/{id}/cancel", tag = "bookings", operation_id = "cancel_booking",
    params(("id" = Uuid, Path, description = "Booking id")),
    request_body = CancelBooking,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cancelled booking", body = BookingView),
        (status = 404, description = "No such booking", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state`: not active, or the visit has started", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_booking(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CancelBooking>,
) -> Result<Json<BookingView>> {
    let record = bookings::cancel(&state.db, &actor, id, body.reason, state.now()).await?;
    Ok(Json(BookingView::of(record, &actor)))
}

/// Who arrived.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "K7M2QX", "students_present": 44, "teachers_present": 3}))]
pub struct CheckInBody {
    /// The code the group shows.
    pub code: String,
    #[schema(minimum = 0)]
    pub students_present: i32,
    #[schema(minimum = 0)]
    pub teachers_present: i32,
}

/// Check a group in
///
/// The base's operators (or an admin), with the group's code, from 2 hours before the visit.
#[utoipa::path(
    post, path = "/v1/bookings/{id}/check-in", tag = "bookings", operation_id = "check_in_booking",
    params(("id" = Uuid, Path, description = "Booking id")),
    request_body = CheckInBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Checked in", body = BookingView),
        (status = 404, description = "No such booking", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-state` or `check-in-not-open`", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn check_in_booking(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CheckInBody>,
) -> Result<Json<BookingView>> {
    let c =
        CheckIn { code: body.code, students_present: body.students_present, teachers_present: body.teachers_present };
    let record = bookings::check_in(&state.db, &actor, id, c, state.now()).await?;
    Ok(Json(BookingView::of(record, &actor)))
}

/// Check a group in at the gate, by its code
///
/// The base's operators (or an admin), with the code the group shows and who came: the gate
/// staff need no booking id. Finds the base's visit with that code whose check-in is open
/// (from 2 hours before the start, up to a day after), with the same rules as checking in by
/// booking id.
#[utoipa::path(
    post, path = "/v1/bases/{id}/check-in", tag = "bookings", operation_id = "check_in_at_gate",
    params(("id" = Uuid, Path, description = "Base id")),
    request_body = CheckInBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Checked in", body = BookingView),
        (status = 403, description = "Not the base's operator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such base", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already-checked-in`: the group with this code checked in already (when, in `detail`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`code`: no visit with it open for check-in at this base now; `students_present`, `teachers_present`: more than booked", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn check_in_at_gate(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(base_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CheckInBody>,
) -> Result<Json<BookingView>> {
    let c =
        CheckIn { code: body.code, students_present: body.students_present, teachers_present: body.teachers_present };
    let record = bookings::check_in_at(&state.db, &actor, base_id, c, state.now()).await?;
    Ok(Json(BookingView::of(record, &actor)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// The school's feed token (from `POST /v1/schools/{id}/calendar-token`), for calendar
    /// apps that cannot send a bearer token.
    pub token: Option<String>,
}

/// A school's visits as iCalendar
///
/// RFC 5545 feed of the school's confirmed and attended visits: the base, its address, the
/// times, the group and a link to the booking; never the check-in code or a phone number (a
/// feed's URL is handed to calendar providers). Readable with `?token=` (the school's feed
/// token) or a bearer token of the school or an admin.
#[utoipa::path(
    get, path = "/v1/schools/{id}/bookings.ics", tag = "bookings", operation_id = "school_calendar",
    params(("id" = Uuid, Path, description = "School id"), FeedParams),
    responses(
        (status = 200, description = "The calendar", body = String, content_type = "text/calendar"),
        (status = 401, description = "No valid feed or bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The bearer token's account may not read this school's feed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such school", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn school_calendar(
    State(state): State<AppState>,
    MaybeAuthUser(actor): MaybeAuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(p): ApiQuery<FeedParams>,
) -> Result<Response> {
    let school = calendar::authorize_feed(&state.db, id, p.token.as_deref(), actor.as_ref()).await?;
    let ics = calendar::feed(&state.db, &school, state.config.public_url.as_deref()).await?;
    Ok(([(header::CONTENT_TYPE, "text/calendar; charset=utf-8")], ics).into_response())
}

/// A calendar feed token.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedToken {
    pub token: String,
    /// The feed's path with the token, to give to a calendar app.
    #[schema(example = "/v1/schools/0193a5d2-7c1e-7a3b-9f00-6b5a4f3e2d1c/bookings.ics?token=cal_…")]
    pub path: String,
}

/// Issue a calendar feed token
///
/// The school itself or an admin. Replaces the previous token.
#[utoipa::path(
    post, path = "/v1/schools/{id}/calendar-token", tag = "bookings", operation_id = "create_calendar_token",
    params(("id" = Uuid, Path, description = "School id")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A new token", body = FeedToken),
        (status = 404, description = "No such school", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_calendar_token(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<FeedToken>)> {
    let token = calendar::issue_token(&state.db, &actor, id, state.now()).await?;
    let path = format!("/v1/schools/{id}/bookings.ics?token={token}");
    Ok((StatusCode::CREATED, Json(FeedToken { token, path })))
}

/// A message to a school, or to a base's operators.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: Uuid,
    /// The school it is for (or none: a notice to a base's operators).
    pub school_id: Option<Uuid>,
    /// The base whose operators it is for.
    pub base_id: Option<Uuid>,
    /// The account it is for (a district officer's, an admin's, a webhook's owner).
    pub user_id: Option<Uuid>,
    pub booking_id: Option<Uuid>,
    #[schema(example = "booking_promoted")]
    pub kind: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl NotificationView {
    fn of(n: notification::Model) -> Self {
        Self {
            id: n.id,
            school_id: n.school_id,
            base_id: n.base_id,
            user_id: n.user_id,
            booking_id: n.booking_id,
            kind: n.kind,
            message: n.message,
            created_at: n.created_at,
            delivered_at: n.delivered_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationParams {
    /// Admins: one school's notifications.
    pub school_id: Option<Uuid>,
    /// Admins and operators: one base's notices.
    pub base_id: Option<Uuid>,
    pub booking_id: Option<Uuid>,
}

/// List notifications
///
/// A school account reads its own; an operator the notices to its bases (reminders of the next
/// day's groups); every account the notices addressed to it (a webhook disabled); an admin
/// reads all. Oldest first.
#[utoipa::path(
    get, path = "/v1/notifications", tag = "bookings", operation_id = "list_notifications",
    params(NotificationParams, PageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of notifications", body = Page<NotificationView>))
)]
async fn list_notifications(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiQuery(p): ApiQuery<NotificationParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<NotificationView>>> {
    let page = paging.parse()?;
    let me = Some(actor.user_id);
    let (school_id, base_ids, user_id) = match actor.role {
        Role::Admin => (p.school_id, p.base_id.map(|b| vec![b]), None),
        Role::School => {
            let own = actor.school_id.unwrap_or_default();
            authorize(&actor, Action::EditSchool { school_id: p.school_id.unwrap_or(own) })?;
            (Some(own), None, me)
        }
        Role::Operator => {
            if let Some(b) = p.base_id {
                authorize(&actor, Action::ManageSessions { base_id: b })?;
            }
            (None, Some(p.base_id.map_or_else(|| actor.base_ids.clone(), |b| vec![b])), me)
        }
        Role::DistrictOfficer => (None, None, me),
        r @ Role::Evaluator => return Err(AppError::forbidden(format!("a {r} account has no notifications"))),
    };
    let filter = NotificationFilter { school_id, base_ids, user_id, booking_id: p.booking_id };
    let paged = notifications::list(&state.db, &filter, page).await?;
    Ok(Json(Page::from_paged(paged, NotificationView::of)))
}
