//! Passwords (argon2), bearer tokens (random, stored as SHA-256 digests) and the log-in
//! throttle that answers 429 to password guessing.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use entity::{api_token, login_failure, operator_base, user};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::Config;
use crate::domain::access::Actor;
use crate::domain::enums::Role;
use crate::error::{AppError, Result};

/// Hashes a password with argon2id and a fresh salt (off the async threads: it is slow on
/// purpose).
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing failed: {e}")))
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?
}

/// Checks a password against a stored hash.
pub async fn verify_password(password: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))
}

/// A hash to verify against when the username does not exist, so that a missing account
/// takes as long to refuse as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| Argon2::default().hash_password(b"no such account").map(|h| h.to_string()).unwrap_or_default());

/// A minimum password policy.
pub fn check_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < 10 {
        Err("must be at least 10 characters".into())
    } else if n > 256 {
        Err("must be at most 256 characters".into())
    } else {
        Ok(())
    }
}

pub fn token_digest(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("kepu_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A freshly issued bearer token.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Logs in: refuses with 429 while the username or the client address has too many recent
/// failures, records each failure, and issues a token on success.
pub async fn login(
    db: &DatabaseConnection,
    config: &Config,
    username: &str,
    password: &str,
    client_ip: &str,
    now: DateTime<Utc>,
) -> Result<IssuedToken> {
    let window_start = now - chrono::Duration::from_std(config.login_window).unwrap_or_default();
    throttle(db, login_failure::Column::Username, username, config.login_max_per_user, window_start, config).await?;
    throttle(db, login_failure::Column::ClientIp, client_ip, config.login_max_per_client, window_start, config).await?;

    let account = user::Entity::find().filter(user::Column::Username.eq(username)).one(db).await?;
    let hash = account.as_ref().map_or_else(|| DUMMY_HASH.clone(), |u| u.password_hash.clone());
    let password_ok = verify_password(password.to_string(), hash).await?;
    let account = match account {
        Some(u) if password_ok && !u.disabled => u,
        _ => {
            login_failure::Entity::insert(login_failure::ActiveModel {
                id: Set(Uuid::now_v7()),
                username: Set(username.to_string()),
                client_ip: Set(client_ip.to_string()),
                at: Set(now),
            })
            .exec_without_returning(db)
            .await?;
            return Err(AppError::Unauthorized("unknown username or wrong password".into()));
        }
    };
    login_failure::Entity::delete_many().filter(login_failure::Column::Username.eq(username)).exec(db).await?;
    // Old failures of anyone are garbage after the window.
    login_failure::Entity::delete_many().filter(login_failure::Column::At.lt(window_start)).exec(db).await?;

    let token = new_token();
    let expires_at = now + chrono::Duration::from_std(config.token_ttl).unwrap_or_default();
    api_token::Entity::insert(api_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        token_hash: Set(token_digest(&token)),
        user_id: Set(account.id),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(IssuedToken { token, expires_at })
}

async fn throttle(
    db: &DatabaseConnection,
    column: login_failure::Column,
    value: &str,
    max: u64,
    window_start: DateTime<Utc>,
    config: &Config,
) -> Result<()> {
    let recent =
        login_failure::Entity::find().filter(column.eq(value)).filter(login_failure::Column::At.gte(window_start));
    if recent.clone().count(db).await? < max {
        return Ok(());
    }
    let oldest = recent.order_by_asc(login_failure::Column::At).limit(1).one(db).await?.map_or(window_start, |f| f.at);
    let window = chrono::Duration::from_std(config.login_window).unwrap_or_default();
    let retry = (oldest + window - (window_start + window)).num_seconds().max(1);
    Err(AppError::RateLimited {
        detail: "too many failed log-ins; try again later".into(),
        retry_after_s: retry as u64,
    })
}

/// Bearer tokens this process verified recently, so that a busy client's requests skip the
/// token lookup (a database round trip). An entry is trusted for at most the configured time
/// and never past its token's expiry; a change to accounts or tokens made through this
/// process ([`accounts_changed`]) sets every entry aside at once.
pub struct TokenCache {
    entries: Option<moka::sync::Cache<String, Verified>>,
}

#[derive(Clone)]
struct Verified {
    actor: Actor,
    expires_at: DateTime<Utc>,
    /// The [`ACCOUNTS_EPOCH`] before the token was looked up.
    epoch: u64,
}

/// Counts changes to accounts and tokens made by this process.
static ACCOUNTS_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Marks every cached token verification as stale: call after committing a change to an
/// account, its scopes or its tokens.
pub fn accounts_changed() {
    ACCOUNTS_EPOCH.fetch_add(1, Ordering::SeqCst);
}

impl TokenCache {
    /// A cache trusting an entry for `ttl` (zero: no cache).
    pub fn new(ttl: std::time::Duration) -> Self {
        let entries =
            (!ttl.is_zero()).then(|| moka::sync::Cache::builder().max_capacity(100_000).time_to_live(ttl).build());
        Self { entries }
    }

    fn get(&self, digest: &str, now: DateTime<Utc>) -> Option<Actor> {
        let v = self.entries.as_ref()?.get(digest)?;
        (v.epoch == ACCOUNTS_EPOCH.load(Ordering::SeqCst) && v.expires_at > now).then_some(v.actor)
    }

    fn put(&self, digest: String, v: Verified) {
        if let Some(entries) = &self.entries {
            entries.insert(digest, v);
        }
    }
}

/// Resolves a bearer token to its account, or 401.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    cache: &TokenCache,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Actor> {
    let digest = token_digest(token);
    if let Some(actor) = cache.get(&digest, now) {
        return Ok(actor);
    }
    // Read before the lookup: a change committed meanwhile makes this entry stale.
    let epoch = ACCOUNTS_EPOCH.load(Ordering::SeqCst);
    let unauthorized = || AppError::Unauthorized("the bearer token is invalid, expired or revoked".into());
    let (tok, account) = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(digest.as_str()))
        .find_also_related(user::Entity)
        .one(db)
        .await?
        .ok_or_else(unauthorized)?;
    let account = account.ok_or_else(unauthorized)?;
    if tok.revoked_at.is_some() || tok.expires_at <= now || account.disabled {
        return Err(unauthorized());
    }
    let mut actor = actor_of(db, account).await?;
    actor.token_id = Some(tok.id);
    cache.put(digest, Verified { actor: actor.clone(), expires_at: tok.expires_at, epoch });
    Ok(actor)
}

/// Loads an account's scopes into an [`Actor`].
pub async fn actor_of(db: &impl ConnectionTrait, account: user::Model) -> Result<Actor> {
    let role = Role::from_db(&account.role);
    let base_ids = if role == Role::Operator {
        operator_base::Entity::find()
            .filter(operator_base::Column::UserId.eq(account.id))
            .all(db)
            .await?
            .into_iter()
            .map(|ob| ob.base_id)
            .collect()
    } else {
        Vec::new()
    };
    Ok(Actor {
        user_id: account.id,
        username: account.username,
        role,
        district_code: account.district_code,
        school_id: account.school_id,
        base_ids,
        request_id: None,
        token_id: None,
    })
}

/// Revokes the token in use.
pub async fn revoke(db: &impl ConnectionTrait, token: &str, now: DateTime<Utc>) -> Result<()> {
    api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Expr::value(now))
        .filter(api_token::Column::TokenHash.eq(token_digest(token)))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    accounts_changed();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_digested() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.len() > 40);
        assert_eq!(token_digest(&a).len(), 64);
        assert_eq!(token_digest(&a), token_digest(&a));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough pass").is_ok());
    }
}
