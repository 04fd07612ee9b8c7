//! Accreditation (认定): versioned standards, applications checked against the standard in
//! force, the district's recommendation, expert scores, a public notice of five working days
//! open to objections, the bureau's decision, and certificates anyone can verify.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use entity::{accreditation, accreditation_standard, base, certificate_counter, objection, review, user};
use sea_orm::sea_query::{Expr, Order};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    ExprTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::enums::{AccreditationStatus, BaseStatus, ObjectionStatus, Role, Subcategory};
use crate::domain::page::{self, Cursor, PageRequest, Paged};
use crate::domain::sessions::city_offset;
use crate::domain::validate::{Validator, required_text};
use crate::domain::{Precondition, bases, holidays, write_if_version};
use crate::error::{AppError, FieldError, Result, map_constraint};

/// A public notice (公示) lasts this many working days.
pub const NOTICE_WORKING_DAYS: u32 = 5;
/// Objections from one address within an hour before 429.
pub const OBJECTIONS_PER_HOUR: u64 = 5;
/// `reviews.subject_kind` of an accreditation.
pub const REVIEW_KIND: &str = "accreditation";

/// What an applicant reports about the base.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"exhibition_area_m2": 1200.0, "open_days_per_year": 280, "free_days_for_students": 30, "annual_visitors": 45000, "staff": 12, "interactive_exhibits": 25}))]
pub struct Figures {
    #[schema(minimum = 0.0)]
    pub exhibition_area_m2: f64,
    #[schema(minimum = 0, maximum = 366)]
    pub open_days_per_year: i32,
    #[schema(minimum = 0, maximum = 366)]
    pub free_days_for_students: i32,
    #[schema(minimum = 0)]
    pub annual_visitors: i32,
    #[schema(minimum = 0)]
    pub staff: i32,
    #[schema(minimum = 0)]
    pub interactive_exhibits: i32,
}

impl Figures {
    pub fn check(&self, field: &str) -> Vec<FieldError> {
        let mut v = Vec::new();
        let f = |n: &str| format!("{field}.{n}");
        if !(self.exhibition_area_m2.is_finite() && (0.0..=10_000_000.0).contains(&self.exhibition_area_m2)) {
            v.push(FieldError::new(f("exhibition_area_m2"), "must be between 0 and 10000000"));
        }
        for (name, value, max) in [
            ("open_days_per_year", self.open_days_per_year, 366),
            ("free_days_for_students", self.free_days_for_students, 366),
            ("annual_visitors", self.annual_visitors, 100_000_000),
            ("staff", self.staff, 1_000_000),
            ("interactive_exhibits", self.interactive_exhibits, 1_000_000),
        ] {
            if !(0..=max).contains(&value) {
                v.push(FieldError::new(f(name), format!("must be between 0 and {max}")));
            }
        }
        v
    }
}

/// The minimums a base of one subcategory must meet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    #[schema(minimum = 0.0)]
    pub min_exhibition_area_m2: f64,
    #[schema(minimum = 0)]
    pub min_open_days: i32,
    #[schema(minimum = 0)]
    pub min_free_days_for_students: i32,
    #[schema(minimum = 0)]
    pub min_annual_visitors: i32,
    #[schema(minimum = 0)]
    pub min_staff: i32,
    #[schema(minimum = 0)]
    pub min_interactive_exhibits: i32,
}

/// A condition of the standard that the reported figures do not meet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"figure": "exhibition_area_m2", "required": 1000.0, "reported": 800.0}))]
pub struct Unmet {
    pub figure: String,
    pub required: f64,
    pub reported: f64,
}

/// Every unmet condition of `req` by `f`.
pub fn unmet(f: &Figures, req: &Requirement) -> Vec<Unmet> {
    [
        ("exhibition_area_m2", req.min_exhibition_area_m2, f.exhibition_area_m2),
        ("open_days_per_year", req.min_open_days.into(), f.open_days_per_year.into()),
        ("free_days_for_students", req.min_free_days_for_students.into(), f.free_days_for_students.into()),
        ("annual_visitors", req.min_annual_visitors.into(), f.annual_visitors.into()),
        ("staff", req.min_staff.into(), f.staff.into()),
        ("interactive_exhibits", req.min_interactive_exhibits.into(), f.interactive_exhibits.into()),
    ]
    .into_iter()
    .filter(|(_, required, reported)| reported < required)
    .map(|(figure, required, reported)| Unmet { figure: figure.into(), required, reported })
    .collect()
}

/// One criterion of the experts' scoring sheet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "facilities", "name": "Facilities and exhibits", "max_points": 30}))]
pub struct Criterion {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,39}$")]
    pub key: String,
    #[schema(max_length = 200)]
    pub name: String,
    #[schema(minimum = 1, maximum = 1000)]
    pub max_points: i32,
}

/// A version of the accreditation standard.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Standard {
    pub id: Uuid,
    #[schema(example = "2021")]
    pub version: String,
    pub effective_from: DateTime<Utc>,
    /// The minimums by subcategory.
    pub requirements: BTreeMap<Subcategory, Requirement>,
    pub scoring_sheet: Vec<Criterion>,
    /// Years a certificate is valid.
    pub validity_years: i32,
    pub created_at: DateTime<Utc>,
}

impl Standard {
    pub fn of(m: accreditation_standard::Model) -> Self {
        Self {
            id: m.id,
            version: m.version,
            effective_from: m.effective_from,
            requirements: serde_json::from_value(m.requirements).unwrap_or_default(),
            scoring_sheet: serde_json::from_value(m.scoring_sheet).unwrap_or_default(),
            validity_years: m.validity_years,
            created_at: m.created_at,
        }
    }

