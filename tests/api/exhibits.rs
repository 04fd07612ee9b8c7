//! Exhibits: written only by the base's operators and admins, edited under If-Match.

use serde_json::json;

use crate::helpers::{exhibit_body, id, spawn_app};

#[tokio::test]
async fn an_operator_manages_the_exhibits_of_its_base() {
    let app = spawn_app().await;
    let b = app.base(json!({})).await;
    let op = app.user("op", json!({"role": "operator", "base_ids": [id(&b)]})).await;
    let created = app.post(&format!("/v1/bases/{}/exhibits", id(&b)), &exhibit_body(), Some(&op)).await.expect(201);
    let e = created.body.clone();
    assert_eq!(e["status"], "on_display", "defaults");
    assert_eq!(e["shareable"], false);
    assert_eq!(e["base_id"], b["id"]);
    let path = format!("/v1/exhibits/{}", id(&e));
    let got = app.get(&path, None).await.expect(200);
    assert_eq!(got.etag(), created.etag());
    app.patch(&path, &json!({"status": "maintenance"}), Some(&op), None)
        .await
        .expect_problem(428, "precondition-required");
    let edited = app
        .patch(&path, &json!({"status": "maintenance", "hall": null}), Some(&op), Some(&got.etag()))
        .await
        .expect(200);
    assert_eq!(edited.body["status"], "maintenance");
    assert_eq!(edited.body["hall"], serde_json::Value::Null);
    assert_eq!(edited.body["name"], "傅科摆");
    app.patch(&path, &json!({"shareable": true}), Some(&op), Some(&got.etag()))
        .await
        .expect_problem(412, "precondition-failed");
    let list = app.get(&format!("/v1/bases/{}/exhibits", id(&b)), None).await.expect(200).body;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    app.send(app.client.delete(app.url(&path)).bearer_auth(&op).header("if-match", "\"1\""))
        .await
        .expect_problem(412, "precondition-failed");
    app.delete(&path, Some(&op)).await.expect(204);
    app.get(&path, None).await.expect_problem(404, "not-found");
}

#[tokio::test]
async fn an_operator_cannot_touch_another_bases_exhibits() {
    let app = spawn_app().await;
    let mine = app.base(json!({})).await;
    let theirs = app.base(json!({"name_en": "Other"})).await;
    let op = app.user("op", json!({"role": "operator", "base_ids": [id(&mine)]})).await;
    app.post(&format!("/v1/bases/{}/exhibits", id(&theirs)), &exhibit_body(), Some(&op))
        .await
        .expect_problem(403, "forbidden");
    let e = app.exhibit(&id(&theirs), &app.admin).await;
    let path = format!("/v1/exhibits/{}", id(&e));
    app.patch(&path, &json!({"name": "mine now"}), Some(&op), Some("\"1\"")).await.expect_problem(403, "forbidden");
    app.delete(&path, Some(&op)).await.expect_problem(403, "forbidden");
    app.get(&path, None).await.expect(200);
}

#[tokio::test]
async fn exhibit_rules_are_422_naming_the_field() {
    let app = spawn_app().await;
    let b = app.base(json!({})).await;
    let path = format!("/v1/bases/{}/exhibits", id(&b));
    for (field, value, named) in [
        ("name", json!(""), "name"),
        ("kind", json!("hologram"), "kind"),
        ("status", json!("lost"), "status"),
        ("audiences", json!(["junior", "aliens"]), "audiences[1]"),
        ("shareable", json!("yes"), "shareable"),
        ("hall", json!("h".repeat(101)), "hall"),
    ] {
        let mut body = exhibit_body();
        body[field] = value;
        app.post(&path, &body, Some(&app.admin)).await.expect_invalid(named);
    }
    app.post(&format!("/v1/bases/{}/exhibits", uuid::Uuid::now_v7()), &exhibit_body(), Some(&app.admin))
        .await
        .expect_problem(404, "not-found");
    app.get(&format!("/v1/bases/{}/exhibits", uuid::Uuid::now_v7()), None).await.expect_problem(404, "not-found");
}

#[tokio::test]
async fn exhibit_lists_page_without_loss() {
    let app = spawn_app().await;
    let b = app.base(json!({})).await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(id(&app.exhibit(&id(&b), &app.admin).await));
    }
    let first = app.get(&format!("/v1/bases/{}/exhibits?limit=3", id(&b)), None).await.expect(200).body;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second =
        app.get(&format!("/v1/bases/{}/exhibits?limit=3&cursor={cursor}", id(&b)), None).await.expect(200).body;
    assert_eq!(second["next_cursor"], serde_json::Value::Null);
    let seen: Vec<String> =
        first["items"].as_array().unwrap().iter().chain(second["items"].as_array().unwrap()).map(id).collect();
    assert_eq!(seen, created);
}
