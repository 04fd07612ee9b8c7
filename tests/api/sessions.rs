//! Sessions: creation with their own pool and booking window, weekly patterns in local time,
//! search by place and free places, cancellation.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde_json::{Value, json};

use crate::helpers::{booking_body, id, spawn_app};

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("RFC 3339").with_timezone(&Utc)
}

#[tokio::test]
async fn an_operator_creates_a_session_with_its_own_pool_and_the_bases_window() {
    let app = spawn_app().await;
    let (base, op) =
        app.accredited_base(json!({"booking_rules": {"opens_days_before": 14, "closes_hours_before": 48}})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 80})).await;
    assert_eq!(s["capacity"], 80);
    assert_eq!(s["free"], 80);
    assert_eq!(s["status"], "open");
    let pools = s["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0]["own"], true);
    assert_eq!(pools[0]["capacity"], 80);
    assert_eq!(pools[0]["used"], 0);
    let starts = time(&s["starts_at"]);
    assert_eq!(time(&s["booking_opens_at"]), starts - Duration::days(14));
    assert_eq!(time(&s["booking_closes_at"]), starts - Duration::hours(48));
    let got = app.get(&format!("/v1/sessions/{}", id(&s)), None).await.expect(200).body;
    assert_eq!(got["id"], s["id"]);
}

#[tokio::test]
async fn session_rules_are_422_naming_the_field() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let path = format!("/v1/bases/{}/sessions", id(&base));
    let now = app.now();
    let body = |starts: DateTime<Utc>, ends: DateTime<Utc>| json!({"starts_at": starts.to_rfc3339(), "ends_at": ends.to_rfc3339(), "capacity": 10, "audiences": ["junior"]});
    let soon = now + Duration::days(3);
    app.post(&path, &body(now - Duration::hours(1), now), Some(&op)).await.expect_invalid("starts_at");
    app.post(&path, &body(soon, soon - Duration::minutes(1)), Some(&op)).await.expect_invalid("ends_at");
    app.post(&path, &body(soon, soon + Duration::hours(13)), Some(&op)).await.expect_invalid("ends_at");
    let mut b = body(soon, soon + Duration::hours(1));
    b["capacity"] = json!(0);
    app.post(&path, &b, Some(&op)).await.expect_invalid("capacity");
    let mut b = body(soon, soon + Duration::hours(1));
    b["audiences"] = json!([]);
    app.post(&path, &b, Some(&op)).await.expect_invalid("audiences");
    let mut b = body(soon, soon + Duration::hours(1));
    b["booking_closes_at"] = json!((soon + Duration::minutes(5)).to_rfc3339());
    app.post(&path, &b, Some(&op)).await.expect_invalid("booking_closes_at");
    let mut b = body(soon, soon + Duration::hours(1));
    b["starts_at"] = json!("next tuesday");
    app.post(&path, &b, Some(&op)).await.expect_invalid("starts_at");
    let mut b = body(soon, soon + Duration::hours(1));
    b["pool_ids"] = json!([uuid::Uuid::now_v7()]);
    app.post(&path, &b, Some(&op)).await.expect_invalid("pool_ids[0]");
}

#[tokio::test]
async fn only_the_bases_operators_and_admins_manage_its_sessions() {
    let app = spawn_app().await;
    let (base, _op) = app.accredited_base(json!({})).await;
    let (other, other_op) = app.accredited_base(json!({"name_en": "Other"})).await;
    let (_school, school) = app.school_account("学校").await;
    let path = format!("/v1/bases/{}/sessions", id(&base));
    let starts = app.now() + Duration::days(2);
    let body = json!({"starts_at": starts.to_rfc3339(), "ends_at": (starts + Duration::hours(1)).to_rfc3339(), "capacity": 10, "audiences": ["junior"]});
    app.post(&path, &body, Some(&other_op)).await.expect_problem(403, "forbidden");
    app.post(&path, &body, Some(&school)).await.expect_problem(403, "forbidden");
    app.post(&path, &body, None).await.expect_problem(401, "unauthorized");
    app.post(&path, &body, Some(&app.admin)).await.expect(201);
    let s = app.session(&id(&other), &other_op, 48, json!({})).await;
    app.post(&format!("/v1/sessions/{}/cancel", id(&s)), &json!({"reason": "x"}), Some(&school))
        .await
        .expect_problem(403, "forbidden");
}

