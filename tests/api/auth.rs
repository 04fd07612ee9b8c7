//! Logging in and out, token validity, and the log-in throttle.

use entity::login_failure;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, PASSWORD, Reply, TestApp, spawn_app, spawn_app_with};

#[tokio::test]
async fn login_gives_a_bearer_token_that_identifies_the_account() {
    let app = spawn_app().await;
    let r =
        app.post("/v1/auth/token", &json!({"username": "admin", "password": ADMIN_PASSWORD}), None).await.expect(201);
    assert_eq!(r.body["token_type"], "Bearer");
    let expires = chrono::DateTime::parse_from_rfc3339(r.body["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires > chrono::Utc::now() + chrono::Duration::hours(11));
    let token = r.body["access_token"].as_str().unwrap();
    let me = app.get("/v1/me", Some(token)).await.expect(200).body;
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role"], "admin");
    assert!(me.get("password_hash").is_none());
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_401() {
    let app = spawn_app().await;
    app.post("/v1/auth/token", &json!({"username": "admin", "password": "wrong password!"}), None)
        .await
        .expect_problem(401, "unauthorized");
    app.post("/v1/auth/token", &json!({"username": "nobody", "password": "wrong password!"}), None)
        .await
        .expect_problem(401, "unauthorized");
}

#[tokio::test]
async fn missing_bad_or_malformed_tokens_are_401() {
    let app = spawn_app().await;
    app.get("/v1/me", None).await.expect_problem(401, "unauthorized");
    app.get("/v1/me", Some("kepu_not-a-real-token")).await.expect_problem(401, "unauthorized");
    let r = app.send(app.client.get(app.url("/v1/me")).header("authorization", "Basic YWRtaW46eA==")).await;
    let r = r.expect_problem(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"kepu\""));
    // A bad token on a public read is refused, never treated as anonymous.
    app.get("/v1/me", Some("")).await.expect_problem(401, "unauthorized");
}

// The token cache (5 s by default) is emptied by a logout or an account change made through
// this process: this test and the next see them at once.
#[tokio::test]
async fn logout_revokes_only_the_token_in_use() {
    let app = spawn_app().await;
    let other = app.login("admin", ADMIN_PASSWORD).await;
    app.delete("/v1/auth/token", Some(&app.admin)).await.expect(204);
    app.get("/v1/me", Some(&app.admin)).await.expect_problem(401, "unauthorized");
    app.get("/v1/me", Some(&other)).await.expect(200);
}

#[tokio::test]
async fn a_revocation_made_by_another_process_takes_effect_within_the_cache_time() {
    let app = spawn_app_with(|c| c.auth_cache = std::time::Duration::from_millis(800)).await;
    app.get("/v1/me", Some(&app.admin)).await.expect(200);
    // Another kepu process revokes every token (here: straight in the shared database).
    let revoked = entity::api_token::Entity::update_many()
        .col_expr(entity::api_token::Column::RevokedAt, sea_orm::sea_query::Expr::value(chrono::Utc::now()))
        .exec(&app.db)
        .await
        .unwrap();
    assert!(revoked.rows_affected >= 1);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    app.get("/v1/me", Some(&app.admin)).await.expect_problem(401, "unauthorized");
}

#[tokio::test]
async fn tokens_expire() {
    let app = spawn_app_with(|c| c.token_ttl = std::time::Duration::from_secs(1)).await;
    app.get("/v1/me", Some(&app.admin)).await.expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    app.get("/v1/me", Some(&app.admin)).await.expect_problem(401, "unauthorized");
}

const WRONG: &str = "guess guess 1";

/// The `Retry-After` of a 429, in seconds.
#[track_caller]
fn retry_after(r: &Reply) -> i64 {
    r.header("retry-after").expect("Retry-After").parse().expect("seconds")
}

/// Fails one more log-in of `username` from `ip`, first waiting out (on the server's clock)
/// the wait the throttle asks for, if any.
async fn fail_once_more(app: &TestApp, ip: &str, username: &str) {
    let r = app.login_from(ip, username, WRONG).await;
    if r.status == 429 {
        app.clock.advance(chrono::Duration::seconds(retry_after(&r)));
        app.login_from(ip, username, WRONG).await.expect_problem(401, "unauthorized");
    } else {
        r.expect_problem(401, "unauthorized");
    }
}

/// The failed log-ins of `username` the server keeps (each one a counted guess).
async fn failures_of(app: &TestApp, username: &str) -> u64 {
    login_failure::Entity::find().filter(login_failure::Column::Username.eq(username)).count(&app.db).await.unwrap()
}

#[tokio::test]
async fn failures_made_elsewhere_never_refuse_the_right_password_from_the_users_own_address() {
    let app = spawn_app().await;
    // `admin` logged in from 127.0.0.1 (spawn_app); `ops` logs in from 127.0.0.2.
    let body = json!({"username": "ops", "password": PASSWORD, "role": "evaluator"});
    app.post("/v1/users", &body, Some(&app.admin)).await.expect(201);
    app.login_from("127.0.0.2", "ops", PASSWORD).await.expect(201);

    for username in ["admin", "ops"] {
        // One attacker keeps guessing from one address, waiting out every wait: ten failures.
        for _ in 0..10 {
            fail_once_more(&app, "127.0.0.66", username).await;
        }
        // Twenty more addresses guess twice each.
        for i in 1..=20 {
            for _ in 0..2 {
                app.login_from(&format!("127.0.1.{i}"), username, WRONG).await.expect_problem(401, "unauthorized");
            }
        }
        // The attacker's address waits now, even with the right password: a refusal reveals
        // nothing about the password.
        let r = app.login_from("127.0.0.66", username, if username == "admin" { ADMIN_PASSWORD } else { PASSWORD });
        let r = r.await.expect_problem(429, "rate-limited");
        assert!((1..=128).contains(&retry_after(&r)), "{:?}", r.headers);
    }
    assert_eq!(failures_of(&app, "admin").await, 50);
    // Fifty failures later, each real user logs in at once from its own address.
    let token = app.login_from("127.0.0.1", "admin", ADMIN_PASSWORD).await.expect(201).body;
    let me = app.get("/v1/me", token["access_token"].as_str()).await.expect(200).body;
    assert_eq!(me["username"], "admin");
    app.login_from("127.0.0.2", "ops", PASSWORD).await.expect(201);
    // A log-in clears only its own address's failures: the attackers' still count.
    assert_eq!(failures_of(&app, "admin").await, 50);
}

#[tokio::test]
async fn one_address_waits_longer_after_each_failure_and_may_try_again_once_it_waited() {
    let app = spawn_app().await;
    let at = "127.0.0.7";
    for _ in 0..3 {
        app.login_from(at, "admin", WRONG).await.expect_problem(401, "unauthorized");
    }
    let mut waits = Vec::new();
    for _ in 0..12 {
        let r = app.login_from(at, "admin", WRONG).await.expect_problem(429, "rate-limited");
        let wait = retry_after(&r);
        // Still waiting: the right password is refused as well, unchecked and not counted.
        let before = failures_of(&app, "admin").await;
        app.login_from(at, "admin", ADMIN_PASSWORD).await.expect_problem(429, "rate-limited");
        assert_eq!(failures_of(&app, "admin").await, before);
        // Another address is not slowed by this one's failures.
        app.login_from("127.0.0.8", "admin", ADMIN_PASSWORD).await.expect(201);
        waits.push(wait);
        app.clock.advance(chrono::Duration::seconds(wait));
        app.login_from(at, "admin", WRONG).await.expect_problem(401, "unauthorized");
    }
    // 1 s after the third failure, doubling with each further one, at most 15 minutes.
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]);
    // Once it waited, the right password gets in, and clears this address's failures.
    let r = app.login_from(at, "admin", ADMIN_PASSWORD).await.expect_problem(429, "rate-limited");
    app.clock.advance(chrono::Duration::seconds(retry_after(&r)));
    app.login_from(at, "admin", ADMIN_PASSWORD).await.expect(201);
    for _ in 0..3 {
        app.login_from(at, "admin", WRONG).await.expect_problem(401, "unauthorized");
    }
    let r = app.login_from(at, "admin", WRONG).await.expect_problem(429, "rate-limited");
    assert_eq!(retry_after(&r), 1);
}

