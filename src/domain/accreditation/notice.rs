//! The public notice of an application and the objections anyone files during it.

use super::*;

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