#[tokio::test]
async fn a_weekly_pattern_makes_sessions_in_local_time_and_skips_overlaps() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    // Next Monday (local) and the two weeks from it.
    let local_today = (app.now() + Duration::hours(8)).date_naive();
    let monday = local_today + Duration::days(7 - i64::from(local_today.weekday().num_days_from_monday()));
    let to = monday + Duration::days(13);
    // An existing session on the first Tuesday 10:00–12:00 local (02:00–04:00 UTC).
    let tuesday_10 = monday.succ_opt().unwrap().and_hms_opt(2, 0, 0).unwrap().and_utc();
    app.post(
        &format!("/v1/bases/{}/sessions", id(&base)),
        &json!({"starts_at": tuesday_10.to_rfc3339(), "ends_at": (tuesday_10 + Duration::hours(2)).to_rfc3339(), "capacity": 5, "audiences": ["junior"]}),
        Some(&op),
    )
    .await
    .expect(201);
    let pattern = json!({
        "from_date": monday.to_string(),
        "to_date": to.to_string(),
        "weekdays": ["tue", "thu"],
        "times": [{"start": "09:30", "end": "11:00"}, {"start": "14:00", "end": "15:30"}],
        "capacity": 60,
        "audiences": ["junior"]
    });
    let r = app.post(&format!("/v1/bases/{}/sessions/generate", id(&base)), &pattern, Some(&op)).await.expect(201).body;
    let created = r["created"].as_array().unwrap();
    let skipped = r["skipped"].as_array().unwrap();
    assert_eq!(created.len() + skipped.len(), 8, "2 weeks × 2 days × 2 times");
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["reason"], "overlaps an existing session");
    assert_eq!(time(&skipped[0]["starts_at"]), monday.succ_opt().unwrap().and_hms_opt(1, 30, 0).unwrap().and_utc());
    for s in created {
        let local = time(&s["starts_at"]) + Duration::hours(8);
        assert!(matches!(local.weekday(), chrono::Weekday::Tue | chrono::Weekday::Thu), "{local}");
        assert!(matches!((local.hour(), local.minute()), (9, 30) | (14, 0)), "{local}");
        assert_eq!(s["capacity"], 60);
    }
    // Generating again creates nothing new: every slot now overlaps.
    let again =
        app.post(&format!("/v1/bases/{}/sessions/generate", id(&base)), &pattern, Some(&op)).await.expect(201).body;
    assert_eq!(again["created"].as_array().unwrap().len(), 0);
    for start in ["9h30", "9:30", " 09:30"] {
        let mut bad = pattern.clone();
        bad["times"] = json!([{"start": start, "end": "11:00"}]);
        app.post(&format!("/v1/bases/{}/sessions/generate", id(&base)), &bad, Some(&op))
            .await
            .expect_invalid("times[0].start");
    }
    let mut bad = pattern.clone();
    bad["weekdays"] = json!(["funday"]);
    app.post(&format!("/v1/bases/{}/sessions/generate", id(&base)), &bad, Some(&op))
        .await
        .expect_invalid("weekdays[0]");
}

