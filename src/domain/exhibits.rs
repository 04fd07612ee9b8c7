//! Exhibits (展品) of a base: only the base's operators and admins write them.

use chrono::{DateTime, Utc};
use entity::exhibit;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::enums::{Audience, ExhibitKind, ExhibitStatus};
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

/// The exhibits of a base, oldest first.
pub async fn list(db: &DatabaseConnection, base_id: Uuid, page: PageRequest) -> Result<Paged<exhibit::Model>> {
    bases::ensure_exists(db, base_id).await?;
    let mut q = exhibit::Entity::find().filter(exhibit::Column::BaseId.eq(base_id));
    if let Some(after) = page.after {
        q = q.filter(exhibit::Column::Id.gt(after.id));
    }
    let rows = q.order_by_asc(exhibit::Column::Id).limit(page.limit + 1).all(db).await?;
    Ok(Paged::from_overfetch(rows, page.limit, |e| Cursor::id(e.id)))
}

pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    base_id: Uuid,
    data: ExhibitData,
    now: DateTime<Utc>,
) -> Result<exhibit::Model> {
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
    exhibit::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(&txn, Some(actor), now, Change::deleted("exhibit", id, &before)).await?;
    txn.commit().await?;
    Ok(())
}
