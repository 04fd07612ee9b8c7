//! Accounts: created and changed by admins, each with the scope its role needs.

use chrono::{DateTime, Utc};
use entity::{api_token, base, operator_base, school, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::Serialize;
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::auth::{check_password, hash_password};
use crate::domain::districts;
use crate::domain::enums::Role;
use crate::domain::page::{Cursor, PageRequest, Paged};
use crate::domain::validate::Validator;
use crate::error::{AppError, Result, map_constraint};

/// The longest username, in bytes (its characters are ASCII).
pub const MAX_USERNAME_LEN: usize = 64;

/// A username's rules: 2–64 characters of a–z, 0–9, `.`, `_`, `-`, `@`.
pub fn check_username(name: &str) -> std::result::Result<String, String> {
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-@".contains(c));
    if (2..=MAX_USERNAME_LEN).contains(&name.len()) && ok_chars {
        Ok(name.to_string())
    } else {
        Err("must be 2–64 characters of a–z, 0–9, '.', '_', '-', '@'".into())
    }
}

/// An account with the bases it operates.
#[derive(Debug, Clone, Serialize)]
pub struct UserRecord {
    #[serde(flatten)]
    pub user: user::Model,
    pub base_ids: Vec<Uuid>,
}

/// A role with exactly the scope it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub role: Role,
    pub district_code: Option<String>,
    pub school_id: Option<Uuid>,
    pub base_ids: Vec<Uuid>,
}

impl Scope {
    /// Checks that each role carries its scope and no other: a district officer its district,
    /// an operator its bases, a school account its school; references must exist.
    pub async fn check(&self, conn: &impl ConnectionTrait) -> Result<()> {
        let mut v = Validator::new();
        let needs = |_: &str| format!("is required for the {} role", self.role);
        let forbids = |field: &str| format!("{field} is only for the role that it scopes, not {}", self.role);
        match (self.role, &self.district_code) {
            (Role::DistrictOfficer, None) => v.push("district_code", needs("district_code")),
            (Role::DistrictOfficer, Some(_)) | (_, None) => {}
            (_, Some(_)) => v.push("district_code", forbids("district_code")),
        }
        match (self.role, self.school_id) {
            (Role::School, None) => v.push("school_id", needs("school_id")),
            (Role::School, Some(_)) | (_, None) => {}
            (_, Some(_)) => v.push("school_id", forbids("school_id")),
        }
        match (self.role, self.base_ids.is_empty()) {
            (Role::Operator, true) => v.push("base_ids", needs("base_ids")),
            (Role::Operator, false) | (_, true) => {}
            (_, false) => v.push("base_ids", forbids("base_ids")),
        }
        v.finish()?;
        if let Some(code) = &self.district_code {
            districts::ensure_exists(conn, code, "district_code").await?;
        }
        if let Some(id) = self.school_id
            && school::Entity::find_by_id(id).one(conn).await?.is_none()
        {
            return Err(AppError::field("school_id", format!("no school with id {id}")));
        }
        if !self.base_ids.is_empty() {
            let found = base::Entity::find().filter(base::Column::Id.is_in(self.base_ids.clone())).count(conn).await?;
            if found != self.base_ids.len() as u64 {
                return Err(AppError::field("base_ids", "names a base that does not exist"));
            }
        }
        Ok(())
    }
}

pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<UserRecord> {
    let user = user::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no user with id {id}")))?;
    let base_ids = operator_base::Entity::find()
        .filter(operator_base::Column::UserId.eq(id))
        .order_by_asc(operator_base::Column::BaseId)
        .all(conn)
        .await?
        .into_iter()
        .map(|ob| ob.base_id)
        .collect();
    Ok(UserRecord { user, base_ids })
}

