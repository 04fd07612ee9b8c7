//! Signage end to end: placement checks near the limits, district approval with the traffic
//! police reference, installation, inspections and maintenance, the work list and map layer,
//! and a standard version bump.

use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::{TestApp, id, spawn_app};

const BASE: (f64, f64) = (23.1382, 113.3299);

/// A point `m` metres due north of the base.
fn north(m: f64) -> Value {
    json!({"lat": BASE.0 + m / 1000.0 / 111.19508, "lon": BASE.1})
}

async fn setup(app: &TestApp) -> (Value, String, String, String) {
    let (base, op) = app.accredited_base(json!({"location": {"lat": BASE.0, "lon": BASE.1}})).await;
    let officer = app.user("tianhe-officer", json!({"role": "district_officer", "district_code": "440106"})).await;
    let other = app.user("yuexiu-officer", json!({"role": "district_officer", "district_code": "440104"})).await;
    (base, op, officer, other)
}

#[tokio::test]
async fn placement_is_checked_against_each_types_distance() {
    let app = spawn_app().await;
    let (base, op, _, _) = setup(&app).await;
    let path = format!("/v1/bases/{}/signs", id(&base));
    let plaque = |m: f64| json!({"type": "plaque", "location": north(m)});
    app.post(&path, &plaque(199.0), Some(&op)).await.expect(201);
    let far = app.post(&path, &plaque(201.0), Some(&op)).await.expect_problem(422, "sign-placement");
    let detail = far.body["detail"].as_str().unwrap();
    assert!(detail.contains("200 m") && detail.contains("201 m"), "{detail}");
    let road = |m: f64| json!({"type": "road_guide", "location": north(m), "road_name": "天河路"});
    app.post(&path, &road(2990.0), Some(&op)).await.expect(201);
    app.post(&path, &road(3010.0), Some(&op)).await.expect_problem(422, "sign-placement");
    app.post(&path, &json!({"type": "road_guide", "location": north(100.0)}), Some(&op))
        .await
        .expect_invalid("road_name");
    app.post(&path, &json!({"type": "billboard", "location": north(100.0)}), Some(&op)).await.expect_invalid("type");
    app.post(&path, &json!({"type": "plaque", "location": {"lat": 40.0, "lon": 113.3}}), Some(&op))
        .await
        .expect_invalid("location.lat");
    app.post(&path, &json!({"type": "plaque", "location": north(10.0), "standard_version": "1999"}), Some(&op))
        .await
        .expect_invalid("standard_version");
    let (_, school) = app.school_account("学校").await;
    app.post(&path, &plaque(10.0), Some(&school)).await.expect_problem(403, "forbidden");
}

