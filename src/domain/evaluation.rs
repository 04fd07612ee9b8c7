//! Annual evaluation (年度评估): a cycle's weighted rubric, one evaluation per accredited base
//! with kepu's own measured figures beside the base's self-report, experts' scores, and the
//! bureau's final result with its consequences: rectification, re-evaluation, revocation.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, Duration, Months, TimeZone, Utc};
use entity::{base, booking, evaluation, evaluation_cycle, exhibit, review, session, sign};
use sea_orm::sea_query::{Expr, Order};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    ExprTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::accreditation::{ScoreInput, assign_reviews, assigned_to, check_evaluators, save_review};
use crate::domain::audit::{self, Change};
use crate::domain::enums::{
    BaseStatus, BookingStatus, EvaluationKind, EvaluationStatus, Grade, Role, SessionStatus, SignStatus,
};
use crate::domain::page::{self, Cursor, PageRequest, Paged};
use crate::domain::sessions::city_offset;
use crate::domain::validate::Validator;
use crate::domain::{bases, sessions, write_if_version};
use crate::error::{AppError, Result, map_constraint};

/// `reviews.subject_kind` of an evaluation.
pub const REVIEW_KIND: &str = "evaluation";
/// Rectification lasts this long before the re-evaluation.
pub const RECTIFICATION_MONTHS: u32 = 6;

/// What kepu measures about a base for a year, from its own records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    SessionsOffered,
    DaysWithSessions,
    VisitorsBooked,
    VisitorsCheckedIn,
    SchoolGroups,
    DistinctSchools,
    NoShows,
    ExhibitsUpdated,
}

/// Points by threshold: the first band whose `at_least` the measured figure reaches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub at_least: f64,
    pub points: f64,
}

/// One scored indicator of a rubric section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,39}$", example = "school_groups")]
    pub key: String,
    #[schema(max_length = 200)]
    pub name: String,
    #[schema(minimum = 0.5)]
    pub max_points: f64,
    /// A figure kepu measures; with `bands` the evaluation suggests the points.
    #[serde(default)]
    pub measure: Option<Measure>,
    #[serde(default)]
    pub bands: Vec<Band>,
}

/// A weighted section of the rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,39}$", example = "operations")]
    pub key: String,
    #[schema(max_length = 200)]
    pub name: String,
    /// Percent of the total; the sections' weights add up to 100.
    #[schema(minimum = 0.5, maximum = 100.0)]
    pub weight: f64,
    #[schema(min_items = 1)]
    pub indicators: Vec<Indicator>,
}

/// The rubric of a cycle. Grades are fixed: excellent ≥ 90 %, good ≥ 70 %, pass ≥ 60 %, fail
/// below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sections": [
    {"key": "facilities", "name": "Facilities", "weight": 30, "indicators": [
        {"key": "exhibits", "name": "Exhibits kept up to date", "max_points": 10, "measure": "exhibits_updated", "bands": [{"at_least": 20, "points": 10}, {"at_least": 5, "points": 6}]}]},
    {"key": "operations", "name": "Operations", "weight": 50, "indicators": [
        {"key": "visitors", "name": "Visitors served", "max_points": 10, "measure": "visitors_checked_in", "bands": [{"at_least": 5000, "points": 10}, {"at_least": 1000, "points": 5}]}]},
    {"key": "schools", "name": "School cooperation", "weight": 20, "indicators": [
        {"key": "school_groups", "name": "School groups", "max_points": 10, "measure": "school_groups", "bands": [{"at_least": 50, "points": 10}]}]}
]}))]
pub struct Rubric {
    #[schema(min_items = 1)]
    pub sections: Vec<Section>,
}

