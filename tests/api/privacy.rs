//! What a public city service keeps to itself: who objected, account ids and personal
//! details in public answers, and what goes into the append-only log.

use serde_json::{Value, json};

use chrono::{Datelike, Duration};

use crate::accreditation::{cast, scored};
use crate::evaluation::{evaluation_of, experts, open_cycle, score_and_finalize};
use crate::helpers::{booking_body, id, spawn_app};

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
    // A list carries its bases' names (no lookup per application).
    let base =
        app.get(&format!("/v1/bases/{}", listed["items"][0]["base_id"].as_str().unwrap()), None).await.expect(200).body;
    assert_eq!(listed["items"][0]["base_name_zh"], base["name_zh"]);
    assert_eq!(listed["items"][0]["base_name_en"], base["name_en"]);

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

/// Every public answer (every `GET` the spec declares without a bearer token, read without
/// one) over a city with an accredited base, an objection, a booking, an inspected sign and a
/// finalised evaluation: none carries an account id, a phone number or e-mail address of a
/// person, a check-in code, a token or a hash. A new public endpoint must be added to the map
/// of its path's ids, or this test fails.
#[tokio::test]
async fn public_answers_carry_no_account_ids_or_personal_details() {
    let app = spawn_app().await;
    let c = cast(&app).await;
    let a = scored(&app, &c).await;
    let path = format!("/v1/accreditations/{a}");
    app.post(&format!("{path}/start-public-notice"), &json!({}), Some(&app.admin)).await.expect(200);
    let objection = json!({"name": "王女士", "contact": "wang.objector@example.cn", "reason": "noise at night"});
    let filed = app.post(&format!("{path}/objections"), &objection, None).await.expect(201).body;
    app.clock.advance(Duration::days(8));
    let resolve = format!("{path}/objections/{}/resolve", id(&filed));
    app.post(&resolve, &json!({"outcome": "dismissed", "resolution": "checked"}), Some(&app.admin)).await.expect(200);
    let decide = json!({"decision": "accredited", "comment": "bureau meeting"});
    let decided = app.post(&format!("{path}/decide"), &decide, Some(&app.admin)).await.expect(200).body;
    let certificate = decided["certificate_number"].as_str().expect("a certificate").to_string();
    let base = c.base.clone();
    let base_id = id(&base);

    let session = app.session(&base_id, &c.operator, 72, json!({})).await;
    let (school, school_token) = app.school_account("隐私 学校").await;
    let mut body = booking_body(&session, &school, 20, 2);
    body["contact_phone"] = json!("139 8765 4321");
    body["contact_name"] = json!("陈老师");
    let booking = app.post("/v1/bookings", &body, Some(&school_token)).await.expect(201).body;
    let feed = app
        .post(&format!("/v1/schools/{}/calendar-token", id(&school)), &json!({}), Some(&school_token))
        .await
        .expect(201)
        .body;
    let exhibit = app.exhibit(&base_id, &c.operator).await;
    let afternoon = app.session(&base_id, &c.operator, 75, json!({})).await;
    let tour_body = json!({
        "title": "隐私一日游", "audience": "junior", "meeting_point": "正门",
        "meeting_location": base["location"], "places": 40, "legs": [session["id"], afternoon["id"]],
    });
    let tour = app.post("/v1/tours", &tour_body, Some(&app.admin)).await.expect(201).body;

    let sign = app
        .post(
            &format!("/v1/bases/{base_id}/signs"),
            &json!({"type": "plaque", "location": base["location"]}),
            Some(&c.operator),
        )
        .await
        .expect(201)
        .body;
    let sign_path = format!("/v1/signs/{}", id(&sign));
    app.post(&format!("{sign_path}/approve"), &json!({}), Some(&c.officer)).await.expect(200);
    app.post(&format!("{sign_path}/install"), &json!({}), Some(&c.operator)).await.expect(200);
    app.post(&format!("{sign_path}/inspections"), &json!({"condition": "good"}), Some(&c.officer)).await.expect(201);
    let staff = app.get(&sign_path, Some(&c.officer)).await.expect(200).body;
    assert!(staff["inspections"][0]["inspector_id"].is_string(), "staff see who inspected");

    let year = (app.now() + Duration::hours(8)).year();
    let cycle = open_cycle(&app, year).await;
    let evaluation = evaluation_of(&app, &cycle, &base, "annual").await;
    score_and_finalize(&app, &evaluation, &experts(&app).await, [9.0, 9.0, 9.0]).await;

    // A campaign over the tour, with a citizen's application, drawn.
    let opens = app.now() + Duration::hours(1);
    let campaign_body = json!({
        "title": "隐私报名", "opens_at": opens.to_rfc3339(), "closes_at": (opens + Duration::hours(2)).to_rfc3339(),
        "for_schools": true, "for_citizens": true, "max_wins": 1, "tours": [tour["id"]],
    });
    let campaign = app.post("/v1/campaigns", &campaign_body, Some(&app.admin)).await.expect(201).body;
    app.clock.advance(Duration::hours(2));
    let applied = app
        .post(
            &format!("/v1/campaigns/{}/applications", id(&campaign)),
            &json!({"kind": "citizen", "name": "赵先生", "phone": "137 1234 5678", "people": 2,
                    "district_code": "440106", "preferences": [tour["id"]]}),
            None,
        )
        .await
        .expect(201)
        .body;
    app.clock.advance(Duration::hours(2));
    app.post(&format!("/v1/campaigns/{}/draw", id(&campaign)), &json!({}), Some(&app.admin)).await.expect(200);

    // What no public answer may carry.
    let users = app.get("/v1/users?limit=100", Some(&app.admin)).await.expect(200).body;
    let mut secrets: Vec<String> = users["items"].as_array().unwrap().iter().map(id).collect();
    assert!(secrets.len() >= 8, "every account of the cast: {secrets:?}");
    secrets.extend(
        [&booking["code"], &booking["contact_phone"], &booking["contact_name"], &feed["token"]]
            .iter()
            .map(|v| v.as_str().expect("a text").to_string()),
    );
    secrets.extend(["wang.objector@example.cn", "王女士", "$argon2", &app.admin, &school_token].map(String::from));
    // A citizen's number is shown masked, also to the citizen; the published draw names nobody.
    secrets.extend(["13712345678", "137 1234 5678"].map(String::from));

    let spec = app.get("/openapi.json", None).await.expect(200).body;
    let session_pool = session["pools"][0]["id"].as_str().expect("the session's pool").to_string();
    let value_of = |path: &str| -> Vec<(String, String)> {
        let ids: &[(&str, &str)] = match path {
            p if p.starts_with("/v1/bases/{id}") => &[("{id}", &base_id)],
            "/v1/capacity-pools/{id}" => &[("{id}", &session_pool)],
            "/v1/certificates/{number}" => &[("{number}", &certificate)],
            "/v1/districts/{code}" => &[("{code}", "440106")],
            "/v1/evaluation-cycles/{id}/results" => &[("{id}", cycle["id"].as_str().unwrap())],
            "/v1/exhibits/{id}" => &[("{id}", exhibit["id"].as_str().unwrap())],
            "/v1/sessions/{id}" => &[("{id}", session["id"].as_str().unwrap())],
            "/v1/signs/{id}" => &[("{id}", sign["id"].as_str().unwrap())],
            "/v1/tours/{id}" => &[("{id}", tour["id"].as_str().unwrap())],
            p if p.starts_with("/v1/campaigns/{id}") => {
                &[("{id}", campaign["id"].as_str().unwrap()), ("{application_id}", applied["id"].as_str().unwrap())]
            }
            "/v1/statistics" => {
                return ["scope=city", "scope=district", "scope=district&id=440106&period=month&format=csv"]
                    .map(|q| (format!("{path}?{q}"), String::new()))
                    .to_vec();
            }
            "/v1/schools/{id}/bookings.ics" => {
                return vec![(feed["path"].as_str().unwrap().to_string(), String::new())];
            }
            p if !p.contains('{') => &[],
            p => panic!("a public endpoint this test does not know the ids of: {p}"),
        };
        let mut url = ids.iter().fold(path.to_string(), |url, (k, v)| url.replace(k, v));
        if path.ends_with("{application_id}") {
            url.push_str("?phone=13712345678");
        }
        let mut urls = vec![(url.clone(), String::new())];
        if matches!(path, "/v1/bases" | "/v1/signs" | "/v1/tours") {
            urls.push((format!("{url}?format=geojson"), String::new()));
            urls.push((format!("{url}?near=23.13,113.33"), String::new()));
        }
        urls
    };
    let mut read = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        let Some(get) = ops.get("get") else { continue };
        let public =
            get.get("security").is_none_or(|s| s.as_array().unwrap().iter().any(|r| r.as_object().unwrap().is_empty()));
        if !public {
            continue;
        }
        for (url, _) in value_of(path) {
            let res = app.client.get(app.url(&url)).send().await.unwrap();
            assert!(res.status().is_success(), "{url}: {}", res.status());
            let text = res.text().await.unwrap();
            for secret in &secrets {
                assert!(!text.contains(secret.as_str()), "{url} carries {secret}:\n{text:.2000}");
            }
            read += 1;
        }
    }
    assert!(read >= 20, "read {read} public answers");
    // The answers scanned are full ones: the public reads the sign's inspection and the
    // base's finalised result, without the accounts behind them.
    let public_sign = app.get(&sign_path, None).await.expect(200).body;
    assert_eq!(public_sign["inspections"][0]["condition"], "good");
    assert_eq!(public_sign["inspections"][0]["inspector_id"], Value::Null);
    let results = app.get(&format!("/v1/bases/{base_id}/evaluations"), None).await.expect(200).body;
    assert_eq!(results["items"].as_array().unwrap().len(), 1);
}
