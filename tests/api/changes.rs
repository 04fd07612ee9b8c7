//! Changing bookings and sessions: resizing and moving a booking under `If-Match` (races
//! included: the books stay exact, a booking is in exactly one session), changing a session's
//! capacity, audiences and times, the pools a base plans with, check-in at the gate by code,
//! and reminders sent once each by two servers.

use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, booking_body, id, spawn_app};
use crate::races::{assert_consistent, schools};

async fn used(app: &TestApp, session: &Value) -> i64 {
    let s = app.get(&format!("/v1/sessions/{}", id(session)), None).await.expect(200).body;
    s["pools"].as_array().unwrap().iter().find(|p| p["own"] == true).unwrap()["used"].as_i64().unwrap()
}

async fn booking(app: &TestApp, b: &Value) -> Reply {
    app.get(&format!("/v1/bookings/{}", id(b)), Some(&app.admin)).await.expect(200)
}

async fn resize(app: &TestApp, b: &Value, token: &str, body: Value) -> Reply {
    let tag = booking(app, b).await.etag();
    app.patch(&format!("/v1/bookings/{}", id(b)), &body, Some(token), Some(&tag)).await
}

async fn move_to(
    app: &TestApp,
    b: &Value,
    token: &str,
    session: &Value,
    tag: Option<&str>,
    key: Option<&str>,
) -> Reply {
    let mut req = app
        .client
        .post(app.url(&format!("/v1/bookings/{}/move", id(b))))
        .bearer_auth(token)
        .json(&json!({"session_id": session["id"]}));
    if let Some(tag) = tag {
        req = req.header("if-match", tag);
    }
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    app.send(req).await
}

async fn kinds(app: &TestApp, token: &str) -> Vec<String> {
    let notes = app.get("/v1/notifications?limit=200", Some(token)).await.expect(200).body;
    notes["items"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_school_resizes_a_booking_within_the_places_left_and_a_smaller_group_lets_a_waiting_one_in() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 60})).await;
    let (a, ta) = app.school_account("甲校").await;
    let (b, tb) = app.school_account("乙校").await;
    let (c, tc) = app.school_account("丙校").await;
    let mine = app.post("/v1/bookings", &booking_body(&s, &a, 30, 2), Some(&ta)).await.expect(201).body;
    app.post("/v1/bookings", &booking_body(&s, &b, 10, 1), Some(&tb)).await.expect(201);
    let mut wait = booking_body(&s, &c, 20, 1);
    wait["waitlist"] = json!(true);
    let waiting = app.post("/v1/bookings", &wait, Some(&tc)).await.expect(202).body;
    assert_eq!(used(&app, &s).await, 43);

    // More pupils: the difference comes from the session's pools, in one step.
    let grown = resize(&app, &mine, &ta, json!({"students": 40, "teachers": 3})).await.expect(200);
    assert_eq!(grown.body["students"], 40);
    assert_eq!(grown.body["version"], 2);
    assert_eq!(grown.etag(), "\"2\"");
    assert_eq!(used(&app, &s).await, 54);
    // Too many for what is left: refused, saying how many places are left, nothing changed.
    let refused = resize(&app, &mine, &ta, json!({"students": 50})).await.expect_problem(409, "capacity-exhausted");
    assert!(refused.body["detail"].as_str().unwrap().contains("6 places left"), "{:#}", refused.body);
    assert_eq!(booking(&app, &mine).await.body["students"], 40);
    assert_eq!(used(&app, &s).await, 54);
    // Fewer: the places go back and the waiting group that now fits is confirmed.
    resize(&app, &mine, &ta, json!({"students": 18, "teachers": 1, "needs": "two wheelchair users"})).await.expect(200);
    assert_eq!(booking(&app, &waiting).await.body["status"], "confirmed");
    assert_eq!(used(&app, &s).await, 19 + 11 + 21);
    assert!(kinds(&app, &tc).await.contains(&"booking_promoted".to_string()));
    assert!(kinds(&app, &ta).await.contains(&"booking_changed".to_string()));
    let audit =
        app.get(&format!("/v1/audit?entity=booking&entity_id={}", id(&mine)), Some(&app.admin)).await.expect(200).body;
    let updates: Vec<(&Value, &Value)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "booking.update")
        .map(|e| (&e["before"]["students"], &e["after"]["students"]))
        .collect();
    assert_eq!(updates.len(), 2, "each change audited, the refused one not");
    assert!(updates.contains(&(&json!(30), &json!(40))) && updates.contains(&(&json!(40), &json!(18))), "{updates:?}");
    assert_consistent(&app, &[&s]).await;
}

