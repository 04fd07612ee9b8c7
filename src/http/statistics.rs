//! City science statistics (科普统计): `/v1/statistics` and the district annual report
//! `/v1/districts/{code}/report`, as JSON or CSV.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::db::begin_read;
use crate::domain::access::{Action, authorize};
use crate::domain::bases::status_at;
use crate::domain::enums::{BaseStatus, Grade};
use crate::domain::statistics::{self, CSV_COLUMNS, Figures, Period, Scope, Sharing, StatRow, Units};
use crate::domain::validate::Validator;
use crate::error::{AppError, Problem, Result};
use crate::http::extract::{ApiPath, ApiQuery, AuthUser, MaybeAuthUser};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_statistics))
        .routes(routes!(get_district_report))
        .routes(routes!(get_sharing_report))
}

/// JSON or CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    Json,
    Csv,
}

/// Whether the caller asked for CSV: `format=csv`, or `Accept: text/csv` without `format`.
fn wants_csv(format: Option<ReportFormat>, headers: &HeaderMap) -> bool {
    match format {
        Some(f) => f == ReportFormat::Csv,
        None => headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/csv")),
    }
}

/// A CSV answer: UTF-8 with a byte-order mark (so that a spreadsheet reads Chinese names
/// right), a header row, CRLF line ends, as a download named `filename`.
fn csv_response(header_row: &[&str], rows: impl IntoIterator<Item = Vec<String>>, filename: &str) -> Result<Response> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::from(*b"\xEF\xBB\xBF"));
    let fail = |e: csv::Error| AppError::Internal(anyhow::anyhow!("writing CSV: {e}"));
    w.write_record(header_row).map_err(fail)?;
    for r in rows {
        w.write_record(&r).map_err(fail)?;
    }
    let body = w.into_inner().map_err(|e| AppError::Internal(anyhow::anyhow!("writing CSV: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response())
}

/// The year asked for (default: this local year), checked.
fn year_of(year: Option<i32>, now: DateTime<Utc>) -> Result<i32> {
    let year = year.unwrap_or_else(|| crate::domain::loans::local_day(now).year());
    let mut v = Validator::new();
    v.year("year", year);
    v.finish()?;
    Ok(year)
}

/// What statistics to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatisticsParams {
    /// `city` and `district` are public; `base` needs a login (its operators, its district's
    /// officer, the bureau).
    pub scope: Scope,
    /// The district's code or the base's id; without it: every district, or the caller's
    /// bases (an operator's, an officer's district's).
    pub id: Option<String>,
    /// Local (Asia/Shanghai) calendar year; default this year.
    #[param(minimum = 2000, maximum = 2999)]
    pub year: Option<i32>,
    /// Default `year`.
    pub period: Option<Period>,
    /// `csv` answers CSV (as does `Accept: text/csv`).
    #[param(inline)]
    pub format: Option<ReportFormat>,
}

/// Statistics as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatisticsView {
    pub scope: Scope,
    pub year: i32,
    pub period: Period,
    /// One row per unit and period, every period present.
    pub rows: Vec<StatRow>,
}

/// Read statistics
///
/// Sessions held, places offered, bookings, visitors booked and checked in, school groups,
/// distinct schools, late cancellations, no-shows, utilisation, tour departures and fill,
/// campaign applicants and winners, exhibit loans — for bases, districts or the city, by
/// year, quarter or month, counted by the database from the raw rows. CSV with `format=csv`
/// or `Accept: text/csv` (UTF-8 with BOM, the columns of the JSON rows in a fixed order).
#[utoipa::path(
    get, path = "/v1/statistics", tag = "statistics", operation_id = "get_statistics",
    params(StatisticsParams),
    responses(
        (status = 200, description = "The figures", content(
            (StatisticsView = "application/json"),
            (String = "text/csv", example = "\u{feff}scope,id,name,period,sessions_held,places_offered,bookings,visitors_booked,visitors_checked_in,school_groups,distinct_schools,late_cancellations,no_shows,utilisation,tour_departures,tour_places,tour_booked,tour_fill,campaign_applicants,campaign_winners,exhibit_loans_lent,exhibit_loans_borrowed\r\ndistrict,440106,天河区,2026,1200,48000,1100,42000,39500,1050,310,12,9,0.8229,40,1600,1480,0.925,900,400,6,3\r\n"),
        )),
        (status = 401, description = "`scope=base` without a login", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a base the caller may read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such base", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_statistics(
    State(state): State<AppState>,
    MaybeAuthUser(actor): MaybeAuthUser,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<StatisticsParams>,
) -> Result<Response> {
    let now = state.now();
    let year = year_of(p.year, now)?;
    let period = p.period.unwrap_or_default();
    let id = p.id.as_deref().map(str::trim).filter(|s| !s.is_empty());
    // One snapshot for every figure.
    let txn = begin_read(&state.read_db).await?;
    let units = statistics::units_for(&txn, actor.as_ref(), p.scope, id).await?;
    let rows = statistics::figures(&txn, &units, year, period, now).await?;
    txn.commit().await?;
    if wants_csv(p.format, &headers) {
        let filename = format!("kepu-statistics-{year}.csv");
        return csv_response(&CSV_COLUMNS, rows.iter().map(StatRow::csv_fields), &filename);
    }
    Ok(Json(StatisticsView { scope: p.scope, year, period, rows }).into_response())
}

/// Which report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// Local calendar year; default this year.
    #[param(minimum = 2000, maximum = 2999)]
    pub year: Option<i32>,
    /// `csv` answers CSV (as does `Accept: text/csv`): one row per base, then the district's.
    #[param(inline)]
    pub format: Option<ReportFormat>,
}

