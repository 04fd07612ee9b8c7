//! Signage (标识): versioned standards with each sign type's specification and placement rule,
//! and each sign's life: application (报装) checked against the rule, the district's approval,
//! installation, inspections with maintenance, update when the standard changes, removal.

use chrono::{DateTime, Duration, Utc};
use entity::{base, maintenance_item, sign, sign_inspection, signage_standard};
use sea_orm::sea_query::{Expr, Order};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::enums::{SignCondition, SignKind, SignStatus};
use crate::domain::geo::LatLon;
use crate::domain::nearest;
use crate::domain::page::{self, Cursor, PageRequest, Paged};
use crate::domain::validate::Validator;
use crate::domain::{bases, districts, write_if_version};
use crate::error::{AppError, Result, map_constraint};

/// A sign is inspected at least this often unless the inspector sets another date.
pub const INSPECTION_INTERVAL_DAYS: i64 = 365;

/// One sign type of a standard: its specification and placement rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "plaque", "size": "600 × 400 mm", "material": "brushed stainless steel", "colour": "brown RAL 8002, white text", "max_distance_m": 200}))]
pub struct SignType {
    #[serde(rename = "type")]
    pub kind: SignKind,
    #[schema(max_length = 200)]
    pub size: String,
    #[schema(max_length = 200)]
    pub material: String,
    #[schema(max_length = 200)]
    pub colour: String,
    /// The sign must stand within this distance of the base, in metres.
    #[schema(minimum = 1.0, maximum = 50000.0)]
    pub max_distance_m: f64,
}

/// A version of the signage standard.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignageStandard {
    pub id: Uuid,
    #[schema(example = "2021")]
    pub version: String,
    pub sign_types: Vec<SignType>,
    pub published_at: DateTime<Utc>,
}

impl SignageStandard {
    pub fn of(m: signage_standard::Model) -> Self {
        Self {
            id: m.id,
            version: m.version,
            sign_types: serde_json::from_value(m.sign_types).unwrap_or_default(),
            published_at: m.published_at,
        }
    }

    pub fn sign_type(&self, kind: SignKind) -> Option<&SignType> {
        self.sign_types.iter().find(|t| t.kind == kind)
    }
}

/// Every version, oldest first (by publication, then id).
pub async fn standards(conn: &impl ConnectionTrait, page: PageRequest) -> Result<Paged<SignageStandard>> {
    use signage_standard::Column as C;
    let mut q = signage_standard::Entity::find();
    if let Some(after) = page.after {
        let at = after.at.unwrap_or(DateTime::<Utc>::MIN_UTC);
        q = q.filter(page::after(C::PublishedAt, at, C::Id, after.id, Order::Asc));
    }
    let rows = q.order_by_asc(C::PublishedAt).order_by_asc(C::Id).limit(page.limit + 1).all(conn).await?;
    Ok(Paged::from_overfetch(rows, page.limit, |s| Cursor::at(s.published_at, s.id)).map(SignageStandard::of))
}

/// The latest published standard.
pub async fn current(conn: &impl ConnectionTrait) -> Result<SignageStandard> {
    signage_standard::Entity::find()
        .order_by_desc(signage_standard::Column::PublishedAt)
        .one(conn)
        .await?
        .map(SignageStandard::of)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no signage standard is published")))
}