    pub fn requirement(&self, s: Subcategory) -> Result<Requirement> {
        self.requirements
            .get(&s)
            .copied()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("standard {} has no requirement for {s}", self.version)))
    }
}

/// A new version of the standard.
#[derive(Debug, Clone)]
pub struct NewStandard {
    pub version: String,
    pub effective_from: DateTime<Utc>,
    pub requirements: BTreeMap<Subcategory, Requirement>,
    pub scoring_sheet: Vec<Criterion>,
    pub validity_years: i32,
}

/// Every version, oldest first (by when it takes effect, then id).
pub async fn standards(conn: &impl ConnectionTrait, page: PageRequest) -> Result<Paged<Standard>> {
    use accreditation_standard::Column as C;
    let mut q = accreditation_standard::Entity::find();
    if let Some(after) = page.after {
        let at = after.at.unwrap_or(DateTime::<Utc>::MIN_UTC);
        q = q.filter(page::after(C::EffectiveFrom, at, C::Id, after.id, Order::Asc));
    }
    let rows = q.order_by_asc(C::EffectiveFrom).order_by_asc(C::Id).limit(page.limit + 1).all(conn).await?;
    Ok(Paged::from_overfetch(rows, page.limit, |s| Cursor::at(s.effective_from, s.id)).map(Standard::of))
}