/// A base in the district report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportBase {
    pub base_id: Uuid,
    pub name: String,
    /// Its accreditation status now.
    pub status: BaseStatus,
    /// The grade of its finalised evaluation of the year.
    pub grade: Option<Grade>,
    pub signs: i64,
    /// Installed signs whose inspection is overdue.
    pub signs_overdue: i64,
    pub signs_update_due: i64,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The district annual report.
#[derive(Debug, Serialize, ToSchema)]
pub struct DistrictReport {
    #[schema(example = "440106")]
    pub district_code: String,
    #[schema(example = "天河区")]
    pub district_name: String,
    pub year: i32,
    pub generated_at: DateTime<Utc>,
    /// The district's figures of the year.
    pub totals: Figures,
    /// Bases by accreditation status.
    #[schema(example = json!({"accredited": 41, "rectification": 2, "applicant": 5}))]
    pub bases_by_status: BTreeMap<String, i64>,
    /// Bases by the grade of their finalised evaluation of the year.
    #[schema(example = json!({"excellent": 9, "good": 25, "pass": 5, "fail": 2}))]
    pub grades: BTreeMap<String, i64>,
    /// Signs standing in the district (not rejected, replaced or removed), those overdue for
    /// inspection, those due for update.
    pub signs: i64,
    pub signs_overdue: i64,
    pub signs_update_due: i64,
    /// Every base of the district, by id.
    pub bases: Vec<ReportBase>,
}

/// The district annual report
///
/// What the plan asks districts to report every November: the year's figures of each base of
/// the district and of the district, and its accreditation, evaluation and signage state
/// (bases by status, grades, signs overdue for inspection or due for update). The district's
/// officers and the bureau. CSV with `format=csv` or `Accept: text/csv`: a row per base, then
/// a `district` row with the totals.
#[utoipa::path(
    get, path = "/v1/districts/{code}/report", tag = "statistics", operation_id = "get_district_report",
    params(("code" = String, Path, description = "District code (GB/T 2260)"), ReportParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report", content(
            (DistrictReport = "application/json"),
            (String = "text/csv", example = "\u{feff}base_id,name,status,grade,signs,signs_overdue,signs_update_due,sessions_held,…\r\n"),
        )),
        (status = 404, description = "No such district", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_district_report(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    headers: HeaderMap,
    ApiPath(code): ApiPath<String>,
    ApiQuery(p): ApiQuery<ReportParams>,
) -> Result<Response> {
    let now = state.now();
    let district = crate::domain::districts::get(&state.read_db, &code).await?;
    authorize(&actor, Action::DistrictDecision { district_code: &district.code })?;
    let year = year_of(p.year, now)?;
    // One snapshot for every figure of the report.
    let txn = begin_read(&state.read_db).await?;
    let standings = statistics::standings(&txn, &district.code, year, now).await?;
    let mut per_base: BTreeMap<String, Figures> =
        statistics::figures(&txn, &Units::BasesOf(district.code.clone()), year, Period::Year, now)
            .await?
            .into_iter()
            .map(|r| (r.id, r.figures))
            .collect();
    let totals = statistics::figures(&txn, &Units::Districts(vec![district.code.clone()]), year, Period::Year, now)
        .await?
        .pop()
        .map(|r| r.figures)
        .unwrap_or_default();
    let standing = statistics::district_standing(&txn, &district.code, year, now).await?;
    txn.commit().await?;
    let bases: Vec<ReportBase> = standings
        .into_iter()
        .map(|s| ReportBase {
            figures: per_base.remove(&s.id.to_string()).unwrap_or_default(),
            base_id: s.id,
            name: s.name_zh,
            status: status_at(&s.status, s.valid_until, now),
            grade: s.grade.as_deref().map(Grade::from_db),
            signs: s.signs,
            signs_overdue: s.signs_overdue,
            signs_update_due: s.signs_update_due,
        })
        .collect();
    let report = DistrictReport {
        signs: standing.signs,
        signs_overdue: standing.signs_overdue,
        signs_update_due: standing.signs_update_due,
        district_code: district.code.clone(),
        district_name: district.name_zh.clone(),
        year,
        generated_at: now,
        totals,
        bases_by_status: standing.bases_by_status,
        grades: standing.grades,
        bases,
    };
    if wants_csv(p.format, &headers) {
        return report_csv(&report);
    }
    Ok(Json(report).into_response())
}

/// The report as CSV: the standing columns, then the figures' columns of `/v1/statistics`.
fn report_csv(r: &DistrictReport) -> Result<Response> {
    let mut header_row = vec!["base_id", "name", "status", "grade", "signs", "signs_overdue", "signs_update_due"];
    header_row.extend(&CSV_COLUMNS[4..]);
    let figures_of = |f: &Figures| {
        let row = StatRow {
            scope: Scope::City,
            id: String::new(),
            name: String::new(),
            period: String::new(),
            figures: f.clone(),
        };
        row.csv_fields().split_off(4)
    };
    let mut rows: Vec<Vec<String>> = r
        .bases
        .iter()
        .map(|b| {
            let mut row = vec![
                b.base_id.to_string(),
                b.name.clone(),
                b.status.as_str().into(),
                b.grade.map(|g| g.as_str().to_string()).unwrap_or_default(),
                b.signs.to_string(),
                b.signs_overdue.to_string(),
                b.signs_update_due.to_string(),
            ];
            row.extend(figures_of(&b.figures));
            row
        })
        .collect();
    let mut total = vec![
        "district".to_string(),
        r.district_name.clone(),
        String::new(),
        String::new(),
        r.signs.to_string(),
        r.signs_overdue.to_string(),
        r.signs_update_due.to_string(),
    ];
    total.extend(figures_of(&r.totals));
    rows.push(total);
    csv_response(&header_row, rows, &format!("kepu-{}-report-{}.csv", r.district_code, r.year))
}

/// Which sharing report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SharingParams {
    /// Local calendar year of the loans' dispatch; default this year.
    #[param(minimum = 2000, maximum = 2999)]
    pub year: Option<i32>,
    /// Only this district's bases (a district officer always gets its own).
    pub district: Option<String>,
}

