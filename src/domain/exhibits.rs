//! Exhibits (展品) of a base: only the base's operators and admins write them.

use chrono::{DateTime, Utc};
use entity::exhibit;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use std::collections::HashMap;

use chrono::NaiveDate;
use entity::{base, base_theme};
use sea_orm::sea_query::{Expr, Func, LikeExpr, Query, UnionType};
use sea_orm::{Condition, ExprTrait, JoinType};

use crate::db::{begin_read, begin_write};
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::enums::{Audience, ExhibitKind, ExhibitStatus};
use crate::domain::geo::{BoundingBox, LatLon};
use crate::domain::like_escape;
use crate::domain::loans::{self, OutOnLoan};
use crate::domain::nearest::Rings;
use crate::domain::page::{Cursor, PageRequest, Paged};
use crate::domain::{Precondition, bases, write_if_version};
use crate::error::{AppError, Result};

/// An exhibit's validated fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ExhibitData {
    pub name: String,
    pub description: Option<String>,
    pub hall: Option<String>,
    pub kind: ExhibitKind,
    pub status: ExhibitStatus,
    pub shareable: bool,
    pub audiences: Vec<Audience>,
}

impl ExhibitData {
    pub fn of(m: &exhibit::Model) -> Self {
        Self {
            name: m.name.clone(),
            description: m.description.clone(),
            hall: m.hall.clone(),
            kind: ExhibitKind::from_db(&m.kind),
            status: ExhibitStatus::from_db(&m.status),
            shareable: m.shareable,
            audiences: audiences_of(m),
        }
    }
}

/// The audiences stored on an exhibit.
pub fn audiences_of(m: &exhibit::Model) -> Vec<Audience> {
    serde_json::from_value(m.audiences.clone()).unwrap_or_default()
}

