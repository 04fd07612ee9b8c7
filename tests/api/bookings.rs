//! Bookings: every rule, capacity and the waiting list, idempotency, cancellation, check-in,
//! no-shows, scoping, the calendar feed.

use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::{TestApp, booking_body, id, spawn_app, spawn_app_with};

async fn session_used(app: &TestApp, session: &Value) -> (i64, i64) {
    let s = app.get(&format!("/v1/sessions/{}", id(session)), None).await.expect(200).body;
    (s["pools"][0]["used"].as_i64().unwrap(), s["free"].as_i64().unwrap())
}

#[tokio::test]
async fn a_school_books_a_visit_and_gets_a_check_in_code() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 100})).await;
    let (school, token) = app.school_account("华阳小学").await;
    let r = app.post("/v1/bookings", &booking_body(&s, &school, 40, 2), Some(&token)).await.expect(201);
    let b = r.body;
    assert_eq!(b["status"], "confirmed");
    assert_eq!(b["code"].as_str().unwrap().len(), 6);
    assert_eq!(b["waitlist_position"], Value::Null);
    assert_eq!(session_used(&app, &s).await, (42, 58));
    let seen_by_base = app.get(&format!("/v1/bookings/{}", id(&b)), Some(&op)).await.expect(200).body;
    assert_eq!(seen_by_base["code"], Value::Null, "the base reads the code from the group, not the API");
    let notes = app.get("/v1/notifications", Some(&token)).await.expect(200).body;
    assert_eq!(notes["items"][0]["kind"], "booking_confirmed");
    assert!(notes["items"][0]["message"].as_str().unwrap().contains(b["code"].as_str().unwrap()));
    let audit =
        app.get(&format!("/v1/audit?entity=booking&entity_id={}", id(&b)), Some(&app.admin)).await.expect(200).body;
    assert_eq!(audit["items"][0]["action"], "booking.create");
}

#[tokio::test]
async fn group_rules_are_422_naming_the_field() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({"booking_rules": {"max_group_size": 50}})).await;
    let s = app.session(&id(&base), &op, 72, json!({"max_group_size": 40, "audiences": ["junior"]})).await;
    let (school, token) = app.school_account("学校").await;
    let post = |body: Value| {
        let (app, token) = (&app, &token);
        async move { app.post("/v1/bookings", &body, Some(token)).await }
    };
    post(booking_body(&s, &school, 0, 1)).await.expect_invalid("students");
    post(booking_body(&s, &school, 21, 1)).await.expect_invalid("teachers");
    post(booking_body(&s, &school, 39, 2)).await.expect_invalid("students");
    let mut b = booking_body(&s, &school, 10, 1);
    b["audience"] = json!("senior");
    post(b).await.expect_invalid("audience");
    let mut b = booking_body(&s, &school, 10, 1);
    b["contact_phone"] = json!("none");
    post(b).await.expect_invalid("contact_phone");
    let mut b = booking_body(&s, &school, 10, 1);
    b["session_id"] = json!(uuid::Uuid::now_v7());
    post(b).await.expect_invalid("session_id");
    let mut b = booking_body(&s, &school, 10, 1);
    b["students"] = json!("ten");
    post(b).await.expect_invalid("students");
    assert_eq!(session_used(&app, &s).await.0, 0, "nothing was taken");
    post(booking_body(&s, &school, 38, 2)).await.expect(201);
}

