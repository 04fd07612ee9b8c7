//! Passwords (argon2), bearer tokens (random, stored as SHA-256 digests) and the log-in
//! throttle that answers 429 to password guessing without letting anyone lock an account
//! out: growing waits per username and address, a cap per address, and a cap per account
//! beyond which only the account's own addresses may try.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use entity::{api_token, login_address, login_failure, operator_base, user};
use rand::RngCore;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::Config;
use crate::db::begin_write;
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

/// The CSRF token of a console session: derived from its (secret, `HttpOnly`) session token,
/// so a page of this origin learns it from the API while another site can neither read nor
/// guess it; nothing more is stored.
pub fn csrf_token(session_token: &str) -> String {
    let digest = Sha256::digest(format!("kepu-csrf\0{session_token}").as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..24])
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

/// The log-in throttle's fixed numbers; its two counts are settings
/// ([`Config::login_max_per_client`], [`Config::login_account_failures_per_hour`]).
pub mod limits {
    /// Failures of one username from one address that cost no wait.
    pub const FREE_FAILURES: u64 = 3;
    /// The wait after the first failure beyond [`FREE_FAILURES`]; it doubles with each further
    /// failure, up to [`MAX_DELAY_S`].
    pub const FIRST_DELAY_S: i64 = 1;
    pub const MAX_DELAY_S: i64 = 15 * 60;
    /// How long the failures of one username from one address are remembered for its waits
    /// (a right password from that address forgets them at once).
    pub const PAIR_MEMORY_S: i64 = 24 * 3600;
    /// The window of [`crate::config::Config::login_account_failures_per_hour`].
    pub const ACCOUNT_WINDOW_S: i64 = 3600;
    /// An address is the account's own for this long after the account last logged in from
    /// it.
    pub const KNOWN_FOR_DAYS: i64 = 30;
}

/// The address the log-in throttle counts a client by: an IPv4 address as it is, an
/// IPv4-mapped IPv6 address as its IPv4, any other IPv6 address by its /64 (one subscriber's
/// network, whose hosts pick new addresses in it at will). Anything else as it is.
pub fn address_key(client_ip: &str) -> String {
    match client_ip.parse::<std::net::IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(std::net::IpAddr::V6(v6)) => {
            let prefix = std::net::Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX));
            format!("{prefix}/64")
        }
        Ok(ip) => ip.to_string(),
        Err(_) => client_ip.to_string(),
    }
}

/// The username the log-in throttle counts an attempt by: as it is, or, when it is longer
/// than any username can be, `#` and its SHA-256 digest (an index entry's size is limited;
/// no username has a `#`).
fn username_key(username: &str) -> std::borrow::Cow<'_, str> {
    if username.len() <= crate::domain::users::MAX_USERNAME_LEN {
        username.into()
    } else {
        format!("#{}", token_digest(username)).into()
    }
}

/// The wait after `failures` failed log-ins of one username from one address, counted from
/// the last of them: none for the first [`limits::FREE_FAILURES`], then 1 s, 2 s, 4 s, …,
/// at most [`limits::MAX_DELAY_S`].
pub fn pair_delay(failures: u64) -> chrono::Duration {
    let Some(beyond) = failures.checked_sub(limits::FREE_FAILURES) else {
        return chrono::Duration::zero();
    };
    let doublings = u32::try_from(beyond).unwrap_or(u32::MAX).min(62);
    let seconds = limits::FIRST_DELAY_S.saturating_mul(1 << doublings).min(limits::MAX_DELAY_S);
    chrono::Duration::seconds(seconds)
}

/// Why an attempt is refused, and how long until that rule would let it through.
#[derive(Debug)]
struct Refusal {
    wait: chrono::Duration,
    detail: &'static str,
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        // Whole seconds, rounded up: a client that waits this long is not refused by this rule.
        let ms = u64::try_from(r.wait.num_milliseconds()).unwrap_or(0);
        let seconds = ms.div_ceil(1000).max(1);
        AppError::RateLimited { detail: r.detail.into(), retry_after_s: seconds }
    }
}