#[tokio::test]
async fn sessions_are_found_by_place_time_free_places_and_audience() {
    let app = spawn_app().await;
    let (near_base, op1) =
        app.accredited_base(json!({"name_en": "Near", "location": {"lat": 23.1390, "lon": 113.3300}})).await;
    let (far_base, op2) =
        app.accredited_base(json!({"name_en": "Far", "location": {"lat": 23.2500, "lon": 113.3300}})).await;
    let (_applicant, op3) =
        app.accredited_base(json!({"name_en": "Applicant", "location": {"lat": 23.1395, "lon": 113.3300}})).await;
    let a1 = app.session(&id(&near_base), &op1, 50, json!({"capacity": 50})).await;
    let a2 = app.session(&id(&near_base), &op1, 30, json!({"capacity": 100})).await;
    let b1 = app.session(&id(&far_base), &op2, 40, json!({"capacity": 100, "audiences": ["senior"]})).await;
    let _late = app.session(&id(&far_base), &op2, 24 * 20, json!({})).await;
    // A base that is no longer accredited is not offered to schools.
    let applicant_base_id = {
        let me = app.get("/v1/me", Some(&op3)).await.body;
        me["base_ids"][0].as_str().unwrap().to_string()
    };
    app.session(&applicant_base_id, &op3, 30, json!({})).await;
    let etag = app.get(&format!("/v1/bases/{applicant_base_id}"), None).await.etag();
    app.patch(
        &format!("/v1/bases/{applicant_base_id}"),
        &json!({"status": "rectification"}),
        Some(&app.admin),
        Some(&etag),
    )
    .await
    .expect(200);
    // 20 places of a1 are taken.
    let (school, token) = app.school_account("学校").await;
    app.post("/v1/bookings", &booking_body(&a1, &school, 18, 2), Some(&token)).await.expect(201);

    let from = app.now().to_rfc3339().replace('+', "%2B");
    let to = (app.now() + Duration::days(7)).to_rfc3339().replace('+', "%2B");
    let ids = |v: &Value| v["items"].as_array().unwrap().iter().map(id).collect::<Vec<_>>();
    let q = format!("/v1/sessions?near=23.1382,113.3299&radius_km=15&from={from}&to={to}");
    let all = app.get(&q, None).await.expect(200).body;
    assert_eq!(ids(&all), [id(&a2), id(&a1), id(&b1)], "distance, then start; within the week");
    assert_eq!(all["items"][1]["free"], 30);
    assert_eq!(all["items"][1]["base"]["name_en"], "Near");
    assert!(all["items"][0]["distance_km"].as_f64().unwrap() < 0.2);
    let roomy = app.get(&format!("{q}&min_free=45"), None).await.expect(200).body;
    assert_eq!(ids(&roomy), [id(&a2), id(&b1)]);
    let seniors = app.get(&format!("{q}&audience=senior"), None).await.expect(200).body;
    assert_eq!(ids(&seniors), [id(&b1)]);
    let close = app
        .get(&format!("/v1/sessions?near=23.1382,113.3299&radius_km=5&from={from}&to={to}"), None)
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&close), [id(&a2), id(&a1)]);
    let by_time = app.get(&format!("/v1/sessions?from={from}&to={to}&limit=1"), None).await.expect(200).body;
    assert_eq!(ids(&by_time), [id(&a2)]);
    let cursor = by_time["next_cursor"].as_str().unwrap();
    let next =
        app.get(&format!("/v1/sessions?from={from}&to={to}&limit=5&cursor={cursor}"), None).await.expect(200).body;
    assert_eq!(ids(&next), [id(&b1), id(&a1)]);
    app.get("/v1/sessions?min_free=-1", None).await.expect_invalid("min_free");
    app.get("/v1/sessions?district=440199", None).await.expect_invalid("district");
    app.get("/v1/sessions?district=", None).await.expect_invalid("district");
    app.get("/v1/sessions?from=yesterday", None).await.expect_invalid("from");
}