#[tokio::test]
async fn a_resize_that_breaks_a_rule_is_a_problem_naming_it_and_changes_nothing() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({"booking_rules": {"max_group_size": 60}})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 100, "max_group_size": 50})).await;
    let (school, token) = app.school_account("规则学校").await;
    let (_, other) = app.school_account("别的学校").await;
    let b = app.post("/v1/bookings", &booking_body(&s, &school, 20, 1), Some(&token)).await.expect(201).body;
    let path = format!("/v1/bookings/{}", id(&b));
    resize(&app, &b, &token, json!({"students": 45})).await.expect_invalid("teachers");
    resize(&app, &b, &token, json!({"students": 48, "teachers": 3})).await.expect_invalid("students");
    resize(&app, &b, &token, json!({"contact_phone": "none"})).await.expect_invalid("contact_phone");
    resize(&app, &b, &token, json!({"students": "many"})).await.expect_invalid("students");
    resize(&app, &b, &token, json!({"code": "AAAAAA"})).await.expect_invalid("code");
    app.patch(&path, &json!({"students": 21}), Some(&token), None).await.expect_problem(428, "precondition-required");
    app.patch(&path, &json!({"students": 21}), Some(&token), Some("\"7\""))
        .await
        .expect_problem(412, "precondition-failed");
    resize(&app, &b, &other, json!({"students": 21})).await.expect(403);
    resize(&app, &b, &op, json!({"students": 21})).await.expect(403);
    let now = booking(&app, &b).await.body;
    assert_eq!(
        (now["students"].as_i64(), now["teachers"].as_i64(), now["version"].as_i64()),
        (Some(20), Some(1), Some(1))
    );
    assert_eq!(used(&app, &s).await, 21);
    // Contact details alone may change while the window is closed, the size may not.
    app.clock.advance(Duration::hours(60));
    resize(&app, &b, &token, json!({"contact_name": "王老师"})).await.expect(200);
    resize(&app, &b, &token, json!({"students": 10})).await.expect_problem(422, "booking-window-closed");
    let now = booking(&app, &b).await.body;
    assert_eq!((now["contact_name"].as_str(), now["students"].as_i64()), (Some("王老师"), Some(20)));
}

#[tokio::test]
async fn a_cancellation_promotes_the_first_waiting_group_that_fits() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 50})).await;
    let (a, ta) = app.school_account("甲").await;
    let (d, td) = app.school_account("丁").await;
    let (b, tb) = app.school_account("乙").await;
    let (c, tc) = app.school_account("丙").await;
    app.post("/v1/bookings", &booking_body(&s, &a, 30, 2), Some(&ta)).await.expect(201);
    let leaving = app.post("/v1/bookings", &booking_body(&s, &d, 10, 1), Some(&td)).await.expect(201).body;
    let mut big = booking_body(&s, &b, 20, 1);
    big["waitlist"] = json!(true);
    let big = app.post("/v1/bookings", &big, Some(&tb)).await.expect(202).body;
    let mut small = booking_body(&s, &c, 8, 1);
    small["waitlist"] = json!(true);
    let small = app.post("/v1/bookings", &small, Some(&tc)).await.expect(202).body;
    app.post(&format!("/v1/bookings/{}/cancel", id(&leaving)), &json!({}), Some(&td)).await.expect(200);
    // 18 places free: the first in line (21) does not fit, the next (9) does.
    assert_eq!(booking(&app, &big).await.body["status"], "waitlisted");
    assert_eq!(booking(&app, &small).await.body["status"], "confirmed");
    assert_eq!(used(&app, &s).await, 32 + 9);
}

