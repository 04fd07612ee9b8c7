//! Annual evaluation end to end: cycles, self-reports, measured figures, experts' scores,
//! grades at their edges, and both revocation paths with their cascade onto sessions,
//! bookings and signs.

use chrono::{Datelike, Duration};
use serde_json::{Value, json};

use crate::helpers::{TestApp, booking_body, id, spawn_app};

fn rubric() -> Value {
    json!({"sections": [
        {"key": "facilities", "name": "Facilities", "weight": 30, "indicators": [
            {"key": "exhibits", "name": "Exhibits", "max_points": 10, "measure": "exhibits_updated", "bands": [{"at_least": 1, "points": 10}]}]},
        {"key": "operations", "name": "Operations", "weight": 50, "indicators": [
            {"key": "visitors", "name": "Visitors", "max_points": 10, "measure": "visitors_booked", "bands": [{"at_least": 10, "points": 6}, {"at_least": 1000, "points": 10}]}]},
        {"key": "schools", "name": "Schools", "weight": 20, "indicators": [
            {"key": "groups", "name": "School groups", "max_points": 10, "measure": "school_groups", "bands": [{"at_least": 1, "points": 10}]}]}
    ]})
}

pub(crate) async fn open_cycle(app: &TestApp, year: i32) -> Value {
    let body = json!({"year": year, "rubric": rubric(), "self_report_deadline": (app.now() + Duration::days(10)).to_rfc3339()});
    app.post("/v1/evaluation-cycles", &body, Some(&app.admin)).await.expect(201).body
}

pub(crate) async fn evaluation_of(app: &TestApp, cycle: &Value, base: &Value, kind: &str) -> Value {
    let list = app
        .get(&format!("/v1/evaluations?cycle_id={}&base_id={}", id(cycle), id(base)), Some(&app.admin))
        .await
        .expect(200)
        .body;
    list["items"].as_array().unwrap().iter().find(|e| e["kind"] == kind).cloned().expect("an evaluation")
}

/// Two experts give the same points; the evaluation is finalised; answers it.
pub(crate) async fn score_and_finalize(
    app: &TestApp,
    evaluation: &Value,
    experts: &[(String, String)],
    pts: [f64; 3],
) -> Value {
    let path = format!("/v1/evaluations/{}", id(evaluation));
    let ids: Vec<&str> = experts.iter().map(|(i, _)| i.as_str()).collect();
    app.post(&format!("{path}/assign"), &json!({"evaluator_ids": ids}), Some(&app.admin)).await.expect(200);
    for (_, token) in experts {
        let body = json!({"points": {"exhibits": pts[0], "visitors": pts[1], "groups": pts[2]}});
        app.send(app.client.put(app.url(&format!("{path}/scores"))).bearer_auth(token).json(&body)).await.expect(200);
    }
    app.post(&format!("{path}/finalize"), &json!({}), Some(&app.admin)).await.expect(200).body
}

pub(crate) async fn experts(app: &TestApp) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in ["eval-a", "eval-b"] {
        let token = app.user(name, json!({"role": "evaluator"})).await;
        out.push((id(&app.get("/v1/me", Some(&token)).await.body), token));
    }
    out
}