#[tokio::test]
async fn cancelling_a_session_cancels_its_bookings_and_tells_the_schools() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 30})).await;
    let (school, token) = app.school_account("学校").await;
    let b = app.post("/v1/bookings", &booking_body(&s, &school, 20, 1), Some(&token)).await.expect(201).body;
    let (school2, token2) = app.school_account("学校二").await;
    let mut waiting = booking_body(&s, &school2, 20, 1);
    waiting["waitlist"] = json!(true);
    let w = app.post("/v1/bookings", &waiting, Some(&token2)).await.expect(202).body;
    let cancelled = app
        .post(&format!("/v1/sessions/{}/cancel", id(&s)), &json!({"reason": "the hall is flooded"}), Some(&op))
        .await
        .expect(200)
        .body;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["pools"][0]["used"], 0, "places given back");
    for (booking, token) in [(&b, &token), (&w, &token2)] {
        let got = app.get(&format!("/v1/bookings/{}", id(booking)), Some(token)).await.expect(200).body;
        assert_eq!(got["status"], "cancelled");
        assert!(got["cancel_reason"].as_str().unwrap().contains("the hall is flooded"));
        let notes =
            app.get(&format!("/v1/notifications?booking_id={}", id(booking)), Some(token)).await.expect(200).body;
        assert!(notes["items"].as_array().unwrap().iter().any(|n| n["kind"] == "session_cancelled"));
    }
    app.post(&format!("/v1/sessions/{}/cancel", id(&s)), &json!({"reason": "again"}), Some(&op))
        .await
        .expect_problem(409, "invalid-state");
    app.post("/v1/bookings", &booking_body(&s, &school, 5, 1), Some(&token))
        .await
        .expect_problem(409, "session-not-open");
    let consistency = app.get("/v1/admin/consistency", Some(&app.admin)).await.expect(200).body;
    assert_eq!(consistency["consistent"], true, "{consistency}");
}

#[tokio::test]
async fn a_closed_session_keeps_its_bookings_and_takes_no_new_ones_until_reopened() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let (_other, other_op) = app.accredited_base(json!({"name_en": "Other"})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 30})).await;
    let (school, token) = app.school_account("学校").await;
    let (school2, token2) = app.school_account("学校二").await;
    let b = app.post("/v1/bookings", &booking_body(&s, &school, 20, 1), Some(&token)).await.expect(201).body;
    let mut waiting = booking_body(&s, &school2, 20, 1);
    waiting["waitlist"] = json!(true);
    let w = app.post("/v1/bookings", &waiting, Some(&token2)).await.expect(202).body;
    let (close, reopen) = (format!("/v1/sessions/{}/close", id(&s)), format!("/v1/sessions/{}/reopen", id(&s)));
    app.post(&close, &json!({}), Some(&token)).await.expect_problem(403, "forbidden");
    app.post(&close, &json!({}), Some(&other_op)).await.expect_problem(403, "forbidden");
    app.post(&close, &json!({}), None).await.expect_problem(401, "unauthorized");
    app.post(&reopen, &json!({}), Some(&op)).await.expect_problem(409, "invalid-state");
    let closed = app.post(&close, &json!({}), Some(&op)).await.expect(200).body;
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["pools"][0]["used"], 21, "the booking keeps its places");
    app.post(&close, &json!({}), Some(&op)).await.expect_problem(409, "invalid-state");

    // New bookings are refused; the session is no longer offered; the bookings it has stay.
    let (school3, token3) = app.school_account("学校三").await;
    let r = app.post("/v1/bookings", &booking_body(&s, &school3, 5, 1), Some(&token3)).await;
    let r = r.expect_problem(409, "session-not-open");
    assert!(r.body["detail"].as_str().unwrap().contains("closed"), "{}", r.body);
    let found = app.get(&format!("/v1/sessions?base_id={}", id(&base)), None).await.expect(200).body;
    assert!(found["items"].as_array().unwrap().iter().all(|x| x["id"] != s["id"]), "{found}");
    // The base's own schedule still shows it, closed.
    let all = app.get(&format!("/v1/sessions?base_id={}&any_status=true", id(&base)), None).await.expect(200).body;
    let listed: Vec<&Value> = all["items"].as_array().unwrap().iter().filter(|x| x["id"] == s["id"]).collect();
    assert_eq!(listed.len(), 1, "{all}");
    assert_eq!(listed[0]["status"], "closed");
    app.get("/v1/sessions?any_status=true", None).await.expect_invalid("any_status");
    // Its waiting list still moves up when places free.
    app.post(&format!("/v1/bookings/{}/cancel", id(&b)), &json!({}), Some(&token)).await.expect(200);
    let promoted = app.get(&format!("/v1/bookings/{}", id(&w)), Some(&token2)).await.expect(200).body;
    assert_eq!(promoted["status"], "confirmed");

    let open = app.post(&reopen, &json!({}), Some(&app.admin)).await.expect(200).body;
    assert_eq!(open["status"], "open");
    app.post("/v1/bookings", &booking_body(&s, &school3, 5, 1), Some(&token3)).await.expect(201);
    let log = app.get(&format!("/v1/audit?entity=session&entity_id={}", id(&s)), Some(&app.admin)).await.expect(200);
    let actions: Vec<&str> =
        log.body["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"session.close") && actions.contains(&"session.reopen"), "{actions:?}");

    // A closed session that has started cannot be opened again.
    app.post(&close, &json!({}), Some(&op)).await.expect(200);
    app.clock.advance(Duration::hours(73));
    app.post(&reopen, &json!({}), Some(&op)).await.expect_problem(409, "invalid-state");
    let consistency = app.get("/v1/admin/consistency", Some(&app.admin)).await.expect(200).body;
    assert_eq!(consistency["consistent"], true, "{consistency}");
}

