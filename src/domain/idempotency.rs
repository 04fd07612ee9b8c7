//! `Idempotency-Key`: a client may send a write again (a timeout, a retry) and get the first
//! answer back instead of a second booking. A key is kept per account with the digest of the
//! request body and the answer given; the same key with another body is refused.

use chrono::{DateTime, Duration, Utc};
use entity::idempotency_key;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{AppError, Result, map_constraint};

/// Keys are kept at least 24 h; the sweep drops them after this.
pub const KEEP_HOURS: i64 = 48;
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 200;

/// The `Idempotency-Key` of a request and the digest of its body.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: String,
}

/// What a write with an `Idempotency-Key` made: something new, or the first answer again.
#[derive(Debug)]
pub enum Made<T> {
    New(Box<T>),
    Replay(Replay),
}

/// The first answer to a key, to give again.
#[derive(Debug, Clone)]
pub struct Replay {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Idempotency {
    /// The key of a request whose body is `body`: equal bodies (whatever the order of their
    /// keys) digest equally.
    pub fn of(key: &str, body: &serde_json::Value) -> Result<Self> {
        let key = key.trim();
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(AppError::field("Idempotency-Key", "must be 1–200 visible ASCII characters"));
        }
        let digest = Sha256::digest(canonical(body).to_string().as_bytes());
        Ok(Self { key: key.to_string(), request_hash: digest.iter().map(|b| format!("{b:02x}")).collect() })
    }
}

impl Idempotency {
    /// The key of a request to one resource of many (the tour in `POST /v1/tours/{id}/bookings`):
    /// the same key and body sent to another resource is another request.
    pub fn scoped(self, resource: Uuid) -> Self {
        let digest = Sha256::digest(format!("{resource}|{}", self.request_hash).as_bytes());
        Self { key: self.key, request_hash: digest.iter().map(|b| format!("{b:02x}")).collect() }
    }
}

/// A JSON value with its object keys sorted.
fn canonical(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            serde_json::Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&m[k]))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The first answer to `idem` by `user`, if there was one; 422 when the key came with
/// another body.
pub async fn find(conn: &impl ConnectionTrait, user: Uuid, idem: &Idempotency) -> Result<Option<Replay>> {
    match idempotency_key::Entity::find_by_id((user, idem.key.clone())).one(conn).await? {
        Some(k) if k.request_hash == idem.request_hash => {
            Ok(Some(Replay { status: u16::try_from(k.status).unwrap_or(200), body: k.response }))
        }
        Some(_) => Err(AppError::invalid_rule(
            "idempotency-key-reused",
            "this Idempotency-Key was used with a different request body",
        )),
        None => Ok(None),
    }
}

/// Keeps the answer to `idem` in the transaction that makes it. `false` when the same key
/// raced in from another request first: the caller rolls back and answers [`taken`].
pub async fn store(
    conn: &impl ConnectionTrait,
    user: Uuid,
    idem: &Idempotency,
    (status, body): (u16, serde_json::Value),
    now: DateTime<Utc>,
) -> Result<bool> {
    let stored = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
        user_id: Set(user),
        key: Set(idem.key.clone()),
        request_hash: Set(idem.request_hash.clone()),
        status: Set(i32::from(status)),
        response: Set(body),
        created_at: Set(now),
    })
    .exec_without_returning(conn)
    .await;
    match stored {
        Ok(_) => Ok(true),
        Err(e) => match map_constraint(e, || AppError::Conflict("idempotency key taken".into())) {
            AppError::Conflict(_) => Ok(false),
            other => Err(other),
        },
    }
}

/// The answer when [`store`] found the key taken: the other request's answer, once it has
/// committed.
pub async fn taken(db: &DatabaseConnection, user: Uuid, idem: &Idempotency) -> Result<Replay> {
    find(db, user, idem).await?.ok_or_else(|| {
        AppError::conflict_rule("idempotency-key-in-use", "a request with this key is still in progress")
    })
}

/// Drops keys older than [`KEEP_HOURS`]; answers how many.
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64> {
    Ok(idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::CreatedAt.lt(now - Duration::hours(KEEP_HOURS)))
        .exec(db)
        .await?
        .rows_affected)
}