#[tokio::test]
async fn a_cycle_evaluates_every_accredited_base_with_measured_figures_and_grades() {
    let app = spawn_app().await;
    let (a, op_a) = app.accredited_base(json!({"name_en": "A"})).await;
    let (b, _op_b) = app.accredited_base(json!({"name_en": "B"})).await;
    let _applicant = app.base(json!({"name_en": "Applicant"})).await;
    // A's year: one session with a booking of 20 visitors, and an exhibit.
    let s = app.session(&id(&a), &op_a, 48, json!({})).await;
    let (school, token) = app.school_account("学校").await;
    app.post("/v1/bookings", &booking_body(&s, &school, 19, 1), Some(&token)).await.expect(201);
    app.exhibit(&id(&a), &op_a).await;
    let year =
        (chrono::DateTime::parse_from_rfc3339(s["starts_at"].as_str().unwrap()).unwrap() + Duration::hours(8)).year();

    let body = json!({"year": year, "rubric": rubric(), "self_report_deadline": (app.now() + Duration::days(10)).to_rfc3339()});
    app.post("/v1/evaluation-cycles", &body, Some(&op_a)).await.expect_problem(403, "forbidden");
    let mut bad = body.clone();
    bad["rubric"]["sections"][0]["weight"] = json!(31);
    app.post("/v1/evaluation-cycles", &bad, Some(&app.admin)).await.expect_invalid("rubric.sections");
    let cycle = app.post("/v1/evaluation-cycles", &body, Some(&app.admin)).await.expect(201).body;
    assert_eq!(cycle["evaluations_opened"], 2, "the applicant base is not evaluated");
    app.post("/v1/evaluation-cycles", &body, Some(&app.admin)).await.expect_problem(409, "conflict");

    let ea = evaluation_of(&app, &cycle, &a, "annual").await;
    let path = format!("/v1/evaluations/{}", id(&ea));
    let got = app.get(&path, Some(&op_a)).await.expect(200).body;
    assert_eq!(got["measured"]["sessions_offered"], 1);
    assert_eq!(got["measured"]["visitors_booked"], 20);
    assert_eq!(got["measured"]["school_groups"], 1);
    assert_eq!(got["measured"]["distinct_schools"], 1);
    assert_eq!(got["measured"]["exhibits_updated"], 1);
    assert_eq!(got["suggested_points"], json!({"exhibits": 10.0, "visitors": 6.0, "groups": 10.0}));

    // The self-report: the base's operators, until the deadline.
    let report = json!({"report": {"open_days": 290, "visitors": 52000}});
    let put = |path: String, token: String, body: Value| {
        let app = &app;
        async move { app.send(app.client.put(app.url(&path)).bearer_auth(token).json(&body)).await }
    };
    let eb = evaluation_of(&app, &cycle, &b, "annual").await;
    put(format!("/v1/evaluations/{}/self-report", id(&eb)), op_a.clone(), report.clone())
        .await
        .expect_problem(403, "forbidden");
    let filed = put(format!("{path}/self-report"), op_a.clone(), report.clone()).await.expect(200).body;
    assert_eq!(filed["self_report"]["visitors"], 52000);
    app.get(&path, Some(&token)).await.expect_problem(403, "forbidden");

    // Experts comment on each indicator they score.
    let experts = experts(&app).await;
    let (e1, t1) = &experts[0];
    app.post(&format!("{path}/assign"), &json!({"evaluator_ids": [e1]}), Some(&app.admin)).await.expect(200);
    let bad = json!({"points": {"exhibits": 9, "visitors": 9, "groups": 9}, "comments": {"nonsense": "x"}});
    put(format!("{path}/scores"), t1.clone(), bad).await.expect_invalid("comments.nonsense");
    let commented = json!({"points": {"exhibits": 9, "visitors": 9, "groups": 9}, "comment": "solid year",
                           "comments": {"visitors": "strong growth in school groups"}});
    let scored = put(format!("{path}/scores"), t1.clone(), commented).await.expect(200).body;
    assert_eq!(scored["reviews"][0]["comments"]["visitors"], "strong growth in school groups");
    assert_eq!(scored["reviews"][0]["total"], 90.0);

    // Grade bands at their edges: 90 is excellent, 60 is pass.
    let fa = score_and_finalize(&app, &ea, &experts, [9.0, 9.0, 9.0]).await;
    assert_eq!((fa["score"].as_f64(), fa["grade"].as_str()), (Some(90.0), Some("excellent")));
    let fb = score_and_finalize(&app, &eb, &experts, [6.0, 6.0, 6.0]).await;
    assert_eq!((fb["score"].as_f64(), fb["grade"].as_str()), (Some(60.0), Some("pass")));

    // A finalised evaluation cannot change.
    app.post(&format!("{path}/finalize"), &json!({}), Some(&app.admin)).await.expect_problem(409, "invalid-state");
    let again = json!({"points": {"exhibits": 1, "visitors": 1, "groups": 1}});
    put(format!("{path}/scores"), experts[0].1.clone(), again).await.expect_problem(409, "invalid-state");
    put(format!("{path}/self-report"), op_a.clone(), report.clone()).await.expect_problem(409, "invalid-state");

    // Results are public for accredited bases.
    let results = app.get(&format!("/v1/bases/{}/evaluations", id(&a)), None).await.expect(200).body;
    assert_eq!(results["items"][0]["grade"], "excellent");
    assert_eq!(results["items"][0]["score"], 90.0);
    let c = app.base(json!({"name_en": "Not accredited"})).await;
    app.get(&format!("/v1/bases/{}/evaluations", id(&c)), None).await.expect_problem(401, "unauthorized");

    // After the deadline no self-report is taken.
    let open = evaluation_of(&app, &cycle, &b, "annual").await;
    assert_eq!(open["kind"], "annual");
    app.clock.advance(Duration::days(11));
    let cycle2 = open_cycle(&app, year + 1).await;
    let ea2 = evaluation_of(&app, &cycle2, &a, "annual").await;
    app.clock.advance(Duration::days(11));
    put(format!("/v1/evaluations/{}/self-report", id(&ea2)), op_a.clone(), report)
        .await
        .expect_problem(409, "deadline-passed");
}