#[tokio::test]
async fn absurd_times_are_422_not_database_errors() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let path = format!("/v1/bases/{}/sessions", id(&base));
    let body = |starts: &str, ends: &str| json!({"starts_at": starts, "ends_at": ends, "capacity": 10, "audiences": ["junior"]});
    app.post(&path, &body("9999-01-01T00:00:00Z", "9999-01-01T01:00:00Z"), Some(&op)).await.expect_invalid("starts_at");
    app.post(&path, &body("0001-01-01T00:00:00Z", "0001-01-01T01:00:00Z"), Some(&op)).await.expect_invalid("starts_at");
    let soon = (app.now() + Duration::days(2)).to_rfc3339();
    app.post(&path, &body(&soon, "+200000-01-01T00:00:00Z"), Some(&op)).await.expect_invalid("ends_at");
    let pattern = |from: &str, to: &str| json!({"from_date": from, "to_date": to, "weekdays": ["mon"], "times": [{"start": "09:00", "end": "10:00"}], "capacity": 5, "audiences": ["junior"]});
    let gen_path = format!("/v1/bases/{}/sessions/generate", id(&base));
    app.post(&gen_path, &pattern("1900-01-01", "1900-02-01"), Some(&op)).await.expect_invalid("from_date");
    app.post(&gen_path, &pattern("9000-01-01", "9000-02-01"), Some(&op)).await.expect_invalid("from_date");
    app.get("/v1/sessions?from=0001-01-01T00:00:00Z", None).await.expect_invalid("from");
    app.get("/v1/sessions?to=9999-12-31T00:00:00Z", None).await.expect_invalid("to");
    app.get("/v1/bookings?from=0001-01-01T00:00:00Z", Some(&app.admin)).await.expect_invalid("from");
}

#[tokio::test]
async fn an_integer_may_be_written_as_an_integral_float() {
    // JSON Schema counts 120.0 as an integer, and so does the API; 120.5 is still no integer.
    let app = spawn_app().await;
    let rules = json!({"opens_days_before": 14.0, "closes_hours_before": 48.0});
    let (base, op) = app.accredited_base(json!({"booking_rules": rules})).await;
    assert_eq!(base["booking_rules"]["opens_days_before"], 14);
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 120.0})).await;
    assert_eq!(s["capacity"], 120);
    assert!(s["capacity"].is_i64(), "{}", s["capacity"]);
    let starts = app.now() + Duration::hours(96);
    let body = json!({
        "starts_at": starts.to_rfc3339(),
        "ends_at": (starts + Duration::hours(1)).to_rfc3339(),
        "capacity": 120.5,
        "audiences": ["junior"],
    });
    let path = format!("/v1/bases/{}/sessions", id(&base));
    app.post(&path, &body, Some(&op)).await.expect_invalid("capacity");
}