impl Rubric {
    pub fn check(&self, v: &mut Validator) {
        let weights: f64 = self.sections.iter().map(|s| s.weight).sum();
        if self.sections.is_empty() {
            v.push("rubric.sections", "needs at least one section");
        } else if (weights - 100.0).abs() > 1e-6 {
            v.push("rubric.sections", format!("the weights add up to {weights}, not 100"));
        }
        let mut keys = HashSet::new();
        let good_key = |k: &str| {
            !k.is_empty()
                && k.len() <= 40
                && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        for (i, s) in self.sections.iter().enumerate() {
            let f = format!("rubric.sections[{i}]");
            if !good_key(&s.key) || !keys.insert(s.key.clone()) {
                v.push(format!("{f}.key"), "must be a unique lower-case key");
            }
            v.text(&format!("{f}.name"), &s.name, 200);
            if !(s.weight.is_finite() && s.weight > 0.0) {
                v.push(format!("{f}.weight"), "must be positive");
            }
            if s.indicators.is_empty() {
                v.push(format!("{f}.indicators"), "needs at least one indicator");
            }
            for (j, ind) in s.indicators.iter().enumerate() {
                let g = format!("{f}.indicators[{j}]");
                if !good_key(&ind.key) || !keys.insert(ind.key.clone()) {
                    v.push(format!("{g}.key"), "must be a unique lower-case key");
                }
                v.text(&format!("{g}.name"), &ind.name, 200);
                if !(ind.max_points.is_finite() && ind.max_points > 0.0 && ind.max_points <= 1000.0) {
                    v.push(format!("{g}.max_points"), "must be between 0 and 1000");
                }
                if !ind.bands.is_empty() && ind.measure.is_none() {
                    v.push(format!("{g}.bands"), "bands need a measure");
                }
                for (k, b) in ind.bands.iter().enumerate() {
                    if !(b.points.is_finite()
                        && b.points >= 0.0
                        && b.points <= ind.max_points
                        && b.at_least.is_finite())
                    {
                        v.push(format!("{g}.bands[{k}]"), "points must be between 0 and max_points");
                    }
                }
            }
        }
    }

    pub fn indicators(&self) -> impl Iterator<Item = &Indicator> {
        self.sections.iter().flat_map(|s| s.indicators.iter())
    }

    /// An expert's total in percent: each section's share of points times its weight.
    /// Every indicator needs points between 0 and its maximum.
    pub fn total(&self, points: &BTreeMap<String, f64>) -> Result<f64> {
        let mut v = Validator::new();
        for k in points.keys() {
            if !self.indicators().any(|i| &i.key == k) {
                v.push(format!("points.{k}"), "is not an indicator of the rubric");
            }
        }
        let mut total = 0.0;
        for s in &self.sections {
            let (mut got, mut max) = (0.0, 0.0);
            for ind in &s.indicators {
                max += ind.max_points;
                match points.get(&ind.key) {
                    None => v.push(format!("points.{}", ind.key), "needs a score"),
                    Some(p) if !p.is_finite() || *p < 0.0 || *p > ind.max_points => {
                        v.push(format!("points.{}", ind.key), format!("must be between 0 and {}", ind.max_points));
                    }
                    Some(p) => got += p,
                }
            }
            if max > 0.0 {
                total += s.weight * got / max;
            }
        }
        v.finish()?;
        Ok(total)
    }
}

/// The grade of a final score (percent).
pub fn grade(score: f64) -> Grade {
    match score {
        s if s >= 90.0 => Grade::Excellent,
        s if s >= 70.0 => Grade::Good,
        s if s >= 60.0 => Grade::Pass,
        _ => Grade::Fail,
    }
}

/// Points a band rule suggests for a measured figure.
pub fn suggested(ind: &Indicator, measured: &Measured) -> Option<f64> {
    let m = ind.measure?;
    let value = measured.get(m) as f64;
    let mut bands = ind.bands.clone();
    bands.sort_by(|a, b| b.at_least.total_cmp(&a.at_least));
    Some(bands.iter().find(|b| value >= b.at_least).map_or(0.0, |b| b.points))
}

/// A base's figures for a year, measured from kepu's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Measured {
    pub sessions_offered: i64,
    pub days_with_sessions: i64,
    pub visitors_booked: i64,
    pub visitors_checked_in: i64,
    pub school_groups: i64,
    pub distinct_schools: i64,
    pub no_shows: i64,
    pub exhibits_updated: i64,
}

impl Measured {
    pub fn get(&self, m: Measure) -> i64 {
        match m {
            Measure::SessionsOffered => self.sessions_offered,
            Measure::DaysWithSessions => self.days_with_sessions,
            Measure::VisitorsBooked => self.visitors_booked,
            Measure::VisitorsCheckedIn => self.visitors_checked_in,
            Measure::SchoolGroups => self.school_groups,
            Measure::DistinctSchools => self.distinct_schools,
            Measure::NoShows => self.no_shows,
            Measure::ExhibitsUpdated => self.exhibits_updated,
        }
    }
}

