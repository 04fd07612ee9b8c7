//! What a public city service keeps to itself: who objected, account ids and personal
//! details in public answers, and what goes into the append-only log.

use serde_json::{Value, json};

use crate::accreditation::{cast, scored};
use crate::helpers::{id, spawn_app};

/// Only the bureau sees who objected and how to reach them; the base's operators, its
/// district's officer and the experts see the reason, the time and the resolution.
#[tokio::test]
async fn objectors_are_the_bureaus_to_know() {
    let app = spawn_app().await;
    let c = cast(&app).await;
    let a = scored(&app, &c).await;
    let path = format!("/v1/accreditations/{a}");
    app.post(&format!("{path}/start-public-notice"), &json!({}), Some(&app.admin)).await.expect(200);
    let body = json!({"name": "张先生", "contact": "138 0000 5678", "reason": "the hall closed in March"});
    let filed = app.post(&format!("{path}/objections"), &body, None).await.expect(201).body;
    assert_eq!((filed["name"].as_str(), filed["contact"].as_str()), (Some("张先生"), Some("138 0000 5678")));

    let objection = |v: &Value| v["objections"][0].clone();
    let seen = objection(&app.get(&path, Some(&app.admin)).await.expect(200).body);
    assert_eq!((seen["name"].as_str(), seen["contact"].as_str()), (Some("张先生"), Some("138 0000 5678")));
    let listed = app.get("/v1/accreditations", Some(&app.admin)).await.expect(200).body;
    assert_eq!(objection(&listed["items"][0])["contact"], "138 0000 5678");

    let mut others = vec![("operator", c.operator.clone()), ("district officer", c.officer.clone())];
    others.extend(c.experts.iter().map(|(_, t)| ("expert", t.clone())));
    for (who, token) in &others {
        for answer in [
            objection(&app.get(&path, Some(token)).await.expect(200).body),
            objection(&app.get("/v1/accreditations", Some(token)).await.expect(200).body["items"][0]),
        ] {
            assert_eq!(answer["reason"], "the hall closed in March", "{who}");
            assert!(answer["created_at"].is_string(), "{who}");
            assert_eq!((&answer["name"], &answer["contact"]), (&Value::Null, &Value::Null), "{who} sees the objector");
        }
    }
    let resolve = format!("{path}/objections/{}/resolve", id(&filed));
    let resolved = json!({"outcome": "dismissed", "resolution": "reopened in May"});
    app.post(&resolve, &resolved, Some(&app.admin)).await.expect(200);
    let seen = objection(&app.get(&path, Some(&c.operator)).await.expect(200).body);
    assert_eq!((seen["resolution"].as_str(), &seen["contact"]), (Some("reopened in May"), &Value::Null));
}

/// A caller's `x-request-id` is kept only if it is at most 128 visible ASCII characters;
/// otherwise the request gets a new one, which is what is echoed and written to the audit log.
#[tokio::test]
async fn only_short_visible_request_ids_are_kept() {
    let app = spawn_app().await;
    let longest = "r".repeat(128);
    let kept = app.send(app.client.get(app.url("/v1/districts")).header("x-request-id", &longest)).await;
    assert_eq!(kept.header("x-request-id"), Some(longest.as_str()));
    for refused in ["x".repeat(129), "a\tb".into(), "two words".into(), "x".repeat(100_000)] {
        let answer = app.send(app.client.get(app.url("/v1/districts")).header("x-request-id", &refused)).await;
        let given = answer.header("x-request-id").expect("an id");
        assert_eq!(given.len(), 36, "a new UUID instead of {:.20}…", refused);
    }
    let long = "y".repeat(10_000);
    let written = app
        .send(
            app.client
                .post(app.url("/v1/users"))
                .bearer_auth(&app.admin)
                .header("x-request-id", &long)
                .json(&json!({"username": "rid-user", "password": "a-long-password-1", "role": "evaluator"})),
        )
        .await
        .expect(201);
    let new_id = written.header("x-request-id").expect("an id").to_string();
    assert_eq!(new_id.len(), 36);
    let log = app.get(&format!("/v1/audit?entity=user&entity_id={}", id(&written.body)), Some(&app.admin)).await;
    let entry = &log.expect(200).body["items"][0];
    assert_eq!(entry["request_id"], new_id.as_str(), "the audit log keeps the id the answer gave");
}
