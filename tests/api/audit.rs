//! The audit log records every write with who, what, before and after.

use serde_json::json;

use crate::helpers::{base_body, id, spawn_app};

#[tokio::test]
async fn writes_are_recorded_with_actor_before_and_after() {
    let app = spawn_app().await;
    let created = app.post("/v1/bases", &base_body(), Some(&app.admin)).await.expect(201);
    let base_id = id(&created.body);
    let path = format!("/v1/bases/{base_id}");
    let request = app
        .send(
            app.client
                .patch(app.url(&path))
                .bearer_auth(&app.admin)
                .header("if-match", created.etag())
                .header("x-request-id", "audit-trace-1")
                .json(&json!({"status": "accredited"})),
        )
        .await
        .expect(200);
    assert_eq!(request.header("x-request-id"), Some("audit-trace-1"));
    let log = app.get(&format!("/v1/audit?entity=base&entity_id={base_id}"), Some(&app.admin)).await.expect(200).body;
    let entries = log["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let (change, creation) = (&entries[0], &entries[1]);
    assert_eq!(creation["action"], "base.create");
    assert_eq!(creation["before"], serde_json::Value::Null);
    assert_eq!(creation["after"]["status"], "applicant");
    assert_eq!(change["action"], "base.status", "newest first");
    assert_eq!(change["actor_username"], "admin");
    assert_eq!(change["before"]["status"], "applicant");
    assert_eq!(change["after"]["status"], "accredited");
    assert_eq!(change["request_id"], "audit-trace-1");
}

#[tokio::test]
async fn the_audit_log_never_shows_password_hashes() {
    let app = spawn_app().await;
    app.user("expert", json!({"role": "evaluator"})).await;
    let log = app.get("/v1/audit?entity=user", Some(&app.admin)).await.expect(200).body;
    let text = log.to_string();
    assert!(log["items"].as_array().unwrap().len() >= 2);
    assert!(!text.contains("argon2") && !text.contains("password"), "{text}");
}