/// Publishes a new version (admin); every installed sign of an older version becomes
/// `update_due`. Answers the standard and how many signs are due for update.
pub async fn publish(
    db: &DatabaseConnection,
    actor: &Actor,
    version: String,
    sign_types: Vec<SignType>,
    now: DateTime<Utc>,
) -> Result<(SignageStandard, usize)> {
    authorize(actor, Action::ManageStandards)?;
    let mut v = Validator::new();
    let version = v.text("version", &version, 40);
    if sign_types.is_empty() {
        v.push("sign_types", "needs at least one sign type");
    }
    for (i, t) in sign_types.iter().enumerate() {
        if sign_types.iter().filter(|o| o.kind == t.kind).count() > 1 {
            v.push(format!("sign_types[{i}].type"), "each type once");
        }
        v.text(&format!("sign_types[{i}].size"), &t.size, 200);
        v.text(&format!("sign_types[{i}].material"), &t.material, 200);
        v.text(&format!("sign_types[{i}].colour"), &t.colour, 200);
        if !(t.max_distance_m.is_finite() && (1.0..=50_000.0).contains(&t.max_distance_m)) {
            v.push(format!("sign_types[{i}].max_distance_m"), "must be between 1 and 50000");
        }
    }
    v.finish()?;
    let version = version.unwrap_or_default();
    let txn = begin_write(db).await?;
    let id = Uuid::now_v7();
    signage_standard::Entity::insert(signage_standard::ActiveModel {
        id: Set(id),
        version: Set(version.clone()),
        sign_types: Set(serde_json::to_value(&sign_types).map_err(anyhow::Error::from)?),
        published_at: Set(now),
        created_by: Set(Some(actor.user_id)),
    })
    .exec_without_returning(&txn)
    .await
    .map_err(|e| map_constraint(e, || AppError::Conflict(format!("version {version} exists"))))?;
    let standard = signage_standard::Entity::find_by_id(id).one(&txn).await?.map(SignageStandard::of);
    audit::record(&txn, Some(actor), now, Change::created("signage_standard", id, &standard)).await?;
    let outdated = sign::Entity::find()
        .filter(sign::Column::Status.eq(SignStatus::Installed.as_str()))
        .filter(sign::Column::StandardId.ne(id))
        .all(&txn)
        .await?;
    for s in &outdated {
        transition(&txn, Some(actor), s, SignStatus::UpdateDue, sign::ActiveModel::default(), "sign.update_due", now)
            .await?;
    }
    txn.commit().await?;
    Ok((standard.ok_or_else(|| AppError::not_found("standard"))?, outdated.len()))
}

/// A sign with its inspections and maintenance items.
#[derive(Debug, Clone, Serialize)]
pub struct SignRecord {
    #[serde(flatten)]
    pub sign: sign::Model,
    pub inspections: Vec<sign_inspection::Model>,
    pub maintenance: Vec<maintenance_item::Model>,
}

pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<SignRecord> {
    let sign = sign::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no sign with id {id}")))?;
    let inspections = sign_inspection::Entity::find()
        .filter(sign_inspection::Column::SignId.eq(id))
        .order_by_desc(sign_inspection::Column::Id)
        .all(conn)
        .await?;
    let maintenance = maintenance_item::Entity::find()
        .filter(maintenance_item::Column::SignId.eq(id))
        .order_by_desc(maintenance_item::Column::Id)
        .all(conn)
        .await?;
    Ok(SignRecord { sign, inspections, maintenance })
}

/// An installation application.
#[derive(Debug, Clone)]
pub struct SignApplication {
    pub kind: SignKind,
    pub location: LatLon,
    pub road_name: Option<String>,
    pub standard_version: Option<String>,
}