/// A base with a future session holding a booking, and an installed plaque.
async fn busy_base(app: &TestApp, name: &str) -> (Value, String, Value, Value, String, Value) {
    let (base, op) = app.accredited_base(json!({"name_en": name})).await;
    let session = app.session(&id(&base), &op, 24 * 20, json!({})).await;
    let (school, token) = app.school_account(&format!("{name} 学校")).await;
    let booking =
        app.post("/v1/bookings", &booking_body(&session, &school, 10, 1), Some(&token)).await.expect(201).body;
    let at = base["location"].clone();
    let sign = app
        .post(&format!("/v1/bases/{}/signs", id(&base)), &json!({"type": "plaque", "location": at}), Some(&op))
        .await
        .expect(201)
        .body;
    let officer = app
        .user(&format!("officer-{}", &id(&base)[30..]), json!({"role": "district_officer", "district_code": "440106"}))
        .await;
    app.post(&format!("/v1/signs/{}/approve", id(&sign)), &json!({}), Some(&officer)).await.expect(200);
    app.post(&format!("/v1/signs/{}/install", id(&sign)), &json!({}), Some(&op)).await.expect(200);
    (base, op, session, booking, token, sign)
}

async fn assert_revoked(
    app: &TestApp,
    base: &Value,
    session: &Value,
    booking: &Value,
    school_token: &str,
    sign: &Value,
) {
    assert_eq!(app.get(&format!("/v1/bases/{}", id(base)), None).await.body["status"], "revoked");
    assert_eq!(app.get(&format!("/v1/sessions/{}", id(session)), None).await.body["status"], "cancelled");
    let b = app.get(&format!("/v1/bookings/{}", id(booking)), Some(school_token)).await.body;
    assert_eq!(b["status"], "cancelled");
    assert!(b["cancel_reason"].as_str().unwrap().contains("revoked"));
    let notes = app.get(&format!("/v1/notifications?booking_id={}", id(booking)), Some(school_token)).await.body;
    assert!(notes["items"].as_array().unwrap().iter().any(|n| n["kind"] == "session_cancelled"));
    assert_eq!(app.get(&format!("/v1/signs/{}", id(sign)), None).await.body["status"], "removal_due");
    let pools = app.get(&format!("/v1/sessions/{}", id(session)), None).await.body;
    assert_eq!(pools["pools"][0]["used"], 0, "places given back");
    let report = app.get("/v1/admin/consistency", Some(&app.admin)).await.body;
    assert_eq!(report["consistent"], true);
}

#[tokio::test]
async fn a_fail_means_rectification_and_a_failed_re_evaluation_revokes() {
    let app = spawn_app().await;
    let (base, _op, session, booking, school_token, sign) = busy_base(&app, "Failing").await;
    let experts = experts(&app).await;
    let year = (app.now() + Duration::hours(8)).year();
    let cycle = open_cycle(&app, year).await;
    let e = evaluation_of(&app, &cycle, &base, "annual").await;
    // 30·0.5 + 50·0.6 + 20·0.6 = 57: fail.
    let f = score_and_finalize(&app, &e, &experts, [5.0, 6.0, 6.0]).await;
    assert_eq!((f["score"].as_f64(), f["grade"].as_str()), (Some(57.0), Some("fail")));
    let b = app.get(&format!("/v1/bases/{}", id(&base)), None).await.body;
    assert_eq!(b["status"], "rectification");
    let until = chrono::DateTime::parse_from_rfc3339(b["rectification_until"].as_str().unwrap()).unwrap();
    let months = (until.with_timezone(&chrono::Utc) - app.now()).num_days();
    assert!((180..=186).contains(&months), "six months: {months} days");
    // Rectification keeps the sessions; the re-evaluation is due at its end.
    assert_eq!(app.get(&format!("/v1/sessions/{}", id(&session)), None).await.body["status"], "open");
    let re = evaluation_of(&app, &cycle, &base, "re_evaluation").await;
    assert_eq!(re["kind"], "re_evaluation");
    let r = score_and_finalize(&app, &re, &experts, [5.0, 5.0, 5.0]).await;
    assert_eq!(r["grade"], "fail");
    assert_revoked(&app, &base, &session, &booking, &school_token, &sign).await;
}

