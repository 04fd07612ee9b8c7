//! Public disclosure (信息公开): what the bureau publishes without a login — the applications
//! now in public notice (so that anyone can find what to object to), a finalised evaluation
//! cycle's grades for every base (bases revoked since included), and the certificates valid
//! now. Read-only, from the rows the other modules write.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{accreditation, accreditation_standard, base, evaluation};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::accreditation::Certificate;
use crate::domain::bases;
use crate::domain::enums::{AccreditationStatus, BaseStatus};
use crate::domain::page::{Cursor, PageRequest, Paged};
use crate::error::Result;

/// An application on public notice.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub accreditation_id: Uuid,
    pub base: base::Model,
    /// The version of the accreditation standard applied under.
    pub standard_version: String,
    pub notice_starts_at: Option<DateTime<Utc>>,
    pub notice_ends_at: Option<DateTime<Utc>>,
    /// Whether objections are still taken (until the notice ends).
    pub open_for_objections: bool,
}

async fn bases_by_id(
    conn: &impl ConnectionTrait,
    ids: impl Iterator<Item = Uuid>,
) -> Result<HashMap<Uuid, base::Model>> {
    let ids: Vec<Uuid> = ids.collect();
    Ok(base::Entity::find()
        .filter(base::Column::Id.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|b| (b.id, b))
        .collect())
}

/// Applications in public notice (optionally in one district), by id.
pub async fn notices(
    conn: &impl ConnectionTrait,
    district: Option<&str>,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<Paged<Notice>> {
    let mut q = accreditation::Entity::find()
        .filter(accreditation::Column::Status.eq(AccreditationStatus::PublicNotice.as_str()));
    if let Some(d) = district {
        q = q.filter(accreditation::Column::BaseId.in_subquery(bases::in_district(d)));
    }
    if let Some(after) = page.after {
        q = q.filter(accreditation::Column::Id.gt(after.id));
    }
    let rows = q.order_by_asc(accreditation::Column::Id).limit(page.limit + 1).all(conn).await?;
    let paged = Paged::from_overfetch(rows, page.limit, |a| Cursor::id(a.id));
    let bases = bases_by_id(conn, paged.items.iter().map(|a| a.base_id)).await?;
    let standards: HashMap<Uuid, String> = accreditation_standard::Entity::find()
        .filter(accreditation_standard::Column::Id.is_in(paged.items.iter().map(|a| a.standard_id)))
        .all(conn)
        .await?
        .into_iter()
        .map(|s| (s.id, s.version))
        .collect();
    let items = paged
        .items
        .into_iter()
        .filter_map(|a| {
            Some(Notice {
                accreditation_id: a.id,
                base: bases.get(&a.base_id)?.clone(),
                standard_version: standards.get(&a.standard_id).cloned().unwrap_or_default(),
                open_for_objections: a.notice_ends_at.is_some_and(|end| now < end),
                notice_starts_at: a.notice_starts_at,
                notice_ends_at: a.notice_ends_at,
            })
        })
        .collect();
    Ok(Paged { items, next: paged.next })
}

/// A base's result in a finalised evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct CycleResult {
    pub evaluation_id: Uuid,
    pub base: base::Model,
    pub kind: String,
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub finalized_at: Option<DateTime<Utc>>,
}

/// The final results of an evaluation cycle, every base's (those revoked since too), by
/// evaluation id. 404 when there is no such cycle.
pub async fn results(conn: &impl ConnectionTrait, cycle_id: Uuid, page: PageRequest) -> Result<Paged<CycleResult>> {
    crate::domain::evaluation::get_cycle(conn, cycle_id).await?;
    let mut q = evaluation::Entity::find()
        .filter(evaluation::Column::CycleId.eq(cycle_id))
        .filter(evaluation::Column::FinalizedAt.is_not_null());
    if let Some(after) = page.after {
        q = q.filter(evaluation::Column::Id.gt(after.id));
    }
    let rows = q.order_by_asc(evaluation::Column::Id).limit(page.limit + 1).all(conn).await?;
    let paged = Paged::from_overfetch(rows, page.limit, |e| Cursor::id(e.id));
    let bases = bases_by_id(conn, paged.items.iter().map(|e| e.base_id)).await?;
    let items = paged
        .items
        .into_iter()
        .filter_map(|e| {
            Some(CycleResult {
                evaluation_id: e.id,
                base: bases.get(&e.base_id)?.clone(),
                kind: e.kind,
                score: e.score,
                grade: e.grade,
                finalized_at: e.finalized_at,
            })
        })
        .collect();
    Ok(Paged { items, next: paged.next })
}

/// The certificates valid now (their bases accredited or in rectification, the certificate
/// not lapsed), optionally in one district, by base id.
pub async fn certificates(
    conn: &impl ConnectionTrait,
    district: Option<&str>,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<Paged<Certificate>> {
    let holding = Condition::any()
        .add(bases::status_condition(BaseStatus::Accredited, now))
        .add(bases::status_condition(BaseStatus::Rectification, now));
    let mut q = base::Entity::find()
        .filter(holding)
        .filter(base::Column::CertificateNumber.is_not_null())
        .filter(Condition::any().add(base::Column::ValidUntil.is_null()).add(base::Column::ValidUntil.gt(now)));
    if let Some(d) = district {
        q = q.filter(base::Column::DistrictCode.eq(d));
    }
    if let Some(after) = page.after {
        q = q.filter(base::Column::Id.gt(after.id));
    }
    let rows = q.order_by_asc(base::Column::Id).limit(page.limit + 1).all(conn).await?;
    let paged = Paged::from_overfetch(rows, page.limit, |b| Cursor::id(b.id));
    let numbers: Vec<String> = paged.items.iter().filter_map(|b| b.certificate_number.clone()).collect();
    let issued: HashMap<String, Option<DateTime<Utc>>> = accreditation::Entity::find()
        .filter(accreditation::Column::CertificateNumber.is_in(numbers))
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|a| Some((a.certificate_number?, a.decided_at)))
        .collect();
    let items = paged
        .items
        .into_iter()
        .map(|b| {
            let number = b.certificate_number.clone().unwrap_or_default();
            Certificate {
                issued_at: issued.get(&number).copied().flatten(),
                number,
                base_id: b.id,
                base_name_zh: b.name_zh,
                base_name_en: b.name_en,
                status: "valid".into(),
                valid_until: b.valid_until,
            }
        })
        .collect();
    Ok(Paged { items, next: paged.next })
}