async fn write_bases(conn: &impl ConnectionTrait, user_id: Uuid, base_ids: &[Uuid]) -> Result<()> {
    operator_base::Entity::delete_many().filter(operator_base::Column::UserId.eq(user_id)).exec(conn).await?;
    if !base_ids.is_empty() {
        operator_base::Entity::insert_many(
            base_ids.iter().map(|b| operator_base::ActiveModel { user_id: Set(user_id), base_id: Set(*b) }),
        )
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

/// Creates an account. `actor` is `None` only for the command line and the demo seed.
pub async fn create(
    db: &DatabaseConnection,
    actor: Option<&Actor>,
    username: String,
    password: String,
    scope: Scope,
    now: DateTime<Utc>,
) -> Result<UserRecord> {
    if let Some(a) = actor {
        authorize(a, Action::ManageUsers)?;
    }
    let mut v = Validator::new();
    let username = v.check("username", check_username(&username));
    v.check("password", check_password(&password));
    v.finish()?;
    let username = username.unwrap_or_default();
    let hash = hash_password(password).await?;
    let txn = begin_write(db).await?;
    scope.check(&txn).await?;
    let id = Uuid::now_v7();
    user::Entity::insert(user::ActiveModel {
        id: Set(id),
        username: Set(username.clone()),
        password_hash: Set(hash),
        role: Set(scope.role.as_str().into()),
        district_code: Set(scope.district_code.clone()),
        school_id: Set(scope.school_id),
        disabled: Set(false),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await
    .map_err(|e| map_constraint(e, || AppError::Conflict(format!("the username {username} is taken"))))?;
    write_bases(&txn, id, &scope.base_ids).await?;
    let created = get(&txn, id).await?;
    audit::record(&txn, actor, now, Change::created("user", id, &created)).await?;
    txn.commit().await?;
    Ok(created)
}

/// What an admin may change on an account; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct UserChange {
    pub password: Option<String>,
    pub scope: Option<Scope>,
    pub disabled: Option<bool>,
}

pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    change: UserChange,
    now: DateTime<Utc>,
) -> Result<UserRecord> {
    authorize(actor, Action::ManageUsers)?;
    if let Some(p) = &change.password {
        check_password(p).map_err(|m| AppError::field("password", m))?;
    }
    let changed_password = change.password.is_some();
    let hash = match change.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let txn = begin_write(db).await?;
    let before = get(&txn, id).await?;
    let before_scope = Scope {
        role: Role::from_db(&before.user.role),
        district_code: before.user.district_code.clone(),
        school_id: before.user.school_id,
        base_ids: before.base_ids.clone(),
    };
    let scope = match change.scope {
        Some(s) => {
            s.check(&txn).await?;
            s
        }
        None => before_scope.clone(),
    };
    let disabled = change.disabled.unwrap_or(before.user.disabled);
    if id == actor.user_id && (disabled || scope.role != Role::Admin) {
        return Err(AppError::Conflict("an admin cannot disable or demote their own account".into()));
    }
    let mut am = user::ActiveModel {
        id: Set(id),
        role: Set(scope.role.as_str().into()),
        district_code: Set(scope.district_code.clone()),
        school_id: Set(scope.school_id),
        disabled: Set(disabled),
        version: Set(before.user.version + 1),
        updated_at: Set(now),
        ..Default::default()
    };
    if let Some(h) = hash {
        am.password_hash = Set(h);
    }
    user::Entity::update_many().set(am).filter(user::Column::Id.eq(id)).exec(&txn).await?;
    write_bases(&txn, id, &scope.base_ids).await?;
    // A new password, role or scope, or disabling, ends the account's sessions (but not the
    // one making this change).
    if changed_password || scope != before_scope || disabled != before.user.disabled {
        let mut revoke = api_token::Entity::update_many()
            .col_expr(api_token::Column::RevokedAt, Expr::value(now))
            .filter(api_token::Column::UserId.eq(id))
            .filter(api_token::Column::RevokedAt.is_null());
        if let Some(own) = actor.token_id {
            revoke = revoke.filter(api_token::Column::Id.ne(own));
        }
        revoke.exec(&txn).await?;
    }
    let after = get(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::updated("user.update", "user", id, &before, &after)).await?;
    txn.commit().await?;
    crate::domain::auth::accounts_changed();
    Ok(after)
}

pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    role: Option<Role>,
    page: PageRequest,
) -> Result<Paged<UserRecord>> {
    authorize(actor, Action::ManageUsers)?;
    let mut q = user::Entity::find();
    if let Some(r) = role {
        q = q.filter(user::Column::Role.eq(r.as_str()));
    }
    if let Some(after) = page.after {
        q = q.filter(user::Column::Id.gt(after.id));
    }
    let rows = q.order_by_asc(user::Column::Id).limit(page.limit + 1).all(db).await?;
    let paged = Paged::from_overfetch(rows, page.limit, |u| Cursor::id(u.id));
    let ids: Vec<Uuid> = paged.items.iter().map(|u| u.id).collect();
    let mut bases: std::collections::HashMap<Uuid, Vec<Uuid>> = std::collections::HashMap::new();
    for ob in operator_base::Entity::find()
        .filter(operator_base::Column::UserId.is_in(ids))
        .order_by_asc(operator_base::Column::BaseId)
        .all(db)
        .await?
    {
        bases.entry(ob.user_id).or_default().push(ob.base_id);
    }
    Ok(paged.map(|user| UserRecord { base_ids: bases.remove(&user.id).unwrap_or_default(), user }))
}

/// Finds an account by username (for the command line).
pub async fn find_by_username(conn: &impl ConnectionTrait, username: &str) -> Result<Option<user::Model>> {
    Ok(user::Entity::find().filter(user::Column::Username.eq(username)).one(conn).await?)
}
