//! Accreditation end to end: application against the standard, district recommendation,
//! experts, a public notice of five working days across a weekend, objections, the decision,
//! the certificate and its expiry; every forbidden step and role.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, id, spawn_app};

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("RFC 3339").with_timezone(&Utc)
}

pub fn figures(area: f64, staff: i32) -> Value {
    json!({"exhibition_area_m2": area, "open_days_per_year": 280, "free_days_for_students": 30,
           "annual_visitors": 45000, "staff": staff, "interactive_exhibits": 25})
}

pub struct Cast {
    pub base: Value,
    pub operator: String,
    pub officer: String,
    pub other_officer: String,
    pub experts: Vec<(String, String)>,
}

/// An applicant science venue in Tianhe, its operator, the district officers, two experts.
pub async fn cast(app: &TestApp) -> Cast {
    let base = app.base(json!({"name_en": "Applicant venue"})).await;
    let operator = app.user("applicant-op", json!({"role": "operator", "base_ids": [id(&base)]})).await;
    let officer = app.user("tianhe-officer", json!({"role": "district_officer", "district_code": "440106"})).await;
    let other_officer =
        app.user("yuexiu-officer", json!({"role": "district_officer", "district_code": "440104"})).await;
    let mut experts = Vec::new();
    for name in ["expert-a", "expert-b"] {
        let token = app.user(name, json!({"role": "evaluator"})).await;
        let me = app.get("/v1/me", Some(&token)).await.body;
        experts.push((id(&me), token));
    }
    Cast { base, operator, officer, other_officer, experts }
}

/// Moves the server's clock to the next Thursday, 10:00 in Guangzhou.
fn next_thursday_10(app: &TestApp) -> Duration {
    let local = app.now() + Duration::hours(8);
    let ahead = (3 + 7 - i64::from(local.weekday().num_days_from_monday())) % 7;
    let ahead = if ahead == 0 { 7 } else { ahead };
    let target_local = (local.date_naive() + Duration::days(ahead)).and_hms_opt(10, 0, 0).unwrap().and_utc();
    // A second past the hour: the clock keeps whole milliseconds of the offset.
    target_local - Duration::hours(8) - app.now() + Duration::seconds(1)
}

/// Opens a draft application for the cast's base with `area_m2` of exhibition space.
pub async fn draft(app: &TestApp, c: &Cast, area_m2: f64, token: &str) -> Value {
    let body = json!({"base_id": c.base["id"], "figures": figures(area_m2, 12)});
    app.post("/v1/accreditations", &body, Some(token)).await.expect(201).body
}

/// Runs an application from draft to scored by every expert, ready for its public notice;
/// answers its id.
pub async fn scored(app: &TestApp, c: &Cast) -> String {
    let a = draft(app, c, 1200.0, &c.operator).await;
    let path = format!("/v1/accreditations/{}", id(&a));
    app.post(&format!("{path}/submit"), &json!({}), Some(&c.operator)).await.expect(200);
    app.post(&format!("{path}/recommend"), &json!({"comment": "ok"}), Some(&c.officer)).await.expect(200);
    let ids: Vec<&str> = c.experts.iter().map(|(i, _)| i.as_str()).collect();
    app.post(&format!("{path}/assign"), &json!({"evaluator_ids": ids}), Some(&app.admin)).await.expect(200);
    for (_, token) in &c.experts {
        let points = json!({"points": {"facilities": 25, "content": 26, "operations": 16, "schools": 17}});
        app.send(app.client.put(app.url(&format!("{path}/scores"))).bearer_auth(token).json(&points)).await.expect(200);
    }
    id(&a)
}

/// Runs an application from draft to the end of its public notice; answers its id.
pub async fn through_notice(app: &TestApp, c: &Cast) -> String {
    let a = scored(app, c).await;
    app.post(&format!("/v1/accreditations/{a}/start-public-notice"), &json!({}), Some(&app.admin)).await.expect(200);
    app.clock.advance(Duration::days(8));
    a
}