/// The standard in force at `now`: the latest that has taken effect.
pub async fn standard_in_force(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<Standard> {
    accreditation_standard::Entity::find()
        .filter(accreditation_standard::Column::EffectiveFrom.lte(now))
        .order_by_desc(accreditation_standard::Column::EffectiveFrom)
        .one(conn)
        .await?
        .map(Standard::of)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no accreditation standard is in force")))
}

/// Publishes a new version of the standard (admin).
pub async fn create_standard(
    db: &DatabaseConnection,
    actor: &Actor,
    s: NewStandard,
    now: DateTime<Utc>,
) -> Result<Standard> {
    authorize(actor, Action::ManageStandards)?;
    crate::domain::validate::sane_time("effective_from", Some(s.effective_from))?;
    let mut v = Validator::new();
    v.text("version", &s.version, 40);
    v.range("validity_years", s.validity_years, 1, 10);
    for sub in Subcategory::ALL {
        match s.requirements.get(sub) {
            None => v.push(format!("requirements.{sub}"), "every subcategory needs its requirement"),
            Some(r) => {
                let ok = r.min_exhibition_area_m2.is_finite()
                    && r.min_exhibition_area_m2 >= 0.0
                    && [
                        r.min_open_days,
                        r.min_free_days_for_students,
                        r.min_annual_visitors,
                        r.min_staff,
                        r.min_interactive_exhibits,
                    ]
                    .iter()
                    .all(|x| *x >= 0);
                if !ok {
                    v.push(format!("requirements.{sub}"), "minimums must not be negative");
                }
            }
        }
    }
    check_sheet(&mut v, "scoring_sheet", &s.scoring_sheet);
    v.finish()?;
    let id = Uuid::now_v7();
    let row = accreditation_standard::ActiveModel {
        id: Set(id),
        version: Set(s.version.trim().to_string()),
        effective_from: Set(s.effective_from),
        requirements: Set(serde_json::to_value(&s.requirements).map_err(anyhow::Error::from)?),
        scoring_sheet: Set(serde_json::to_value(&s.scoring_sheet).map_err(anyhow::Error::from)?),
        validity_years: Set(s.validity_years),
        created_at: Set(now),
    };
    let txn = begin_write(db).await?;
    accreditation_standard::Entity::insert(row)
        .exec_without_returning(&txn)
        .await
        .map_err(|e| map_constraint(e, || AppError::Conflict(format!("version {} exists", s.version))))?;
    let created = accreditation_standard::Entity::find_by_id(id).one(&txn).await?.map(Standard::of);
    audit::record(&txn, Some(actor), now, Change::created("accreditation_standard", id, &created)).await?;
    txn.commit().await?;
    created.ok_or_else(|| AppError::not_found("standard"))
}

/// Keys unique and well-formed, points positive.
pub fn check_sheet(v: &mut Validator, field: &str, sheet: &[Criterion]) {
    if sheet.is_empty() {
        v.push(field, "needs at least one criterion");
    }
    let mut seen = std::collections::HashSet::new();
    for (i, c) in sheet.iter().enumerate() {
        let ok_key = !c.key.is_empty()
            && c.key.len() <= 40
            && c.key.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
        if !ok_key || !seen.insert(c.key.clone()) {
            v.push(format!("{field}[{i}].key"), "must be a unique lower-case key");
        }
        v.text(&format!("{field}[{i}].name"), &c.name, 200);
        v.range(&format!("{field}[{i}].max_points"), c.max_points, 1, 1000);
    }
}

/// An application with its reviews and objections.
#[derive(Debug, Clone, Serialize)]
pub struct AccreditationRecord {
    #[serde(flatten)]
    pub accreditation: accreditation::Model,
    pub reviews: Vec<review::Model>,
    pub objections: Vec<objection::Model>,
}

impl AccreditationRecord {
    pub fn status(&self) -> AccreditationStatus {
        AccreditationStatus::from_db(&self.accreditation.status)
    }

    /// The mean of the experts' totals, once any expert has scored.
    pub fn mean_score(&self) -> Option<f64> {
        let totals: Vec<f64> = self.reviews.iter().filter_map(|r| r.total).collect();
        (!totals.is_empty()).then(|| totals.iter().sum::<f64>() / totals.len() as f64)
    }
}

fn not_found(id: Uuid) -> AppError {
    AppError::not_found(format!("no accreditation with id {id}"))
}

pub async fn get_record(conn: &impl ConnectionTrait, id: Uuid) -> Result<AccreditationRecord> {
    let accreditation = accreditation::Entity::find_by_id(id).one(conn).await?.ok_or_else(|| not_found(id))?;
    let reviews = review::Entity::find()
        .filter(review::Column::SubjectKind.eq(REVIEW_KIND))
        .filter(review::Column::SubjectId.eq(id))
        .order_by_asc(review::Column::EvaluatorId)
        .all(conn)
        .await?;
    let objections = objection::Entity::find()
        .filter(objection::Column::AccreditationId.eq(id))
        .order_by_asc(objection::Column::Id)
        .all(conn)
        .await?;
    Ok(AccreditationRecord { accreditation, reviews, objections })
}

/// May `actor` read this application? The bureau, the base's operators, the district's
/// officer, and the experts assigned to it.
fn can_read(actor: &Actor, r: &AccreditationRecord, b: &base::Model) -> bool {
    match actor.role {
        Role::Admin => true,
        Role::Operator => actor.operates(b.id),
        Role::DistrictOfficer => actor.district_code.as_deref() == Some(b.district_code.as_str()),
        Role::Evaluator => r.reviews.iter().any(|rv| rv.evaluator_id == actor.user_id),
        Role::School => false,
    }
}

pub async fn get(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<AccreditationRecord> {
    let r = get_record(db, id).await?;
    let b = bases::ensure_exists(db, r.accreditation.base_id).await?;
    if !can_read(actor, &r, &b) {
        return Err(AppError::forbidden(format!("a {} account cannot read accreditation {id}", actor.role)));
    }
    Ok(r)
}

/// Filters of the application list.
#[derive(Debug, Default, Clone)]
pub struct AccreditationFilter {
    pub base_id: Option<Uuid>,
    pub status: Option<AccreditationStatus>,
}

pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    f: &AccreditationFilter,
    page: PageRequest,
) -> Result<Paged<AccreditationRecord>> {
    let mut cond = Condition::all();
    match actor.role {
        Role::Admin => {}
        Role::Operator => cond = cond.add(accreditation::Column::BaseId.is_in(actor.base_ids.clone())),
        Role::DistrictOfficer => {
            let district = actor.district_code.as_deref().unwrap_or_default();
            cond = cond.add(accreditation::Column::BaseId.in_subquery(bases::in_district(district)));
        }
        Role::Evaluator => {
            cond = cond.add(accreditation::Column::Id.in_subquery(assigned_to(REVIEW_KIND, actor.user_id)));
        }
        Role::School => return Err(AppError::forbidden("a school account cannot read accreditations")),
    }
    if let Some(b) = f.base_id {
        cond = cond.add(accreditation::Column::BaseId.eq(b));
    }
    if let Some(s) = f.status {
        cond = cond.add(accreditation::Column::Status.eq(s.as_str()));
    }
    if let Some(after) = page.after {
        cond = cond.add(accreditation::Column::Id.gt(after.id));
    }
    let rows = accreditation::Entity::find()
        .filter(cond)
        .order_by_asc(accreditation::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    let paged = Paged::from_overfetch(rows, page.limit, |a| Cursor::id(a.id));
    let mut items = Vec::with_capacity(paged.items.len());
    for a in paged.items {
        items.push(get_record(db, a.id).await?);
    }
    Ok(Paged { items, next: paged.next })
}

/// An application's start.
#[derive(Debug, Clone)]
pub struct Application {
    pub base_id: Uuid,
    pub figures: Figures,
    pub evidence_links: Vec<String>,
}

/// The self-reported figures and evidence links of an application, each broken rule named.
fn check_application(figures: &Figures, evidence_links: &[String]) -> Result<()> {
    let mut v = Validator::new();
    v.extend(figures.check("figures"));
    if evidence_links.len() > 20 {
        v.push("evidence_links", "at most 20 links");
    }
    for (i, link) in evidence_links.iter().enumerate() {
        if !(link.starts_with("https://") || link.starts_with("http://"))
            || link.len() > 500
            || link.contains(char::is_whitespace)
        {
            v.push(format!("evidence_links[{i}]"), "must be an http(s) URL");
        }
    }
    v.finish()
}

/// What an edit of a draft replaces (a field left out stays).
#[derive(Debug, Clone, Default)]
pub struct DraftChange {
    pub figures: Option<Figures>,
    pub evidence_links: Option<Vec<String>>,
}

/// Edits a draft's figures or evidence links before it is submitted: whoever may apply for
/// the base, under the version last read.
pub async fn edit_draft(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    precondition: Precondition,
    change: DraftChange,
    now: DateTime<Utc>,
) -> Result<AccreditationRecord> {
    let txn = begin_write(db).await?;
    let (before, _) = step_start(&txn, id, &[AccreditationStatus::Draft], |b| {
        authorize(actor, Action::Apply { base_id: b.id, district_code: &b.district_code })
    })
    .await?;
    precondition.check(before.accreditation.version)?;
    let a = &before.accreditation;
    let figures = match change.figures {
        Some(f) => f,
        None => serde_json::from_value(a.figures.clone()).map_err(anyhow::Error::from)?,
    };
    let links = match change.evidence_links {
        Some(l) => l,
        None => serde_json::from_value(a.evidence_links.clone()).map_err(anyhow::Error::from)?,
    };
    check_application(&figures, &links)?;
    let row = accreditation::ActiveModel {
        figures: Set(serde_json::to_value(figures).map_err(anyhow::Error::from)?),
        evidence_links: Set(serde_json::to_value(&links).map_err(anyhow::Error::from)?),
        ..Default::default()
    };
    step_finish(txn, Some(actor), &before, row, "accreditation.edit", now).await
}

/// Opens a draft application: an operator for its base, or the district officer of the
/// base's district. One application at a time per base; a base that is accredited and not
/// expiring cannot apply.
pub async fn apply(
    db: &DatabaseConnection,
    actor: &Actor,
    a: Application,
    now: DateTime<Utc>,
) -> Result<AccreditationRecord> {
    let txn = begin_write(db).await?;
    // The base's lock makes "one application at a time" hold under concurrency.
    let b = base::Entity::find_by_id(a.base_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::field("base_id", "no such base"))?;
    authorize(actor, Action::Apply { base_id: b.id, district_code: &b.district_code })?;
    check_application(&a.figures, &a.evidence_links)?;
    let in_progress = accreditation::Entity::find()
        .filter(accreditation::Column::BaseId.eq(b.id))
        .filter(
            accreditation::Column::Status
                .is_not_in([AccreditationStatus::Rejected.as_str(), AccreditationStatus::Accredited.as_str()]),
        )
        .count(&txn)
        .await?;
    if in_progress > 0 {
        return Err(AppError::conflict_rule("invalid-state", "the base already has an application in progress"));
    }
    let standard = standard_in_force(&txn, now).await?;
    let id = Uuid::now_v7();
    accreditation::Entity::insert(accreditation::ActiveModel {
        id: Set(id),
        base_id: Set(b.id),
        standard_id: Set(standard.id),
        applicant_id: Set(actor.user_id),
        status: Set(AccreditationStatus::Draft.as_str().into()),
        figures: Set(serde_json::to_value(a.figures).map_err(anyhow::Error::from)?),
        evidence_links: Set(serde_json::to_value(&a.evidence_links).map_err(anyhow::Error::from)?),
        unmet: Set(None),
        district_comment: Set(None),
        notice_starts_at: Set(None),
        notice_ends_at: Set(None),
        decision_comment: Set(None),
        certificate_number: Set(None),
        decided_at: Set(None),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    let created = get_record(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::created("accreditation", id, &created)).await?;
    txn.commit().await?;
    Ok(created)
}

/// Loads an application for a step: it must be in `from`, and the caller allowed by `allow`.
async fn step_start(
    txn: &DatabaseTransaction,
    id: Uuid,
    from: &[AccreditationStatus],
    allow: impl FnOnce(&base::Model) -> Result<()>,
) -> Result<(AccreditationRecord, base::Model)> {
    let r = get_record(txn, id).await?;
    let b = bases::ensure_exists(txn, r.accreditation.base_id).await?;
    allow(&b)?;
    let status = r.status();
    if !from.contains(&status) {
        let allowed: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        return Err(AppError::conflict_rule(
            "invalid-state",
            format!("the application is {status}; this step needs it {}", allowed.join(" or ")),
        ));
    }
    Ok((r, b))
}

/// Writes a step's changes (under the application's version), audits it, commits.
async fn step_finish(
    txn: DatabaseTransaction,
    actor: Option<&Actor>,
    before: &AccreditationRecord,
    mut row: accreditation::ActiveModel,
    action: &str,
    now: DateTime<Utc>,
) -> Result<AccreditationRecord> {
    let a = &before.accreditation;
    row.id = Set(a.id);
    row.version = Set(a.version + 1);
    row.updated_at = Set(now);
    write_if_version::<accreditation::Entity>(
        &txn,
        row,
        (accreditation::Column::Id, a.id),
        (accreditation::Column::Version, a.version),
    )
    .await?;
    let after = get_record(&txn, a.id).await?;
    audit::record(&txn, actor, now, Change::updated(action, "accreditation", a.id, before, &after)).await?;
    txn.commit().await?;
    Ok(after)
}

/// Submits a draft: checks it against the standard in force. Unmet conditions refuse the
/// submission (422 listing each) unless the applicant acknowledges them, which records them
/// for the reviewers.
pub async fn submit(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    acknowledge_unmet: bool,
    now: DateTime<Utc>,
) -> Result<AccreditationRecord> {
    let txn = begin_write(db).await?;
    let (before, b) = step_start(&txn, id, &[AccreditationStatus::Draft], |b| {
        authorize(actor, Action::Apply { base_id: b.id, district_code: &b.district_code })
    })
    .await?;
    let standard = standard_in_force(&txn, now).await?;
    let figures: Figures = serde_json::from_value(before.accreditation.figures.clone()).map_err(anyhow::Error::from)?;
    let missing = unmet(&figures, &standard.requirement(Subcategory::from_db(&b.subcategory))?);
    if !missing.is_empty() && !acknowledge_unmet {
        return Err(AppError::Validation(
            missing
                .iter()
                .map(|u| {
                    FieldError::new(
                        format!("figures.{}", u.figure),
                        format!(
                            "standard {} requires at least {} for {}; reported {} (send acknowledge_unmet: true to submit anyway)",
                            standard.version, u.required, b.subcategory, u.reported
                        ),
                    )
                })
                .collect(),
        ));
    }
    let row = accreditation::ActiveModel {
        status: Set(AccreditationStatus::Submitted.as_str().into()),
        standard_id: Set(standard.id),
        unmet: Set(Some(serde_json::to_value(&missing).map_err(anyhow::Error::from)?)),
        ..Default::default()
    };
    step_finish(txn, Some(actor), &before, row, "accreditation.submit", now).await
}

/// The district officer of the base's district recommends or rejects a submitted application.
pub async fn district_review(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    recommend: bool,
    comment: String,
    now: DateTime<Utc>,
) -> Result<AccreditationRecord> {
    let txn = begin_write(db).await?;
    let (before, _) = step_start(&txn, id, &[AccreditationStatus::Submitted], |b| {
        authorize(actor, Action::DistrictDecision { district_code: &b.district_code })
    })
    .await?;
    let comment = required_text("comment", &comment, 2000)?;
    let (to, action) = if recommend {
        (AccreditationStatus::DistrictRecommended, "accreditation.recommend")
    } else {
        (AccreditationStatus::Rejected, "accreditation.reject")
    };
    let row = accreditation::ActiveModel {
        status: Set(to.as_str().into()),
        district_comment: Set(Some(comment)),
        ..Default::default()
    };
    step_finish(txn, Some(actor), &before, row, action, now).await
}

/// Checks that every id names an evaluator account.
pub async fn check_evaluators(conn: &impl ConnectionTrait, ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Err(AppError::field("evaluator_ids", "name at least one evaluator"));
    }
    for (i, id) in ids.iter().enumerate() {
        let ok = user::Entity::find_by_id(*id)
            .one(conn)
            .await?
            .is_some_and(|u| u.role == Role::Evaluator.as_str() && !u.disabled);
        if !ok {
            return Err(AppError::field(format!("evaluator_ids[{i}]"), "is not an active evaluator account"));
        }
    }
    Ok(())
}

/// The subjects (of `kind`) an evaluator is assigned to, as a subquery.
pub fn assigned_to(kind: &str, evaluator: Uuid) -> sea_orm::sea_query::SelectStatement {
    sea_orm::sea_query::Query::select()
        .column(review::Column::SubjectId)
        .from(review::Entity)
        .and_where(review::Column::SubjectKind.eq(kind))
        .and_where(review::Column::EvaluatorId.eq(evaluator))
        .take()
}

/// Adds review rows for the evaluators not yet assigned.
pub async fn assign_reviews(
    conn: &impl ConnectionTrait,
    kind: &str,
    subject: Uuid,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<()> {
    for id in ids {
        let exists = review::Entity::find_by_id((kind.to_string(), subject, *id)).one(conn).await?.is_some();
        if !exists {
            review::Entity::insert(review::ActiveModel {
                subject_kind: Set(kind.into()),
                subject_id: Set(subject),
                evaluator_id: Set(*id),
                points: Set(None),
                total: Set(None),
                comment: Set(None),
                comments: Set(None),
                assigned_at: Set(now),
                scored_at: Set(None),
            })
            .exec_without_returning(conn)
            .await?;
        }
    }
    Ok(())
}

/// The bureau assigns experts; the application goes to expert review.
pub async fn assign(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    evaluator_ids: Vec<Uuid>,
    now: DateTime<Utc>,
) -> Result<AccreditationRecord> {
    authorize(actor, Action::ManageStandards)?;
    let txn = begin_write(db).await?;
    let (before, _) = step_start(
        &txn,
        id,
        &[AccreditationStatus::DistrictRecommended, AccreditationStatus::ExpertReview],
        |_| Ok(()),
    )
    .await?;
    check_evaluators(&txn, &evaluator_ids).await?;
    assign_reviews(&txn, REVIEW_KIND, id, &evaluator_ids, now).await?;
    let row = accreditation::ActiveModel {
        status: Set(AccreditationStatus::ExpertReview.as_str().into()),
        ..Default::default()
    };
    step_finish(txn, Some(actor), &before, row, "accreditation.assign", now).await
}

/// Records an expert's score on the round's scoring sheet (only an assigned expert, during
/// expert review). Answers the total.
pub fn sheet_total(sheet: &[Criterion], points: &BTreeMap<String, f64>) -> Result<f64> {
    let mut v = Validator::new();
    for (k, _) in points.iter() {
        if !sheet.iter().any(|c| &c.key == k) {
            v.push(format!("points.{k}"), "is not a criterion of the scoring sheet");
        }
    }
    let mut total = 0.0;
    for c in sheet {
        match points.get(&c.key) {
            None => v.push(format!("points.{}", c.key), "needs a score"),
            Some(p) if !p.is_finite() || *p < 0.0 || *p > f64::from(c.max_points) => {
                v.push(format!("points.{}", c.key), format!("must be between 0 and {}", c.max_points));
            }
            Some(p) => total += p,
        }
    }
    v.finish()?;
    Ok(total)
}

pub async fn score(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    input: ScoreInput,
    now: DateTime<Utc>,
) -> Result<AccreditationRecord> {
    let txn = begin_write(db).await?;
    let (before, _) = step_start(&txn, id, &[AccreditationStatus::ExpertReview], |_| {
        if actor.role == Role::Evaluator {
            Ok(())
        } else {
            Err(AppError::forbidden("only an assigned evaluator scores"))
        }
    })
    .await?;
    if !before.reviews.iter().any(|r| r.evaluator_id == actor.user_id) {
        return Err(AppError::forbidden("only an evaluator assigned to this application scores it"));
    }
    let standard = accreditation_standard::Entity::find_by_id(before.accreditation.standard_id)
        .one(&txn)
        .await?
        .map(Standard::of)
        .ok_or_else(|| AppError::not_found("standard"))?;
    let total = sheet_total(&standard.scoring_sheet, &input.points)?;
    input.check_comments()?;
    save_review(&txn, REVIEW_KIND, id, actor.user_id, &input, total, now).await?;
    let after = get_record(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::updated("accreditation.score", "accreditation", id, &before, &after))
        .await?;
    txn.commit().await?;
    Ok(after)
}

/// An expert's score: points and comments by criterion (or indicator), and an overall comment.
#[derive(Debug, Clone, Default)]
pub struct ScoreInput {
    pub points: BTreeMap<String, f64>,
    pub comment: Option<String>,
    pub comments: BTreeMap<String, String>,
}

impl ScoreInput {
    /// Comments only on scored keys, each at most 1000 characters; the overall one 2000.
    pub fn check_comments(&self) -> Result<()> {
        let mut v = Validator::new();
        if let Some(c) = &self.comment {
            v.opt_text("comment", Some(c), 2000);
        }
        for (k, c) in &self.comments {
            if !self.points.contains_key(k) {
                v.push(format!("comments.{k}"), "comments only on a scored criterion or indicator");
            } else {
                v.opt_text(&format!("comments.{k}"), Some(c), 1000);
            }
        }
        v.finish()
    }
}

/// Stores an expert's points, total and comments on their review row.
pub async fn save_review(
    conn: &impl ConnectionTrait,
    kind: &str,
    subject: Uuid,
    evaluator: Uuid,
    score: &ScoreInput,
    total: f64,
    now: DateTime<Utc>,
) -> Result<()> {
    let comment = score.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(str::to_string);
    let comments = (!score.comments.is_empty())
        .then(|| serde_json::to_value(&score.comments))
        .transpose()
        .map_err(anyhow::Error::from)?;
    review::Entity::update_many()
        .col_expr(
            review::Column::Points,
            Expr::value(serde_json::to_value(&score.points).map_err(anyhow::Error::from)?),
        )
        .col_expr(review::Column::Total, Expr::value(total))
        .col_expr(review::Column::Comment, Expr::value(comment))
        .col_expr(review::Column::Comments, Expr::value(comments))
        .col_expr(review::Column::ScoredAt, Expr::value(now))
        .filter(review::Column::SubjectKind.eq(kind))
        .filter(review::Column::SubjectId.eq(subject))
        .filter(review::Column::EvaluatorId.eq(evaluator))
        .exec(conn)
        .await?;
    Ok(())
}

/// The bureau opens the public notice, once every assigned expert has scored.
pub async fn start_notice(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<AccreditationRecord> {
    authorize(actor, Action::ManageStandards)?;
    let txn = begin_write(db).await?;
    let (before, _) = step_start(&txn, id, &[AccreditationStatus::ExpertReview], |_| Ok(())).await?;
    let waiting = before.reviews.iter().filter(|r| r.total.is_none()).count();
    if before.reviews.is_empty() || waiting > 0 {
        return Err(AppError::conflict_rule(
            "invalid-state",
            format!("{waiting} assigned experts have not scored yet"),
        ));
    }
    let row = accreditation::ActiveModel {
        status: Set(AccreditationStatus::PublicNotice.as_str().into()),
        notice_starts_at: Set(Some(now)),
        notice_ends_at: Set(Some(holidays::calendar_from(&txn, now).await?.add_working_days(now, NOTICE_WORKING_DAYS))),
        ..Default::default()
    };
    step_finish(txn, Some(actor), &before, row, "accreditation.public_notice", now).await
}

/// An objection as filed by anyone.
#[derive(Debug, Clone)]
pub struct NewObjection {
    pub name: Option<String>,
    pub contact: Option<String>,
    pub reason: String,
}

/// Files an objection during the public notice (no login; at most 5 an hour per address).
pub async fn object(
    db: &DatabaseConnection,
    id: Uuid,
    o: NewObjection,
    client_ip: &str,
    now: DateTime<Utc>,
) -> Result<objection::Model> {
    let mut v = Validator::new();
    let reason = v.text("reason", &o.reason, 2000);
    let name = v.opt_text("name", o.name.as_deref(), 100);
    let contact = v.opt_text("contact", o.contact.as_deref(), 200);
    v.finish()?;
    let recent = objection::Entity::find()
        .filter(objection::Column::ClientIp.eq(client_ip))
        .filter(objection::Column::CreatedAt.gt(now - Duration::hours(1)))
        .count(db)
        .await?;
    if recent >= OBJECTIONS_PER_HOUR {
        return Err(AppError::RateLimited {
            detail: "too many objections from this address; try again later".into(),
            retry_after_s: 3600,
        });
    }
    let txn = begin_write(db).await?;
    let r = get_record(&txn, id).await?;
    let open =
        r.status() == AccreditationStatus::PublicNotice && r.accreditation.notice_ends_at.is_some_and(|end| now < end);
    if !open {
        return Err(AppError::conflict_rule("invalid-state", "objections are taken only during the public notice"));
    }
    let oid = Uuid::now_v7();
    let row = objection::ActiveModel {
        id: Set(oid),
        accreditation_id: Set(id),
        name: Set(name.flatten()),
        contact: Set(contact.flatten()),
        reason: Set(reason.unwrap_or_default()),
        client_ip: Set(client_ip.into()),
        status: Set(ObjectionStatus::Open.as_str().into()),
        resolution: Set(None),
        resolved_by: Set(None),
        created_at: Set(now),
        resolved_at: Set(None),
    };
    objection::Entity::insert(row).exec_without_returning(&txn).await?;
    let created =
        objection::Entity::find_by_id(oid).one(&txn).await?.ok_or_else(|| AppError::not_found("objection"))?;
    audit::record(&txn, None, now, Change::created("objection", oid, &created)).await?;
    txn.commit().await?;
    Ok(created)
}

/// The bureau resolves an objection (upheld or dismissed), with its reasons.
pub async fn resolve_objection(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    objection_id: Uuid,
    upheld: bool,
    resolution: String,
    now: DateTime<Utc>,
) -> Result<AccreditationRecord> {
    authorize(actor, Action::ManageStandards)?;
    let resolution = required_text("resolution", &resolution, 2000)?;
    let txn = begin_write(db).await?;
    let before = get_record(&txn, id).await?;
    let o = before
        .objections
        .iter()
        .find(|o| o.id == objection_id)
        .ok_or_else(|| AppError::not_found(format!("no objection {objection_id} on this application")))?;
    if ObjectionStatus::from_db(&o.status) != ObjectionStatus::Open {
        return Err(AppError::conflict_rule("invalid-state", "the objection is already resolved"));
    }
    let to = if upheld { ObjectionStatus::Upheld } else { ObjectionStatus::Dismissed };
    objection::Entity::update_many()
        .col_expr(objection::Column::Status, Expr::value(to.as_str()))
        .col_expr(objection::Column::Resolution, Expr::value(resolution))
        .col_expr(objection::Column::ResolvedBy, Expr::value(actor.user_id))
        .col_expr(objection::Column::ResolvedAt, Expr::value(now))
        .filter(objection::Column::Id.eq(objection_id))
        .filter(objection::Column::Status.eq(ObjectionStatus::Open.as_str()))
        .exec(&txn)
        .await?;
    let after = get_record(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::updated("objection.resolve", "accreditation", id, &before, &after))
        .await?;
    txn.commit().await?;
    Ok(after)
}

/// The next certificate number of a year: `GZKP-<year>-<4 digits>`.
async fn next_certificate(txn: &DatabaseTransaction, year: i32) -> Result<String> {
    // The year's counter row exists (two first decisions of a year may race to create it),
    // then is locked and advanced.
    certificate_counter::Entity::insert(certificate_counter::ActiveModel { year: Set(year), last: Set(0) })
        .on_conflict(sea_orm::sea_query::OnConflict::column(certificate_counter::Column::Year).do_nothing().to_owned())
        .exec_without_returning(txn)
        .await?;
    let current = certificate_counter::Entity::find_by_id(year)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("certificate counter of {year} missing")))?;
    let next = current.last + 1;
    certificate_counter::Entity::update_many()
        .col_expr(certificate_counter::Column::Last, Expr::value(next))
        .filter(certificate_counter::Column::Year.eq(year))
        .exec(txn)
        .await?;
    Ok(format!("GZKP-{year}-{next:04}"))
}

/// The bureau decides after the notice has ended and every objection is resolved.
/// Accreditation issues a certificate valid for the standard's years and makes the base
/// accredited.
pub async fn decide(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    accredit: bool,
    comment: String,
    now: DateTime<Utc>,
) -> Result<AccreditationRecord> {
    authorize(actor, Action::ManageStandards)?;
    let comment = required_text("comment", &comment, 2000)?;
    let txn = begin_write(db).await?;
    let (before, b) = step_start(&txn, id, &[AccreditationStatus::PublicNotice], |_| Ok(())).await?;
    if before.accreditation.notice_ends_at.is_none_or(|end| now < end) {
        return Err(AppError::conflict_rule(
            "invalid-state",
            format!(
                "the public notice runs until {}",
                before.accreditation.notice_ends_at.map(crate::domain::sessions::local_time).unwrap_or_default()
            ),
        ));
    }
    let open =
        before.objections.iter().filter(|o| ObjectionStatus::from_db(&o.status) == ObjectionStatus::Open).count();
    if open > 0 {
        return Err(AppError::conflict_rule("open-objections", format!("{open} objections must be resolved first")));
    }
    if !accredit {
        let row = accreditation::ActiveModel {
            status: Set(AccreditationStatus::Rejected.as_str().into()),
            decision_comment: Set(Some(comment)),
            decided_at: Set(Some(now)),
            ..Default::default()
        };
        return step_finish(txn, Some(actor), &before, row, "accreditation.decide", now).await;
    }
    let standard = accreditation_standard::Entity::find_by_id(before.accreditation.standard_id)
        .one(&txn)
        .await?
        .map(Standard::of)
        .ok_or_else(|| AppError::not_found("standard"))?;
    let year = now.with_timezone(&city_offset()).year();
    let number = next_certificate(&txn, year).await?;
    let valid_until = now
        .with_timezone(&city_offset())
        .with_year(year + standard.validity_years)
        .map_or(now + Duration::days(365 * i64::from(standard.validity_years)), |t| t.with_timezone(&Utc));
    let base_before = bases::get(&txn, b.id).await?;
    base::Entity::update_many()
        .col_expr(base::Column::Status, Expr::value(BaseStatus::Accredited.as_str()))
        .col_expr(base::Column::CertificateNumber, Expr::value(number.clone()))
        .col_expr(base::Column::ValidUntil, Expr::value(valid_until))
        .col_expr(base::Column::RectificationUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(base::Column::Version, Expr::col(base::Column::Version).add(1))
        .col_expr(base::Column::UpdatedAt, Expr::value(now))
        .filter(base::Column::Id.eq(b.id))
        .exec(&txn)
        .await?;
    let base_after = bases::get(&txn, b.id).await?;
    audit::record(&txn, Some(actor), now, Change::updated("base.status", "base", b.id, &base_before, &base_after))
        .await?;
    let row = accreditation::ActiveModel {
        status: Set(AccreditationStatus::Accredited.as_str().into()),
        decision_comment: Set(Some(comment)),
        decided_at: Set(Some(now)),
        certificate_number: Set(Some(number)),
        ..Default::default()
    };
    step_finish(txn, Some(actor), &before, row, "accreditation.decide", now).await
}

/// What a plaque's certificate says.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Certificate {
    #[schema(example = "GZKP-2026-0042")]
    pub number: String,
    pub base_id: Uuid,
    pub base_name_zh: String,
    pub base_name_en: String,
    /// `valid`, `expired`, or the base's status when it lost the certificate (`revoked`,
    /// `rectification` keeps it valid).
    #[schema(example = "valid")]
    pub status: String,
    pub issued_at: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
}

/// Verifies a certificate number (public).
pub async fn certificate(db: &DatabaseConnection, number: &str, now: DateTime<Utc>) -> Result<Certificate> {
    let a = accreditation::Entity::find()
        .filter(accreditation::Column::CertificateNumber.eq(number))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no certificate {number}")))?;
    let b = bases::ensure_exists(db, a.base_id).await?;
    let current = b.certificate_number.as_deref() == Some(number);
    let status = match (current, bases::effective_status(&b, now)) {
        (false, _) => "superseded".to_string(),
        (true, BaseStatus::Accredited | BaseStatus::Rectification) => "valid".to_string(),
        (true, other) => other.as_str().to_string(),
    };
    Ok(Certificate {
        number: number.into(),
        base_id: b.id,
        base_name_zh: b.name_zh,
        base_name_en: b.name_en,
        status,
        issued_at: a.decided_at,
        valid_until: if current { b.valid_until } else { None },
    })
}

/// Turns accredited bases whose certificate has lapsed into `expired` (a sweep; reads already
/// show them expired).
pub async fn expire_certificates(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<usize> {
    let lapsed = base::Entity::find()
        .filter(base::Column::Status.eq(BaseStatus::Accredited.as_str()))
        .filter(base::Column::ValidUntil.lte(now))
        .all(db)
        .await?;
    let mut n = 0;
    for b in lapsed {
        let txn = begin_write(db).await?;
        let res = base::Entity::update_many()
            .col_expr(base::Column::Status, Expr::value(BaseStatus::Expired.as_str()))
            .col_expr(base::Column::Version, Expr::value(b.version + 1))
            .col_expr(base::Column::UpdatedAt, Expr::value(now))
            .filter(base::Column::Id.eq(b.id))
            .filter(base::Column::Status.eq(BaseStatus::Accredited.as_str()))
            .exec(&txn)
            .await?;
        if res.rows_affected == 1 {
            let after = base::Entity::find_by_id(b.id).one(&txn).await?;
            audit::record(&txn, None, now, Change::updated("base.expire", "base", b.id, &b, &after)).await?;
            n += 1;
        }
        txn.commit().await?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn local(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        city_offset().with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_working_days_skip_the_weekend() {
        let cal = holidays::WorkCalendar::default();
        // Thursday 26 Nov 2026, 10:00 → Thursday 3 Dec, 10:00.
        assert_eq!(cal.add_working_days(local(2026, 11, 26, 10), 5), local(2026, 12, 3, 10));
        // Monday → next Monday.
        assert_eq!(cal.add_working_days(local(2026, 11, 23, 9), 5), local(2026, 11, 30, 9));
        // Saturday → the Friday after.
        assert_eq!(cal.add_working_days(local(2026, 11, 28, 9), 5), local(2026, 12, 4, 9));
        // 23:00 local on a Friday is still Friday in Shanghai (15:00 UTC).
        assert_eq!(cal.add_working_days(local(2026, 11, 27, 23), 1), local(2026, 11, 30, 23));
    }

    #[test]
    fn unmet_lists_each_figure_below_its_minimum() {
        let req = Requirement {
            min_exhibition_area_m2: 1000.0,
            min_open_days: 200,
            min_free_days_for_students: 20,
            min_annual_visitors: 10000,
            min_staff: 5,
            min_interactive_exhibits: 10,
        };
        let mut f = Figures {
            exhibition_area_m2: 1000.0,
            open_days_per_year: 200,
            free_days_for_students: 20,
            annual_visitors: 10000,
            staff: 5,
            interactive_exhibits: 10,
        };
        assert!(unmet(&f, &req).is_empty(), "meeting a minimum exactly is enough");
        f.exhibition_area_m2 = 999.5;
        f.staff = 4;
        let u = unmet(&f, &req);
        assert_eq!(u.iter().map(|u| u.figure.as_str()).collect::<Vec<_>>(), ["exhibition_area_m2", "staff"]);
    }
}