/// Applies for a sign (the base's operators, or an admin). The location is checked against
/// the type's placement rule: 422 `sign-placement` with the distance found and allowed.
pub async fn apply(
    db: &DatabaseConnection,
    actor: &Actor,
    base_id: Uuid,
    a: SignApplication,
    now: DateTime<Utc>,
) -> Result<SignRecord> {
    authorize(actor, Action::EditBase { base_id })?;
    let txn = begin_write(db).await?;
    let b = bases::ensure_exists(&txn, base_id).await?;
    let standard = match &a.standard_version {
        None => current(&txn).await?,
        Some(v) => signage_standard::Entity::find()
            .filter(signage_standard::Column::Version.eq(v.as_str()))
            .one(&txn)
            .await?
            .map(SignageStandard::of)
            .ok_or_else(|| AppError::field("standard_version", format!("no signage standard version {v}")))?,
    };
    let rule = standard
        .sign_type(a.kind)
        .ok_or_else(|| AppError::field("type", format!("standard {} has no {} signs", standard.version, a.kind)))?;
    let mut v = Validator::new();
    if let Err(e) = LatLon::parse_in_city(a.location.lat, a.location.lon, "location") {
        v.extend(e);
    }
    let road_name = v.opt_text("road_name", a.road_name.as_deref(), 200).flatten();
    if a.kind == SignKind::RoadGuide && road_name.is_none() {
        v.push("road_name", "a road guide sign names its road");
    }
    v.finish()?;
    let found = LatLon { lat: b.lat, lon: b.lon }.distance_km(a.location) * 1000.0;
    if found > rule.max_distance_m {
        return Err(AppError::invalid_rule(
            "sign-placement",
            format!(
                "location: a {} must stand within {} m of the base; this one is {:.0} m away",
                a.kind, rule.max_distance_m, found
            ),
        ));
    }
    let id = Uuid::now_v7();
    sign::Entity::insert(sign::ActiveModel {
        id: Set(id),
        base_id: Set(base_id),
        standard_id: Set(standard.id),
        kind: Set(a.kind.as_str().into()),
        lat: Set(a.location.lat),
        lon: Set(a.location.lon),
        road_name: Set(road_name),
        status: Set(SignStatus::Requested.as_str().into()),
        traffic_police_ref: Set(None),
        comment: Set(None),
        installed_at: Set(None),
        last_inspected_at: Set(None),
        next_inspection_due: Set(None),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    let created = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::created("sign", id, &created)).await?;
    txn.commit().await?;
    Ok(created)
}

/// Moves a sign to `to` with extra changes, under its version, and audits it.
async fn transition(
    txn: &DatabaseTransaction,
    actor: Option<&Actor>,
    s: &sign::Model,
    to: SignStatus,
    mut row: sign::ActiveModel,
    action: &str,
    now: DateTime<Utc>,
) -> Result<sign::Model> {
    row.id = Set(s.id);
    row.status = Set(to.as_str().into());
    row.version = Set(s.version + 1);
    row.updated_at = Set(now);
    write_if_version::<sign::Entity>(txn, row, (sign::Column::Id, s.id), (sign::Column::Version, s.version)).await?;
    let after = sign::Entity::find_by_id(s.id).one(txn).await?.ok_or_else(|| AppError::not_found("sign"))?;
    audit::record(txn, actor, now, Change::updated(action, "sign", s.id, s, &after)).await?;
    Ok(after)
}

/// Starts a step: the sign must be in one of `from`, and `allow` must pass for its base.
async fn step(
    db: &DatabaseConnection,
    id: Uuid,
    from: &[SignStatus],
    allow: impl FnOnce(&base::Model) -> Result<()>,
) -> Result<(DatabaseTransaction, sign::Model)> {
    let txn = begin_write(db).await?;
    let s = sign::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no sign with id {id}")))?;
    let b = bases::ensure_exists(&txn, s.base_id).await?;
    allow(&b)?;
    let status = SignStatus::from_db(&s.status);
    if !from.contains(&status) {
        let allowed: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        return Err(AppError::conflict_rule(
            "invalid-state",
            format!("the sign is {status}; this step needs it {}", allowed.join(" or ")),
        ));
    }
    Ok((txn, s))
}

/// The district officer of the base's district approves or rejects an application; a road
/// guide sign needs the traffic police's approval reference.
pub async fn decide(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    approve: bool,
    traffic_police_ref: Option<String>,
    comment: Option<String>,
    now: DateTime<Utc>,
) -> Result<SignRecord> {
    let (txn, s) = step(db, id, &[SignStatus::Requested], |b| {
        authorize(actor, Action::DistrictDecision { district_code: &b.district_code })
    })
    .await?;
    let mut v = Validator::new();
    let police = v.opt_text("traffic_police_ref", traffic_police_ref.as_deref(), 100).flatten();
    let comment = v.opt_text("comment", comment.as_deref(), 2000).flatten();
    if approve && SignKind::from_db(&s.kind) == SignKind::RoadGuide && police.is_none() {
        v.push("traffic_police_ref", "a road guide sign needs the traffic police's approval reference");
    }
    if !approve && comment.is_none() {
        v.push("comment", "say why the application is rejected");
    }
    v.finish()?;
    let (to, action) =
        if approve { (SignStatus::Approved, "sign.approve") } else { (SignStatus::Rejected, "sign.reject") };
    let row = sign::ActiveModel { traffic_police_ref: Set(police), comment: Set(comment), ..Default::default() };
    transition(&txn, Some(actor), &s, to, row, action, now).await?;
    let after = get(&txn, id).await?;
    txn.commit().await?;
    Ok(after)
}

/// The base reports an approved sign installed; its first inspection is due in a year.
pub async fn install(db: &DatabaseConnection, actor: &Actor, id: Uuid, now: DateTime<Utc>) -> Result<SignRecord> {
    let (txn, s) =
        step(db, id, &[SignStatus::Approved], |b| authorize(actor, Action::EditBase { base_id: b.id })).await?;
    let row = sign::ActiveModel {
        installed_at: Set(Some(now)),
        next_inspection_due: Set(Some(now + Duration::days(INSPECTION_INTERVAL_DAYS))),
        ..Default::default()
    };
    transition(&txn, Some(actor), &s, SignStatus::Installed, row, "sign.install", now).await?;
    let after = get(&txn, id).await?;
    txn.commit().await?;
    Ok(after)
}

/// An inspection's findings.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub condition: SignCondition,
    pub photo_url: Option<String>,
    pub notes: Option<String>,
    pub next_due: Option<DateTime<Utc>>,
}

