//! Exhibit sharing (展品共享): finding shareable exhibits, the loan workflow with its
//! notifications and audit, what each side sees, and overlapping loans under concurrency.

use serde_json::{Value, json};

use crate::helpers::{TestApp, exhibit_body, id, spawn_app};

/// A base in `district` with an operator, as (base, operator token).
async fn base_with_operator(app: &TestApp, name: &str, district: &str, lat: f64, lon: f64) -> (Value, String) {
    let b = app
        .base(
            json!({"name_zh": name, "name_en": name, "district_code": district, "location": {"lat": lat, "lon": lon}}),
        )
        .await;
    let username = format!("op-{}", &id(&b)[24..]);
    let op = app.user(&username, json!({"role": "operator", "base_ids": [id(&b)]})).await;
    (b, op)
}

async fn shareable_exhibit(app: &TestApp, base: &Value, op: &str) -> Value {
    let mut body = exhibit_body();
    body["shareable"] = json!(true);
    app.post(&format!("/v1/bases/{}/exhibits", id(base)), &body, Some(op)).await.expect(201).body
}

fn day(app: &TestApp, in_days: i64) -> String {
    (app.now() + chrono::Duration::days(in_days))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive()
        .to_string()
}

fn loan_body(borrower: &Value, from: &str, to: &str) -> Value {
    json!({"borrower_base_id": borrower["id"], "starts_on": from, "ends_on": to, "purpose": "科技周展览"})
}

