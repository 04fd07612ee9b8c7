//! Logging in and out, token validity, and the log-in throttle.

use sea_orm::EntityTrait;
use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, spawn_app, spawn_app_with};

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

#[tokio::test]
async fn repeated_failed_logins_for_a_username_are_slowed_to_429() {
    let app = spawn_app().await;
    for _ in 0..5 {
        app.post("/v1/auth/token", &json!({"username": "admin", "password": "guess guess 1"}), None).await.expect(401);
    }
    // Even the right password is refused while the username is throttled.
    let r = app.post("/v1/auth/token", &json!({"username": "admin", "password": ADMIN_PASSWORD}), None).await;
    let r = r.expect_problem(429, "rate-limited");
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // Tokens already issued keep working.
    app.get("/v1/me", Some(&app.admin)).await.expect(200);
}

#[tokio::test]
async fn repeated_failed_logins_from_one_address_are_slowed_to_429() {
    let app = spawn_app_with(|c| c.login_max_per_client = 3).await;
    for i in 0..3 {
        let body = json!({"username": format!("someone{i}"), "password": "guess guess 1"});
        app.post("/v1/auth/token", &body, None).await.expect(401);
    }
    app.post("/v1/auth/token", &json!({"username": "admin", "password": ADMIN_PASSWORD}), None)
        .await
        .expect_problem(429, "rate-limited");
}

#[tokio::test]
async fn a_disabled_account_cannot_log_in_and_loses_its_sessions() {
    let app = spawn_app().await;
    let token = app.user("ops", json!({"role": "evaluator"})).await;
    let me = app.get("/v1/me", Some(&token)).await.expect(200).body;
    let id = me["id"].as_str().unwrap();
    app.patch(&format!("/v1/users/{id}"), &json!({"disabled": true}), Some(&app.admin), None).await.expect(200);
    app.get("/v1/me", Some(&token)).await.expect_problem(401, "unauthorized");
    app.post("/v1/auth/token", &json!({"username": "ops", "password": crate::helpers::PASSWORD}), None)
        .await
        .expect_problem(401, "unauthorized");
}