#[tokio::test]
async fn bookings_only_within_the_booking_window_of_an_accredited_base() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let (school, token) = app.school_account("学校").await;
    let too_early = app.session(&id(&base), &op, 24 * 40, json!({})).await;
    let r = app.post("/v1/bookings", &booking_body(&too_early, &school, 10, 1), Some(&token)).await;
    assert!(r.expect_problem(422, "booking-window-closed").body["detail"].as_str().unwrap().contains("opens"));
    let too_late = app.session(&id(&base), &op, 12, json!({})).await;
    let r = app.post("/v1/bookings", &booking_body(&too_late, &school, 10, 1), Some(&token)).await;
    assert!(r.expect_problem(422, "booking-window-closed").body["detail"].as_str().unwrap().contains("closed"));
    // Ten days later the first session's window is open.
    app.clock.advance(Duration::days(11));
    app.post("/v1/bookings", &booking_body(&too_early, &school, 10, 1), Some(&token)).await.expect(201);

    let (other, other_op) = app.accredited_base(json!({"name_en": "Soon revoked"})).await;
    let s = app.session(&id(&other), &other_op, 72, json!({})).await;
    let etag = app.get(&format!("/v1/bases/{}", id(&other)), None).await.etag();
    app.patch(&format!("/v1/bases/{}", id(&other)), &json!({"status": "revoked"}), Some(&app.admin), Some(&etag))
        .await
        .expect(200);
    app.post("/v1/bookings", &booking_body(&s, &school, 10, 1), Some(&token))
        .await
        .expect_problem(409, "base-not-accredited");
}

#[tokio::test]
async fn a_school_holds_at_most_two_active_future_bookings_per_base_and_none_overlapping() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let (other, other_op) = app.accredited_base(json!({"name_en": "Other"})).await;
    let (school, token) = app.school_account("学校").await;
    let s1 = app.session(&id(&base), &op, 48, json!({})).await;
    let s2 = app.session(&id(&base), &op, 72, json!({})).await;
    let s3 = app.session(&id(&base), &op, 96, json!({})).await;
    app.post("/v1/bookings", &booking_body(&s1, &school, 10, 1), Some(&token)).await.expect(201);
    let second = app.post("/v1/bookings", &booking_body(&s2, &school, 10, 1), Some(&token)).await.expect(201).body;
    app.post("/v1/bookings", &booking_body(&s3, &school, 10, 1), Some(&token))
        .await
        .expect_problem(409, "school-booking-limit");
    // A cancelled booking no longer counts.
    app.post(&format!("/v1/bookings/{}/cancel", id(&second)), &json!({}), Some(&token)).await.expect(200);
    app.post("/v1/bookings", &booking_body(&s3, &school, 10, 1), Some(&token)).await.expect(201);
    // Another base's session at the same time as s1 overlaps it.
    let starts = s1["starts_at"].as_str().unwrap();
    let clash = app.session(&id(&other), &other_op, 48, json!({"starts_at": starts})).await;
    app.post("/v1/bookings", &booking_body(&clash, &school, 10, 1), Some(&token))
        .await
        .expect_problem(409, "overlapping-booking");
}

#[tokio::test]
async fn three_no_shows_in_90_days_suspend_a_school_for_30_days() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let (other, other_op) = app.accredited_base(json!({"name_en": "Other"})).await;
    let (school, token) = app.school_account("学校").await;
    for i in 0..3 {
        let (b, o) = if i == 2 { (&other, &other_op) } else { (&base, &op) };
        let s = app.session(&id(b), o, 48, json!({})).await;
        app.post("/v1/bookings", &booking_body(&s, &school, 10, 1), Some(&token)).await.expect(201);
        app.clock.advance(Duration::days(3));
        assert_eq!(app.sweep().await.no_shows, 1);
    }
    let s = app.session(&id(&base), &op, 48, json!({})).await;
    let r = app.post("/v1/bookings", &booking_body(&s, &school, 10, 1), Some(&token)).await;
    r.expect_problem(409, "school-suspended");
    let notes = app.get("/v1/notifications", Some(&token)).await.expect(200).body;
    let no_shows = notes["items"].as_array().unwrap().iter().filter(|n| n["kind"] == "booking_no_show").count();
    assert_eq!(no_shows, 3);
    app.clock.advance(Duration::days(31));
    let later = app.session(&id(&base), &op, 48, json!({})).await;
    app.post("/v1/bookings", &booking_body(&later, &school, 10, 1), Some(&token)).await.expect(201);
}

