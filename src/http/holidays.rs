//! The working calendar: public holidays and make-up working days, which the public notice of
//! an accreditation counts by.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::holidays;
use crate::error::{Problem, Result};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::http::{Page, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_calendar_days)).routes(routes!(mark_calendar_day, unmark_calendar_day))
}

/// A day that is not what its weekday says.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"day": "2026-10-01", "name": "国庆节 National Day", "working": false, "updated_at": "2026-11-29T08:00:00Z"}))]
pub struct CalendarDay {
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    pub name: String,
    /// `false`: a public holiday; `true`: a weekend day worked in exchange for one (调休).
    pub working: bool,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

impl CalendarDay {
    fn of(m: entity::public_holiday::Model) -> Self {
        Self { day: m.day, name: m.name, working: m.working, updated_at: m.updated_at }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CalendarParams {
    /// The year (default: this year in Guangzhou).
    #[param(minimum = 2000, maximum = 2999)]
    pub year: Option<i32>,
}

/// List the marked days of a year
///
/// Public. Days not listed go by their weekday: Monday to Friday are working days.
#[utoipa::path(
    get, path = "/v1/calendar/days", tag = "calendar", operation_id = "list_calendar_days",
    params(CalendarParams, PageParams),
    responses((status = 200, description = "The year's holidays and make-up working days, in order", body = Page<CalendarDay>))
)]
async fn list_calendar_days(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<CalendarParams>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<CalendarDay>>> {
    Ok(Json(Page::from_paged(holidays::list(&state.db, p.year, paging.parse()?, state.now()).await?, CalendarDay::of)))
}

/// How a day is marked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "国庆节 National Day", "working": false}))]
pub struct MarkDay {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// `false` (default): a public holiday; `true`: a weekend day worked in exchange for one.
    #[serde(default)]
    pub working: bool,
}

/// Mark a day as a holiday or a make-up working day
///
/// The bureau (admin). Public notices started afterwards count by it; running ones keep their
/// end.
#[utoipa::path(
    put, path = "/v1/calendar/days/{day}", tag = "calendar", operation_id = "mark_calendar_day",
    params(("day" = String, Path, format = Date, pattern = "^2[0-9]{3}-", description = "The day, `YYYY-MM-DD`")),
    request_body = MarkDay,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The marked day", body = CalendarDay),
        (status = 404, description = "The path is not a day (`YYYY-MM-DD`)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn mark_calendar_day(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(day): ApiPath<NaiveDate>,
    ApiJson(body): ApiJson<MarkDay>,
) -> Result<Json<CalendarDay>> {
    let m = holidays::put(&state.db, &actor, day, &body.name, body.working, state.now()).await?;
    Ok(Json(CalendarDay::of(m)))
}

/// Unmark a day
///
/// The bureau (admin): the day goes by its weekday again.
#[utoipa::path(
    delete, path = "/v1/calendar/days/{day}", tag = "calendar", operation_id = "unmark_calendar_day",
    params(("day" = String, Path, format = Date, pattern = "^2[0-9]{3}-", description = "The day, `YYYY-MM-DD`")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Unmarked"),
        (status = 404, description = "The day is not marked", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn unmark_calendar_day(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiPath(day): ApiPath<NaiveDate>,
) -> Result<Response> {
    holidays::remove(&state.db, &actor, day, state.now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