async fn kinds_of_notifications(app: &TestApp, token: &str) -> Vec<String> {
    let body = app.get("/v1/notifications?limit=500", Some(token)).await.expect(200).body;
    body["items"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_loan_goes_from_request_to_return_and_both_sides_and_their_districts_see_it() {
    let app = spawn_app().await;
    let (owner, op_owner) = base_with_operator(&app, "天河科学馆", "440106", 23.1382, 113.3299).await;
    let (borrower, op_borrower) = base_with_operator(&app, "越秀少年宫", "440104", 23.1290, 113.2668).await;
    let e = shareable_exhibit(&app, &owner, &op_owner).await;
    let hidden = app.exhibit(&id(&owner), &op_owner).await; // not shareable
    let (from, to) = (day(&app, 10), day(&app, 20));

    // The borrower finds it: shareable, by kind, theme of its base, audience, text, near, days.
    let search = format!(
        "/v1/exhibits?shareable=true&kind=interactive&theme=astronomy&audience=junior&q=%E6%91%86&near=23.1290,113.2668&radius_km=15&from={from}&to={to}"
    );
    let found = app.get(&search, None).await.expect(200).body;
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    assert_eq!(items[0]["id"], e["id"]);
    assert!(items[0]["distance_km"].as_f64().unwrap() > 5.0);
    assert_ne!(items[0]["id"], hidden["id"]);
    app.get("/v1/exhibits?shareable=true&audience=senior", None).await.expect(200).body["items"]
        .as_array()
        .unwrap()
        .is_empty()
        .then_some(())
        .expect("no exhibit for seniors");
    app.get("/v1/exhibits?near=23.1290,113.2668&radius_km=1&shareable=true", None).await.expect(200).body["items"]
        .as_array()
        .unwrap()
        .is_empty()
        .then_some(())
        .expect("the owner is farther than 1 km");

    // Request → the owner is told.
    let path = format!("/v1/exhibits/{}/loans", id(&e));
    let loan = app.post(&path, &loan_body(&borrower, &from, &to), Some(&op_borrower)).await.expect(201).body;
    assert_eq!(loan["status"], "requested");
    assert_eq!(loan["owner_base_id"], owner["id"]);
    assert_eq!(loan["borrower_base_name"], "越秀少年宫");
    assert!(kinds_of_notifications(&app, &op_owner).await.contains(&"loan_requested".to_string()));
    let loan_path = format!("/v1/exhibit-loans/{}", id(&loan));

    // Only the owner decides.
    app.post(&format!("{loan_path}/approve"), &json!({}), Some(&op_borrower)).await.expect_problem(403, "forbidden");
    let approved = app
        .post(&format!("{loan_path}/approve"), &json!({"conditions": "借方投保"}), Some(&op_owner))
        .await
        .expect(200)
        .body;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["conditions"], "借方投保");
    assert!(kinds_of_notifications(&app, &op_borrower).await.contains(&"loan_approved".to_string()));
    // Approved days are no longer free.
    let busy = app.get(&format!("/v1/exhibits?shareable=true&from={to}"), None).await.expect(200).body;
    assert!(busy["items"].as_array().unwrap().is_empty(), "{busy}");
    let later = app.get(&format!("/v1/exhibits?shareable=true&from={}", day(&app, 21)), None).await.expect(200).body;
    assert_eq!(later["items"].as_array().unwrap().len(), 1);

    // Dispatch: on loan, and in the borrower's list with where it comes from.
    let out = app.post(&format!("{loan_path}/dispatch"), &json!({}), Some(&op_owner)).await.expect(200).body;
    assert_eq!(out["status"], "on_loan");
    let got = app.get(&format!("/v1/exhibits/{}", id(&e)), None).await.expect(200).body;
    assert_eq!(got["status"], "on_loan");
    assert_eq!(got["base_id"], owner["id"], "the owner stays the owner");
    let theirs = app.get(&format!("/v1/bases/{}/exhibits", id(&borrower)), None).await.expect(200).body;
    let items = theirs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["on_loan"]["owner_base_name"], "天河科学馆");
    assert_eq!(items[0]["on_loan"]["ends_on"], to.as_str());
    let own = app.get(&format!("/v1/bases/{}/exhibits", id(&owner)), None).await.expect(200).body;
    assert_eq!(own["items"].as_array().unwrap().len(), 2, "lent exhibits stay in the owner's list");
    // Its status is the loan's while it is out.
    let etag = app.get(&format!("/v1/exhibits/{}", id(&e)), None).await.etag();
    app.patch(&format!("/v1/exhibits/{}", id(&e)), &json!({"status": "on_display"}), Some(&op_owner), Some(&etag))
        .await
        .expect_problem(409, "exhibit-out");

    // Who sees the loan.
    let tianhe = app.user("tianhe", json!({"role": "district_officer", "district_code": "440106"})).await;
    let yuexiu = app.user("yuexiu", json!({"role": "district_officer", "district_code": "440104"})).await;
    let haizhu = app.user("haizhu", json!({"role": "district_officer", "district_code": "440105"})).await;
    let (_, school) = app.school_account("s").await;
    for token in [&op_owner, &op_borrower, &tianhe, &yuexiu, &app.admin] {
        app.get(&loan_path, Some(token)).await.expect(200);
        let list = app.get("/v1/exhibit-loans", Some(token)).await.expect(200).body;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
    }
    app.get(&loan_path, Some(&haizhu)).await.expect_problem(404, "not-found");
    assert!(app.get("/v1/exhibit-loans", Some(&haizhu)).await.expect(200).body["items"].as_array().unwrap().is_empty());
    app.get("/v1/exhibit-loans", Some(&school)).await.expect_problem(403, "forbidden");
    app.get("/v1/exhibit-loans", None).await.expect(401);

    // Return damaged: maintenance, with a note for the owner; both sides told.
    let back = app
        .post(&format!("{loan_path}/return"), &json!({"condition": "damaged", "note": "摆线磨损"}), Some(&op_owner))
        .await
        .expect(200)
        .body;
    assert_eq!(back["status"], "returned");
    assert_eq!(back["return_condition"], "damaged");
    let got = app.get(&format!("/v1/exhibits/{}", id(&e)), None).await;
    assert_eq!(got.body["status"], "maintenance");
    assert!(got.body.get("on_loan").is_none());
    let theirs = app.get(&format!("/v1/bases/{}/exhibits", id(&borrower)), None).await.expect(200).body;
    assert!(theirs["items"].as_array().unwrap().is_empty());
    let notes_path = format!("/v1/exhibits/{}/maintenance", id(&e));
    app.get(&notes_path, Some(&op_borrower)).await.expect_problem(403, "forbidden");
    let notes = app.get(&notes_path, Some(&op_owner)).await.expect(200).body;
    assert_eq!(notes["items"][0]["note"], "摆线磨损");
    assert_eq!(notes["items"][0]["loan_id"], loan["id"]);
    assert!(notes["items"][0]["closed_at"].is_null());
    for token in [&op_owner, &op_borrower] {
        assert!(kinds_of_notifications(&app, token).await.contains(&"loan_returned".to_string()));
    }
    // A repaired exhibit goes back on display, and its note is closed.
    app.patch(
        &format!("/v1/exhibits/{}", id(&e)),
        &json!({"status": "on_display"}),
        Some(&op_owner),
        Some(&got.etag()),
    )
    .await
    .expect(200);
    let notes = app.get(&notes_path, Some(&op_owner)).await.expect(200).body;
    assert!(notes["items"][0]["closed_at"].is_string());

    // The sharing report: per base and district, the days away (it left and came back today: 1).
    let report = app.get("/v1/statistics/sharing", Some(&app.admin)).await.expect(200).body;
    let base_row =
        |id_: &Value| report["bases"].as_array().unwrap().iter().find(|b| b["base_id"] == *id_).cloned().unwrap();
    let lender = base_row(&owner["id"]);
    assert_eq!((lender["loans_lent"].as_i64(), lender["days_lent"].as_i64()), (Some(1), Some(1)), "{report}");
    assert_eq!((lender["shareable_exhibits"].as_i64(), lender["never_lent"].as_i64()), (Some(1), Some(0)));
    let borrower_row = base_row(&borrower["id"]);
    assert_eq!((borrower_row["loans_borrowed"].as_i64(), borrower_row["days_borrowed"].as_i64()), (Some(1), Some(1)));
    let districts = report["districts"].as_array().unwrap();
    let tianhe_row = districts.iter().find(|d| d["district_code"] == "440106").unwrap();
    assert_eq!(tianhe_row["loans_lent"], 1);
    assert_eq!(tianhe_row["name"], "天河区");
    let theirs = app.get("/v1/statistics/sharing", Some(&yuexiu)).await.expect(200).body;
    assert_eq!(theirs["bases"].as_array().unwrap().len(), 1, "an officer sees its district: {theirs}");
    app.get("/v1/statistics/sharing", Some(&op_owner)).await.expect_problem(403, "forbidden");
    let never = app.get("/v1/exhibits?shareable=true&never_lent=true", None).await.expect(200).body;
    assert!(never["items"].as_array().unwrap().is_empty(), "{never}");

    // Every step is in the audit log.
    let audit = app.get(&format!("/v1/audit?entity=exhibit_loan&entity_id={}", id(&loan)), Some(&app.admin)).await;
    let actions: Vec<&str> =
        audit.body["items"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    for a in ["exhibit_loan.create", "exhibit_loan.approve", "exhibit_loan.dispatch", "exhibit_loan.return"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

#[tokio::test]
async fn unlendable_exhibits_and_bad_requests_are_refused_with_the_reason() {
    let app = spawn_app().await;
    let (owner, op_owner) = base_with_operator(&app, "甲", "440106", 23.1382, 113.3299).await;
    let (borrower, op_borrower) = base_with_operator(&app, "乙", "440104", 23.1290, 113.2668).await;
    let e = shareable_exhibit(&app, &owner, &op_owner).await;
    let private = app.exhibit(&id(&owner), &op_owner).await;
    let (from, to) = (day(&app, 3), day(&app, 5));
    let path = format!("/v1/exhibits/{}/loans", id(&e));

    app.post(&format!("/v1/exhibits/{}/loans", id(&private)), &loan_body(&borrower, &from, &to), Some(&op_borrower))
        .await
        .expect_problem(409, "not-shareable");
    app.post(&path, &loan_body(&owner, &from, &to), Some(&op_owner)).await.expect_invalid("borrower_base_id");
    app.post(&path, &loan_body(&borrower, &from, &to), Some(&op_owner)).await.expect_problem(403, "forbidden");
    app.post(&path, &loan_body(&borrower, &day(&app, -1), &to), Some(&op_borrower)).await.expect_invalid("starts_on");
    app.post(&path, &loan_body(&borrower, &to, &from), Some(&op_borrower)).await.expect_invalid("ends_on");
    app.post(&path, &loan_body(&borrower, &from, &day(&app, 400)), Some(&op_borrower)).await.expect_invalid("ends_on");
    let mut blank = loan_body(&borrower, &from, &to);
    blank["purpose"] = json!("  ");
    app.post(&path, &blank, Some(&op_borrower)).await.expect_invalid("purpose");
    app.post(
        "/v1/exhibits/019a0000-0000-7000-8000-000000000000/loans",
        &loan_body(&borrower, &from, &to),
        Some(&op_borrower),
    )
    .await
    .expect_problem(404, "not-found");
    app.get("/v1/exhibits?from=2027-01-02&to=2027-01-01", None).await.expect_invalid("to");
    app.get("/v1/exhibits?to=2027-01-01", None).await.expect_invalid("to");

    // Status on_loan is the loans' to set.
    let etag = app.get(&format!("/v1/exhibits/{}", id(&e)), None).await.etag();
    app.patch(&format!("/v1/exhibits/{}", id(&e)), &json!({"status": "on_loan"}), Some(&op_owner), Some(&etag))
        .await
        .expect_invalid("status");

    // A request made, then the exhibit goes into maintenance: it cannot be approved.
    let loan = app.post(&path, &loan_body(&borrower, &from, &to), Some(&op_borrower)).await.expect(201).body;
    app.patch(&format!("/v1/exhibits/{}", id(&e)), &json!({"status": "maintenance"}), Some(&op_owner), Some(&etag))
        .await
        .expect(200);
    let loan_path = format!("/v1/exhibit-loans/{}", id(&loan));
    app.post(&format!("{loan_path}/approve"), &json!({}), Some(&op_owner))
        .await
        .expect_problem(409, "exhibit-unavailable");
    app.post(&path, &loan_body(&borrower, &from, &to), Some(&op_borrower))
        .await
        .expect_problem(409, "exhibit-unavailable");
    app.post(&format!("{loan_path}/dispatch"), &json!({}), Some(&op_owner)).await.expect_problem(409, "loan-state");
    // The borrower withdraws; a withdrawn loan cannot be approved.
    let cancelled = app.post(&format!("{loan_path}/cancel"), &json!({}), Some(&op_borrower)).await.expect(200).body;
    assert_eq!(cancelled["status"], "cancelled");
    app.post(&format!("{loan_path}/approve"), &json!({}), Some(&op_owner)).await.expect_problem(409, "loan-state");
    app.post(&format!("{loan_path}/return"), &json!({"condition": "lost"}), Some(&op_owner))
        .await
        .expect_invalid("condition");
    assert!(kinds_of_notifications(&app, &op_owner).await.contains(&"loan_cancelled".to_string()));

    // An exhibit asked for is retired, never deleted (its loans are the sharing record); nor is
    // one added as if already lent.
    app.delete(&format!("/v1/exhibits/{}", id(&e)), Some(&op_owner)).await.expect_problem(409, "exhibit-has-loans");
    let mut lent = exhibit_body();
    lent["status"] = json!("on_loan");
    app.post(&format!("/v1/bases/{}/exhibits", id(&owner)), &lent, Some(&op_owner)).await.expect_invalid("status");
    app.post(&path, &loan_body(&borrower, "+10000-01-01", "+10000-01-02"), Some(&op_borrower))
        .await
        .expect_invalid("starts_on");
}

#[tokio::test]
async fn an_exhibit_sent_out_early_or_kept_late_stays_taken_until_it_is_back() {
    let app = spawn_app().await;
    let (owner, op_owner) = base_with_operator(&app, "丙", "440106", 23.1382, 113.3299).await;
    let (borrower, op_borrower) = base_with_operator(&app, "丁", "440104", 23.1290, 113.2668).await;
    let (other, op_other) = base_with_operator(&app, "戊", "440105", 23.10, 113.30).await;
    let e = shareable_exhibit(&app, &owner, &op_owner).await;
    let path = format!("/v1/exhibits/{}/loans", id(&e));
    // A loan for days 30–40, sent out today (early, for the borrower's preparations).
    let loan = app
        .post(&path, &loan_body(&borrower, &day(&app, 30), &day(&app, 40)), Some(&op_borrower))
        .await
        .expect(201)
        .body;
    let loan_path = format!("/v1/exhibit-loans/{}", id(&loan));
    for step in ["approve", "dispatch"] {
        app.post(&format!("{loan_path}/{step}"), &json!({}), Some(&op_owner)).await.expect(200);
    }
    // It is away now: days 5–10 are not free, though the loan's own days come later.
    let free =
        |from: i64, to: i64| format!("/v1/exhibits?shareable=true&from={}&to={}", day(&app, from), day(&app, to));
    assert!(app.get(&free(5, 10), None).await.expect(200).body["items"].as_array().unwrap().is_empty());
    app.post(&path, &loan_body(&other, &day(&app, 5), &day(&app, 10)), Some(&op_other))
        .await
        .expect_problem(409, "loan-overlap");
    // After its last day it is free again…
    assert_eq!(app.get(&free(41, 45), None).await.expect(200).body["items"].as_array().unwrap().len(), 1);
    // …unless it is overdue: then it is taken until it is back.
    app.clock.advance(chrono::Duration::days(42));
    assert!(app.get(&free(1, 3), None).await.expect(200).body["items"].as_array().unwrap().is_empty());
    app.post(&path, &loan_body(&other, &day(&app, 1), &day(&app, 3)), Some(&op_other))
        .await
        .expect_problem(409, "loan-overlap");
    app.post(&format!("{loan_path}/return"), &json!({"condition": "good"}), Some(&op_owner)).await.expect(200);
    app.post(&path, &loan_body(&other, &day(&app, 1), &day(&app, 3)), Some(&op_other)).await.expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_of_overlapping_loans_lend_the_exhibit_once() {
    const BORROWERS: usize = 8;
    let app = spawn_app().await;
    let second = app.second_server().await;
    let (owner, op_owner) = base_with_operator(&app, "主馆", "440106", 23.1382, 113.3299).await;
    let e = shareable_exhibit(&app, &owner, &op_owner).await;
    let path = format!("/v1/exhibits/{}/loans", id(&e));
    let mut loans = Vec::new();
    for i in 0..BORROWERS {
        let (b, op) = base_with_operator(&app, &format!("借方{i}"), "440104", 23.12 + i as f64 * 0.001, 113.26).await;
        // Periods that all share day 12 with each other.
        let body = loan_body(&b, &day(&app, 5 + i as i64), &day(&app, 12 + i as i64));
        loans.push(app.post(&path, &body, Some(&op)).await.expect(201).body);
    }
    let client = reqwest::Client::new();
    let tasks = loans.iter().enumerate().map(|(i, loan)| {
        let server = if i % 2 == 0 { app.base_url.clone() } else { second.clone() };
        let (client, token) = (client.clone(), op_owner.clone());
        let url = format!("{server}/v1/exhibit-loans/{}/approve", id(loan));
        tokio::spawn(async move {
            let res = client.post(url).bearer_auth(token).json(&json!({})).send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        })
    });
    let results: Vec<(u16, Value)> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    let approved = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(approved, 1, "exactly one approval wins: {results:?}");
    for (s, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*s, 409, "{body}");
        let slug = body["type"].as_str().unwrap();
        assert!(slug.ends_with("loan-overlap") || slug.ends_with("loan-state"), "{body}");
    }
    let list =
        app.get(&format!("/v1/exhibit-loans?exhibit_id={}&limit=500", id(&e)), Some(&app.admin)).await.expect(200).body;
    let statuses: Vec<&str> = list["items"].as_array().unwrap().iter().map(|l| l["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "approved").count(), 1, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == "declined").count(),
        BORROWERS - 1,
        "the others are declined: {statuses:?}"
    );

    // Requests racing for days the approved loan holds are all refused.
    let won = list["items"].as_array().unwrap().iter().find(|l| l["status"] == "approved").unwrap().clone();
    let (late, late_op) = base_with_operator(&app, "迟到", "440105", 23.10, 113.30).await;
    let body = loan_body(&late, won["starts_on"].as_str().unwrap(), won["ends_on"].as_str().unwrap());
    let tasks = (0..6).map(|i| {
        let server = if i % 2 == 0 { app.base_url.clone() } else { second.clone() };
        let (client, token, body) = (client.clone(), late_op.clone(), body.clone());
        let url = format!("{server}{path}");
        tokio::spawn(
            async move { client.post(url).bearer_auth(token).json(&body).send().await.unwrap().status().as_u16() },
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 409), "{statuses:?}");
}