#[tokio::test]
async fn a_full_session_is_409_or_a_waiting_list_that_promotes_first_come_first_served() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 50})).await;
    let mut schools = Vec::new();
    for i in 0..4 {
        schools.push(app.school_account(&format!("学校{i}")).await);
    }
    let first =
        app.post("/v1/bookings", &booking_body(&s, &schools[0].0, 38, 2), Some(&schools[0].1)).await.expect(201).body;
    let full = app.post("/v1/bookings", &booking_body(&s, &schools[1].0, 19, 1), Some(&schools[1].1)).await;
    let detail = full.expect_problem(409, "capacity-exhausted").body["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("10 places left") && detail.contains("needs 20"), "{detail}");
    let waiting = |k: usize, students: i32| {
        let mut b = booking_body(&s, &schools[k].0, students, (students + 19) / 20);
        b["waitlist"] = json!(true);
        let app = &app;
        let token = schools[k].1.clone();
        async move { app.post("/v1/bookings", &b, Some(&token)).await }
    };
    let big = waiting(1, 38).await.expect(202).body;
    assert_eq!(big["status"], "waitlisted");
    assert_eq!(big["waitlist_position"], 1);
    let small = waiting(2, 19).await.expect(202).body;
    assert_eq!(small["waitlist_position"], 2);
    let fits = waiting(3, 9).await.expect(201).body;
    assert_eq!(fits["status"], "confirmed", "a group that fits is confirmed even when others wait");
    // Cancelling the first group frees 40: the 40-visitor group waiting first is promoted;
    // the next (20) no longer fits and keeps waiting.
    app.post(&format!("/v1/bookings/{}/cancel", id(&first)), &json!({}), Some(&schools[0].1)).await.expect(200);
    let big_now = app.get(&format!("/v1/bookings/{}", id(&big)), Some(&schools[1].1)).await.expect(200).body;
    assert_eq!(big_now["status"], "confirmed");
    let small_now = app.get(&format!("/v1/bookings/{}", id(&small)), Some(&schools[2].1)).await.expect(200).body;
    assert_eq!(small_now["status"], "waitlisted");
    assert_eq!(small_now["waitlist_position"], 1);
    let notes = app.get(&format!("/v1/notifications?booking_id={}", id(&big)), Some(&schools[1].1)).await.body;
    assert!(notes["items"].as_array().unwrap().iter().any(|n| n["kind"] == "booking_promoted"));
    assert_eq!(session_used(&app, &s).await, (50, 0));
    // A group that does not fit is skipped for the next one that does.
    app.post(&format!("/v1/bookings/{}/cancel", id(&fits)), &json!({}), Some(&schools[3].1)).await.expect(200);
    let small_now = app.get(&format!("/v1/bookings/{}", id(&small)), Some(&schools[2].1)).await.body;
    assert_eq!(small_now["status"], "waitlisted", "20 do not fit into 10");
    // When the session starts, whoever still waits expires.
    app.clock.advance(Duration::days(3) + Duration::minutes(1));
    assert_eq!(app.sweep().await.expired, 1);
    let small_now = app.get(&format!("/v1/bookings/{}", id(&small)), Some(&schools[2].1)).await.body;
    assert_eq!(small_now["status"], "expired");
}

