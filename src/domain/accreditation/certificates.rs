//! The bureau's decision and the certificates it issues, which anyone can verify.

use super::*;

/// The next certificate number of a year: `GZKP-<year>-<4 digits>`.
pub(super) async fn next_certificate(txn: &DatabaseTransaction, year: i32) -> Result<String> {
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