/// The local (Asia/Shanghai) calendar year as a UTC range.
pub fn year_range(year: i32) -> (DateTime<Utc>, DateTime<Utc>) {
    let tz = city_offset();
    let start = tz.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single().map(|t| t.with_timezone(&Utc));
    let end = tz.with_ymd_and_hms(year + 1, 1, 1, 0, 0, 0).single().map(|t| t.with_timezone(&Utc));
    (start.unwrap_or(DateTime::<Utc>::MIN_UTC), end.unwrap_or(DateTime::<Utc>::MAX_UTC))
}

/// Measures a base's year from its sessions, bookings and exhibits.
pub async fn measure(conn: &impl ConnectionTrait, base_id: Uuid, year: i32) -> Result<Measured> {
    let (from, to) = year_range(year);
    let sessions = session::Entity::find()
        .filter(session::Column::BaseId.eq(base_id))
        .filter(session::Column::Status.ne(SessionStatus::Cancelled.as_str()))
        .filter(session::Column::StartsAt.gte(from))
        .filter(session::Column::StartsAt.lt(to))
        .all(conn)
        .await?;
    let days: HashSet<_> = sessions.iter().map(|s| s.starts_at.with_timezone(&city_offset()).date_naive()).collect();
    let bookings = booking::Entity::find()
        .filter(booking::Column::BaseId.eq(base_id))
        .filter(booking::Column::StartsAt.gte(from))
        .filter(booking::Column::StartsAt.lt(to))
        .all(conn)
        .await?;
    let holding: Vec<&booking::Model> =
        bookings.iter().filter(|b| BookingStatus::HOLDING.contains(&BookingStatus::from_db(&b.status))).collect();
    let schools: HashSet<Uuid> = holding.iter().map(|b| b.school_id).collect();
    let exhibits_updated = exhibit::Entity::find()
        .filter(exhibit::Column::BaseId.eq(base_id))
        .filter(exhibit::Column::UpdatedAt.gte(from))
        .filter(exhibit::Column::UpdatedAt.lt(to))
        .all(conn)
        .await?
        .len();
    Ok(Measured {
        sessions_offered: sessions.len() as i64,
        days_with_sessions: days.len() as i64,
        visitors_booked: holding.iter().map(|b| i64::from(b.students + b.teachers)).sum(),
        visitors_checked_in: bookings
            .iter()
            .map(|b| i64::from(b.students_present.unwrap_or(0) + b.teachers_present.unwrap_or(0)))
            .sum(),
        school_groups: holding.len() as i64,
        distinct_schools: schools.len() as i64,
        no_shows: bookings.iter().filter(|b| BookingStatus::from_db(&b.status) == BookingStatus::NoShow).count() as i64,
        exhibits_updated: exhibits_updated as i64,
    })
}

/// A cycle as stored, with its rubric read.
#[derive(Debug, Clone, Serialize)]
pub struct Cycle {
    #[serde(flatten)]
    pub cycle: evaluation_cycle::Model,
    #[serde(skip)]
    pub rubric: Rubric,
}

impl Cycle {
    fn of(m: evaluation_cycle::Model) -> Self {
        let rubric = serde_json::from_value(m.rubric.clone()).unwrap_or(Rubric { sections: vec![] });
        Self { cycle: m, rubric }
    }
}

pub async fn get_cycle(conn: &impl ConnectionTrait, id: Uuid) -> Result<Cycle> {
    evaluation_cycle::Entity::find_by_id(id)
        .one(conn)
        .await?
        .map(Cycle::of)
        .ok_or_else(|| AppError::not_found(format!("no evaluation cycle with id {id}")))
}

/// Every cycle, newest year first.
pub async fn cycles(conn: &impl ConnectionTrait, page: PageRequest) -> Result<Paged<Cycle>> {
    use evaluation_cycle::Column as C;
    let mut q = evaluation_cycle::Entity::find();
    if let Some(after) = page.after {
        let year = i32::try_from(after.num.unwrap_or(i64::from(i32::MAX))).unwrap_or(i32::MAX);
        q = q.filter(page::after(C::Year, year, C::Id, after.id, Order::Desc));
    }
    let rows = q.order_by_desc(C::Year).order_by_desc(C::Id).limit(page.limit + 1).all(conn).await?;
    Ok(Paged::from_overfetch(rows, page.limit, |c| Cursor { num: Some(i64::from(c.year)), ..Cursor::id(c.id) })
        .map(Cycle::of))
}

