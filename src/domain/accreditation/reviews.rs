//! Experts: their assignment to applications (and evaluations) and their scores.

use super::*;

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