#[tokio::test]
async fn an_application_goes_from_draft_to_a_verifiable_certificate() {
    let app = spawn_app().await;
    let c = cast(&app).await;
    let (_, school) = app.school_account("学校").await;
    let body = json!({"base_id": c.base["id"], "figures": figures(800.0, 4), "evidence_links": ["https://example.cn/report.pdf"]});
    app.post("/v1/accreditations", &body, Some(&school)).await.expect_problem(403, "forbidden");
    app.post("/v1/accreditations", &body, Some(&c.other_officer)).await.expect_problem(403, "forbidden");
    let first = app.post("/v1/accreditations", &body, Some(&c.operator)).await.expect(201).body;
    assert_eq!(first["status"], "draft");
    app.post("/v1/accreditations", &body, Some(&c.officer)).await.expect_problem(409, "invalid-state");
    let path = format!("/v1/accreditations/{}", id(&first));

    // The standard in force (2021) asks a science venue for 1000 m² and 5 staff.
    let refused = app.post(&format!("{path}/submit"), &json!({}), Some(&c.operator)).await;
    let refused = refused.expect_problem(422, "validation");
    assert_eq!(refused.fields(), ["figures.exhibition_area_m2", "figures.staff"]);
    let submitted = app
        .post(&format!("{path}/submit"), &json!({"acknowledge_unmet": true}), Some(&c.operator))
        .await
        .expect(200)
        .body;
    assert_eq!(submitted["status"], "submitted");
    assert_eq!(submitted["unmet"][0], json!({"figure": "exhibition_area_m2", "required": 1000.0, "reported": 800.0}));
    app.post(&format!("{path}/submit"), &json!({}), Some(&c.operator)).await.expect_problem(409, "invalid-state");

    // Each step only from its state and by its role.
    let (e1, e1_token) = &c.experts[0];
    let (e2, e2_token) = &c.experts[1];
    app.post(&format!("{path}/assign"), &json!({"evaluator_ids": [e1]}), Some(&app.admin))
        .await
        .expect_problem(409, "invalid-state");
    app.post(&format!("{path}/recommend"), &json!({"comment": "x"}), Some(&c.operator))
        .await
        .expect_problem(403, "forbidden");
    app.post(&format!("{path}/recommend"), &json!({"comment": "x"}), Some(&c.other_officer))
        .await
        .expect_problem(403, "forbidden");
    // The role is checked before the input: a blank comment from the wrong officer is 403.
    app.post(&format!("{path}/recommend"), &json!({"comment": ""}), Some(&c.other_officer))
        .await
        .expect_problem(403, "forbidden");
    app.post(&format!("{path}/recommend"), &json!({"comment": ""}), Some(&c.officer)).await.expect_invalid("comment");
    let r =
        app.post(&format!("{path}/recommend"), &json!({"comment": "fits the district plan"}), Some(&c.officer)).await;
    assert_eq!(r.expect(200).body["status"], "district_recommended");
    app.post(&format!("{path}/assign"), &json!({"evaluator_ids": [e1]}), Some(&c.officer))
        .await
        .expect_problem(403, "forbidden");
    let me = app.get("/v1/me", Some(&c.operator)).await.body;
    app.post(&format!("{path}/assign"), &json!({"evaluator_ids": [me["id"]]}), Some(&app.admin))
        .await
        .expect_invalid("evaluator_ids[0]");
    let assigned = app.post(&format!("{path}/assign"), &json!({"evaluator_ids": [e1, e2]}), Some(&app.admin)).await;
    assert_eq!(assigned.expect(200).body["status"], "expert_review");

    let scores = |pts: Value| json!({"points": pts, "comment": "visited on site"});
    let put = |token: &str, body: Value| {
        let (app, path, token) = (&app, path.clone(), token.to_string());
        async move { app.send(app.client.put(app.url(&format!("{path}/scores"))).bearer_auth(token).json(&body)).await }
    };
    put(&c.operator, scores(json!({"facilities": 20}))).await.expect_problem(403, "forbidden");
    let outsider = app.user("expert-c", json!({"role": "evaluator"})).await;
    put(&outsider, scores(json!({"facilities": 20, "content": 20, "operations": 10, "schools": 10})))
        .await
        .expect_problem(403, "forbidden");
    put(e1_token, scores(json!({"facilities": 31, "content": 20, "operations": 10, "schools": 10})))
        .await
        .expect_invalid("points.facilities");
    put(e1_token, scores(json!({"facilities": 20, "content": 20, "operations": 10})))
        .await
        .expect_invalid("points.schools");
    put(e1_token, scores(json!({"facilities": 28, "content": 27, "operations": 18, "schools": 17}))).await.expect(200);
    app.post(&format!("{path}/start-public-notice"), &json!({}), Some(&app.admin))
        .await
        .expect_problem(409, "invalid-state");
    let scored = put(e2_token, scores(json!({"facilities": 24, "content": 25, "operations": 16, "schools": 15})))
        .await
        .expect(200);
    assert_eq!(scored.body["mean_score"], 85.0, "(90 + 80) / 2");

    // Thursday 10:00: five working days end the Thursday after, 10:00 (the weekend skipped).
    app.clock.advance(next_thursday_10(&app));
    app.post(&format!("{path}/start-public-notice"), &json!({}), Some(&c.officer))
        .await
        .expect_problem(403, "forbidden");
    let notice = app.post(&format!("{path}/start-public-notice"), &json!({}), Some(&app.admin)).await.expect(200).body;
    let (start, end) = (time(&notice["notice_starts_at"]), time(&notice["notice_ends_at"]));
    assert_eq!(end - start, Duration::days(7));
    let local_end = end + Duration::hours(8);
    assert_eq!((local_end.weekday(), local_end.hour()), (chrono::Weekday::Thu, 10));

    // Anyone may object, without signing in; an open objection blocks the decision.
    let objection = app
        .post(&format!("{path}/objections"), &json!({"name": "张先生", "reason": "the hall closed in March"}), None)
        .await
        .expect(201)
        .body;
    app.post(&format!("{path}/objections"), &json!({"reason": " "}), None).await.expect_invalid("reason");
    let decide = json!({"decision": "accredited", "comment": "bureau meeting"});
    app.post(&format!("{path}/decide"), &decide, Some(&app.admin)).await.expect_problem(409, "invalid-state");
    app.clock.advance(Duration::days(7) + Duration::minutes(1));
    app.post(&format!("{path}/objections"), &json!({"reason": "too late"}), None)
        .await
        .expect_problem(409, "invalid-state");
    app.post(&format!("{path}/decide"), &decide, Some(&app.admin)).await.expect_problem(409, "open-objections");
    let resolve = format!("{path}/objections/{}/resolve", id(&objection));
    app.post(&resolve, &json!({"outcome": "dismissed", "resolution": " "}), Some(&c.officer))
        .await
        .expect_problem(403, "forbidden");
    app.post(&resolve, &json!({"outcome": "dismissed", "resolution": " "}), Some(&app.admin))
        .await
        .expect_invalid("resolution");
    app.post(&resolve, &json!({"outcome": "dismissed", "resolution": "reopened in May"}), Some(&c.officer))
        .await
        .expect_problem(403, "forbidden");
    app.post(&resolve, &json!({"outcome": "dismissed", "resolution": "reopened in May"}), Some(&app.admin))
        .await
        .expect(200);
    app.post(&resolve, &json!({"outcome": "upheld", "resolution": "again"}), Some(&app.admin))
        .await
        .expect_problem(409, "invalid-state");
    app.post(&format!("{path}/decide"), &decide, Some(&c.operator)).await.expect_problem(403, "forbidden");
    let decided = app.post(&format!("{path}/decide"), &decide, Some(&app.admin)).await.expect(200).body;
    assert_eq!(decided["status"], "accredited");
    let number = decided["certificate_number"].as_str().unwrap().to_string();
    let year = (app.now() + Duration::hours(8)).year();
    assert_eq!(number, format!("GZKP-{year}-0001"));

    let base = app.get(&format!("/v1/bases/{}", id(&c.base)), None).await.expect(200).body;
    assert_eq!(base["status"], "accredited");
    assert_eq!(base["certificate_number"], number.as_str());
    let valid_until = time(&base["valid_until"]);
    assert!((valid_until - app.now() - Duration::days(5 * 365)).num_days().abs() <= 2, "valid 5 years");
    let cert = app.get(&format!("/v1/certificates/{number}"), None).await.expect(200).body;
    assert_eq!(cert["status"], "valid");
    assert_eq!(cert["base_id"], c.base["id"]);
    app.get("/v1/certificates/GZKP-1999-0001", None).await.expect_problem(404, "not-found");
    let log = app.get(&format!("/v1/audit?entity=accreditation&entity_id={}", id(&first)), Some(&app.admin)).await.body;
    let actions: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for step in [
        "accreditation.create",
        "accreditation.submit",
        "accreditation.recommend",
        "accreditation.assign",
        "accreditation.score",
        "accreditation.public_notice",
        "objection.resolve",
        "accreditation.decide",
    ] {
        assert!(actions.contains(&step), "{step} audited: {actions:?}");
    }

    // Five years on the certificate lapses: never shown as accredited, even before the sweep.
    app.clock.advance(Duration::days(5 * 366));
    let cert = app.get(&format!("/v1/certificates/{number}"), None).await.expect(200).body;
    assert_eq!(cert["status"], "expired");
    let base = app.get(&format!("/v1/bases/{}", id(&c.base)), None).await.body;
    assert_eq!(base["status"], "expired");
    let listed = app.get("/v1/bases?status=accredited", None).await.body;
    assert!(listed["items"].as_array().unwrap().iter().all(|b| b["id"] != c.base["id"]));
    let expired = app.get("/v1/bases?status=expired", None).await.body;
    assert_eq!(expired["items"].as_array().unwrap().len(), 1);
    assert_eq!(kepu::domain::accreditation::expire_certificates(&app.db, app.now()).await.unwrap(), 1);
    assert_eq!(kepu::domain::accreditation::expire_certificates(&app.db, app.now()).await.unwrap(), 0);
    // It may apply again.
    draft(&app, &c, 1200.0, &c.operator).await;
}