#[tokio::test]
async fn sessions_say_whether_a_school_can_book_them_now_and_filter_on_it() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    // By default the window opens 30 days and closes 24 hours before the start.
    let soon = app.session(&id(&base), &op, 12, json!({})).await;
    let open = app.session(&id(&base), &op, 48, json!({})).await;
    let later = app.session(&id(&base), &op, 40 * 24, json!({})).await;
    let list = async |q: String| {
        let body = app.get(&format!("/v1/sessions?base_id={}{q}", id(&base)), None).await.expect(200).body;
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (id(s), s["bookable_now"].as_bool().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(list(String::new()).await, [(id(&soon), false), (id(&open), true), (id(&later), false)]);
    assert_eq!(list("&bookable=true".into()).await, [(id(&open), true)]);
    assert_eq!(list("&bookable=false".into()).await, [(id(&soon), false), (id(&later), false)]);
    assert_eq!(app.get(&format!("/v1/sessions/{}", id(&open)), None).await.expect(200).body["bookable_now"], true);
    // What the flag says is what a booking meets.
    let (school, token) = app.school_account("可预约").await;
    app.post("/v1/bookings", &booking_body(&soon, &school, 20, 1), Some(&token))
        .await
        .expect_problem(422, "booking-window-closed");
    app.post("/v1/bookings", &booking_body(&open, &school, 20, 1), Some(&token)).await.expect(201);

    // A base that is not accredited: its sessions (listed by base) cannot be booked.
    let applicant = app.base(json!({"name_en": "Applicant"})).await;
    let s = app.session(&id(&applicant), &app.admin, 48, json!({})).await;
    let of_applicant = |q: &str| format!("/v1/sessions?base_id={}{q}", id(&applicant));
    assert_eq!(app.get(&of_applicant(""), None).await.expect(200).body["items"][0]["bookable_now"], false);
    assert_eq!(app.get(&of_applicant("&bookable=true"), None).await.expect(200).body["items"], json!([]));
    assert_eq!(app.get(&of_applicant("&bookable=false"), None).await.expect(200).body["items"][0]["id"], s["id"]);
    app.get("/v1/sessions?bookable=maybe", None).await.expect_invalid("bookable");
}

/// A time in a leap second (`23:59:60Z`) would be stored as written and sort after the next
/// minute's first second: refused with 422 naming the field, in bodies and in queries.
#[tokio::test]
async fn times_in_a_leap_second_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let path = format!("/v1/bases/{}/sessions", id(&base));
    let day = (app.now() + Duration::days(3)).format("%Y-%m-%d").to_string();
    let leap = format!("{day}T23:59:60Z");
    let body =
        json!({"starts_at": leap, "ends_at": format!("{day}T23:59:59Z"), "capacity": 10, "audiences": ["junior"]});
    let r = app.post(&path, &body, Some(&op)).await.expect_invalid("starts_at");
    assert!(r.body["errors"][0]["message"].as_str().unwrap_or_default().contains("leap second"), "{}", r.body);
    let offset = format!("{day}T07:59:60.5+08:00");
    let body =
        json!({"starts_at": format!("{day}T09:00:00Z"), "ends_at": offset, "capacity": 10, "audiences": ["junior"]});
    app.post(&path, &body, Some(&op)).await.expect_invalid("ends_at");
    app.get(&format!("/v1/sessions?from={}", leap), None).await.expect_invalid("from");
    app.get(&format!("/v1/sessions?to={}", offset.replace('+', "%2B")), None).await.expect_invalid("to");
    let listed = app.get(&format!("/v1/sessions?base_id={}", id(&base)), None).await.expect(200).body;
    assert_eq!(listed["items"], json!([]), "nothing written");
}

#[tokio::test]
async fn a_session_that_has_started_can_no_longer_be_cancelled() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 30, json!({})).await;
    app.clock.advance(chrono::Duration::hours(31));
    let cancel = format!("/v1/sessions/{}/cancel", id(&s));
    let r = app.post(&cancel, &json!({"reason": "闭馆"}), Some(&op)).await.expect_problem(409, "invalid-state");
    assert!(r.body["detail"].as_str().unwrap().contains("started"), "{}", r.body);
    let after = app.get(&format!("/v1/sessions/{}", id(&s)), None).await.expect(200).body;
    assert_eq!(after["status"], "open", "nothing changed");
}
