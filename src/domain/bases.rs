//! Bases (科普基地): creating, editing under optimistic concurrency, and searching by place,
//! district, category, theme, audience, status and name.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{base, base_audience, base_theme};
use sea_orm::sea_query::{Expr, Func, LikeExpr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::Serialize;
use uuid::Uuid;

use crate::db::{begin_read, begin_write};
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::enums::{Audience, BaseStatus, Category, Subcategory};
use crate::domain::geo::LatLon;
use crate::domain::nearest;
use crate::domain::page::{Cursor, PageRequest, Paged};
use crate::domain::{Precondition, districts, like_escape, write_if_version};
use crate::error::{AppError, Result};

/// How a base takes bookings: the defaults of its sessions' booking windows, and its largest
/// group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"opens_days_before": 30, "closes_hours_before": 24, "max_group_size": 60}))]
pub struct BookingRules {
    /// Booking opens this many days before a session starts (1–365).
    #[serde(default = "default_opens_days")]
    #[schema(minimum = 1, maximum = 365, default = 30)]
    pub opens_days_before: i32,
    /// Booking closes this many hours before a session starts (0–720).
    #[serde(default = "default_closes_hours")]
    #[schema(minimum = 0, maximum = 720, default = 24)]
    pub closes_hours_before: i32,
    /// The largest group (students + teachers) the base takes; none when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    pub max_group_size: Option<i32>,
}

fn default_opens_days() -> i32 {
    30
}

fn default_closes_hours() -> i32 {
    24
}

impl Default for BookingRules {
    fn default() -> Self {
        Self {
            opens_days_before: default_opens_days(),
            closes_hours_before: default_closes_hours(),
            max_group_size: None,
        }
    }
}

impl BookingRules {
    pub fn of(b: &base::Model) -> Self {
        Self {
            opens_days_before: b.booking_opens_days,
            closes_hours_before: b.booking_closes_hours,
            max_group_size: b.max_group_size,
        }
    }

    /// Field-named errors for out-of-range rules.
    pub fn check(&self, field: &str) -> Vec<crate::error::FieldError> {
        let mut errors = Vec::new();
        if !(1..=365).contains(&self.opens_days_before) {
            errors
                .push(crate::error::FieldError::new(format!("{field}.opens_days_before"), "must be between 1 and 365"));
        }
        if !(0..=720).contains(&self.closes_hours_before) {
            errors.push(crate::error::FieldError::new(
                format!("{field}.closes_hours_before"),
                "must be between 0 and 720",
            ));
        }
        if self.max_group_size.is_some_and(|m| !(1..=10_000).contains(&m)) {
            errors
                .push(crate::error::FieldError::new(format!("{field}.max_group_size"), "must be between 1 and 10000"));
        }
        errors
    }
}

/// The status a base has at `now`: an accredited base whose certificate has lapsed is
/// `expired`, even before the sweep records it, so that it is never shown as accredited.
pub fn effective_status(b: &base::Model, now: DateTime<Utc>) -> BaseStatus {
    status_at(&b.status, b.valid_until, now)
}

/// The status at `now` of a base stored with `status` and a certificate valid until
/// `valid_until` (the rule of [`effective_status`], and of [`status_condition`] in SQL).
pub fn status_at(status: &str, valid_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> BaseStatus {
    match (BaseStatus::from_db(status), valid_until) {
        (BaseStatus::Accredited, Some(until)) if until <= now => BaseStatus::Expired,
        (s, _) => s,
    }
}

/// A base's validated profile, as created or after a patch.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseData {
    pub name_zh: String,
    pub name_en: String,
    pub host_org: String,
    pub category: Category,
    pub subcategory: Subcategory,
    pub district_code: String,
    pub address: String,
    pub location: LatLon,
    pub exhibition_area_m2: Option<f64>,
    pub opening_hours: Option<String>,
    pub contact_phone: Option<String>,
    pub contact_email: Option<String>,
    pub themes: Vec<String>,
    pub audiences: Vec<Audience>,
    pub accessibility: Option<String>,
    pub status: BaseStatus,
    pub booking_rules: BookingRules,
}

/// A stored base with its themes and audiences.
#[derive(Debug, Clone, Serialize)]
pub struct BaseRecord {
    #[serde(flatten)]
    pub base: base::Model,
    pub themes: Vec<String>,
    pub audiences: Vec<Audience>,
}

impl BaseRecord {
    pub fn location(&self) -> LatLon {
        LatLon { lat: self.base.lat, lon: self.base.lon }
    }

    /// The record as editable data, the starting point of a patch.
    pub fn data(&self) -> BaseData {
        let b = &self.base;
        BaseData {
            name_zh: b.name_zh.clone(),
            name_en: b.name_en.clone(),
            host_org: b.host_org.clone(),
            category: Category::from_db(&b.category),
            subcategory: Subcategory::from_db(&b.subcategory),
            district_code: b.district_code.clone(),
            address: b.address.clone(),
            location: self.location(),
            exhibition_area_m2: b.exhibition_area_m2,
            opening_hours: b.opening_hours.clone(),
            contact_phone: b.contact_phone.clone(),
            contact_email: b.contact_email.clone(),
            themes: self.themes.clone(),
            audiences: self.audiences.clone(),
            accessibility: b.accessibility.clone(),
            status: BaseStatus::from_db(&b.status),
            booking_rules: BookingRules::of(b),
        }
    }
}

fn active_model(
    id: Uuid,
    d: &BaseData,
    version: i32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> base::ActiveModel {
    base::ActiveModel {
        id: Set(id),
        name_zh: Set(d.name_zh.clone()),
        name_en: Set(d.name_en.clone()),
        host_org: Set(d.host_org.clone()),
        category: Set(d.category.as_str().into()),
        subcategory: Set(d.subcategory.as_str().into()),
        district_code: Set(d.district_code.clone()),
        address: Set(d.address.clone()),
        lat: Set(d.location.lat),
        lon: Set(d.location.lon),
        exhibition_area_m2: Set(d.exhibition_area_m2),
        opening_hours: Set(d.opening_hours.clone()),
        contact_phone: Set(d.contact_phone.clone()),
        contact_email: Set(d.contact_email.clone()),
        accessibility: Set(d.accessibility.clone()),
        status: Set(d.status.as_str().into()),
        booking_opens_days: Set(d.booking_rules.opens_days_before),
        booking_closes_hours: Set(d.booking_rules.closes_hours_before),
        max_group_size: Set(d.booking_rules.max_group_size),
        version: Set(version),
        created_at: Set(created_at),
        updated_at: Set(now),
        // Certificate and rectification dates belong to accreditation and evaluation.
        ..Default::default()
    }
}

async fn write_tags(conn: &impl ConnectionTrait, id: Uuid, d: &BaseData) -> Result<()> {
    base_theme::Entity::delete_many().filter(base_theme::Column::BaseId.eq(id)).exec(conn).await?;
    base_audience::Entity::delete_many().filter(base_audience::Column::BaseId.eq(id)).exec(conn).await?;
    if !d.themes.is_empty() {
        base_theme::Entity::insert_many(
            d.themes.iter().map(|t| base_theme::ActiveModel { base_id: Set(id), theme: Set(t.clone()) }),
        )
        .exec_without_returning(conn)
        .await?;
    }
    if !d.audiences.is_empty() {
        base_audience::Entity::insert_many(
            d.audiences
                .iter()
                .map(|a| base_audience::ActiveModel { base_id: Set(id), audience: Set(a.as_str().into()) }),
        )
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

/// Creates a base: an admin anywhere, a district officer in its own district. Only an admin
/// may create it with a status other than `applicant`.
pub async fn create(db: &DatabaseConnection, actor: &Actor, data: BaseData, now: DateTime<Utc>) -> Result<BaseRecord> {
    authorize(actor, Action::CreateBase { district_code: &data.district_code })?;
    if data.status != BaseStatus::Applicant {
        authorize(actor, Action::ChangeBaseStanding)?;
    }
    let txn = begin_write(db).await?;
    districts::ensure_exists(&txn, &data.district_code, "district_code").await?;
    let id = Uuid::now_v7();
    base::Entity::insert(active_model(id, &data, 1, now, now)).exec_without_returning(&txn).await?;
    write_tags(&txn, id, &data).await?;
    let record = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::created("base", id, &record)).await?;
    txn.commit().await?;
    Ok(record)
}

/// One base, or 404.
pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<BaseRecord> {
    let base = base::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no base with id {id}")))?;
    Ok(with_tags(conn, vec![base]).await?.remove(0))
}

/// 404 unless the base exists.
pub async fn ensure_exists(conn: &impl ConnectionTrait, id: Uuid) -> Result<base::Model> {
    base::Entity::find_by_id(id).one(conn).await?.ok_or_else(|| AppError::not_found(format!("no base with id {id}")))
}

/// Attaches themes and audiences to a page of bases with one query each.
async fn with_tags(conn: &impl ConnectionTrait, bases: Vec<base::Model>) -> Result<Vec<BaseRecord>> {
    let ids: Vec<Uuid> = bases.iter().map(|b| b.id).collect();
    let mut themes: HashMap<Uuid, Vec<String>> = HashMap::new();
    let mut audiences: HashMap<Uuid, Vec<Audience>> = HashMap::new();
    if !ids.is_empty() {
        for t in base_theme::Entity::find()
            .filter(base_theme::Column::BaseId.is_in(ids.clone()))
            .order_by_asc(base_theme::Column::Theme)
            .all(conn)
            .await?
        {
            themes.entry(t.base_id).or_default().push(t.theme);
        }
        for a in base_audience::Entity::find().filter(base_audience::Column::BaseId.is_in(ids)).all(conn).await? {
            audiences.entry(a.base_id).or_default().push(Audience::from_db(&a.audience));
        }
    }
    Ok(bases
        .into_iter()
        .map(|base| {
            let mut auds = audiences.remove(&base.id).unwrap_or_default();
            auds.sort_by_key(|a| Audience::ALL.iter().position(|x| x == a));
            BaseRecord { themes: themes.remove(&base.id).unwrap_or_default(), audiences: auds, base }
        })
        .collect())
}

/// Edits a base under `If-Match`. `apply` turns the current record into the new data (the
/// patch); the operator of the base or an admin may edit, and only an admin may change the
/// status or the district.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    precondition: Precondition,
    apply: impl FnOnce(&BaseRecord) -> Result<BaseData>,
    now: DateTime<Utc>,
) -> Result<BaseRecord> {
    let txn = begin_write(db).await?;
    let before = get(&txn, id).await?;
    authorize(actor, Action::EditBase { base_id: id })?;
    precondition.check(before.base.version)?;
    let data = apply(&before)?;
    let old = before.data();
    if data.status != old.status || data.district_code != old.district_code {
        authorize(actor, Action::ChangeBaseStanding)?;
    }
    if data.district_code != old.district_code {
        districts::ensure_exists(&txn, &data.district_code, "district_code").await?;
        // Its closed months are rolled up under the old district.
        crate::domain::statistics::rollup::touched_all(&txn).await?;
    }
    let version = before.base.version + 1;
    let row = active_model(id, &data, version, before.base.created_at, now);
    write_if_version::<base::Entity>(&txn, row, (base::Column::Id, id), (base::Column::Version, before.base.version))
        .await?;
    write_tags(&txn, id, &data).await?;
    let after = get(&txn, id).await?;
    audit::record(
        &txn,
        Some(actor),
        now,
        Change::updated(
            if data.status != old.status { "base.status" } else { "base.update" },
            "base",
            id,
            &before,
            &after,
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}

/// The filters of a base search; all optional and combined with AND.
#[derive(Debug, Default, Clone)]
pub struct BaseQuery {
    pub near: Option<LatLon>,
    pub radius_km: Option<f64>,
    pub district: Option<String>,
    pub category: Option<Category>,
    pub subcategory: Option<Subcategory>,
    pub theme: Option<String>,
    pub audience: Option<Audience>,
    pub status: Option<BaseStatus>,
    pub q: Option<String>,
}

/// A search hit: the base and, for `near` searches, its distance.
#[derive(Debug, Clone)]
pub struct BaseHit {
    pub record: BaseRecord,
    pub distance_km: Option<f64>,
}

/// Searches bases. With `near` the result is sorted by great-circle distance (then id) and
/// cut at `radius_km`, walking outwards in rings ([`nearest::page`]); otherwise by id
/// (creation order). Filters, order and page are the database's.
pub async fn search(
    db: &DatabaseConnection,
    query: &BaseQuery,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<Paged<BaseHit>> {
    let mut cond = Condition::all();
    if let Some(d) = &query.district {
        cond = cond.add(base::Column::DistrictCode.eq(d.as_str()));
    }
    if let Some(c) = query.category {
        cond = cond.add(base::Column::Category.eq(c.as_str()));
    }
    if let Some(s) = query.subcategory {
        cond = cond.add(base::Column::Subcategory.eq(s.as_str()));
    }
    if let Some(s) = query.status {
        cond = cond.add(status_condition(s, now));
    }
    if let Some(t) = &query.theme {
        cond = cond.add(
            base::Column::Id.in_subquery(
                Query::select()
                    .column(base_theme::Column::BaseId)
                    .from(base_theme::Entity)
                    .and_where(base_theme::Column::Theme.eq(normalize_theme(t)))
                    .take(),
            ),
        );
    }
    if let Some(a) = query.audience {
        cond = cond.add(
            base::Column::Id.in_subquery(
                Query::select()
                    .column(base_audience::Column::BaseId)
                    .from(base_audience::Entity)
                    .and_where(base_audience::Column::Audience.eq(a.as_str()))
                    .take(),
            ),
        );
    }
    if let Some(q) = &query.q {
        let pattern = format!("%{}%", like_escape(&q.to_lowercase()));
        let like = |col: base::Column| {
            Expr::expr(Func::lower(Expr::col((base::Entity, col)))).like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        cond = cond.add(Condition::any().add(like(base::Column::NameZh)).add(like(base::Column::NameEn)));
    }

    // A read-only snapshot, so that the page and its tags agree.
    let txn = begin_read(db).await?;
    let result = match query.near {
        Some(center) => {
            let cols = [base::Column::Id, base::Column::Lat, base::Column::Lon];
            let near = nearest::page_of_rows::<base::Entity>(&txn, cond, cols, center, query.radius_km, page).await?;
            let (rows, distances): (Vec<base::Model>, Vec<f64>) = near.items.into_iter().unzip();
            let hits = with_tags(&txn, rows)
                .await?
                .into_iter()
                .zip(distances)
                .map(|(record, d)| BaseHit { record, distance_km: Some(d) })
                .collect();
            Paged { items: hits, next: near.next }
        }
        None => {
            if let Some(after) = page.after {
                cond = cond.add(base::Column::Id.gt(after.id));
            }
            let rows = base::Entity::find()
                .filter(cond)
                .order_by_asc(base::Column::Id)
                .limit(page.limit + 1)
                .all(&txn)
                .await?;
            let hits =
                with_tags(&txn, rows).await?.into_iter().map(|record| BaseHit { record, distance_km: None }).collect();
            Paged::from_overfetch(hits, page.limit, |h: &BaseHit| Cursor::id(h.record.base.id))
        }
    };
    txn.commit().await?;
    Ok(result)
}

/// Bases whose status at `now` is `s` (a lapsed accreditation counts as expired).
pub fn status_condition(s: BaseStatus, now: DateTime<Utc>) -> Condition {
    let lapsed = Condition::all()
        .add(base::Column::Status.eq(BaseStatus::Accredited.as_str()))
        .add(base::Column::ValidUntil.lte(now));
    match s {
        BaseStatus::Accredited => Condition::all()
            .add(base::Column::Status.eq(BaseStatus::Accredited.as_str()))
            .add(Condition::any().add(base::Column::ValidUntil.is_null()).add(base::Column::ValidUntil.gt(now))),
        BaseStatus::Expired => Condition::any().add(base::Column::Status.eq(BaseStatus::Expired.as_str())).add(lapsed),
        other => Condition::all().add(base::Column::Status.eq(other.as_str())),
    }
}

/// The names of some bases in one of their name columns (`NameZh`, `NameEn`), by id.
pub async fn names(
    conn: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
    column: base::Column,
) -> Result<HashMap<Uuid, String>> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(base::Entity::find()
        .select_only()
        .columns([base::Column::Id, column])
        .filter(base::Column::Id.is_in(ids))
        .into_tuple::<(Uuid, String)>()
        .all(conn)
        .await?
        .into_iter()
        .collect())
}

/// Both names (Chinese, English) of some bases, by id: one query, for lists that show them.
pub async fn both_names(
    conn: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, (String, String)>> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(base::Entity::find()
        .select_only()
        .columns([base::Column::Id, base::Column::NameZh, base::Column::NameEn])
        .filter(base::Column::Id.is_in(ids))
        .into_tuple::<(Uuid, String, String)>()
        .all(conn)
        .await?
        .into_iter()
        .map(|(id, zh, en)| (id, (zh, en)))
        .collect())
}

/// The ids of the bases of a district, as a subquery.
pub fn in_district(code: &str) -> sea_orm::sea_query::SelectStatement {
    Query::select().column(base::Column::Id).from(base::Entity).and_where(base::Column::DistrictCode.eq(code)).take()
}

/// Themes are compared case-insensitively: stored and searched in lower case.
pub fn normalize_theme(t: &str) -> String {
    t.trim().to_lowercase()
}