#[tokio::test]
async fn the_same_idempotency_key_replays_the_first_answer() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({})).await;
    let (school, token) = app.school_account("学校").await;
    let body = booking_body(&s, &school, 10, 1);
    let send = |key: &'static str, body: Value, token: String| {
        let app = &app;
        async move {
            app.send(
                app.client.post(app.url("/v1/bookings")).bearer_auth(token).header("idempotency-key", key).json(&body),
            )
            .await
        }
    };
    let first = send("key-1", body.clone(), token.clone()).await.expect(201);
    // The same body with its keys in another order is the same request.
    let reordered: Value = serde_json::from_str(&{
        let mut m: Vec<(String, Value)> = body.as_object().unwrap().clone().into_iter().collect();
        m.reverse();
        let obj: serde_json::Map<String, Value> = m.into_iter().collect();
        serde_json::to_string(&obj).unwrap()
    })
    .unwrap();
    let again = send("key-1", reordered, token.clone()).await.expect(201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let mut other = body.clone();
    other["students"] = json!(11);
    send("key-1", other, token.clone()).await.expect_problem(422, "idempotency-key-reused");
    let list = app.get("/v1/bookings", Some(&token)).await.body;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "one booking for one key");
    // Keys belong to an account: the admin's key-1 is another key.
    let s2 = app.session(&id(&base), &op, 96, json!({})).await;
    send("key-1", booking_body(&s2, &school, 10, 1), app.admin.clone()).await.expect(201);
    app.send(app.client.post(app.url("/v1/bookings")).bearer_auth(&token).header("idempotency-key", "").json(&body))
        .await
        .expect_invalid("Idempotency-Key");
}

#[tokio::test]
async fn cancellation_rules_late_flag_and_capacity_given_back() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({"booking_rules": {"closes_hours_before": 1}})).await;
    let (school, token) = app.school_account("学校").await;
    let s = app.session(&id(&base), &op, 30, json!({"capacity": 60})).await;
    let b = app.post("/v1/bookings", &booking_body(&s, &school, 20, 1), Some(&token)).await.expect(201).body;
    let path = format!("/v1/bookings/{}/cancel", id(&b));
    app.post(&path, &json!({}), Some(&op)).await.expect_invalid("reason");
    app.post(&path, &json!({"reason": "bus\u{7}broke down"}), Some(&op)).await.expect_invalid("reason");
    let (_, other_school) = app.school_account("别的学校").await;
    app.post(&path, &json!({}), Some(&other_school)).await.expect_problem(403, "forbidden");
    app.clock.advance(Duration::hours(10));
    let c = app.post(&path, &json!({"reason": "bus broke down"}), Some(&token)).await.expect(200).body;
    assert_eq!(c["status"], "cancelled");
    assert_eq!(c["late_cancellation"], true, "20 hours before the start");
    assert_eq!(session_used(&app, &s).await, (0, 60));
    app.post(&path, &json!({}), Some(&token)).await.expect_problem(409, "invalid-state");
    // After the start only the base (or the bureau) cancels.
    let b2 = app.post("/v1/bookings", &booking_body(&s, &school, 20, 1), Some(&token)).await.expect(201).body;
    app.clock.advance(Duration::hours(21));
    let path = format!("/v1/bookings/{}/cancel", id(&b2));
    app.post(&path, &json!({}), Some(&token)).await.expect_problem(409, "invalid-state");
    app.post(&path, &json!({"reason": "the group never came"}), Some(&op)).await.expect(200);
}