/// The district inspects a standing sign; `damaged` or `missing` opens a maintenance item.
pub async fn inspect(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    i: Inspection,
    now: DateTime<Utc>,
) -> Result<SignRecord> {
    let standing = [SignStatus::Installed, SignStatus::UpdateDue, SignStatus::RemovalDue];
    let (txn, s) =
        step(db, id, &standing, |b| authorize(actor, Action::DistrictDecision { district_code: &b.district_code }))
            .await?;
    let mut v = Validator::new();
    let photo = v.opt_text("photo_url", i.photo_url.as_deref(), 500).flatten();
    if photo.as_deref().is_some_and(|p| !(p.starts_with("https://") || p.starts_with("http://"))) {
        v.push("photo_url", "must be an http(s) URL");
    }
    let notes = v.opt_text("notes", i.notes.as_deref(), 2000).flatten();
    let next_due = i.next_due.unwrap_or(now + Duration::days(INSPECTION_INTERVAL_DAYS));
    if next_due <= now || next_due > now + Duration::days(3 * 365) {
        v.push("next_due", "must be in the next three years");
    }
    v.finish()?;
    let iid = Uuid::now_v7();
    sign_inspection::Entity::insert(sign_inspection::ActiveModel {
        id: Set(iid),
        sign_id: Set(id),
        inspector_id: Set(actor.user_id),
        condition: Set(i.condition.as_str().into()),
        photo_url: Set(photo),
        notes: Set(notes),
        inspected_at: Set(now),
        next_due: Set(next_due),
    })
    .exec_without_returning(&txn)
    .await?;
    if matches!(i.condition, SignCondition::Damaged | SignCondition::Missing) {
        maintenance_item::Entity::insert(maintenance_item::ActiveModel {
            id: Set(Uuid::now_v7()),
            sign_id: Set(id),
            inspection_id: Set(iid),
            status: Set("open".into()),
            opened_at: Set(now),
            closed_at: Set(None),
            closed_by: Set(None),
            note: Set(None),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    let row = sign::ActiveModel {
        last_inspected_at: Set(Some(now)),
        next_inspection_due: Set(Some(next_due)),
        ..Default::default()
    };
    transition(&txn, Some(actor), &s, SignStatus::from_db(&s.status), row, "sign.inspect", now).await?;
    let after = get(&txn, id).await?;
    txn.commit().await?;
    Ok(after)
}

/// The base closes a maintenance item once the sign is repaired.
pub async fn close_maintenance(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    item_id: Uuid,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<SignRecord> {
    let txn = begin_write(db).await?;
    let before = get(&txn, id).await?;
    authorize(actor, Action::EditBase { base_id: before.sign.base_id })?;
    let item = before
        .maintenance
        .iter()
        .find(|m| m.id == item_id)
        .ok_or_else(|| AppError::not_found(format!("no maintenance item {item_id} on this sign")))?;
    if item.status != "open" {
        return Err(AppError::conflict_rule("invalid-state", "the maintenance item is already closed"));
    }
    let mut v = Validator::new();
    let note = v.opt_text("note", note.as_deref(), 2000).flatten();
    v.finish()?;
    maintenance_item::Entity::update_many()
        .col_expr(maintenance_item::Column::Status, Expr::value("closed"))
        .col_expr(maintenance_item::Column::ClosedAt, Expr::value(now))
        .col_expr(maintenance_item::Column::ClosedBy, Expr::value(actor.user_id))
        .col_expr(maintenance_item::Column::Note, Expr::value(note))
        .filter(maintenance_item::Column::Id.eq(item_id))
        .filter(maintenance_item::Column::Status.eq("open"))
        .exec(&txn)
        .await?;
    let after = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::updated("sign.maintenance_close", "sign", id, &before, &after))
        .await?;
    txn.commit().await?;
    Ok(after)
}

/// The base reports a sign replaced after an update (its successor is a new application), or
/// removed (the base, or the district).
pub async fn retire(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    replaced: bool,
    now: DateTime<Utc>,
) -> Result<SignRecord> {
    let (from, to, action): (&[SignStatus], _, _) = if replaced {
        (&[SignStatus::UpdateDue], SignStatus::Replaced, "sign.replace")
    } else {
        (&[SignStatus::Installed, SignStatus::UpdateDue, SignStatus::RemovalDue], SignStatus::Removed, "sign.remove")
    };
    let (txn, s) = step(db, id, from, |b| {
        authorize(actor, Action::EditBase { base_id: b.id })
            .or_else(|_| authorize(actor, Action::DistrictDecision { district_code: &b.district_code }))
    })
    .await?;
    transition(&txn, Some(actor), &s, to, sign::ActiveModel::default(), action, now).await?;
    let after = get(&txn, id).await?;
    txn.commit().await?;
    Ok(after)
}

/// The district's work list and map layer.
#[derive(Debug, Clone, Default)]
pub struct SignQuery {
    pub district: Option<String>,
    pub base_id: Option<Uuid>,
    pub status: Option<SignStatus>,
    pub kind: Option<SignKind>,
    pub inspection_due_before: Option<DateTime<Utc>>,
    pub near: Option<LatLon>,
    pub radius_km: Option<f64>,
}

pub async fn search(
    db: &DatabaseConnection,
    q: &SignQuery,
    page: PageRequest,
) -> Result<Paged<(sign::Model, Option<f64>)>> {
    crate::domain::validate::sane_time("inspection_due_before", q.inspection_due_before)?;
    let mut cond = Condition::all();
    if let Some(d) = &q.district {
        districts::ensure_exists(db, d, "district").await?;
        cond = cond.add(sign::Column::BaseId.in_subquery(bases::in_district(d)));
    }
    if let Some(b) = q.base_id {
        cond = cond.add(sign::Column::BaseId.eq(b));
    }
    if let Some(s) = q.status {
        cond = cond.add(sign::Column::Status.eq(s.as_str()));
    }
    if let Some(k) = q.kind {
        cond = cond.add(sign::Column::Kind.eq(k.as_str()));
    }
    if let Some(t) = q.inspection_due_before {
        cond = cond.add(sign::Column::NextInspectionDue.lt(t));
    }
    match q.near {
        Some(center) => {
            let cols = [sign::Column::Id, sign::Column::Lat, sign::Column::Lon];
            let near = nearest::page_of_rows::<sign::Entity>(db, cond, cols, center, q.radius_km, page).await?;
            Ok(near.map(|(s, d)| (s, Some(d))))
        }
        None => {
            if let Some(after) = page.after {
                cond = cond.add(sign::Column::Id.gt(after.id));
            }
            let rows =
                sign::Entity::find().filter(cond).order_by_asc(sign::Column::Id).limit(page.limit + 1).all(db).await?;
            Ok(Paged::from_overfetch(rows, page.limit, |s| Cursor::id(s.id)).map(|s| (s, None)))
        }
    }
}