#[tokio::test]
async fn a_sign_is_approved_installed_inspected_repaired_and_updated() {
    let app = spawn_app().await;
    let (base, op, officer, other) = setup(&app).await;
    let road = app
        .post(
            &format!("/v1/bases/{}/signs", id(&base)),
            &json!({"type": "road_guide", "location": north(1500.0), "road_name": "天河路"}),
            Some(&op),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(road["status"], "requested");
    let path = format!("/v1/signs/{}", id(&road));
    app.post(&format!("{path}/install"), &json!({}), Some(&op)).await.expect_problem(409, "invalid-state");
    app.post(&format!("{path}/approve"), &json!({}), Some(&op)).await.expect_problem(403, "forbidden");
    app.post(&format!("{path}/approve"), &json!({"traffic_police_ref": "X"}), Some(&other))
        .await
        .expect_problem(403, "forbidden");
    app.post(&format!("{path}/approve"), &json!({}), Some(&officer)).await.expect_invalid("traffic_police_ref");
    let approved = app
        .post(&format!("{path}/approve"), &json!({"traffic_police_ref": "穗交警设〔2026〕118号"}), Some(&officer))
        .await
        .expect(200)
        .body;
    assert_eq!(approved["status"], "approved");
    let installed = app.post(&format!("{path}/install"), &json!({}), Some(&op)).await.expect(200).body;
    assert_eq!(installed["status"], "installed");
    assert!(installed["next_inspection_due"].is_string());

    // The district's work list: due within 13 months, and as a map layer.
    let due = (app.now() + Duration::days(400)).to_rfc3339().replace('+', "%2B");
    let list = app
        .get(&format!("/v1/signs?district=440106&status=installed&inspection_due_before={due}"), None)
        .await
        .expect(200)
        .body;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let soon = (app.now() + Duration::days(30)).to_rfc3339().replace('+', "%2B");
    let none = app.get(&format!("/v1/signs?inspection_due_before={soon}"), None).await.body;
    assert_eq!(none["items"], json!([]));
    let geo = app.get("/v1/signs?format=geojson&type=road_guide", None).await.expect(200).body;
    assert_eq!(geo["type"], "FeatureCollection");
    assert_eq!(geo["features"][0]["geometry"]["coordinates"][0], BASE.1);
    assert_eq!(app.get("/v1/signs?district=440104", None).await.body["items"], json!([]));
    // As documented, the district filter is a district code; anything else is a 422.
    app.get("/v1/signs?district=440199", None).await.expect_invalid("district");
    app.get("/v1/signs?district=", None).await.expect_invalid("district");

    // An inspection finds it damaged: a maintenance item the base closes.
    let inspect = json!({"condition": "damaged", "photo_url": "https://photos.example.cn/118.jpg", "notes": "bent"});
    app.post(&format!("{path}/inspections"), &inspect, Some(&op)).await.expect_problem(403, "forbidden");
    app.post(&format!("{path}/inspections"), &json!({"condition": "rusty"}), Some(&officer))
        .await
        .expect_invalid("condition");
    let inspected = app.post(&format!("{path}/inspections"), &inspect, Some(&officer)).await.expect(201).body;
    assert_eq!(inspected["inspections"][0]["condition"], "damaged");
    let item = inspected["maintenance"][0].clone();
    assert_eq!(item["status"], "open");
    let close = format!("{path}/maintenance/{}/close", id(&item));
    app.post(&close, &json!({"note": "fixed"}), Some(&officer)).await.expect_problem(403, "forbidden");
    let closed = app.post(&close, &json!({"note": "panel replaced"}), Some(&op)).await.expect(200).body;
    assert_eq!(closed["maintenance"][0]["status"], "closed");
    app.post(&close, &json!({}), Some(&op)).await.expect_problem(409, "invalid-state");
    let good =
        app.post(&format!("{path}/inspections"), &json!({"condition": "good"}), Some(&officer)).await.expect(201).body;
    assert_eq!(good["maintenance"].as_array().unwrap().len(), 1, "a good inspection opens nothing");

    // A new standard: installed signs of the old one are due for update, then replaced.
    let current = app.get("/v1/signage-standards", None).await.expect(200).body;
    let mut types = current["items"][0]["sign_types"].clone();
    types[0]["material"] = json!("recycled aluminium");
    let body = json!({"version": "2027", "sign_types": types});
    app.post("/v1/signage-standards", &body, Some(&officer)).await.expect_problem(403, "forbidden");
    let published = app.post("/v1/signage-standards", &body, Some(&app.admin)).await.expect(201).body;
    assert_eq!(published["signs_update_due"], 1);
    app.post("/v1/signage-standards", &body, Some(&app.admin)).await.expect_problem(409, "conflict");
    assert_eq!(app.get(&path, None).await.body["status"], "update_due");
    let replaced = app.post(&format!("{path}/replace"), &json!({}), Some(&op)).await.expect(200).body;
    assert_eq!(replaced["status"], "replaced");
    app.post(&format!("{path}/remove"), &json!({}), Some(&op)).await.expect_problem(409, "invalid-state");
    let log = app.get(&format!("/v1/audit?entity=sign&entity_id={}", id(&road)), Some(&app.admin)).await.body;
    assert!(log["items"].as_array().unwrap().len() >= 7, "every step audited");
}

#[tokio::test]
async fn a_rejected_application_needs_a_reason_and_ends_there() {
    let app = spawn_app().await;
    let (base, op, officer, _) = setup(&app).await;
    let s = app
        .post(
            &format!("/v1/bases/{}/signs", id(&base)),
            &json!({"type": "wayfinding", "location": north(50.0)}),
            Some(&op),
        )
        .await
        .expect(201)
        .body;
    let path = format!("/v1/signs/{}", id(&s));
    app.post(&format!("{path}/reject"), &json!({"comment": ""}), Some(&officer)).await.expect_invalid("comment");
    let r = app
        .post(&format!("{path}/reject"), &json!({"comment": "blocks the crossing"}), Some(&officer))
        .await
        .expect(200);
    assert_eq!(r.body["status"], "rejected");
    app.post(&format!("{path}/approve"), &json!({}), Some(&officer)).await.expect_problem(409, "invalid-state");
    app.get(&format!("/v1/signs/{}", uuid::Uuid::now_v7()), None).await.expect_problem(404, "not-found");
}

#[tokio::test]
async fn a_sign_list_carries_its_bases_names() {
    let app = spawn_app().await;
    let (base, _) = app.accredited_base(json!({})).await;
    let at = json!({"lat": base["location"]["lat"].as_f64().unwrap() + 0.0004, "lon": base["location"]["lon"]});
    app.post(&format!("/v1/bases/{}/signs", id(&base)), &json!({"type": "plaque", "location": at}), Some(&app.admin))
        .await
        .expect(201);
    let listed = app.get(&format!("/v1/signs?base_id={}", id(&base)), None).await.expect(200).body;
    assert_eq!(listed["items"][0]["base_name_zh"], base["name_zh"], "{listed}");
    assert_eq!(listed["items"][0]["base_name_en"], base["name_en"]);
}