#[tokio::test]
async fn the_base_checks_a_group_in_with_its_code_and_sweeps_the_rest_to_no_show() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 48, json!({})).await;
    let (school, token) = app.school_account("学校").await;
    let (school2, token2) = app.school_account("学校二").await;
    let b = app.post("/v1/bookings", &booking_body(&s, &school, 30, 2), Some(&token)).await.expect(201).body;
    let absent = app.post("/v1/bookings", &booking_body(&s, &school2, 10, 1), Some(&token2)).await.expect(201).body;
    let path = format!("/v1/bookings/{}/check-in", id(&b));
    let code = b["code"].as_str().unwrap().to_lowercase();
    let checkin = json!({"code": code, "students_present": 29, "teachers_present": 2});
    app.post(&path, &checkin, Some(&op)).await.expect_problem(409, "check-in-not-open");
    app.clock.advance(Duration::hours(47));
    app.post(&path, &json!({"code": "WRONG1", "students_present": 29, "teachers_present": 2}), Some(&op))
        .await
        .expect_invalid("code");
    app.post(&path, &json!({"code": code, "students_present": 31, "teachers_present": 2}), Some(&op))
        .await
        .expect_invalid("students_present");
    app.post(&path, &checkin, Some(&token)).await.expect_problem(403, "forbidden");
    let done = app.post(&path, &checkin, Some(&op)).await.expect(200).body;
    assert_eq!(done["status"], "checked_in");
    assert_eq!(done["students_present"], 29);
    app.post(&path, &checkin, Some(&op)).await.expect_problem(409, "invalid-state");
    app.clock.advance(Duration::hours(3));
    // Two sweepers at once record each no-show exactly once.
    let (r1, r2) = tokio::join!(
        kepu::domain::bookings::sweep(&app.db, app.now()),
        kepu::domain::bookings::sweep(&app.db, app.now())
    );
    assert_eq!(r1.unwrap().no_shows + r2.unwrap().no_shows, 1);
    let a = app.get(&format!("/v1/bookings/{}", id(&absent)), Some(&token2)).await.body;
    assert_eq!(a["status"], "no_show");
    let c = app.get(&format!("/v1/bookings/{}", id(&b)), Some(&token)).await.body;
    assert_eq!(c["status"], "checked_in");
    let log = app.get(&format!("/v1/audit?entity=booking&entity_id={}", id(&absent)), Some(&app.admin)).await.body;
    let marks = log["items"].as_array().unwrap().iter().filter(|e| e["action"] == "booking.no_show").count();
    assert_eq!(marks, 1);
    let consistency = app.get("/v1/admin/consistency", Some(&app.admin)).await.expect(200).body;
    assert_eq!(consistency["consistent"], true);
}

#[tokio::test]
async fn every_booking_endpoint_is_scoped_to_the_caller() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let (_other, other_op) = app.accredited_base(json!({"name_en": "Other"})).await;
    let s = app.session(&id(&base), &op, 72, json!({})).await;
    let (school, token) = app.school_account("学校").await;
    let (school2, token2) = app.school_account("学校二").await;
    let mine = app.post("/v1/bookings", &booking_body(&s, &school, 10, 1), Some(&token)).await.expect(201).body;
    app.post("/v1/bookings", &booking_body(&s, &school2, 10, 1), Some(&token2)).await.expect(201);
    // A school books only for itself.
    app.post("/v1/bookings", &booking_body(&s, &school2, 5, 1), Some(&token)).await.expect_problem(403, "forbidden");
    app.post("/v1/bookings", &booking_body(&s, &school, 5, 1), Some(&op)).await.expect_problem(403, "forbidden");
    app.post("/v1/bookings", &booking_body(&s, &school, 5, 1), None).await.expect_problem(401, "unauthorized");
    let path = format!("/v1/bookings/{}", id(&mine));
    app.get(&path, Some(&token2)).await.expect_problem(403, "forbidden");
    app.get(&path, Some(&other_op)).await.expect_problem(403, "forbidden");
    app.get(&path, Some(&op)).await.expect(200);
    app.get(&path, Some(&app.admin)).await.expect(200);
    let count = |v: Value| v["items"].as_array().unwrap().len();
    assert_eq!(count(app.get("/v1/bookings", Some(&token)).await.expect(200).body), 1);
    assert_eq!(count(app.get("/v1/bookings", Some(&op)).await.expect(200).body), 2);
    assert_eq!(count(app.get("/v1/bookings", Some(&other_op)).await.expect(200).body), 0);
    assert_eq!(count(app.get("/v1/bookings", Some(&app.admin)).await.expect(200).body), 2);
    assert_eq!(count(app.get(&format!("/v1/bookings?school_id={}", id(&school2)), Some(&token)).await.body), 0);
    let officer = app.user("tianhe", json!({"role": "district_officer", "district_code": "440106"})).await;
    assert_eq!(count(app.get("/v1/bookings", Some(&officer)).await.expect(200).body), 2);
    let expert = app.user("expert", json!({"role": "evaluator"})).await;
    app.get("/v1/bookings", Some(&expert)).await.expect_problem(403, "forbidden");
    let base_notices = app.get("/v1/notifications", Some(&op)).await.expect(200).body;
    assert_eq!(count(base_notices), 0, "an operator reads its bases' notices, not the schools'");
    app.get("/v1/notifications", Some(&expert)).await.expect_problem(403, "forbidden");
    app.get(&format!("/v1/notifications?base_id={}", uuid::Uuid::now_v7()), Some(&op))
        .await
        .expect_problem(403, "forbidden");
    app.post(
        &format!("{path}/check-in"),
        &json!({"code": "X", "students_present": 1, "teachers_present": 1}),
        Some(&other_op),
    )
    .await
    .expect_problem(403, "forbidden");
    app.get("/v1/admin/consistency", Some(&op)).await.expect_problem(403, "forbidden");
    let filtered =
        app.get(&format!("/v1/bookings?status=confirmed&session_id={}", id(&s)), Some(&app.admin)).await.body;
    assert_eq!(count(filtered), 2);
    app.get("/v1/bookings?status=lost", Some(&app.admin)).await.expect_invalid("status");
}