#[tokio::test]
async fn the_bureau_keeps_the_working_calendar_and_notices_count_by_it() {
    let app = spawn_app().await;
    let c = cast(&app).await;
    // Roles and input.
    let body = json!({"name": "试验假日 Test holiday"});
    app.send(app.client.put(app.url("/v1/calendar/days/2026-12-25")).json(&body))
        .await
        .expect_problem(401, "unauthorized");
    for token in [&c.operator, &c.officer] {
        let r = app.client.put(app.url("/v1/calendar/days/2026-12-25")).bearer_auth(token).json(&body);
        app.send(r).await.expect_problem(403, "forbidden");
    }
    let put = |day: &str, body: Value| {
        app.client.put(app.url(&format!("/v1/calendar/days/{day}"))).bearer_auth(&app.admin).json(&body)
    };
    app.send(put("2026-12-25", json!({"name": ""}))).await.expect_invalid("name");
    app.send(put("2026-13-01", json!({"name": "x"}))).await.expect_problem(404, "not-found");
    app.send(put("1999-12-31", json!({"name": "x"}))).await.expect_invalid("day");
    app.get("/v1/calendar/days?year=1999", None).await.expect_invalid("year");

    // Move to Thursday 10:00, with the application ready for its notice.
    let path = format!("/v1/accreditations/{}", scored(&app, &c).await);
    app.clock.advance(next_thursday_10(&app));
    let thursday = (app.now() + Duration::hours(8)).date_naive();
    // Friday and Monday off, the Saturday between worked: Sat, Tue, Wed, Thu, Fri.
    let day = |n: i64| (thursday + Duration::days(n)).to_string();
    app.send(put(&day(1), json!({"name": "假日 holiday"}))).await.expect(200);
    app.send(put(&day(4), json!({"name": "假日 holiday"}))).await.expect(200);
    let sat = app.send(put(&day(2), json!({"name": "调休 worked", "working": true}))).await.expect(200).body;
    assert_eq!(sat["working"], true);
    let year = (app.now() + Duration::hours(8)).year();
    let listed = app.get(&format!("/v1/calendar/days?year={year}"), None).await.expect(200).body;
    let next_year = app.get(&format!("/v1/calendar/days?year={}", year + 1), None).await.expect(200).body;
    let marked = listed["items"].as_array().unwrap().len() + next_year["items"].as_array().unwrap().len();
    assert_eq!(marked, 3, "{listed} {next_year}");

    let notice = app.post(&format!("{path}/start-public-notice"), &json!({}), Some(&app.admin)).await.expect(200).body;
    let (start, end) = (time(&notice["notice_starts_at"]), time(&notice["notice_ends_at"]));
    assert_eq!(end - start, Duration::days(8), "ends the Friday after, 10:00");
    // Unmarking needs the bureau; an unmarked day is 404.
    let del = |day: &str, token: &str| {
        app.client.delete(app.url(&format!("/v1/calendar/days/{day}"))).bearer_auth(token.to_string())
    };
    app.send(del(&day(1), &c.officer)).await.expect_problem(403, "forbidden");
    app.send(del(&day(1), &app.admin)).await.expect(204);
    app.send(del(&day(1), &app.admin)).await.expect_problem(404, "not-found");
}