#[tokio::test]
async fn a_booking_moves_to_another_session_keeping_its_code_and_its_calendar_event() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let (elsewhere, op2) = app.accredited_base(json!({"name_zh": "另一个基地"})).await;
    let from = app.session(&id(&base), &op, 72, json!({"capacity": 50})).await;
    let to = app.session(&id(&elsewhere), &op2, 96, json!({"capacity": 50})).await;
    let (school, token) = app.school_account("搬家小学").await;
    let (other, to_other) = app.school_account("等候小学").await;
    let b = app.post("/v1/bookings", &booking_body(&from, &school, 40, 2), Some(&token)).await.expect(201).body;
    let mut wait = booking_body(&from, &other, 20, 1);
    wait["waitlist"] = json!(true);
    let waiting = app.post("/v1/bookings", &wait, Some(&to_other)).await.expect(202).body;
    let tag = booking(&app, &b).await.etag();

    let moved = move_to(&app, &b, &token, &to, Some(&tag), Some("move-1")).await.expect(200).body;
    assert_eq!(moved["session_id"], to["id"]);
    assert_eq!(moved["base_id"], elsewhere["id"]);
    assert_eq!(moved["starts_at"], to["starts_at"]);
    assert_eq!(moved["code"], b["code"]);
    assert_eq!(moved["version"], 2);
    assert_eq!((used(&app, &from).await, used(&app, &to).await), (21, 42));
    assert_eq!(booking(&app, &waiting).await.body["status"], "confirmed", "the old session's waiting list moved up");
    // The same key and body replay the answer, though the ETag has moved on.
    let again = move_to(&app, &b, &token, &to, Some(&tag), Some("move-1")).await.expect(200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!((used(&app, &from).await, used(&app, &to).await), (21, 42));
    assert!(kinds(&app, &token).await.contains(&"booking_moved".to_string()));
    let feed = app.get(&format!("/v1/schools/{}/bookings.ics", id(&school)), Some(&token)).await.expect(200);
    let ics = feed.body.as_str().unwrap();
    assert!(ics.contains(&format!("UID:{}@kepu", id(&b))), "{ics}");
    assert!(ics.contains("SEQUENCE:1"), "{ics}");
    assert_consistent(&app, &[&from, &to]).await;
}

