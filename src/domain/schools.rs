//! Schools: the directory of schools that book visits.

use chrono::{DateTime, Utc};
use entity::school;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::enums::SchoolKind;
use crate::domain::geo::LatLon;
use crate::domain::nearest;
use crate::domain::page::{Cursor, PageRequest, Paged};
use crate::domain::{Precondition, districts, like_escape, write_if_version};
use crate::error::{AppError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct SchoolData {
    pub name: String,
    pub district_code: String,
    pub address: String,
    pub location: LatLon,
    pub kind: SchoolKind,
    pub student_count: i32,
}

impl SchoolData {
    pub fn of(m: &school::Model) -> Self {
        Self {
            name: m.name.clone(),
            district_code: m.district_code.clone(),
            address: m.address.clone(),
            location: LatLon { lat: m.lat, lon: m.lon },
            kind: SchoolKind::from_db(&m.kind),
            student_count: m.student_count,
        }
    }
}

fn active_model(
    id: Uuid,
    d: &SchoolData,
    version: i32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> school::ActiveModel {
    school::ActiveModel {
        id: Set(id),
        name: Set(d.name.clone()),
        district_code: Set(d.district_code.clone()),
        address: Set(d.address.clone()),
        lat: Set(d.location.lat),
        lon: Set(d.location.lon),
        kind: Set(d.kind.as_str().into()),
        student_count: Set(d.student_count),
        version: Set(version),
        created_at: Set(created_at),
        updated_at: Set(now),
        ..Default::default()
    }
}

pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<school::Model> {
    school::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no school with id {id}")))
}

pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    data: SchoolData,
    now: DateTime<Utc>,
) -> Result<school::Model> {
    authorize(actor, Action::CreateSchool)?;
    let txn = begin_write(db).await?;
    districts::ensure_exists(&txn, &data.district_code, "district_code").await?;
    let id = Uuid::now_v7();
    school::Entity::insert(active_model(id, &data, 1, now, now)).exec_without_returning(&txn).await?;
    let created = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::created("school", id, &created)).await?;
    txn.commit().await?;
    Ok(created)
}

pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    precondition: Precondition,
    apply: impl FnOnce(&school::Model) -> Result<SchoolData>,
    now: DateTime<Utc>,
) -> Result<school::Model> {
    let txn = begin_write(db).await?;
    let before = get(&txn, id).await?;
    let edit = Action::EditSchool { school_id: id };
    let move_district = Action::ChangeSchoolDistrict { district_code: &before.district_code };
    authorize(actor, edit).or_else(|_| authorize(actor, move_district))?;
    precondition.check(before.version)?;
    let data = apply(&before)?;
    let old = SchoolData::of(&before);
    let moved = data.district_code != old.district_code;
    // Anything but a move (a profile change, or no change at all) is the school's own edit.
    if !moved || (SchoolData { district_code: old.district_code.clone(), ..data.clone() }) != old {
        authorize(actor, edit)?;
    }
    if moved {
        authorize(actor, move_district)?;
        districts::ensure_exists(&txn, &data.district_code, "district_code").await?;
    }
    let row = active_model(id, &data, before.version + 1, before.created_at, now);
    write_if_version::<school::Entity>(&txn, row, (school::Column::Id, id), (school::Column::Version, before.version))
        .await?;
    let after = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::updated("school.update", "school", id, &before, &after)).await?;
    txn.commit().await?;
    Ok(after)
}

#[derive(Debug, Default, Clone)]
pub struct SchoolQuery {
    pub near: Option<LatLon>,
    pub radius_km: Option<f64>,
    pub district: Option<String>,
    pub kind: Option<SchoolKind>,
    pub q: Option<String>,
}

/// Searches schools; with `near`, sorted by distance and cut at `radius_km`.
pub async fn search(
    db: &DatabaseConnection,
    actor: &Actor,
    query: &SchoolQuery,
    page: PageRequest,
) -> Result<Paged<(school::Model, Option<f64>)>> {
    authorize(actor, Action::ReadSchools)?;
    let mut cond = Condition::all();
    if let Some(d) = &query.district {
        cond = cond.add(school::Column::DistrictCode.eq(d.as_str()));
    }
    if let Some(k) = query.kind {
        cond = cond.add(school::Column::Kind.eq(k.as_str()));
    }
    if let Some(q) = &query.q {
        cond = cond.add(school::Column::Name.like(format!("%{}%", like_escape(q))));
    }
    match query.near {
        Some(center) => {
            let cols = [school::Column::Id, school::Column::Lat, school::Column::Lon];
            let near = nearest::page_of_rows::<school::Entity>(db, cond, cols, center, query.radius_km, page).await?;
            Ok(near.map(|(s, d)| (s, Some(d))))
        }
        None => {
            if let Some(after) = page.after {
                cond = cond.add(school::Column::Id.gt(after.id));
            }
            let rows = school::Entity::find()
                .filter(cond)
                .order_by_asc(school::Column::Id)
                .limit(page.limit + 1)
                .all(db)
                .await?;
            Ok(Paged::from_overfetch(rows, page.limit, |s| Cursor::id(s.id)).map(|s| (s, None)))
        }
    }
}