#[tokio::test]
async fn a_draft_is_edited_under_its_etag_until_it_is_submitted() {
    let app = spawn_app().await;
    let c = cast(&app).await;
    let a = draft(&app, &c, 800.0, &c.operator).await;
    let path = format!("/v1/accreditations/{}", id(&a));
    let read = app.get(&path, Some(&c.operator)).await.expect(200);
    let tag = read.etag();
    let change = json!({"figures": figures(1500.0, 12), "evidence_links": ["https://example.cn/hall.jpg"]});
    app.patch(&path, &change, Some(&c.operator), None).await.expect_problem(428, "precondition-required");
    app.patch(&path, &change, Some(&c.other_officer), Some(&tag)).await.expect_problem(403, "forbidden");
    app.patch(&path, &change, None, Some(&tag)).await.expect_problem(401, "unauthorized");
    let mut bad = change.clone();
    bad["evidence_links"] = json!(["not a link"]);
    app.patch(&path, &bad, Some(&c.operator), Some(&tag)).await.expect_invalid("evidence_links[0]");
    app.patch(&path, &json!({"status": "accredited"}), Some(&c.operator), Some(&tag)).await.expect_invalid("status");
    let edited = app.patch(&path, &change, Some(&c.operator), Some(&tag)).await.expect(200);
    assert_eq!(edited.body["figures"]["exhibition_area_m2"], 1500.0);
    assert_eq!(edited.body["evidence_links"][0], "https://example.cn/hall.jpg");
    assert_ne!(edited.etag(), tag);
    // The district's officer may edit too (it may apply for the base); a stale tag is 412.
    app.patch(&path, &json!({"evidence_links": []}), Some(&c.officer), Some(&tag))
        .await
        .expect_problem(412, "precondition-failed");
    let links = app.patch(&path, &json!({"evidence_links": []}), Some(&c.officer), Some(&edited.etag())).await;
    let links = links.expect(200);
    assert_eq!(links.body["evidence_links"], json!([]));
    assert_eq!(links.body["figures"]["exhibition_area_m2"], 1500.0, "a field left out stays");
    // The edited figures are what submission checks; then the application is no longer a draft.
    let submitted = app.post(&format!("{path}/submit"), &json!({}), Some(&c.operator)).await.expect(200).body;
    assert_eq!(submitted["unmet"], json!([]), "{submitted}");
    let tag = app.get(&path, Some(&c.operator)).await.expect(200).etag();
    app.patch(&path, &change, Some(&c.operator), Some(&tag)).await.expect_problem(409, "invalid-state");
    let log = app.get(&format!("/v1/audit?entity=accreditation&entity_id={}", id(&a)), Some(&app.admin)).await;
    let actions: Vec<&str> =
        log.body["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "accreditation.edit").count(), 2, "{actions:?}");
}

#[tokio::test]
async fn rejections_by_the_district_and_the_bureau_end_an_application() {
    let app = spawn_app().await;
    let c = cast(&app).await;
    let a = draft(&app, &c, 1200.0, &c.officer).await;
    let path = format!("/v1/accreditations/{}", id(&a));
    app.post(&format!("{path}/submit"), &json!({}), Some(&c.officer)).await.expect(200);
    let rejected = app.post(&format!("{path}/reject"), &json!({"comment": "not in the plan"}), Some(&c.officer)).await;
    assert_eq!(rejected.expect(200).body["status"], "rejected");
    app.post(&format!("{path}/recommend"), &json!({"comment": "x"}), Some(&c.officer))
        .await
        .expect_problem(409, "invalid-state");

    let second = through_notice(&app, &c).await;
    let decided = app
        .post(
            &format!("/v1/accreditations/{second}/decide"),
            &json!({"decision": "rejected", "comment": "exhibits outdated"}),
            Some(&app.admin),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(decided["status"], "rejected");
    assert_eq!(decided["certificate_number"], Value::Null);
    assert_eq!(app.get(&format!("/v1/bases/{}", id(&c.base)), None).await.body["status"], "applicant");
}

#[tokio::test]
async fn objections_are_rate_limited_per_address() {
    let app = spawn_app().await;
    let c = cast(&app).await;
    let a = draft(&app, &c, 1200.0, &c.operator).await;
    let path = format!("/v1/accreditations/{}", id(&a));
    app.post(&format!("{path}/objections"), &json!({"reason": "early"}), None)
        .await
        .expect_problem(409, "invalid-state");
    app.post(&format!("{path}/submit"), &json!({}), Some(&c.operator)).await.expect(200);
    app.post(&format!("{path}/recommend"), &json!({"comment": "ok"}), Some(&c.officer)).await.expect(200);
    let (e1, t1) = &c.experts[0];
    app.post(&format!("{path}/assign"), &json!({"evaluator_ids": [e1]}), Some(&app.admin)).await.expect(200);
    let points = json!({"points": {"facilities": 25, "content": 26, "operations": 16, "schools": 17}});
    app.send(app.client.put(app.url(&format!("{path}/scores"))).bearer_auth(t1).json(&points)).await.expect(200);
    app.post(&format!("{path}/start-public-notice"), &json!({}), Some(&app.admin)).await.expect(200);
    for i in 0..5 {
        app.post(&format!("{path}/objections"), &json!({"reason": format!("objection {i}")}), None).await.expect(201);
    }
    let r = app.post(&format!("{path}/objections"), &json!({"reason": "one too many"}), None).await;
    r.expect_problem(429, "rate-limited");
}

#[tokio::test]
async fn the_bureau_publishes_a_new_accreditation_standard() {
    let app = spawn_app().await;
    let list = app.get("/v1/accreditation-standards", None).await.expect(200).body;
    let first = &list["items"][0];
    assert_eq!(first["version"], "2021");
    assert_eq!(first["requirements"]["science_venue"]["min_exhibition_area_m2"], 1000.0);
    assert_eq!(first["requirements"]["natural_resource"]["min_exhibition_area_m2"], 5000.0);
    assert_eq!(first["requirements"]["enterprise"]["min_exhibition_area_m2"], 300.0);
    assert_eq!(first["requirements"]["public_place"]["min_open_days"], 200);
    let mut body = json!({
        "version": "2027",
        "effective_from": (app.now() + Duration::days(30)).to_rfc3339(),
        "requirements": first["requirements"].clone(),
        "scoring_sheet": first["scoring_sheet"].clone(),
    });
    body["requirements"]["science_venue"]["min_exhibition_area_m2"] = json!(2000.0);
    let (_, op) = app.accredited_base(json!({})).await;
    app.post("/v1/accreditation-standards", &body, Some(&op)).await.expect_problem(403, "forbidden");
    let created = app.post("/v1/accreditation-standards", &body, Some(&app.admin)).await.expect(201).body;
    assert_eq!(created["validity_years"], 5);
    app.post("/v1/accreditation-standards", &body, Some(&app.admin)).await.expect_problem(409, "conflict");
    let mut missing = body.clone();
    missing["version"] = json!("2028");
    missing["requirements"].as_object_mut().unwrap().remove("agriculture");
    app.post("/v1/accreditation-standards", &missing, Some(&app.admin))
        .await
        .expect_invalid("requirements.agriculture");
    let mut bad = body.clone();
    bad["version"] = json!("2029");
    bad["scoring_sheet"] = json!([]);
    app.post("/v1/accreditation-standards", &bad, Some(&app.admin)).await.expect_invalid("scoring_sheet");
    // The new version applies only once in force.
    let c = cast(&app).await;
    let a = draft(&app, &c, 1500.0, &c.operator).await;
    assert_eq!(a["standard_id"], first["id"]);
    app.clock.advance(Duration::days(31));
    let r = app.post(&format!("/v1/accreditations/{}/submit", id(&a)), &json!({}), Some(&c.operator)).await;
    assert_eq!(r.expect_problem(422, "validation").fields(), ["figures.exhibition_area_m2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_applications_for_one_base_open_one_draft() {
    let app = spawn_app().await;
    let c = cast(&app).await;
    let body = json!({"base_id": c.base["id"], "figures": figures(1200.0, 12)});
    let tries = (0..8).map(|i| {
        let token = if i % 2 == 0 { c.operator.clone() } else { c.officer.clone() };
        let (app, body) = (&app, body.clone());
        async move { app.post("/v1/accreditations", &body, Some(&token)).await.status.as_u16() }
    });
    let statuses = futures::future::join_all(tries).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_issue_distinct_certificate_numbers() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let base = app.base(json!({"name_en": format!("Venue {i}")})).await;
        let operator = app.user(&format!("op-{i}"), json!({"role": "operator", "base_ids": [id(&base)]})).await;
        let officer =
            app.user(&format!("officer-{i}"), json!({"role": "district_officer", "district_code": "440106"})).await;
        let token = app.user(&format!("expert-{i}"), json!({"role": "evaluator"})).await;
        let expert = id(&app.get("/v1/me", Some(&token)).await.body);
        let c = Cast { base, operator, officer, other_officer: String::new(), experts: vec![(expert, token)] };
        ids.push(through_notice(&app, &c).await);
    }
    let decisions = ids.iter().map(|a| {
        let app = &app;
        async move {
            app.post(
                &format!("/v1/accreditations/{a}/decide"),
                &json!({"decision": "accredited", "comment": "ok"}),
                Some(&app.admin),
            )
            .await
            .expect(200)
            .body["certificate_number"]
                .as_str()
                .unwrap()
                .to_string()
        }
    });
    let mut numbers = futures::future::join_all(decisions).await;
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 3, "{numbers:?}");
    assert!(
        numbers.iter().all(|n| n.ends_with("-0001") || n.ends_with("-0002") || n.ends_with("-0003")),
        "{numbers:?}"
    );
}