/// A base in the sharing report.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharingBase {
    pub base_id: Uuid,
    pub name: String,
    #[serde(flatten)]
    pub sharing: Sharing,
}

/// A district in the sharing report.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharingDistrict {
    #[schema(example = "440106")]
    pub district_code: String,
    #[schema(example = "天河区")]
    pub name: String,
    #[serde(flatten)]
    pub sharing: Sharing,
}

/// The sharing report.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharingReport {
    pub year: i32,
    /// Bases that lent, borrowed or have shareable exhibits, by id.
    pub bases: Vec<SharingBase>,
    /// Districts with any of those, by code.
    pub districts: Vec<SharingDistrict>,
}

/// The exhibit sharing report
///
/// The bureau's (a district officer's: its district): loans per base and per district, lent and
/// borrowed, the days they were away (from the local day a loan left to the day it came back,
/// or today), shareable exhibits and those never lent (`GET /v1/exhibits?never_lent=true&shareable=true`
/// lists them).
#[utoipa::path(
    get, path = "/v1/statistics/sharing", tag = "statistics", operation_id = "get_sharing_report",
    params(SharingParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report", body = SharingReport),
    )
)]
async fn get_sharing_report(
    State(state): State<AppState>,
    AuthUser(actor): AuthUser,
    ApiQuery(p): ApiQuery<SharingParams>,
) -> Result<Json<SharingReport>> {
    let now = state.now();
    let year = year_of(p.year, now)?;
    let district = statistics::sharing_scope(&state.read_db, &actor, crate::http::filter_text(p.district)).await?;
    let (by_base, by_district) = statistics::sharing(&state.read_db, year, district.as_deref(), now).await?;
    let mut names =
        crate::domain::bases::names(&state.read_db, by_base.keys().copied(), entity::base::Column::NameZh).await?;
    let district_names: BTreeMap<String, String> =
        crate::domain::districts::list(&state.read_db).await?.into_iter().map(|d| (d.code, d.name_zh)).collect();
    Ok(Json(SharingReport {
        year,
        bases: by_base
            .into_iter()
            .map(|(base_id, sharing)| SharingBase {
                name: names.remove(&base_id).unwrap_or_default(),
                base_id,
                sharing,
            })
            .collect(),
        districts: by_district
            .into_iter()
            .map(|(code, sharing)| SharingDistrict {
                name: district_names.get(&code).cloned().unwrap_or_default(),
                district_code: code,
                sharing,
            })
            .collect(),
    }))
}