/// Opens a cycle (admin): one annual evaluation for every base accredited at `now`.
pub async fn open_cycle(
    db: &DatabaseConnection,
    actor: &Actor,
    year: i32,
    rubric: Rubric,
    self_report_deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(Cycle, usize)> {
    authorize(actor, Action::ManageStandards)?;
    let mut v = Validator::new();
    v.year("year", year);
    rubric.check(&mut v);
    if self_report_deadline <= now {
        v.push("self_report_deadline", "must be in the future");
    }
    crate::domain::validate::sane_time("self_report_deadline", Some(self_report_deadline))?;
    v.finish()?;
    let txn = begin_write(db).await?;
    let id = Uuid::now_v7();
    evaluation_cycle::Entity::insert(evaluation_cycle::ActiveModel {
        id: Set(id),
        year: Set(year),
        rubric: Set(serde_json::to_value(&rubric).map_err(anyhow::Error::from)?),
        self_report_deadline: Set(self_report_deadline),
        created_by: Set(actor.user_id),
        created_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await
    .map_err(|e| map_constraint(e, || AppError::Conflict(format!("a cycle for {year} exists"))))?;
    let accredited = base::Entity::find()
        .filter(bases::status_condition(BaseStatus::Accredited, now))
        .order_by_asc(base::Column::Id)
        .all(&txn)
        .await?;
    for b in &accredited {
        insert_evaluation(&txn, id, b.id, EvaluationKind::Annual, None, now).await?;
    }
    let cycle = get_cycle(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::created("evaluation_cycle", id, &cycle)).await?;
    txn.commit().await?;
    Ok((cycle, accredited.len()))
}

async fn insert_evaluation(
    txn: &DatabaseTransaction,
    cycle_id: Uuid,
    base_id: Uuid,
    kind: EvaluationKind,
    due_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    evaluation::Entity::insert(evaluation::ActiveModel {
        id: Set(id),
        cycle_id: Set(cycle_id),
        base_id: Set(base_id),
        kind: Set(kind.as_str().into()),
        status: Set(EvaluationStatus::Open.as_str().into()),
        self_report: Set(None),
        measured: Set(None),
        score: Set(None),
        grade: Set(None),
        due_at: Set(due_at),
        finalized_at: Set(None),
        finalized_by: Set(None),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(id)
}

/// An evaluation with its cycle, reviews and (while open, live) measured figures.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluationRecord {
    #[serde(flatten)]
    pub evaluation: evaluation::Model,
    #[serde(skip)]
    pub cycle: Cycle,
    pub reviews: Vec<review::Model>,
    pub measured_now: Measured,
}

impl EvaluationRecord {
    pub fn status(&self) -> EvaluationStatus {
        EvaluationStatus::from_db(&self.evaluation.status)
    }

    /// Figures frozen at finalisation, or measured now while open.
    pub fn measured(&self) -> Measured {
        self.evaluation.measured.clone().and_then(|m| serde_json::from_value(m).ok()).unwrap_or(self.measured_now)
    }
}

pub async fn get_record(conn: &impl ConnectionTrait, id: Uuid) -> Result<EvaluationRecord> {
    let e = evaluation::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no evaluation with id {id}")))?;
    let cycle = get_cycle(conn, e.cycle_id).await?;
    let reviews = review::Entity::find()
        .filter(review::Column::SubjectKind.eq(REVIEW_KIND))
        .filter(review::Column::SubjectId.eq(id))
        .order_by_asc(review::Column::EvaluatorId)
        .all(conn)
        .await?;
    let measured_now =
        if e.measured.is_some() { Measured::default() } else { measure(conn, e.base_id, cycle.cycle.year).await? };
    Ok(EvaluationRecord { evaluation: e, cycle, reviews, measured_now })
}

/// Who reads an evaluation, open or final, with its self-report, points and comments: the
/// bureau; the base's operators; the experts assigned to it; and the officer of the base's
/// district, who follows a base's rectification up. Schools do not (the public reads final
/// results through [`results`]). The one rule behind both [`get`] and [`list`], as a condition
/// on `evaluations`; `Err` (403) for a role that reads none.
fn readable_by(actor: &Actor) -> Result<Condition> {
    Ok(match actor.role {
        Role::Admin => Condition::all(),
        Role::Operator => Condition::all().add(evaluation::Column::BaseId.is_in(actor.base_ids.clone())),
        Role::Evaluator => {
            Condition::all().add(evaluation::Column::Id.in_subquery(assigned_to(REVIEW_KIND, actor.user_id)))
        }
        Role::DistrictOfficer => Condition::all().add(
            evaluation::Column::BaseId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(base::Column::Id)
                    .from(base::Entity)
                    .and_where(base::Column::DistrictCode.eq(actor.district_code.clone().unwrap_or_default()))
                    .take(),
            ),
        ),
        Role::School => {
            return Err(AppError::forbidden(format!("a {} account cannot read evaluations", actor.role)));
        }
    })
}

/// One evaluation, for those who [`readable_by`] may read it.
pub async fn get(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<EvaluationRecord> {
    // The rule first: a refused caller costs one indexed lookup, not the measured figures.
    let readable = evaluation::Entity::find_by_id(id).filter(readable_by(actor)?).one(db).await?.is_some();
    if !readable && evaluation::Entity::find_by_id(id).one(db).await?.is_some() {
        return Err(AppError::forbidden(format!("a {} account cannot read evaluation {id}", actor.role)));
    }
    get_record(db, id).await
}

/// The evaluations [`readable_by`] the actor, of a cycle or a base.
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    cycle_id: Option<Uuid>,
    base_id: Option<Uuid>,
    page: PageRequest,
) -> Result<Paged<evaluation::Model>> {
    let mut cond = readable_by(actor)?;
    if let Some(c) = cycle_id {
        cond = cond.add(evaluation::Column::CycleId.eq(c));
    }
    if let Some(b) = base_id {
        cond = cond.add(evaluation::Column::BaseId.eq(b));
    }
    if let Some(after) = page.after {
        cond = cond.add(evaluation::Column::Id.gt(after.id));
    }
    let rows = evaluation::Entity::find()
        .filter(cond)
        .order_by_asc(evaluation::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Paged::from_overfetch(rows, page.limit, |e| Cursor::id(e.id)))
}

/// Published results of a base: finalised evaluations, newest first. Public for accredited
/// bases (and those in rectification); otherwise for the bureau and the base's operators.
pub async fn results(
    db: &DatabaseConnection,
    actor: Option<&Actor>,
    base_id: Uuid,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<Paged<evaluation::Model>> {
    let b = bases::ensure_exists(db, base_id).await?;
    let public = matches!(bases::effective_status(&b, now), BaseStatus::Accredited | BaseStatus::Rectification);
    let privileged = actor.is_some_and(|a| a.is_admin() || a.operates(base_id));
    if !public && !privileged {
        return Err(match actor {
            None => AppError::Unauthorized("this base's results are not public; sign in".into()),
            Some(a) => AppError::forbidden(format!("a {} account cannot read this base's results", a.role)),
        });
    }
    let mut q = evaluation::Entity::find()
        .filter(evaluation::Column::BaseId.eq(base_id))
        .filter(evaluation::Column::Status.eq(EvaluationStatus::Finalized.as_str()));
    if let Some(after) = page.after {
        let at = after.at.unwrap_or(DateTime::<Utc>::MAX_UTC);
        q = q.filter(page::after(evaluation::Column::FinalizedAt, at, evaluation::Column::Id, after.id, Order::Desc));
    }
    let rows = q
        .order_by_desc(evaluation::Column::FinalizedAt)
        .order_by_desc(evaluation::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Paged::from_overfetch(rows, page.limit, |e| {
        Cursor::at(e.finalized_at.unwrap_or(DateTime::<Utc>::MIN_UTC), e.id)
    }))
}

fn ensure_open(r: &EvaluationRecord) -> Result<()> {
    if r.status() == EvaluationStatus::Finalized {
        return Err(AppError::conflict_rule("invalid-state", "a finalised evaluation cannot change"));
    }
    Ok(())
}

async fn finish(
    txn: DatabaseTransaction,
    actor: &Actor,
    before: &EvaluationRecord,
    mut row: evaluation::ActiveModel,
    action: &str,
    now: DateTime<Utc>,
) -> Result<EvaluationRecord> {
    let e = &before.evaluation;
    row.id = Set(e.id);
    row.version = Set(e.version + 1);
    row.updated_at = Set(now);
    write_if_version::<evaluation::Entity>(
        &txn,
        row,
        (evaluation::Column::Id, e.id),
        (evaluation::Column::Version, e.version),
    )
    .await?;
    let after = get_record(&txn, e.id).await?;
    audit::record(&txn, Some(actor), now, Change::updated(action, "evaluation", e.id, before, &after)).await?;
    txn.commit().await?;
    Ok(after)
}

/// The base's self-report: its operators, until the cycle's deadline.
pub async fn self_report(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    report: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<EvaluationRecord> {
    let txn = begin_write(db).await?;
    let before = get_record(&txn, id).await?;
    authorize(actor, Action::EditBase { base_id: before.evaluation.base_id })?;
    ensure_open(&before)?;
    if now >= before.cycle.cycle.self_report_deadline {
        return Err(AppError::conflict_rule(
            "deadline-passed",
            format!("self-reports closed at {}", sessions::local_time(before.cycle.cycle.self_report_deadline)),
        ));
    }
    if !report.is_object() || report.to_string().len() > 20_000 {
        return Err(AppError::field("report", "must be a JSON object of at most 20000 bytes"));
    }
    let row = evaluation::ActiveModel { self_report: Set(Some(report)), ..Default::default() };
    finish(txn, actor, &before, row, "evaluation.self_report", now).await
}

/// The bureau assigns experts.
pub async fn assign(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    evaluator_ids: Vec<Uuid>,
    now: DateTime<Utc>,
) -> Result<EvaluationRecord> {
    authorize(actor, Action::ManageStandards)?;
    let txn = begin_write(db).await?;
    let before = get_record(&txn, id).await?;
    ensure_open(&before)?;
    check_evaluators(&txn, &evaluator_ids).await?;
    assign_reviews(&txn, REVIEW_KIND, id, &evaluator_ids, now).await?;
    finish(txn, actor, &before, evaluation::ActiveModel::default(), "evaluation.assign", now).await
}

/// An assigned expert records indicator points (and comments).
pub async fn score(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    input: ScoreInput,
    now: DateTime<Utc>,
) -> Result<EvaluationRecord> {
    let txn = begin_write(db).await?;
    let before = get_record(&txn, id).await?;
    if !before.reviews.iter().any(|r| r.evaluator_id == actor.user_id) {
        return Err(AppError::forbidden("only an evaluator assigned to this evaluation scores it"));
    }
    ensure_open(&before)?;
    let total = before.cycle.rubric.total(&input.points)?;
    input.check_comments()?;
    save_review(&txn, REVIEW_KIND, id, actor.user_id, &input, total, now).await?;
    finish(txn, actor, &before, evaluation::ActiveModel::default(), "evaluation.score", now).await
}

/// The bureau finalises: the score is the mean of the experts' totals, the grade follows, the
/// measured figures are frozen, and the consequences apply. A fail puts the base in
/// rectification with a re-evaluation due in six months; a failed re-evaluation, or a second
/// consecutive annual fail, revokes it.
pub async fn finalize(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<EvaluationRecord> {
    authorize(actor, Action::ManageStandards)?;
    let txn = begin_write(db).await?;
    let before = get_record(&txn, id).await?;
    ensure_open(&before)?;
    let totals: Vec<f64> = before.reviews.iter().filter_map(|r| r.total).collect();
    if totals.is_empty() {
        return Err(AppError::conflict_rule("invalid-state", "no expert has scored this evaluation yet"));
    }
    let score = (totals.iter().sum::<f64>() / totals.len() as f64 * 100.0).round() / 100.0;
    let g = grade(score);
    let e = &before.evaluation;
    let kind = EvaluationKind::from_db(&e.kind);
    let row = evaluation::ActiveModel {
        status: Set(EvaluationStatus::Finalized.as_str().into()),
        score: Set(Some(score)),
        grade: Set(Some(g.as_str().into())),
        measured: Set(Some(serde_json::to_value(before.measured()).map_err(anyhow::Error::from)?)),
        finalized_at: Set(Some(now)),
        finalized_by: Set(Some(actor.user_id)),
        ..Default::default()
    };
    let row_id = e.id;
    let base_id = e.base_id;
    let year = before.cycle.cycle.year;
    let cycle_id = e.cycle_id;
    write_if_version::<evaluation::Entity>(
        &txn,
        {
            let mut r = row;
            r.id = Set(row_id);
            r.version = Set(e.version + 1);
            r.updated_at = Set(now);
            r
        },
        (evaluation::Column::Id, row_id),
        (evaluation::Column::Version, e.version),
    )
    .await?;
    let after = get_record(&txn, row_id).await?;
    audit::record(
        &txn,
        Some(actor),
        now,
        Change::updated("evaluation.finalize", "evaluation", row_id, &before, &after),
    )
    .await?;

    match (kind, g) {
        (EvaluationKind::ReEvaluation, Grade::Fail) => {
            revoke(&txn, actor, (base_id, "base.revoke"), "failed re-evaluation", now).await?
        }
        (EvaluationKind::ReEvaluation, _) => {
            set_base_standing(&txn, actor, base_id, BaseStatus::Accredited, None, "base.rectified", now).await?;
        }
        (EvaluationKind::Annual, Grade::Fail) => {
            if failed_last_year(&txn, base_id, year).await? {
                revoke(&txn, actor, (base_id, "base.revoke"), "second consecutive annual fail", now).await?;
            } else {
                let until =
                    now.checked_add_months(Months::new(RECTIFICATION_MONTHS)).unwrap_or(now + Duration::days(183));
                set_base_standing(
                    &txn,
                    actor,
                    base_id,
                    BaseStatus::Rectification,
                    Some(until),
                    "base.rectification",
                    now,
                )
                .await?;
                let re =
                    insert_evaluation(&txn, cycle_id, base_id, EvaluationKind::ReEvaluation, Some(until), now).await?;
                let created = evaluation::Entity::find_by_id(re).one(&txn).await?;
                audit::record(&txn, Some(actor), now, Change::created("evaluation", re, &created)).await?;
            }
        }
        (EvaluationKind::Annual, _) => {}
    }
    txn.commit().await?;
    get_record(db, row_id).await
}

async fn failed_last_year(txn: &DatabaseTransaction, base_id: Uuid, year: i32) -> Result<bool> {
    let Some(prev) =
        evaluation_cycle::Entity::find().filter(evaluation_cycle::Column::Year.eq(year - 1)).one(txn).await?
    else {
        return Ok(false);
    };
    Ok(evaluation::Entity::find()
        .filter(evaluation::Column::CycleId.eq(prev.id))
        .filter(evaluation::Column::BaseId.eq(base_id))
        .filter(evaluation::Column::Kind.eq(EvaluationKind::Annual.as_str()))
        .filter(evaluation::Column::Grade.eq(Grade::Fail.as_str()))
        .one(txn)
        .await?
        .is_some())
}

async fn set_base_standing(
    txn: &DatabaseTransaction,
    actor: &Actor,
    base_id: Uuid,
    status: BaseStatus,
    rectification_until: Option<DateTime<Utc>>,
    action: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let before = bases::get(txn, base_id).await?;
    base::Entity::update_many()
        .col_expr(base::Column::Status, Expr::value(status.as_str()))
        .col_expr(base::Column::RectificationUntil, Expr::value(rectification_until))
        .col_expr(base::Column::Version, Expr::col(base::Column::Version).add(1))
        .col_expr(base::Column::UpdatedAt, Expr::value(now))
        .filter(base::Column::Id.eq(base_id))
        .exec(txn)
        .await?;
    let after = bases::get(txn, base_id).await?;
    audit::record(txn, Some(actor), now, Change::updated(action, "base", base_id, &before, &after)).await?;
    Ok(())
}

/// Revokes a base: its status, its future sessions (and their bookings, with notices to the
/// schools), and every standing sign marked for removal.
pub async fn revoke(
    txn: &DatabaseTransaction,
    actor: &Actor,
    (base_id, action): (Uuid, &str),
    why: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    set_base_standing(txn, actor, base_id, BaseStatus::Revoked, None, action, now).await?;
    let future = session::Entity::find()
        .filter(session::Column::BaseId.eq(base_id))
        .filter(session::Column::Status.ne(SessionStatus::Cancelled.as_str()))
        .filter(session::Column::StartsAt.gt(now))
        .order_by_asc(session::Column::Id)
        .all(txn)
        .await?;
    for s in future {
        let locked = sessions::lock_exclusive(txn, s.id).await?;
        sessions::cancel_locked(
            txn,
            Some(actor),
            locked,
            &format!("the base's accreditation was revoked ({why})"),
            now,
        )
        .await?;
    }
    let standing = [SignStatus::Installed, SignStatus::UpdateDue];
    let signs = sign::Entity::find()
        .filter(sign::Column::BaseId.eq(base_id))
        .filter(sign::Column::Status.is_in(standing.iter().map(|s| s.as_str())))
        .all(txn)
        .await?;
    for s in signs {
        sign::Entity::update_many()
            .col_expr(sign::Column::Status, Expr::value(SignStatus::RemovalDue.as_str()))
            .col_expr(sign::Column::Version, Expr::value(s.version + 1))
            .col_expr(sign::Column::UpdatedAt, Expr::value(now))
            .filter(sign::Column::Id.eq(s.id))
            .exec(txn)
            .await?;
        let after = sign::Entity::find_by_id(s.id).one(txn).await?;
        audit::record(txn, Some(actor), now, Change::updated("sign.removal_due", "sign", s.id, &s, &after)).await?;
    }
    Ok(())
}

/// Revokes the bases whose rectification period has ended without a passed re-evaluation (a
/// passed one restores a base to `accredited`), with the consequences of a failed one; the
/// audit log says why (`base.revoke.rectification_expired`). A sweep: each base in its own
/// transaction, locked and checked again, so several processes revoke each once.
pub async fn revoke_unrectified(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<usize> {
    let due = base::Entity::find()
        .filter(base::Column::Status.eq(BaseStatus::Rectification.as_str()))
        .filter(base::Column::RectificationUntil.lte(now))
        .order_by_asc(base::Column::Id)
        .limit(100)
        .all(db)
        .await?;
    let mut revoked = 0;
    for b in due {
        let txn = begin_write(db).await?;
        let still = base::Entity::find_by_id(b.id)
            .filter(base::Column::Status.eq(BaseStatus::Rectification.as_str()))
            .filter(base::Column::RectificationUntil.lte(now))
            .lock_exclusive()
            .one(&txn)
            .await?;
        if still.is_none() {
            continue;
        }
        let why = "its rectification period ended without a passed re-evaluation";
        revoke(&txn, &Actor::system(), (b.id, "base.revoke.rectification_expired"), why, now).await?;
        txn.commit().await?;
        revoked += 1;
    }
    Ok(revoked)
}

/// The current year in the city, for cycle defaults.
pub fn city_year(now: DateTime<Utc>) -> i32 {
    now.with_timezone(&city_offset()).year()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rubric() -> Rubric {
        let ind = |key: &str, max: f64| Indicator {
            key: key.into(),
            name: key.into(),
            max_points: max,
            measure: None,
            bands: vec![],
        };
        Rubric {
            sections: vec![
                Section { key: "facilities".into(), name: "F".into(), weight: 30.0, indicators: vec![ind("a", 10.0)] },
                Section {
                    key: "operations".into(),
                    name: "O".into(),
                    weight: 50.0,
                    indicators: vec![ind("b", 10.0), ind("c", 10.0)],
                },
                Section { key: "schools".into(), name: "S".into(), weight: 20.0, indicators: vec![ind("d", 5.0)] },
            ],
        }
    }

    #[test]
    fn totals_weight_each_sections_share() {
        let p = |a, b, c, d| BTreeMap::from([("a".into(), a), ("b".into(), b), ("c".into(), c), ("d".into(), d)]);
        assert_eq!(rubric().total(&p(10.0, 10.0, 10.0, 5.0)).unwrap(), 100.0);
        assert_eq!(rubric().total(&p(0.0, 0.0, 0.0, 0.0)).unwrap(), 0.0);
        // 30·5/10 + 50·10/20 + 20·5/5 = 15 + 25 + 20
        assert!((rubric().total(&p(5.0, 10.0, 0.0, 5.0)).unwrap() - 60.0).abs() < 1e-9);
        assert!(rubric().total(&p(11.0, 0.0, 0.0, 0.0)).is_err());
    }

    #[test]
    fn grade_bands_at_their_edges() {
        assert_eq!(grade(90.0), Grade::Excellent);
        assert_eq!(grade(89.99), Grade::Good);
        assert_eq!(grade(70.0), Grade::Good);
        assert_eq!(grade(69.99), Grade::Pass);
        assert_eq!(grade(60.0), Grade::Pass);
        assert_eq!(grade(59.99), Grade::Fail);
    }

    #[test]
    fn bands_suggest_points_from_measured_figures() {
        let ind = Indicator {
            key: "v".into(),
            name: "v".into(),
            max_points: 10.0,
            measure: Some(Measure::SchoolGroups),
            bands: vec![Band { at_least: 5.0, points: 4.0 }, Band { at_least: 50.0, points: 10.0 }],
        };
        let m = |n| Measured { school_groups: n, ..Default::default() };
        assert_eq!(suggested(&ind, &m(60)), Some(10.0));
        assert_eq!(suggested(&ind, &m(50)), Some(10.0));
        assert_eq!(suggested(&ind, &m(7)), Some(4.0));
        assert_eq!(suggested(&ind, &m(1)), Some(0.0));
    }

    #[test]
    fn weights_must_add_up_to_100() {
        let mut r = rubric();
        r.sections[0].weight = 31.0;
        let mut v = Validator::new();
        r.check(&mut v);
        assert!(!v.is_ok());
    }
}