#[tokio::test]
async fn one_address_is_capped_across_usernames_without_locking_the_accounts_it_tried() {
    let app = spawn_app_with(|c| c.login_max_per_client = 8).await;
    let at = "127.0.0.9";
    // Five failures on `admin` (waiting out the waits), three on other usernames: eight.
    for _ in 0..5 {
        fail_once_more(&app, at, "admin").await;
    }
    for i in 0..3 {
        app.login_from(at, &format!("nobody{i}"), WRONG).await.expect_problem(401, "unauthorized");
    }
    // The address is refused for any username, a fresh one and the right password included.
    let r = app.login_from(at, "someone-else", WRONG).await.expect_problem(429, "rate-limited");
    let wait = retry_after(&r);
    assert!((1..=900).contains(&wait), "{wait}");
    app.login_from(at, "admin", ADMIN_PASSWORD).await.expect_problem(429, "rate-limited");
    // Only that address: `admin` logs in from its own, other addresses may try those usernames.
    app.login_from("127.0.0.1", "admin", ADMIN_PASSWORD).await.expect(201);
    app.login_from("127.0.0.10", "nobody0", WRONG).await.expect_problem(401, "unauthorized");
    app.login_from("127.0.0.10", "admin", ADMIN_PASSWORD).await.expect(201);
    // Once the window has moved on, the address may try again.
    app.clock.advance(chrono::Duration::seconds(wait));
    app.login_from(at, "someone-else", WRONG).await.expect_problem(401, "unauthorized");
}

