//! Accounts: roles carry exactly their scope; admins manage them.

use serde_json::json;

use crate::helpers::{PASSWORD, id, spawn_app};

#[tokio::test]
async fn admin_creates_an_account_of_each_role_with_its_scope() {
    let app = spawn_app().await;
    let base = app.base(json!({})).await;
    let school = app.school(json!({})).await;
    let cases = [
        json!({"username": "officer", "role": "district_officer", "district_code": "440106"}),
        json!({"username": "operator", "role": "operator", "base_ids": [id(&base)]}),
        json!({"username": "school", "role": "school", "school_id": id(&school)}),
        json!({"username": "expert", "role": "evaluator"}),
        json!({"username": "bureau", "role": "admin"}),
    ];
    for mut body in cases {
        body["password"] = json!(PASSWORD);
        let r = app.post("/v1/users", &body, Some(&app.admin)).await.expect(201);
        assert_eq!(r.body["role"], body["role"]);
        assert!(r.body.get("password").is_none() && r.body.get("password_hash").is_none());
        let token = app.login(body["username"].as_str().unwrap(), PASSWORD).await;
        let me = app.get("/v1/me", Some(&token)).await.expect(200).body;
        assert_eq!(me["username"], body["username"]);
    }
    let operator = app.get("/v1/users?role=operator", Some(&app.admin)).await.expect(200).body;
    assert_eq!(operator["items"].as_array().unwrap().len(), 1);
    assert_eq!(operator["items"][0]["base_ids"], json!([id(&base)]));
}

#[tokio::test]
async fn a_role_without_its_scope_or_with_another_roles_scope_is_422() {
    let app = spawn_app().await;
    let post = |body: serde_json::Value| {
        let mut body = body;
        body["password"] = json!(PASSWORD);
        let app = &app;
        async move { app.post("/v1/users", &body, Some(&app.admin)).await }
    };
    post(json!({"username": "a1", "role": "district_officer"})).await.expect_invalid("district_code");
    post(json!({"username": "a2", "role": "operator"})).await.expect_invalid("base_ids");
    post(json!({"username": "a3", "role": "school"})).await.expect_invalid("school_id");
    post(json!({"username": "a4", "role": "evaluator", "district_code": "440106"}))
        .await
        .expect_invalid("district_code");
    post(json!({"username": "a5", "role": "district_officer", "district_code": "999999"}))
        .await
        .expect_invalid("district_code");
    post(json!({"username": "a6", "role": "operator", "base_ids": [uuid::Uuid::now_v7()]}))
        .await
        .expect_invalid("base_ids");
    post(json!({"username": "a7", "role": "school", "school_id": uuid::Uuid::now_v7()}))
        .await
        .expect_invalid("school_id");
    post(json!({"username": "a8", "role": "emperor"})).await.expect_invalid("role");
    post(json!({"username": "A B", "role": "admin"})).await.expect_invalid("username");
    post(json!({"username": " a10", "role": "admin"})).await.expect_invalid("username");
    let short =
        app.post("/v1/users", &json!({"username": "a9", "password": "short", "role": "admin"}), Some(&app.admin)).await;
    short.expect_invalid("password");
    let users = app.get("/v1/users", Some(&app.admin)).await.expect(200).body;
    assert_eq!(users["items"].as_array().unwrap().len(), 1, "nothing was written");
}

#[tokio::test]
async fn a_taken_username_is_409() {
    let app = spawn_app().await;
    let body = json!({"username": "expert", "password": PASSWORD, "role": "evaluator"});
    app.post("/v1/users", &body, Some(&app.admin)).await.expect(201);
    app.post("/v1/users", &body, Some(&app.admin)).await.expect_problem(409, "conflict");
}