#[tokio::test]
async fn a_school_subscribes_to_its_visits_as_icalendar() {
    let app = spawn_app_with(|c| c.public_url = Some("https://kepu.example.gov.cn".into())).await;
    let (base, op) = app.accredited_base(json!({})).await;
    let (school, token) = app.school_account("学校").await;
    let (_, token2) = app.school_account("学校二").await;
    let s1 = app.session(&id(&base), &op, 48, json!({})).await;
    let s2 = app.session(&id(&base), &op, 96, json!({})).await;
    let b1 = app.post("/v1/bookings", &booking_body(&s1, &school, 10, 1), Some(&token)).await.expect(201).body;
    let b2 = app.post("/v1/bookings", &booking_body(&s2, &school, 10, 1), Some(&token)).await.expect(201).body;
    app.post(&format!("/v1/bookings/{}/cancel", id(&b2)), &json!({}), Some(&token)).await.expect(200);
    let path = format!("/v1/schools/{}/bookings.ics", id(&school));
    app.get(&path, None).await.expect_problem(401, "unauthorized");
    app.get(&format!("{path}?token=cal_guess"), None).await.expect_problem(401, "unauthorized");
    app.get(&path, Some(&token2)).await.expect_problem(403, "forbidden");
    let issued = app
        .post(&format!("/v1/schools/{}/calendar-token", id(&school)), &json!({}), Some(&token))
        .await
        .expect(201)
        .body;
    let feed_path = issued["path"].as_str().unwrap();
    let res = app.client.get(app.url(feed_path)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/calendar"));
    let text = res.text().await.unwrap();
    let cal: icalendar::Calendar = text.parse().expect("valid iCalendar");
    let events: Vec<_> = cal.components.iter().filter_map(|c| c.as_event()).collect();
    assert_eq!(events.len(), 1, "only the confirmed visit:\n{text}");
    use icalendar::Component;
    assert_eq!(events[0].get_uid(), Some(format!("{}@kepu", id(&b1)).as_str()));
    assert!(text.contains("DTSTART:") && text.contains(base["address"].as_str().unwrap()));
    let link = format!("https://kepu.example.gov.cn/v1/bookings/{}", id(&b1));
    assert_eq!(events[0].property_value("URL"), Some(link.as_str()));
    // A feed's URL ends up at calendar providers: no check-in code, no phone number.
    let unfolded = text.replace("\r\n ", "");
    for secret in [&b1["code"], &b1["contact_phone"], &b1["contact_name"]] {
        let secret = secret.as_str().expect("a text");
        assert!(!unfolded.contains(secret), "the feed shows {secret}:\n{text}");
    }
    // A new token replaces the old one.
    app.post(&format!("/v1/schools/{}/calendar-token", id(&school)), &json!({}), Some(&token)).await.expect(201);
    app.get(feed_path, None).await.expect_problem(401, "unauthorized");
}