#[tokio::test]
async fn a_second_consecutive_annual_fail_revokes_and_a_passed_re_evaluation_restores() {
    let app = spawn_app().await;
    let (base, op, session, booking, school_token, sign) = busy_base(&app, "Twice failing").await;
    let experts = experts(&app).await;
    let year = (app.now() + Duration::hours(8)).year();
    let last = open_cycle(&app, year - 1).await;
    let e = evaluation_of(&app, &last, &base, "annual").await;
    score_and_finalize(&app, &e, &experts, [5.0, 5.0, 5.0]).await;
    assert_eq!(app.get(&format!("/v1/bases/{}", id(&base)), None).await.body["status"], "rectification");
    // A passed re-evaluation restores the base.
    let re = evaluation_of(&app, &last, &base, "re_evaluation").await;
    let r = score_and_finalize(&app, &re, &experts, [7.0, 7.0, 7.0]).await;
    assert_eq!(r["grade"], "good");
    let b = app.get(&format!("/v1/bases/{}", id(&base)), None).await.body;
    assert_eq!(b["status"], "accredited");
    assert_eq!(b["rectification_until"], Value::Null);
    // This year's annual evaluation fails again: second consecutive annual fail. The session,
    // closed to new bookings meanwhile, is cancelled with its booking all the same.
    app.post(&format!("/v1/sessions/{}/close", id(&session)), &json!({}), Some(&op)).await.expect(200);
    let this = open_cycle(&app, year).await;
    let e2 = evaluation_of(&app, &this, &base, "annual").await;
    score_and_finalize(&app, &e2, &experts, [5.0, 5.0, 5.0]).await;
    assert_revoked(&app, &base, &session, &booking, &school_token, &sign).await;
    let results = app.get(&format!("/v1/bases/{}/evaluations", id(&base)), Some(&app.admin)).await.expect(200).body;
    assert_eq!(results["items"].as_array().unwrap().len(), 3);
}

/// One rule for reading an evaluation, open or final, in the single read and in the list:
/// the bureau, the base's operators, the assigned experts, and the officer of the base's
/// district; not another district's officer, another base's operator, or a school.
#[tokio::test]
async fn the_single_read_and_the_list_of_evaluations_follow_one_rule() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({"name_en": "Read rule"})).await;
    let (_other, other_op) = app.accredited_base(json!({"name_en": "Elsewhere"})).await;
    let year = (app.now() + Duration::hours(8)).year();
    let cycle = open_cycle(&app, year).await;
    let e = evaluation_of(&app, &cycle, &base, "annual").await;
    let tianhe = app.user("eval-read-tianhe", json!({"role": "district_officer", "district_code": "440106"})).await;
    let yuexiu = app.user("eval-read-yuexiu", json!({"role": "district_officer", "district_code": "440104"})).await;
    let (_school, school) = app.school_account("评估 学校").await;
    let experts = experts(&app).await;
    let path = format!("/v1/evaluations/{}", id(&e));
    app.post(&format!("{path}/assign"), &json!({"evaluator_ids": [experts[0].0]}), Some(&app.admin)).await.expect(200);

    let listed = |body: &Value| body["items"].as_array().unwrap().iter().any(|x| x["id"] == e["id"]);
    let list = format!("/v1/evaluations?cycle_id={}", id(&cycle));
    for (who, token) in
        [("the bureau", &app.admin), ("its operator", &op), ("its district", &tianhe), ("its expert", &experts[0].1)]
    {
        assert_eq!(app.get(&path, Some(token)).await.expect(200).body["id"], e["id"], "{who}");
        assert!(listed(&app.get(&list, Some(token)).await.expect(200).body), "{who} lists it");
    }
    for (who, token) in
        [("another district", &yuexiu), ("another base's operator", &other_op), ("the other expert", &experts[1].1)]
    {
        app.get(&path, Some(token)).await.expect_problem(403, "forbidden");
        assert!(!listed(&app.get(&list, Some(token)).await.expect(200).body), "{who} lists it");
    }
    app.get(&path, Some(&school)).await.expect_problem(403, "forbidden");
    app.get(&list, Some(&school)).await.expect_problem(403, "forbidden");
}