#[tokio::test]
async fn past_the_hourly_failures_of_an_account_only_its_own_recent_addresses_may_try() {
    let app = spawn_app_with(|c| c.login_account_failures_per_hour = 10).await;
    let body = json!({"username": "ops", "password": PASSWORD, "role": "evaluator"});
    app.post("/v1/users", &body, Some(&app.admin)).await.expect(201);
    app.login_from("127.0.0.2", "ops", PASSWORD).await.expect(201);
    // Ten failures on `ops`, one from each of ten addresses 127.0.{batch}.x.
    async fn spend_the_hour(app: &TestApp, batch: u8) {
        for i in 1..=10 {
            app.login_from(&format!("127.0.{batch}.{i}"), "ops", WRONG).await.expect_problem(401, "unauthorized");
        }
    }
    spend_the_hour(&app, 10).await;
    assert_eq!(failures_of(&app, "ops").await, 10);
    // An address the account never logged in from is refused, the right password included,
    // unchecked and uncounted, until the oldest failure is an hour old.
    let r = app.login_from("127.0.0.20", "ops", PASSWORD).await.expect_problem(429, "rate-limited");
    assert!((3500..=3600).contains(&retry_after(&r)), "{:?}", r.headers);
    app.login_from("127.0.0.20", "ops", WRONG).await.expect_problem(429, "rate-limited");
    assert_eq!(failures_of(&app, "ops").await, 10);
    // The account's own address may still try: a wrong password is a failure (401), the right
    // one gets in.
    app.login_from("127.0.0.2", "ops", WRONG).await.expect_problem(401, "unauthorized");
    app.login_from("127.0.0.2", "ops", PASSWORD).await.expect(201);
    // An unknown username is bounded alike (and tells nothing about which usernames exist).
    for i in 1..=10 {
        app.login_from(&format!("127.0.11.{i}"), "nobody", WRONG).await.expect_problem(401, "unauthorized");
    }
    app.login_from("127.0.0.20", "nobody", WRONG).await.expect_problem(429, "rate-limited");

    // An hour later the other address gets in, and is the account's own from then on.
    app.clock.advance(chrono::Duration::seconds(3601));
    app.login_from("127.0.0.20", "ops", PASSWORD).await.expect(201);
    // 29 days on, both addresses are still the account's own.
    app.clock.advance(chrono::Duration::days(29));
    spend_the_hour(&app, 12).await;
    app.login_from("127.0.0.21", "ops", PASSWORD).await.expect_problem(429, "rate-limited");
    app.login_from("127.0.0.2", "ops", PASSWORD).await.expect(201);
    app.login_from("127.0.0.20", "ops", PASSWORD).await.expect(201);
    // After 30 days without a log-in from an address, it is a stranger again.
    app.clock.advance(chrono::Duration::days(31));
    spend_the_hour(&app, 13).await;
    app.login_from("127.0.0.2", "ops", PASSWORD).await.expect_problem(429, "rate-limited");
    app.login_from("127.0.0.20", "ops", PASSWORD).await.expect_problem(429, "rate-limited");
}

