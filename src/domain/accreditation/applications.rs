//! Applications: a base's draft, its submission and the district's recommendation, and who
//! reads them.

use super::*;

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

pub(super) fn not_found(id: Uuid) -> AppError {
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
pub(super) fn can_read(actor: &Actor, r: &AccreditationRecord, b: &base::Model) -> bool {
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
pub(super) fn check_application(figures: &Figures, evidence_links: &[String]) -> Result<()> {
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
pub(super) async fn step_start(
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
pub(super) async fn step_finish(
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