#[tokio::test]
async fn admin_changes_role_scope_and_password_and_that_ends_sessions() {
    let app = spawn_app().await;
    let token = app.user("expert", json!({"role": "evaluator"})).await;
    let me = app.get("/v1/me", Some(&token)).await.expect(200).body;
    let path = format!("/v1/users/{}", id(&me));
    app.patch(&path, &json!({"district_code": "440106"}), Some(&app.admin), None).await.expect_invalid("role");
    let r = app
        .patch(
            &path,
            &json!({"role": "district_officer", "district_code": "440104", "password": "a new password"}),
            Some(&app.admin),
            None,
        )
        .await
        .expect(200);
    assert_eq!(r.body["role"], "district_officer");
    assert_eq!(r.body["district_code"], "440104");
    app.get("/v1/me", Some(&token)).await.expect_problem(401, "unauthorized");
    let fresh = app.login("expert", "a new password").await;
    assert_eq!(app.get("/v1/me", Some(&fresh)).await.expect(200).body["district_code"], "440104");
    app.get(&path, Some(&app.admin)).await.expect(200);
    app.get(&format!("/v1/users/{}", uuid::Uuid::now_v7()), Some(&app.admin)).await.expect_problem(404, "not-found");
}

#[tokio::test]
async fn an_admin_cannot_disable_or_demote_itself() {
    let app = spawn_app().await;
    let me = app.get("/v1/me", Some(&app.admin)).await.expect(200).body;
    let path = format!("/v1/users/{}", id(&me));
    app.patch(&path, &json!({"disabled": true}), Some(&app.admin), None).await.expect_problem(409, "conflict");
    app.patch(&path, &json!({"role": "evaluator"}), Some(&app.admin), None).await.expect_problem(409, "conflict");
    app.get("/v1/me", Some(&app.admin)).await.expect(200);
}

#[tokio::test]
async fn user_lists_page_without_loss_or_duplicates() {
    let app = spawn_app().await;
    for i in 0..7 {
        let body = json!({"username": format!("expert{i}"), "password": PASSWORD, "role": "evaluator"});
        app.post("/v1/users", &body, Some(&app.admin)).await.expect(201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/users?limit=3&cursor={c}"),
            None => "/v1/users?limit=3".into(),
        };
        let page = app.get(&path, Some(&app.admin)).await.expect(200).body;
        for u in page["items"].as_array().unwrap() {
            seen.push(u["username"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen.len(), 8);
    assert_eq!(sorted.len(), 8);
}

#[tokio::test]
async fn an_admin_changing_its_own_password_keeps_the_session_in_use() {
    let app = spawn_app().await;
    let other_session = app.login("admin", crate::helpers::ADMIN_PASSWORD).await;
    let me = app.get("/v1/me", Some(&app.admin)).await.expect(200).body;
    let path = format!("/v1/users/{}", id(&me));
    app.patch(&path, &json!({"password": "brand new password"}), Some(&app.admin), None).await.expect(200);
    app.get("/v1/me", Some(&app.admin)).await.expect(200);
    app.get("/v1/me", Some(&other_session)).await.expect_problem(401, "unauthorized");
    // A change that changes nothing ends no session.
    let third = app.login("admin", "brand new password").await;
    app.patch(&path, &json!({}), Some(&app.admin), None).await.expect(200);
    app.get("/v1/me", Some(&third)).await.expect(200);
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_422() {
    let app = spawn_app().await;
    let me = app.get("/v1/me", Some(&app.admin)).await.expect(200).body;
    app.patch(&format!("/v1/users/{}", id(&me)), &json!([null, null]), Some(&app.admin), None)
        .await
        .expect_invalid("body");
    app.post("/v1/users", &json!("admin"), Some(&app.admin)).await.expect_invalid("body");
}

#[tokio::test]
async fn account_rules_hold_for_the_command_line_too() {
    // `kepu create-user` and the demo call the domain directly, not the HTTP handler.
    let app = spawn_app().await;
    let scope = kepu::domain::users::Scope {
        role: kepu::domain::enums::Role::Evaluator,
        district_code: None,
        school_id: None,
        base_ids: vec![],
    };
    let bad = kepu::domain::users::create(&app.db, None, "Not Valid".into(), "short".into(), scope, chrono::Utc::now())
        .await
        .expect_err("refused");
    match bad {
        kepu::error::AppError::Validation(errors) => {
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["username", "password"]);
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}
