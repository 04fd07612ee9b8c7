//! Public disclosure (信息公开), read without a login: applications on public notice and how to
//! object, the certificates valid now, a finalised cycle's results (revoked bases included).

use chrono::Duration;
use serde_json::{Value, json};

use crate::accreditation::{cast, scored};
use crate::evaluation::{evaluation_of, experts, open_cycle, score_and_finalize};
use crate::helpers::{booking_body, id, spawn_app};

fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().expect("items")
}

#[tokio::test]
async fn anyone_finds_what_is_on_public_notice_and_which_certificates_are_valid() {
    let app = spawn_app().await;
    let c = cast(&app).await;
    let a = scored(&app, &c).await;
    assert!(items(&app.get("/v1/public-notices", None).await.expect(200).body).is_empty());
    app.post(&format!("/v1/accreditations/{a}/start-public-notice"), &json!({}), Some(&app.admin)).await.expect(200);

    let notices = app.get("/v1/public-notices", None).await.expect(200).body;
    let n = &items(&notices)[0];
    assert_eq!(items(&notices).len(), 1);
    assert_eq!(n["accreditation_id"], a.as_str());
    assert_eq!(n["base"]["id"], c.base["id"]);
    assert_eq!(n["base"]["name_en"], "Applicant venue");
    assert_eq!(n["open_for_objections"], true);
    assert!(n["notice_ends_at"].is_string() && n["standard_version"].is_string());
    assert!(n.get("applicant_id").is_none() && n["base"].get("contact_phone").is_none());
    // Where it says, anyone can object without signing in.
    let objection = json!({"name": "市民", "reason": "the hall is smaller than stated"});
    let filed = app.post(n["object_at"].as_str().unwrap(), &objection, None).await.expect(201).body;
    let district = c.base["district_code"].as_str().unwrap();
    assert_eq!(items(&app.get(&format!("/v1/public-notices?district={district}"), None).await.body).len(), 1);
    assert!(items(&app.get("/v1/public-notices?district=440104", None).await.body).is_empty());

    app.clock.advance(Duration::days(8));
    let closed = app.get("/v1/public-notices", None).await.expect(200).body;
    assert_eq!(items(&closed)[0]["open_for_objections"], false, "the notice has ended, the decision is pending");

    // No certificate yet; once decided, the base's is listed, and it verifies.
    assert!(items(&app.get("/v1/certificates", None).await.expect(200).body).is_empty());
    let resolve = format!("/v1/accreditations/{a}/objections/{}/resolve", id(&filed));
    app.post(&resolve, &json!({"outcome": "dismissed", "resolution": "measured: 1200 m²"}), Some(&app.admin))
        .await
        .expect(200);
    let decided = app
        .post(
            &format!("/v1/accreditations/{a}/decide"),
            &json!({"decision": "accredited", "comment": "ok"}),
            Some(&app.admin),
        )
        .await
        .expect(200)
        .body;
    assert!(items(&app.get("/v1/public-notices", None).await.body).is_empty(), "decided: off the notice board");
    let certs = app.get("/v1/certificates", None).await.expect(200).body;
    assert_eq!(items(&certs).len(), 1);
    let cert = &items(&certs)[0];
    assert_eq!(cert["number"], decided["certificate_number"]);
    assert_eq!(cert["status"], "valid");
    let one = app.get(&format!("/v1/certificates/{}", cert["number"].as_str().unwrap()), None).await.expect(200).body;
    assert_eq!(&one, cert, "the list shows each certificate as its own check does");
    assert!(items(&app.get("/v1/certificates?district=440104", None).await.body).is_empty());
    // Lapsed: no longer listed.
    app.clock.advance(Duration::days(5 * 366));
    assert!(items(&app.get("/v1/certificates", None).await.expect(200).body).is_empty());
}