/// 64 attempts at once cannot get past a count: each is admitted under the locks of its
/// username and address, and counts as a failure from then until its password is found right.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures_never_exceed_the_account_or_address_bounds() {
    let app = spawn_app_with(|c| {
        c.login_account_failures_per_hour = 10;
        c.login_max_per_client = 10;
    })
    .await;
    let statuses = |replies: Vec<Reply>| {
        let mut counts = std::collections::BTreeMap::new();
        for r in replies {
            *counts.entry(r.status.as_u16()).or_insert(0) += 1;
        }
        counts
    };
    // From 64 addresses on one account.
    let attempts = (1..=64).map(|i| {
        let app = &app;
        async move { app.login_from(&format!("127.0.20.{i}"), "admin", WRONG).await }
    });
    let counts = statuses(futures::future::join_all(attempts).await);
    assert_eq!(counts, [(401, 10), (429, 54)].into(), "{counts:?}");
    assert_eq!(failures_of(&app, "admin").await, 10);
    // From one address on 64 usernames.
    let attempts = (1..=64).map(|i| {
        let app = &app;
        async move { app.login_from("127.0.21.1", &format!("user{i}"), WRONG).await }
    });
    let counts = statuses(futures::future::join_all(attempts).await);
    assert_eq!(counts, [(401, 10), (429, 54)].into(), "{counts:?}");
    let from_there = login_failure::Entity::find()
        .filter(login_failure::Column::ClientIp.eq("127.0.21.1"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(from_there, 10);
    // The real admin, at home, is not refused.
    app.login_from("127.0.0.1", "admin", ADMIN_PASSWORD).await.expect(201);
}

#[tokio::test]
async fn a_disabled_account_cannot_log_in_and_loses_its_sessions() {
    let app = spawn_app().await;
    let token = app.user("ops", json!({"role": "evaluator"})).await;
    let me = app.get("/v1/me", Some(&token)).await.expect(200).body;
    let id = me["id"].as_str().unwrap();
    app.patch(&format!("/v1/users/{id}"), &json!({"disabled": true}), Some(&app.admin), None).await.expect(200);
    app.get("/v1/me", Some(&token)).await.expect_problem(401, "unauthorized");
    app.post("/v1/auth/token", &json!({"username": "ops", "password": PASSWORD}), None)
        .await
        .expect_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_username_longer_than_any_is_counted_like_any_other_and_never_breaks_the_server() {
    let app = spawn_app().await;
    // 20,000 CJK characters that do not compress: more than an index entry may hold.
    let long: String = (0..20_000u32).filter_map(|i| char::from_u32(0x4e00 + (i * 7919) % 20_000)).collect();
    for _ in 0..3 {
        app.login_from("127.0.0.5", &long, WRONG).await.expect_problem(401, "unauthorized");
    }
    app.login_from("127.0.0.5", &long, WRONG).await.expect_problem(429, "rate-limited");
    app.login_from("127.0.0.6", &long, WRONG).await.expect_problem(401, "unauthorized");
}