/// Logs in. An attempt is first weighed by the throttle's three rules ([`address_rule`],
/// [`pair_rule`], [`account_rule`]); a refused attempt is answered 429 without its password
/// being looked at, and is not a failure. An admitted attempt is recorded as a failure before
/// its password is checked, so that attempts in flight count; a right password removes the
/// failures of this username from this address (that record included), marks the address as
/// the account's own, and issues a token.
pub async fn login(
    db: &DatabaseConnection,
    config: &Config,
    username: &str,
    password: &str,
    client_ip: &str,
    now: DateTime<Utc>,
) -> Result<IssuedToken> {
    let address = address_key(client_ip);
    let key = username_key(username);
    // A refusal read without locks first: a flood of refused attempts never queues for them.
    if let Some(refusal) = refusal(db, config, &key, &address, now).await? {
        return Err(refusal.into());
    }
    admit(db, config, &key, &address, now).await?;

    let account = user::Entity::find().filter(user::Column::Username.eq(username)).one(db).await?;
    let hash = account.as_ref().map_or_else(|| DUMMY_HASH.clone(), |u| u.password_hash.clone());
    let password_ok = verify_password(password.to_string(), hash).await?;
    let account = match account {
        Some(u) if password_ok && !u.disabled => u,
        // The attempt's record stays: it is the failure.
        _ => return Err(AppError::Unauthorized("unknown username or wrong password".into())),
    };

    let txn = begin_write(db).await?;
    login_failure::Entity::delete_many()
        .filter(login_failure::Column::Username.eq(key.as_ref()))
        .filter(login_failure::Column::ClientIp.eq(address.as_str()))
        .exec(&txn)
        .await?;
    remember_address(&txn, account.id, &address, now).await?;
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
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    Ok(IssuedToken { token, expires_at })
}