#[tokio::test]
async fn a_finalised_cycles_results_are_public_revoked_bases_included() {
    let app = spawn_app().await;
    let experts = experts(&app).await;
    let year = (app.now() + Duration::hours(8)).format("%Y").to_string().parse::<i32>().unwrap();
    let good = app.base(json!({"status": "accredited", "name_en": "Good venue"})).await;
    let failing = app.base(json!({"status": "accredited", "name_en": "Failing venue"})).await;
    let pending = app.base(json!({"status": "accredited", "name_en": "Pending venue"})).await;
    let cycle = open_cycle(&app, year).await;
    let eg = evaluation_of(&app, &cycle, &good, "annual").await;
    score_and_finalize(&app, &eg, &experts, [9.0, 9.0, 9.0]).await;
    let ef = evaluation_of(&app, &cycle, &failing, "annual").await;
    score_and_finalize(&app, &ef, &experts, [5.0, 5.0, 5.0]).await;
    let re = evaluation_of(&app, &cycle, &failing, "re_evaluation").await;
    score_and_finalize(&app, &re, &experts, [5.0, 5.0, 5.0]).await;
    evaluation_of(&app, &cycle, &pending, "annual").await;
    assert_eq!(app.get(&format!("/v1/bases/{}", id(&failing)), None).await.body["status"], "revoked");

    let path = format!("/v1/evaluation-cycles/{}/results", id(&cycle));
    let results = app.get(&path, None).await.expect(200).body;
    let rows: Vec<(&str, &str, &str)> = items(&results)
        .iter()
        .map(|r| (r["base"]["name_en"].as_str().unwrap(), r["kind"].as_str().unwrap(), r["grade"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("Good venue", "annual", "excellent"),
            ("Failing venue", "annual", "fail"),
            ("Failing venue", "re_evaluation", "fail")
        ],
        "final results only, by evaluation, the revoked base's too"
    );
    let paged = app.get(&format!("{path}?limit=2"), None).await.expect(200).body;
    let next = paged["next_cursor"].as_str().unwrap();
    let rest = app.get(&format!("{path}?limit=2&cursor={next}"), None).await.expect(200).body;
    assert_eq!(items(&rest).len(), 1);
    app.get(&format!("/v1/evaluation-cycles/{}/results", uuid::Uuid::now_v7()), None)
        .await
        .expect_problem(404, "not-found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rectification_that_ends_unpassed_is_revoked_by_the_sweep_once() {
    let app = spawn_app().await;
    let other = kepu::db::connect(app.database_url(), 2).await.expect("connect");
    let experts = experts(&app).await;
    let (base, op) =
        app.accredited_base(json!({"name_en": "Unrectified", "booking_rules": {"opens_days_before": 365}})).await;
    let s = app.session(&id(&base), &op, 24 * 200, json!({})).await;
    let (school, token) = app.school_account("受影响小学").await;
    let booking = app.post("/v1/bookings", &booking_body(&s, &school, 20, 1), Some(&token)).await.expect(201).body;
    let year = (app.now() + Duration::hours(8)).format("%Y").to_string().parse::<i32>().unwrap();
    let cycle = open_cycle(&app, year).await;
    let e = evaluation_of(&app, &cycle, &base, "annual").await;
    score_and_finalize(&app, &e, &experts, [5.0, 5.0, 5.0]).await;
    let path = format!("/v1/bases/{}", id(&base));
    assert_eq!(app.get(&path, None).await.body["status"], "rectification");
    assert_eq!(kepu::domain::evaluation::revoke_unrectified(&app.db, app.now()).await.unwrap(), 0);

    app.clock.advance(Duration::days(185));
    let now = app.now();
    let (a, b) = tokio::join!(
        kepu::domain::evaluation::revoke_unrectified(&app.db, now),
        kepu::domain::evaluation::revoke_unrectified(&other, now)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1, "revoked once by two sweeps");
    assert_eq!(app.get(&path, None).await.body["status"], "revoked");
    assert_eq!(app.get(&format!("/v1/sessions/{}", id(&s)), None).await.body["status"], "cancelled");
    let bk = app.get(&format!("/v1/bookings/{}", id(&booking)), Some(&app.admin)).await.body;
    assert_eq!(bk["status"], "cancelled");
    let notes = app.get("/v1/notifications", Some(&token)).await.body;
    assert!(items(&notes).iter().any(|n| n["kind"] == "session_cancelled"));
    let log = app.get(&format!("/v1/audit?entity=base&entity_id={}", id(&base)), Some(&app.admin)).await.body;
    assert!(items(&log).iter().any(|e| e["action"] == "base.revoke.rectification_expired"), "{log:#}");
    // Its result stays public.
    let results = app.get(&format!("/v1/evaluation-cycles/{}/results", id(&cycle)), None).await.expect(200).body;
    assert_eq!(items(&results)[0]["base"]["id"], base["id"]);
}