#[tokio::test]
async fn a_move_that_breaks_a_rule_leaves_the_booking_where_it_was() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let from = app.session(&id(&base), &op, 72, json!({"capacity": 50})).await;
    let (school, token) = app.school_account("不动小学").await;
    let b = app.post("/v1/bookings", &booking_body(&from, &school, 40, 2), Some(&token)).await.expect(201).body;
    let tag = booking(&app, &b).await.etag();
    let cancelled = app.session(&id(&base), &op, 100, json!({})).await;
    app.post(&format!("/v1/sessions/{}/cancel", id(&cancelled)), &json!({"reason": "repairs"}), Some(&op))
        .await
        .expect(200);
    let closed = app.session(&id(&base), &op, 104, json!({})).await;
    app.post(&format!("/v1/sessions/{}/close", id(&closed)), &json!({}), Some(&op)).await.expect(200);
    let full = app.session(&id(&base), &op, 108, json!({"capacity": 30})).await;
    let seniors = app.session(&id(&base), &op, 112, json!({"audiences": ["senior"]})).await;
    let (suspended, op3) = app.accredited_base(json!({"name_zh": "过期基地"})).await;
    let at_suspended = app.session(&id(&suspended), &op3, 116, json!({})).await;
    let tag3 = app.get(&format!("/v1/bases/{}", id(&suspended)), None).await.etag();
    app.patch(&format!("/v1/bases/{}", id(&suspended)), &json!({"status": "expired"}), Some(&app.admin), Some(&tag3))
        .await
        .expect(200);
    let (other, other_token) = app.school_account("先到小学").await;
    let clash_base = app.accredited_base(json!({"name_zh": "冲突基地"})).await;
    let clash = app.session(&id(&clash_base.0), &clash_base.1, 120, json!({})).await;
    let overlapping = app.session(&id(&base), &op, 120, json!({})).await;
    app.post("/v1/bookings", &booking_body(&clash, &school, 10, 1), Some(&token)).await.expect(201);
    app.post("/v1/bookings", &booking_body(&full, &other, 25, 2), Some(&other_token)).await.expect(201);

    move_to(&app, &b, &token, &cancelled, Some(&tag), None).await.expect_problem(409, "session-not-open");
    move_to(&app, &b, &token, &closed, Some(&tag), None).await.expect_problem(409, "session-not-open");
    move_to(&app, &b, &token, &at_suspended, Some(&tag), None).await.expect_problem(409, "base-not-accredited");
    move_to(&app, &b, &token, &full, Some(&tag), None).await.expect_problem(409, "capacity-exhausted");
    move_to(&app, &b, &token, &overlapping, Some(&tag), None).await.expect_problem(409, "overlapping-booking");
    move_to(&app, &b, &token, &seniors, Some(&tag), None).await.expect_invalid("audience");
    move_to(&app, &b, &token, &from, Some(&tag), None).await.expect_invalid("session_id");
    move_to(&app, &b, &token, &json!({"id": uuid::Uuid::now_v7()}), Some(&tag), None)
        .await
        .expect_invalid("session_id");
    move_to(&app, &b, &token, &full, None, None).await.expect_problem(428, "precondition-required");
    move_to(&app, &b, &token, &full, Some("\"9\""), None).await.expect_problem(412, "precondition-failed");
    move_to(&app, &b, &other_token, &full, Some(&tag), None).await.expect(403);
    let now = booking(&app, &b).await;
    assert_eq!(now.body["session_id"], from["id"]);
    assert_eq!(now.etag(), tag, "nothing was written");
    assert_eq!((used(&app, &from).await, used(&app, &full).await), (42, 27));
    assert_consistent(&app, &[&from, &full, &overlapping]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_schools_resizing_and_booking_the_last_places_keep_the_books_exact() {
    let app = spawn_app().await;
    let second = app.second_server().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 200})).await;
    let all = schools(&app, 32).await;
    let (holders, newcomers) = all.split_at(16);
    let mut held = Vec::new();
    for school in holders {
        held.push(app.post("/v1/bookings", &booking_body(&s, school, 10, 1), Some(&app.admin)).await.expect(201).body);
    }
    assert_eq!(used(&app, &s).await, 176);
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for (i, b) in held.iter().enumerate() {
        let (client, admin) = (client.clone(), app.admin.clone());
        let server = if i % 2 == 0 { app.base_url.clone() } else { second.clone() };
        let url = format!("{server}/v1/bookings/{}", id(b));
        tasks.push(tokio::spawn(async move {
            let res = client
                .patch(url)
                .bearer_auth(admin)
                .header("if-match", "\"1\"")
                .json(&json!({"students": 15}))
                .send()
                .await
                .expect("request");
            (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    for (i, school) in newcomers.iter().enumerate() {
        let (client, admin) = (client.clone(), app.admin.clone());
        let server = if i % 2 == 1 { app.base_url.clone() } else { second.clone() };
        let body = booking_body(&s, school, 5, 1);
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(format!("{server}/v1/bookings"))
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .expect("request");
            (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let results: Vec<(u16, Value)> =
        futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("task")).collect();
    let ok = results.iter().filter(|(st, _)| *st == 200 || *st == 201).count();
    let full = results
        .iter()
        .filter(|(st, b)| *st == 409 && b["type"].as_str().unwrap_or("").ends_with("capacity-exhausted"))
        .count();
    assert_eq!(
        ok + full,
        32,
        "only successes and capacity-exhausted: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(full > 0 && ok > 0, "the race must both fill and refuse");
    let taken = used(&app, &s).await;
    assert!(taken <= 200 && taken > 200 - 6, "the last places are taken: {taken}");
    assert_consistent(&app, &[&s]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_moves_of_one_booking_at_once_one_wins_and_it_is_in_exactly_one_session() {
    let app = spawn_app().await;
    let second = app.second_server().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let from = app.session(&id(&base), &op, 72, json!({"capacity": 100})).await;
    let a = app.session(&id(&base), &op, 76, json!({"capacity": 100})).await;
    let b = app.session(&id(&base), &op, 80, json!({"capacity": 100})).await;
    let (school, token) = app.school_account("两头小学").await;
    for round in 0..4 {
        let start = if round == 0 { &from } else { &a };
        let bk = app.post("/v1/bookings", &booking_body(start, &school, 30, 2), Some(&token)).await.expect(201).body;
        let tag = booking(&app, &bk).await.etag();
        let client = reqwest::Client::new();
        let targets = if round == 0 { [&a, &b] } else { [&b, &from] };
        let tasks = targets.iter().enumerate().map(|(i, target)| {
            let server = if i == 0 { app.base_url.clone() } else { second.clone() };
            let req = client
                .post(format!("{server}/v1/bookings/{}/move", id(&bk)))
                .bearer_auth(&token)
                .header("if-match", &tag)
                .json(&json!({"session_id": target["id"]}));
            async move {
                let res = req.send().await.expect("request");
                (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
            }
        });
        let results = futures::future::join_all(tasks).await;
        let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "one move wins: {results:?}");
        assert!(statuses.contains(&412), "the other is told the booking changed: {results:?}");
        let winner = &results.iter().find(|r| r.0 == 200).unwrap().1;
        assert_eq!(booking(&app, &bk).await.body["session_id"], winner["session_id"]);
        app.post(&format!("/v1/bookings/{}/cancel", id(&bk)), &json!({}), Some(&token)).await.expect(200);
    }
    assert_consistent(&app, &[&from, &a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_whose_target_fills_meanwhile_leaves_the_booking_where_it_was() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let from = app.session(&id(&base), &op, 72, json!({"capacity": 100})).await;
    let target = app.session(&id(&base), &op, 76, json!({"capacity": 60})).await;
    let movers = schools(&app, 8).await;
    let fillers = schools(&app, 8).await;
    let mut moving = Vec::new();
    for school in &movers {
        moving.push(
            app.post("/v1/bookings", &booking_body(&from, school, 10, 1), Some(&app.admin)).await.expect(201).body,
        );
    }
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for b in &moving {
        let req = client
            .post(app.url(&format!("/v1/bookings/{}/move", id(b))))
            .bearer_auth(&app.admin)
            .header("if-match", "\"1\"")
            .json(&json!({"session_id": target["id"]}));
        tasks.push(tokio::spawn(async move {
            let res = req.send().await.expect("request");
            (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    for school in &fillers {
        let req =
            client.post(app.url("/v1/bookings")).bearer_auth(&app.admin).json(&booking_body(&target, school, 10, 1));
        tasks.push(tokio::spawn(async move {
            let res = req.send().await.expect("request");
            (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let results: Vec<(u16, Value)> =
        futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("task")).collect();
    let (move_results, _) = results.split_at(moving.len());
    let mut moved = 0;
    for (b, (status, body)) in moving.iter().zip(move_results) {
        let now = booking(&app, b).await.body;
        match status {
            200 => {
                moved += 1;
                assert_eq!(now["session_id"], target["id"]);
            }
            409 => {
                assert!(body["type"].as_str().unwrap().ends_with("capacity-exhausted"), "{body:#}");
                assert_eq!(now["session_id"], from["id"], "a refused move leaves the booking where it was");
                assert_eq!(now["version"], 1);
            }
            other => panic!("unexpected {other}: {body:#}"),
        }
    }
    let in_target = used(&app, &target).await;
    assert_eq!(in_target, 55, "five groups of 11 fit in 60");
    assert_eq!(used(&app, &from).await, 11 * (8 - moved));
    assert_consistent(&app, &[&from, &target]).await;
}

#[tokio::test]
async fn an_operator_changes_a_sessions_capacity_audiences_and_group_limit_but_never_below_what_is_booked() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 50})).await;
    let path = format!("/v1/sessions/{}", id(&s));
    let (a, ta) = app.school_account("甲").await;
    let (b, tb) = app.school_account("乙").await;
    app.post("/v1/bookings", &booking_body(&s, &a, 40, 2), Some(&ta)).await.expect(201);
    let mut wait = booking_body(&s, &b, 20, 1);
    wait["waitlist"] = json!(true);
    let waiting = app.post("/v1/bookings", &wait, Some(&tb)).await.expect(202).body;
    let tag = app.get(&path, None).await.expect(200).etag();
    app.patch(&path, &json!({"capacity": 60}), Some(&op), None).await.expect_problem(428, "precondition-required");
    app.patch(&path, &json!({"capacity": 60}), Some(&op), Some("\"5\""))
        .await
        .expect_problem(412, "precondition-failed");
    let low = app
        .patch(&path, &json!({"capacity": 40}), Some(&op), Some(&tag))
        .await
        .expect_problem(409, "capacity-below-taken");
    assert!(low.body["detail"].as_str().unwrap().contains("42 places are taken"), "{:#}", low.body);
    app.patch(&path, &json!({"audiences": ["primary_upper"]}), Some(&op), Some(&tag))
        .await
        .expect_problem(409, "audience-in-use");
    app.patch(&path, &json!({"max_group_size": 30}), Some(&op), Some(&tag))
        .await
        .expect_problem(409, "group-too-large");
    app.patch(&path, &json!({"capacity": 0}), Some(&op), Some(&tag)).await.expect_invalid("capacity");
    app.patch(&path, &json!({"colour": "red"}), Some(&op), Some(&tag)).await.expect_invalid("colour");
    let (_, stranger) = app.accredited_base(json!({"name_zh": "别家"})).await;
    app.patch(&path, &json!({"capacity": 70}), Some(&stranger), Some(&tag)).await.expect(403);
    assert_eq!(app.get(&path, None).await.etag(), tag, "nothing was written");
    assert_eq!(booking(&app, &waiting).await.body["status"], "waitlisted");
    // Raised: the waiting group is confirmed at once.
    let raised =
        app.patch(&path, &json!({"capacity": 70, "max_group_size": 50}), Some(&op), Some(&tag)).await.expect(200);
    assert_eq!(raised.body["capacity"], 70);
    assert_eq!(raised.body["max_group_size"], 50);
    assert_eq!(booking(&app, &waiting).await.body["status"], "confirmed");
    assert_eq!(used(&app, &s).await, 63);
    let audit =
        app.get(&format!("/v1/audit?entity=session&entity_id={}", id(&s)), Some(&app.admin)).await.expect(200).body;
    let update = audit["items"].as_array().unwrap().iter().find(|e| e["action"] == "session.update").unwrap();
    assert_eq!((update["before"]["capacity"].as_i64(), update["after"]["capacity"].as_i64()), (Some(50), Some(70)));
    assert_consistent(&app, &[&s]).await;
}

#[tokio::test]
async fn a_session_that_moves_tells_every_school_lets_them_cancel_freely_and_never_makes_visits_overlap_unforced() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let (other_base, op2) = app.accredited_base(json!({"name_zh": "另一个"})).await;
    let s = app.session(&id(&base), &op, 72, json!({})).await;
    let later = app.session(&id(&other_base), &op2, 96, json!({})).await;
    let path = format!("/v1/sessions/{}", id(&s));
    let (a, ta) = app.school_account("甲").await;
    let (b, tb) = app.school_account("乙").await;
    let ba = app.post("/v1/bookings", &booking_body(&s, &a, 20, 1), Some(&ta)).await.expect(201).body;
    app.post("/v1/bookings", &booking_body(&s, &b, 20, 1), Some(&tb)).await.expect(201);
    app.post("/v1/bookings", &booking_body(&later, &b, 20, 1), Some(&tb)).await.expect(201);
    let tag = app.get(&path, None).await.etag();
    let onto_later = json!({"starts_at": later["starts_at"], "ends_at": later["ends_at"]});
    let clash = app.patch(&path, &onto_later, Some(&op), Some(&tag)).await.expect_problem(409, "overlapping-booking");
    assert!(clash.body["detail"].as_str().unwrap().contains(&id(&b)), "names the school: {:#}", clash.body);
    app.patch(&format!("{path}?force=true"), &onto_later, Some(&op), Some(&tag)).await.expect(403);
    // A day later than planned, with no clash.
    let starts = app.now() + Duration::hours(72 + 24);
    let moved = json!({"starts_at": (starts - Duration::hours(4)).to_rfc3339(), "ends_at": (starts - Duration::hours(3)).to_rfc3339()});
    let after = app.patch(&path, &moved, Some(&op), Some(&tag)).await.expect(200).body;
    assert_eq!(after["version"], 2);
    let bk = booking(&app, &ba).await.body;
    assert_eq!(bk["starts_at"], after["starts_at"]);
    assert!(bk["session_moved_at"].is_string());
    assert!(kinds(&app, &ta).await.contains(&"session_moved".to_string()));
    let window = chrono::DateTime::parse_from_rfc3339(after["booking_closes_at"].as_str().unwrap()).unwrap();
    let start = chrono::DateTime::parse_from_rfc3339(after["starts_at"].as_str().unwrap()).unwrap();
    assert_eq!(start - window, Duration::hours(24), "the booking window moved with the start");
    // The bureau may force a clash.
    let tag = app.get(&path, None).await.etag();
    app.patch(&format!("{path}?force=true"), &onto_later, Some(&app.admin), Some(&tag)).await.expect(200);
    // Cancelling within 24 hours of the moved visit is not late.
    app.clock.advance(Duration::hours(80));
    let cancelled = app.post(&format!("/v1/bookings/{}/cancel", id(&ba)), &json!({}), Some(&ta)).await.expect(200).body;
    assert_eq!(cancelled["late_cancellation"], false);
}

#[tokio::test]
async fn a_base_lists_its_pools_and_the_city_pools_its_sessions_draw_on() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let (other, op2) = app.accredited_base(json!({"name_zh": "别家"})).await;
    let daily = app
        .post(
            "/v1/capacity-pools",
            &json!({"name": "daily", "unit": "visitors", "capacity": 300, "base_id": base["id"]}),
            Some(&op),
        )
        .await
        .expect(201)
        .body;
    let city = app
        .post(
            "/v1/capacity-pools",
            &json!({"name": "Science Week", "unit": "visitors", "capacity": 1000}),
            Some(&app.admin),
        )
        .await
        .expect(201)
        .body;
    let unused_city = app
        .post("/v1/capacity-pools", &json!({"name": "unused", "unit": "groups", "capacity": 10}), Some(&app.admin))
        .await
        .expect(201)
        .body;
    let s = app.session(&id(&base), &op, 72, json!({"pool_ids": [daily["id"]]})).await;
    let theirs = app.session(&id(&other), &op2, 72, json!({})).await;
    for session in [&s, &theirs] {
        app.post(
            &format!("/v1/capacity-pools/{}/sessions", id(&city)),
            &json!({"session_id": session["id"]}),
            Some(&app.admin),
        )
        .await
        .expect(200);
    }
    let (school, token) = app.school_account("学校").await;
    app.post("/v1/bookings", &booking_body(&s, &school, 20, 1), Some(&token)).await.expect(201);
    let page = app.get(&format!("/v1/capacity-pools?base_id={}", id(&base)), Some(&op)).await.expect(200).body;
    let items = page["items"].as_array().unwrap();
    let ids: Vec<&Value> = items.iter().map(|p| &p["id"]).collect();
    assert_eq!(ids, vec![&daily["id"], &city["id"]], "the base's shared pools and the city pools it draws on, by id");
    for p in items {
        assert_eq!(p["used"], 21);
        assert_eq!(p["free"], p["capacity"].as_i64().unwrap() - 21);
        assert_eq!(p["session_ids"], json!([s["id"]]), "only the base's own sessions");
    }
    let all_city = app.get("/v1/capacity-pools", None).await.expect(200).body;
    let ids: Vec<&Value> = all_city["items"].as_array().unwrap().iter().map(|p| &p["id"]).collect();
    assert_eq!(ids, vec![&city["id"], &unused_city["id"]]);
    app.get(&format!("/v1/capacity-pools?base_id={}", uuid::Uuid::now_v7()), None).await.expect_invalid("base_id");
    app.get("/v1/capacity-pools?base_id=nope", None).await.expect_invalid("base_id");
}

#[tokio::test]
async fn the_gate_checks_a_group_in_by_its_code_alone() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let (_, stranger) = app.accredited_base(json!({"name_zh": "别家"})).await;
    let s = app.session(&id(&base), &op, 72, json!({})).await;
    let (school, token) = app.school_account("到达小学").await;
    let b = app.post("/v1/bookings", &booking_body(&s, &school, 30, 2), Some(&token)).await.expect(201).body;
    let code = b["code"].as_str().unwrap().to_lowercase();
    let gate = format!("/v1/bases/{}/check-in", id(&base));
    let arrival = json!({"code": code, "students_present": 29, "teachers_present": 2});
    app.post(&gate, &arrival, Some(&op)).await.expect_invalid("code");
    app.clock.advance(Duration::hours(71));
    app.post(&gate, &arrival, Some(&stranger)).await.expect(403);
    let nowhere = format!("/v1/bases/{}/check-in", uuid::Uuid::now_v7());
    app.post(&nowhere, &arrival, Some(&app.admin)).await.expect_problem(404, "not-found");
    app.post(&gate, &json!({"code": "ZZZZZZ", "students_present": 1, "teachers_present": 1}), Some(&op))
        .await
        .expect_invalid("code");
    app.post(&gate, &json!({"code": code, "students_present": 31, "teachers_present": 2}), Some(&op))
        .await
        .expect_invalid("students_present");
    let done = app.post(&gate, &arrival, Some(&op)).await.expect(200).body;
    assert_eq!(done["id"], b["id"]);
    assert_eq!(done["status"], "checked_in");
    assert_eq!(done["students_present"], 29);
    // Twice: the gate is told the group came already.
    let again = app.post(&gate, &arrival, Some(&op)).await.expect_problem(409, "already-checked-in");
    assert!(again.body["detail"].as_str().unwrap().contains("checked in already"), "{}", again.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reminders_are_sent_once_each_by_two_servers_sharing_a_database() {
    let app = spawn_app().await;
    let other = kepu::db::connect(app.database_url(), 4).await.expect("connect");
    let (base, op) = app.accredited_base(json!({})).await;
    // A visit at 10:00 the day after tomorrow (city time): at most 3 days ahead now.
    let city = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let today = app.now().with_timezone(&city).date_naive();
    let at = |day: chrono::NaiveDate, h: u32| day.and_hms_opt(h, 0, 0).unwrap().and_local_timezone(city).unwrap();
    let starts = at(today + Duration::days(2), 10);
    let s = app
        .session(&id(&base), &op, 72, json!({"capacity": 500, "starts_at": starts.to_rfc3339(), "ends_at": (starts + Duration::minutes(90)).to_rfc3339()}))
        .await;
    let far = app.session(&id(&base), &op, 24 * 10, json!({})).await;
    let mut tokens = Vec::new();
    for i in 0..6 {
        let (school, token) = app.school_account(&format!("提醒学校{i}")).await;
        app.post("/v1/bookings", &booking_body(&s, &school, 20, 1), Some(&token)).await.expect(201);
        tokens.push(token);
    }
    let (school, far_token) = app.school_account("远期学校").await;
    app.post("/v1/bookings", &booking_body(&far, &school, 20, 1), Some(&far_token)).await.expect(201);
    let days = [3, 1];
    let round = |at| {
        let (a, b) = (app.db.clone(), other.clone());
        async move {
            let (x, y) = tokio::join!(
                kepu::domain::reminders::send(&a, &days, at),
                kepu::domain::reminders::send(&b, &days, at)
            );
            let (x, y) = (x.expect("reminders"), y.expect("reminders"));
            (x.schools + y.schools, x.bases + y.bases)
        }
    };
    let reminders = |kind: &'static str| {
        let app = &app;
        let tokens = tokens.clone();
        async move {
            let mut counts = Vec::new();
            for t in &tokens {
                counts.push(kinds(app, t).await.iter().filter(|k| *k == kind).count());
            }
            counts
        }
    };
    assert_eq!(round(app.now()).await, (6, 0), "3 days ahead: each school once, no base notice yet");
    assert_eq!(round(app.now()).await, (0, 0));
    assert_eq!(reminders("visit_reminder").await, vec![1; 6]);
    assert!(!kinds(&app, &far_token).await.contains(&"visit_reminder".to_string()));
    // The day before at 15:00: the schools' 1-day reminders are due, the base's notice not yet.
    let before_notice = at(today + Duration::days(1), 15).with_timezone(&chrono::Utc);
    app.clock.advance(before_notice - app.now());
    assert_eq!(round(app.now()).await, (6, 0), "the day before: each school again");
    app.clock.advance(Duration::hours(2));
    assert_eq!(round(app.now()).await, (0, 1), "from 16:00 the base once");
    assert_eq!(round(app.now()).await, (0, 0));
    assert_eq!(reminders("visit_reminder").await, vec![2; 6]);
    let notes = app.get("/v1/notifications", Some(&op)).await.expect(200).body;
    let notes = notes["items"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["kind"], "groups_tomorrow");
    assert_eq!(notes[0]["base_id"], base["id"]);
    assert!(notes[0]["message"].as_str().unwrap().contains("6 groups, 126 visitors"), "{}", notes[0]);
}