fn active_model(
    id: Uuid,
    base_id: Uuid,
    d: &ExhibitData,
    version: i32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> exhibit::ActiveModel {
    exhibit::ActiveModel {
        id: Set(id),
        base_id: Set(base_id),
        name: Set(d.name.clone()),
        description: Set(d.description.clone()),
        hall: Set(d.hall.clone()),
        kind: Set(d.kind.as_str().into()),
        status: Set(d.status.as_str().into()),
        shareable: Set(d.shareable),
        audiences: Set(serde_json::to_value(&d.audiences).unwrap_or_default()),
        version: Set(version),
        created_at: Set(created_at),
        updated_at: Set(now),
    }
}

pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<exhibit::Model> {
    exhibit::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no exhibit with id {id}")))
}

/// An exhibit, and the loan it is out on now, if it is.
#[derive(Debug, Clone)]
pub struct ExhibitRecord {
    pub exhibit: exhibit::Model,
    pub on_loan: Option<OutOnLoan>,
    /// Great-circle distance from a search's `near` to the exhibit's (owning) base.
    pub distance_km: Option<f64>,
}

/// Pairs exhibits with their current loans.
pub async fn records(conn: &impl ConnectionTrait, rows: Vec<exhibit::Model>) -> Result<Vec<ExhibitRecord>> {
    let mut loans = loans::out_on_loan(conn, &rows).await?;
    Ok(rows
        .into_iter()
        .map(|exhibit| ExhibitRecord { on_loan: loans.remove(&exhibit.id), exhibit, distance_km: None })
        .collect())
}

/// One exhibit with its current loan.
pub async fn get_record(conn: &impl ConnectionTrait, id: Uuid) -> Result<ExhibitRecord> {
    let e = get(conn, id).await?;
    Ok(records(conn, vec![e]).await?.remove(0))
}

/// The exhibits of a base, oldest first: its own, and those out on loan to it ("on loan
/// from …").
pub async fn list(db: &DatabaseConnection, base_id: Uuid, page: PageRequest) -> Result<Paged<ExhibitRecord>> {
    bases::ensure_exists(db, base_id).await?;
    // The base's ids and the borrowed ones as one small set (an OR across the two would let
    // PostgreSQL walk the whole primary key for a page).
    let own = Query::select()
        .column(exhibit::Column::Id)
        .from(exhibit::Entity)
        .and_where(exhibit::Column::BaseId.eq(base_id))
        .union(UnionType::All, loans::borrowed_by(base_id))
        .take();
    let mut q = exhibit::Entity::find().filter(exhibit::Column::Id.in_subquery(own));
    if let Some(after) = page.after {
        q = q.filter(exhibit::Column::Id.gt(after.id));
    }
    let txn = begin_read(db).await?;
    let rows = q.order_by_asc(exhibit::Column::Id).limit(page.limit + 1).all(&txn).await?;
    let paged = Paged::from_overfetch(rows, page.limit, |e| Cursor::id(e.id));
    let items = records(&txn, paged.items).await?;
    txn.commit().await?;
    Ok(Paged { items, next: paged.next })
}

/// The filters of an exhibit search across bases; all optional and combined with AND.
#[derive(Debug, Default, Clone)]
pub struct ExhibitQuery {
    pub shareable: Option<bool>,
    pub kind: Option<ExhibitKind>,
    pub status: Option<ExhibitStatus>,
    /// A theme of the exhibit's base.
    pub theme: Option<String>,
    pub audience: Option<Audience>,
    pub district: Option<String>,
    pub base_id: Option<Uuid>,
    /// Text in the name or description.
    pub q: Option<String>,
    pub near: Option<LatLon>,
    pub radius_km: Option<f64>,
    /// Free to lend on every day of `from..=to`: not in maintenance or retired, and no
    /// approved or current loan on any of those days.
    pub available: Option<(NaiveDate, NaiveDate)>,
    /// The local day now (loans overdue hold their exhibit until it is back).
    pub today: NaiveDate,
    /// Never yet sent out on a loan.
    pub never_lent: bool,
}

/// Searches exhibits across the city. With `near`, sorted by the distance of the exhibit's
/// base (then id) and cut at `radius_km`, walking outwards over the bases' location index;
/// otherwise by id. Filters, order and page are the database's.
pub async fn search(db: &DatabaseConnection, query: &ExhibitQuery, page: PageRequest) -> Result<Paged<ExhibitRecord>> {
    let mut cond = Condition::all();
    if let Some(s) = query.shareable {
        cond = cond.add(exhibit::Column::Shareable.eq(s));
    }
    if let Some(k) = query.kind {
        cond = cond.add(exhibit::Column::Kind.eq(k.as_str()));
    }
    if let Some(s) = query.status {
        cond = cond.add(exhibit::Column::Status.eq(s.as_str()));
    }
    if let Some(b) = query.base_id {
        cond = cond.add(exhibit::Column::BaseId.eq(b));
    }
    if let Some(d) = &query.district {
        cond = cond.add(exhibit::Column::BaseId.in_subquery(bases::in_district(d)));
    }
    if let Some(t) = &query.theme {
        cond = cond.add(
            exhibit::Column::BaseId.in_subquery(
                Query::select()
                    .column(base_theme::Column::BaseId)
                    .from(base_theme::Entity)
                    .and_where(base_theme::Column::Theme.eq(bases::normalize_theme(t)))
                    .take(),
            ),
        );
    }
    if let Some(a) = query.audience {
        // Audiences are stored as a JSON array of wire names, each quoted: an exact token.
        let token = format!("%\"{}\"%", a.as_str());
        cond = cond.add(Expr::col((exhibit::Entity, exhibit::Column::Audiences)).cast_as("text").like(token));
    }
    if let Some(q) = &query.q {
        let pattern = format!("%{}%", like_escape(&q.to_lowercase()));
        let like = |col: exhibit::Column| {
            Expr::expr(Func::lower(Expr::col((exhibit::Entity, col)))).like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        cond = cond.add(Condition::any().add(like(exhibit::Column::Name)).add(like(exhibit::Column::Description)));
    }
    if let Some((from, to)) = query.available {
        let today = query.today;
        cond = cond
            .add(
                exhibit::Column::Status
                    .is_not_in([ExhibitStatus::Maintenance.as_str(), ExhibitStatus::Retired.as_str()]),
            )
            .add(exhibit::Column::Id.not_in_subquery(loans::held_between(from, to, today)));
    }
    if query.never_lent {
        cond = cond.add(exhibit::Column::Id.not_in_subquery(loans::ever_lent()));
    }

    let txn = begin_read(db).await?;
    let result = match query.near {
        Some(center) => {
            let after = page.after.map(|c| (c.distance_km.unwrap_or(f64::NEG_INFINITY), c.id));
            let mut rings = Rings::new(center, query.radius_km, after);
            let found = rings.next(page.limit as usize + 1, |bbox| located(&txn, cond.clone(), bbox)).await?;
            let near = Paged::from_overfetch(found, page.limit, |n| Cursor {
                distance_km: Some(n.distance_km),
                ..Cursor::id(n.id)
            });
            let ids: Vec<Uuid> = near.items.iter().map(|n| n.id).collect();
            let mut by_id: HashMap<Uuid, exhibit::Model> = exhibit::Entity::find()
                .filter(exhibit::Column::Id.is_in(ids))
                .all(&txn)
                .await?
                .into_iter()
                .map(|e| (e.id, e))
                .collect();
            let rows: Vec<exhibit::Model> = near.items.iter().filter_map(|n| by_id.remove(&n.id)).collect();
            let mut items = records(&txn, rows).await?;
            for (r, n) in items.iter_mut().zip(&near.items) {
                r.distance_km = Some(n.distance_km);
            }
            Paged { items, next: near.next }
        }
        None => {
            if let Some(after) = page.after {
                cond = cond.add(exhibit::Column::Id.gt(after.id));
            }
            let rows = exhibit::Entity::find()
                .filter(cond)
                .order_by_asc(exhibit::Column::Id)
                .limit(page.limit + 1)
                .all(&txn)
                .await?;
            let paged = Paged::from_overfetch(rows, page.limit, |e| Cursor::id(e.id));
            Paged { items: records(&txn, paged.items).await?, next: paged.next }
        }
    };
    txn.commit().await?;
    Ok(result)
}

/// The ids of the exhibits matching `cond` whose bases lie in `bbox` (or anywhere), with the
/// bases' locations: a ring of a nearest-first walk, answered from the bases' location index.
async fn located(
    conn: &impl ConnectionTrait,
    cond: Condition,
    bbox: Option<BoundingBox>,
) -> Result<Vec<(Uuid, LatLon)>> {
    let mut q = exhibit::Entity::find()
        .select_only()
        .column(exhibit::Column::Id)
        .column_as(Expr::col((base::Entity, base::Column::Lat)), "lat")
        .column_as(Expr::col((base::Entity, base::Column::Lon)), "lon")
        .join(
            JoinType::InnerJoin,
            exhibit::Entity::belongs_to(base::Entity).from(exhibit::Column::BaseId).to(base::Column::Id).into(),
        )
        .filter(cond);
    if let Some(b) = bbox {
        q = q
            .filter(base::Column::Lat.between(b.min_lat, b.max_lat))
            .filter(base::Column::Lon.between(b.min_lon, b.max_lon));
    }
    let rows: Vec<(Uuid, f64, f64)> = q.into_tuple().all(conn).await?;
    Ok(rows.into_iter().map(|(id, lat, lon)| (id, LatLon { lat, lon })).collect())
}

pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    base_id: Uuid,
    data: ExhibitData,
    now: DateTime<Utc>,
) -> Result<exhibit::Model> {
    if data.status == ExhibitStatus::OnLoan {
        return Err(AppError::field("status", "on_loan is set by dispatching a loan, not when adding an exhibit"));
    }
    let txn = begin_write(db).await?;
    bases::ensure_exists(&txn, base_id).await?;
    authorize(actor, Action::EditExhibits { base_id })?;
    let id = Uuid::now_v7();
    exhibit::Entity::insert(active_model(id, base_id, &data, 1, now, now)).exec_without_returning(&txn).await?;
    let created = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::created("exhibit", id, &created)).await?;
    txn.commit().await?;
    Ok(created)
}

pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    precondition: Precondition,
    apply: impl FnOnce(&exhibit::Model) -> Result<ExhibitData>,
    now: DateTime<Utc>,
) -> Result<exhibit::Model> {
    let txn = begin_write(db).await?;
    let before = get(&txn, id).await?;
    authorize(actor, Action::EditExhibits { base_id: before.base_id })?;
    precondition.check(before.version)?;
    let data = apply(&before)?;
    let (was, becomes) = (ExhibitStatus::from_db(&before.status), data.status);
    if was != becomes && (was == ExhibitStatus::OnLoan || becomes == ExhibitStatus::OnLoan) {
        return Err(if was == ExhibitStatus::OnLoan {
            AppError::conflict_rule(
                "exhibit-out",
                "the exhibit is out on loan: record its return (POST /v1/exhibit-loans/{id}/return) to change its status",
            )
        } else {
            AppError::field("status", "on_loan is set by dispatching a loan (POST /v1/exhibit-loans/{id}/dispatch)")
        });
    }
    if was == ExhibitStatus::Maintenance && becomes == ExhibitStatus::OnDisplay {
        loans::close_maintenance(&txn, actor, id, now).await?;
    }
    let row = active_model(id, before.base_id, &data, before.version + 1, before.created_at, now);
    write_if_version::<exhibit::Entity>(
        &txn,
        row,
        (exhibit::Column::Id, id),
        (exhibit::Column::Version, before.version),
    )
    .await?;
    let after = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::updated("exhibit.update", "exhibit", id, &before, &after)).await?;
    txn.commit().await?;
    Ok(after)
}

/// Deletes an exhibit; `If-Match`, when given, must match.
pub async fn delete(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    precondition: Precondition,
    now: DateTime<Utc>,
) -> Result<()> {
    let txn = begin_write(db).await?;
    let before = get(&txn, id).await?;
    authorize(actor, Action::EditExhibits { base_id: before.base_id })?;
    precondition.check(before.version)?;
    if loans::has_loans(&txn, id).await? {
        return Err(AppError::conflict_rule(
            "exhibit-has-loans",
            "the exhibit has been asked for or lent: its loans are the sharing record, so retire it (status retired) instead",
        ));
    }
    exhibit::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(&txn, Some(actor), now, Change::deleted("exhibit", id, &before)).await?;
    txn.commit().await?;
    Ok(())
}