/// Admits an attempt: under the locks of its username and address, weighs it again by the
/// rules (429 if refused) and records it as a failure, in one transaction, so that no number
/// of concurrent attempts gets past a count. Forgets failures older than every rule's window.
async fn admit(
    db: &DatabaseConnection,
    config: &Config,
    username: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let txn = begin_write(db).await?;
    lock_throttle(&txn, username, address).await?;
    if let Some(refusal) = refusal(&txn, config, username, address, now).await? {
        return Err(refusal.into());
    }
    let memory = seconds(limits::PAIR_MEMORY_S)
        .max(seconds(limits::ACCOUNT_WINDOW_S))
        .max(chrono::Duration::from_std(config.login_window).unwrap_or_default());
    login_failure::Entity::delete_many().filter(login_failure::Column::At.lt(now - memory)).exec(&txn).await?;
    login_failure::Entity::insert(login_failure::ActiveModel {
        id: Set(Uuid::now_v7()),
        username: Set(username.to_string()),
        client_ip: Set(address.to_string()),
        at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Serialises the attempts on one username and those from one address, so that each
/// admission reads the failures of every attempt admitted before it. On PostgreSQL two
/// transaction-scoped advisory locks, the username's before the address's (one order
/// everywhere, so no deadlock; each kind in its own key space); on SQLite the write lock that
/// [`begin_write`] took serialises every writer already.
async fn lock_throttle(txn: &DatabaseTransaction, username: &str, address: &str) -> Result<()> {
    const USERNAME_LOCKS: i32 = 0x6b65_7075; // "kepu"
    const ADDRESS_LOCKS: i32 = USERNAME_LOCKS + 1;
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for (space, key) in [(USERNAME_LOCKS, username), (ADDRESS_LOCKS, address)] {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            [space.into(), key.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The refusal of the rules that refuse this attempt with the longest wait, if any does.
async fn refusal(
    conn: &impl ConnectionTrait,
    config: &Config,
    username: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<Option<Refusal>> {
    let refusals = [
        address_rule(conn, config, address, now).await?,
        pair_rule(conn, username, address, now).await?,
        account_rule(conn, config, username, address, now).await?,
    ];
    Ok(refusals.into_iter().flatten().max_by_key(|r| r.wait))
}

/// Per address: at most [`Config::login_max_per_client`] failures (for any usernames) within
/// [`Config::login_window`].
async fn address_rule(
    conn: &impl ConnectionTrait,
    config: &Config,
    address: &str,
    now: DateTime<Utc>,
) -> Result<Option<Refusal>> {
    let failures = login_failure::Entity::find().filter(login_failure::Column::ClientIp.eq(address));
    let window = chrono::Duration::from_std(config.login_window).unwrap_or_default();
    let wait = wait_below(conn, failures, config.login_max_per_client, window, now).await?;
    Ok(wait.map(|wait| Refusal { wait, detail: "too many failed log-ins from this address; try again later" }))
}

/// Per username and address: after [`limits::FREE_FAILURES`] failures, each attempt waits
/// [`pair_delay`] after the last failure.
async fn pair_rule(
    conn: &impl ConnectionTrait,
    username: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<Option<Refusal>> {
    let failures = login_failure::Entity::find()
        .filter(login_failure::Column::Username.eq(username))
        .filter(login_failure::Column::ClientIp.eq(address))
        .filter(login_failure::Column::At.gte(now - seconds(limits::PAIR_MEMORY_S)));
    let count = failures.clone().count(conn).await?;
    if count < limits::FREE_FAILURES {
        return Ok(None);
    }
    let Some(last) = failures.order_by_desc(login_failure::Column::At).one(conn).await? else {
        return Ok(None);
    };
    let wait = last.at + pair_delay(count) - now;
    Ok((wait > chrono::Duration::zero()).then_some(Refusal {
        wait,
        detail: "too many failed log-ins for this username from this address; wait before trying again",
    }))
}

/// Per username from all addresses: at most [`Config::login_account_failures_per_hour`]
/// failures within an hour; beyond them only the account's own addresses ([`is_own_address`])
/// may still try.
async fn account_rule(
    conn: &impl ConnectionTrait,
    config: &Config,
    username: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<Option<Refusal>> {
    let failures = login_failure::Entity::find().filter(login_failure::Column::Username.eq(username));
    let window = seconds(limits::ACCOUNT_WINDOW_S);
    let Some(wait) = wait_below(conn, failures, config.login_account_failures_per_hour, window, now).await? else {
        return Ok(None);
    };
    if is_own_address(conn, username, address, now).await? {
        return Ok(None);
    }
    Ok(Some(Refusal {
        wait,
        detail: "too many failed log-ins for this username; for now only addresses it logged in from lately may try",
    }))
}

/// How long until fewer than `max` of `failures` fall within `window` before `now`; `None`
/// when fewer already do.
async fn wait_below(
    conn: &impl ConnectionTrait,
    failures: sea_orm::Select<login_failure::Entity>,
    max: u64,
    window: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Option<chrono::Duration>> {
    let recent = failures.filter(login_failure::Column::At.gte(now - window));
    let count = recent.clone().count(conn).await?;
    if count < max {
        return Ok(None);
    }
    // Fewer than `max` remain once the (count - max + 1)-th oldest has left the window.
    let leaving = recent.order_by_asc(login_failure::Column::At).offset(count - max).limit(1).one(conn).await?;
    Ok(Some(leaving.map_or(window, |f| f.at + window - now)))
}

/// Whether the account of `username` logged in from `address` within the last
/// [`limits::KNOWN_FOR_DAYS`] days.
async fn is_own_address(
    conn: &impl ConnectionTrait,
    username: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(account) = user::Entity::find().filter(user::Column::Username.eq(username)).one(conn).await? else {
        return Ok(false);
    };
    let seen = login_address::Entity::find_by_id((account.id, address.to_string())).one(conn).await?;
    Ok(seen.is_some_and(|a| a.last_login_at >= now - chrono::Duration::days(limits::KNOWN_FOR_DAYS)))
}

/// Marks `address` as the account's own as of `now`, and forgets the account's addresses it
/// has not logged in from for [`limits::KNOWN_FOR_DAYS`] days.
async fn remember_address(conn: &impl ConnectionTrait, user_id: Uuid, address: &str, now: DateTime<Utc>) -> Result<()> {
    let row = login_address::ActiveModel {
        user_id: Set(user_id),
        client_ip: Set(address.to_string()),
        last_login_at: Set(now),
    };
    let upsert = OnConflict::columns([login_address::Column::UserId, login_address::Column::ClientIp])
        .update_column(login_address::Column::LastLoginAt)
        .to_owned();
    login_address::Entity::insert(row).on_conflict(upsert).exec_without_returning(conn).await?;
    login_address::Entity::delete_many()
        .filter(login_address::Column::UserId.eq(user_id))
        .filter(login_address::Column::LastLoginAt.lt(now - chrono::Duration::days(limits::KNOWN_FOR_DAYS)))
        .exec(conn)
        .await?;
    Ok(())
}

fn seconds(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
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

/// When a valid token's session ends, or 401 as [`authenticate`].
pub async fn session_expiry(
    db: &impl ConnectionTrait,
    cache: &TokenCache,
    token: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    authenticate(db, cache, token, now).await?;
    let tok = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(token_digest(token)))
        .one(db)
        .await?
        .ok_or_else(|| AppError::Unauthorized("the session has ended".into()))?;
    Ok(tok.expires_at)
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
    fn waits_start_after_three_failures_double_and_stop_at_fifteen_minutes() {
        let waits: Vec<i64> = (0..=16).map(|n| pair_delay(n).num_seconds()).collect();
        assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900]);
        assert_eq!(pair_delay(u64::MAX).num_seconds(), 900);
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_one_as_ipv4() {
        assert_eq!(address_key("203.0.113.7"), "203.0.113.7");
        assert_eq!(address_key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:2:ffff::9"));
        assert_ne!(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:3::1"));
        assert_eq!(address_key("::1"), "::/64");
        assert_eq!(address_key("unknown"), "unknown");
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough pass").is_ok());
    }
}
