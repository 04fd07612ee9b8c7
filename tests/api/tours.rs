//! Science tours: legs checked for order, reach and standing; a tour booked whole or not at
//! all through the booking core; cancelled whole; found by place, time and free places; raced
//! against single bookings of the same sessions.

use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::{TestApp, booking_body, id, spawn_app};

/// Two accredited bases about 7.8 km apart (Tianhe and Yuexiu), with an operator each.
async fn two_bases(app: &TestApp) -> ((Value, String), (Value, String)) {
    let a = app.accredited_base(json!({"name_en": "Tianhe Science Hall"})).await;
    let b = app
        .accredited_base(json!({
            "name_en": "Yuexiu Lab",
            "district_code": "440104",
            "location": {"lat": 23.10, "lon": 113.26}
        }))
        .await;
    (a, b)
}

/// A session at `base` starting `minutes` after `after`'s end (or `in_hours` from now when
/// `after` is `None`), lasting 90 minutes.
async fn leg(app: &TestApp, base: &(Value, String), after: Option<&Value>, minutes: i64, capacity: i64) -> Value {
    let starts = match after {
        Some(prev) => {
            chrono::DateTime::parse_from_rfc3339(prev["ends_at"].as_str().unwrap()).unwrap().to_utc()
                + Duration::minutes(minutes)
        }
        None => app.now() + Duration::hours(72),
    };
    let body = json!({
        "starts_at": starts.to_rfc3339(),
        "ends_at": (starts + Duration::minutes(90)).to_rfc3339(),
        "capacity": capacity,
        "audiences": ["junior"],
    });
    app.post(&format!("/v1/bases/{}/sessions", id(&base.0)), &body, Some(&base.1)).await.expect(201).body
}

fn tour_body(legs: &[&Value], places: i64) -> Value {
    json!({
        "title": "科学周：天河—越秀一日游",
        "audience": "junior",
        "meeting_point": "天河体育中心南门",
        "meeting_location": {"lat": 23.1365, "lon": 113.3246},
        "places": places,
        "legs": legs.iter().map(|l| l["id"].clone()).collect::<Vec<_>>(),
    })
}

fn tour_booking_body(school: &Value, students: i64, teachers: i64) -> Value {
    json!({
        "school_id": school["id"],
        "students": students,
        "teachers": teachers,
        "contact_name": "李老师",
        "contact_phone": "138 0000 1234",
    })
}

async fn used_and_free(app: &TestApp, session: &Value) -> (i64, i64) {
    let s = app.get(&format!("/v1/sessions/{}", id(session)), None).await.expect(200).body;
    (s["pools"][0]["used"].as_i64().unwrap(), s["free"].as_i64().unwrap())
}

#[tokio::test]
async fn a_tour_is_booked_whole_through_the_booking_rules_and_cancelled_whole() {
    let app = spawn_app().await;
    let (a, b) = two_bases(&app).await;
    let first = leg(&app, &a, None, 0, 100).await;
    let second = leg(&app, &b, Some(&first), 60, 100).await;
    let tour = app.post("/v1/tours", &tour_body(&[&first, &second], 40), Some(&app.admin)).await.expect(201).body;
    assert_eq!(tour["free"], 40, "the tour's own places are the least: {tour:#}");
    assert_eq!(tour["legs"].as_array().unwrap().len(), 2);
    assert_eq!(tour["legs"][1]["base"]["name_en"], "Yuexiu Lab");
    let km = tour["legs"][1]["travel_km"].as_f64().unwrap();
    assert!((7.0..9.0).contains(&km), "great-circle km between the bases: {km}");
    assert_eq!(tour["legs"][1]["travel_minutes"].as_f64().unwrap(), (km * 1.4 / 25.0 * 60.0 + 15.0).ceil());
    assert_eq!(tour["district_code"], Value::Null, "legs in two districts: the bureau's tour");
    assert_eq!(tour["bookable_now"], true);

    let (school, token) = app.school_account("华阳中学").await;
    let path = format!("/v1/tours/{}/bookings", id(&tour));
    let booked = app.post(&path, &tour_booking_body(&school, 30, 2), Some(&token)).await.expect(201).body;
    let legs = booked["legs"].as_array().unwrap();
    assert_eq!(legs.len(), 2);
    assert!(legs.iter().all(|l| l["status"] == "confirmed" && l["code"] == booked["code"]), "{booked:#}");
    assert_eq!(legs[0]["session_id"], first["id"]);
    assert_eq!(legs[1]["session_id"], second["id"]);
    assert_eq!(used_and_free(&app, &first).await, (32, 68));
    assert_eq!(used_and_free(&app, &second).await, (32, 68));
    let tour_now = app.get(&format!("/v1/tours/{}", id(&tour)), None).await.expect(200).body;
    assert_eq!(tour_now["free"], 8);
    // Each leg is a booking: the school sees it in its list, the base in its own.
    let mine = app.get("/v1/bookings", Some(&token)).await.expect(200).body;
    assert_eq!(mine["items"].as_array().unwrap().len(), 2);
    let at_b = app.get(&format!("/v1/tour-bookings/{}", id(&booked)), Some(&b.1)).await.expect(200).body;
    assert_eq!(at_b["code"], Value::Null, "a base reads the code from the group");

    // Nine more do not fit the tour's 8 places left: nothing of it is booked.
    let (other, other_token) = app.school_account("东山小学").await;
    let r = app.post(&path, &tour_booking_body(&other, 8, 1), Some(&other_token)).await;
    let detail = r.expect_problem(409, "capacity-exhausted").body["detail"].as_str().unwrap().to_string();
    assert!(detail.starts_with("8 places left"), "{detail}");
    assert_eq!(used_and_free(&app, &first).await, (32, 68), "no half-booked tour");
    assert_eq!(app.get("/v1/bookings", Some(&other_token)).await.body["items"].as_array().unwrap().len(), 0);

    // A leg alone cannot be cancelled; the tour booking is, whole.
    app.post(&format!("/v1/bookings/{}/cancel", id(&legs[0])), &json!({}), Some(&token))
        .await
        .expect_problem(409, "part-of-tour");
    let cancelled =
        app.post(&format!("/v1/tour-bookings/{}/cancel", id(&booked)), &json!({}), Some(&token)).await.expect(200).body;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["legs"].as_array().unwrap().iter().all(|l| l["status"] == "cancelled"));
    assert_eq!(used_and_free(&app, &first).await, (0, 100));
    assert_eq!(used_and_free(&app, &second).await, (0, 100));
    assert_eq!(app.get(&format!("/v1/tours/{}", id(&tour)), None).await.body["free"], 40);
    app.post(&format!("/v1/tour-bookings/{}/cancel", id(&booked)), &json!({}), Some(&token))
        .await
        .expect_problem(409, "invalid-state");
    let report = app.get("/v1/admin/consistency", Some(&app.admin)).await.expect(200).body;
    assert_eq!(report["consistent"], true, "{report:#}");
    let audit = app
        .get(&format!("/v1/audit?entity=tour_booking&entity_id={}", id(&booked)), Some(&app.admin))
        .await
        .expect(200)
        .body;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"tour_booking.create") && actions.contains(&"tour_booking.cancel"), "{actions:?}");
}

#[tokio::test]
async fn legs_are_checked_for_order_reach_standing_and_audience_naming_the_leg() {
    let app = spawn_app().await;
    let (a, b) = two_bases(&app).await;
    let first = leg(&app, &a, None, 0, 100).await;
    let tight = leg(&app, &b, Some(&first), 20, 100).await;
    let r = app.post("/v1/tours", &tour_body(&[&first, &tight], 40), Some(&app.admin)).await.expect_invalid("legs[1]");
    let message = r.body["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("leg 2 cannot be reached from leg 1"), "{message}");
    assert!(message.contains("km") && message.contains("20 min are planned"), "{message}");
    let missing = message.split(", ").last().unwrap();
    assert!(missing.ends_with("min missing"), "{message}");

    // Out of order: the second leg starts before the first ends.
    let early = leg(&app, &b, Some(&first), -60, 100).await;
    let r = app.post("/v1/tours", &tour_body(&[&first, &early], 40), Some(&app.admin)).await.expect_invalid("legs[1]");
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("time order"));

    // One leg, the same session twice, an unknown session.
    app.post("/v1/tours", &tour_body(&[&first], 40), Some(&app.admin)).await.expect_invalid("legs");
    app.post("/v1/tours", &tour_body(&[&first, &first], 40), Some(&app.admin)).await.expect_invalid("legs[1]");
    let ghost = json!({"id": uuid::Uuid::now_v7()});
    app.post("/v1/tours", &tour_body(&[&first, &ghost], 40), Some(&app.admin)).await.expect_invalid("legs[1]");

    // A leg for another audience; a leg at a base that is not accredited.
    let seniors = app.session(&id(&b.0), &b.1, 80, json!({"audiences": ["senior"]})).await;
    app.post("/v1/tours", &tour_body(&[&first, &seniors], 40), Some(&app.admin)).await.expect_invalid("legs[1]");
    let pending = app.base(json!({"name_en": "Not yet"})).await;
    let op = app.user("op-pending", json!({"role": "operator", "base_ids": [id(&pending)]})).await;
    let unaccredited = leg(&app, &(pending, op), Some(&first), 60, 100).await;
    let r = app.post("/v1/tours", &tour_body(&[&first, &unaccredited], 40), Some(&app.admin)).await;
    assert!(r.expect_invalid("legs[1]").body["errors"][0]["message"].as_str().unwrap().contains("accredited"));

    // Bad fields of the tour itself.
    let mut body = tour_body(&[&first, &leg(&app, &b, Some(&first), 60, 100).await], 40);
    body["places"] = json!(0);
    app.post("/v1/tours", &body, Some(&app.admin)).await.expect_invalid("places");
    body["places"] = json!(40);
    body["meeting_location"] = json!({"lat": 40.0, "lon": 113.3});
    app.post("/v1/tours", &body, Some(&app.admin)).await.expect_invalid("meeting_location.lat");
    body["meeting_location"] = json!({"lat": 23.1, "lon": 113.3});
    body["title"] = json!("  ");
    app.post("/v1/tours", &body, Some(&app.admin)).await.expect_invalid("title");
}

#[tokio::test]
async fn district_officers_make_tours_of_their_own_district_only() {
    let app = spawn_app().await;
    let (a, b) = two_bases(&app).await;
    let a2 = app.accredited_base(json!({"name_en": "Tianhe Farm", "location": {"lat": 23.15, "lon": 113.35}})).await;
    let first = leg(&app, &a, None, 0, 100).await;
    let same_district = leg(&app, &a2, Some(&first), 60, 100).await;
    let other_district = leg(&app, &b, Some(&first), 60, 100).await;
    let tianhe = app.user("officer-th", json!({"role": "district_officer", "district_code": "440106"})).await;
    let yuexiu = app.user("officer-yx", json!({"role": "district_officer", "district_code": "440104"})).await;
    let (_, school) = app.school_account("学校").await;
    let body = tour_body(&[&first, &same_district], 30);
    app.post("/v1/tours", &body, Some(&yuexiu)).await.expect_problem(403, "forbidden");
    app.post("/v1/tours", &body, Some(&school)).await.expect_problem(403, "forbidden");
    app.post("/v1/tours", &body, Some(&a.1)).await.expect_problem(403, "forbidden");
    let t = app.post("/v1/tours", &body, Some(&tianhe)).await.expect(201).body;
    assert_eq!(t["district_code"], "440106");
    // Legs in two districts are the bureau's.
    app.post("/v1/tours", &tour_body(&[&first, &other_district], 30), Some(&tianhe))
        .await
        .expect_problem(403, "forbidden");
}

#[tokio::test]
async fn a_leg_that_breaks_a_school_rule_books_nothing_and_a_cancelled_leg_stops_the_tour() {
    let app = spawn_app().await;
    let (a, b) = two_bases(&app).await;
    let first = leg(&app, &a, None, 0, 100).await;
    let second = leg(&app, &b, Some(&first), 60, 100).await;
    let tour = app.post("/v1/tours", &tour_body(&[&first, &second], 40), Some(&app.admin)).await.expect(201).body;
    let path = format!("/v1/tours/{}/bookings", id(&tour));
    let (school, token) = app.school_account("学校").await;
    // The school already visits another base while the second leg runs.
    let (c, c_op) = app.accredited_base(json!({"name_en": "Elsewhere"})).await;
    let clash =
        app.session(&id(&c), &c_op, 1, json!({"starts_at": second["starts_at"], "ends_at": second["ends_at"]})).await;
    app.post("/v1/bookings", &booking_body(&clash, &school, 10, 1), Some(&token)).await.expect(201);
    app.post(&path, &tour_booking_body(&school, 10, 1), Some(&token)).await.expect_problem(409, "overlapping-booking");
    assert_eq!(used_and_free(&app, &first).await.0, 0, "the first leg was not booked either");
    // Too few teachers: the booking rule, named.
    let (other, other_token) = app.school_account("另一所学校").await;
    app.post(&path, &tour_booking_body(&other, 30, 1), Some(&other_token)).await.expect_invalid("teachers");
    // Another school's id: not this account's to book for.
    app.post(&path, &tour_booking_body(&school, 10, 1), Some(&other_token)).await.expect_problem(403, "forbidden");

    // The base cancels the second leg's session: the tour shows it and takes no bookings.
    app.post(&format!("/v1/sessions/{}/cancel", id(&second)), &json!({"reason": "burst pipe"}), Some(&b.1))
        .await
        .expect(200);
    let t = app.get(&format!("/v1/tours/{}", id(&tour)), None).await.expect(200).body;
    assert_eq!(t["legs_not_open"], json!([2]));
    assert_eq!(t["bookable_now"], false);
    app.post(&path, &tour_booking_body(&other, 10, 1), Some(&other_token)).await.expect_problem(409, "tour-not-open");
}

#[tokio::test]
async fn one_idempotency_key_covers_the_whole_tour_booking() {
    let app = spawn_app().await;
    let (a, b) = two_bases(&app).await;
    let first = leg(&app, &a, None, 0, 100).await;
    let second = leg(&app, &b, Some(&first), 60, 100).await;
    let tour = app.post("/v1/tours", &tour_body(&[&first, &second], 40), Some(&app.admin)).await.expect(201).body;
    let (school, token) = app.school_account("学校").await;
    let send = |body: Value, key: &'static str| {
        let req = app
            .client
            .post(app.url(&format!("/v1/tours/{}/bookings", id(&tour))))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&body);
        app.send(req)
    };
    let one = send(tour_booking_body(&school, 20, 1), "tour-1").await.expect(201);
    let again = send(tour_booking_body(&school, 20, 1), "tour-1").await.expect(201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(one.body["id"], again.body["id"]);
    assert_eq!(used_and_free(&app, &first).await.0, 21, "booked once");
    send(tour_booking_body(&school, 25, 2), "tour-1").await.expect_problem(422, "idempotency-key-reused");
}

#[tokio::test]
async fn tours_are_found_by_time_place_audience_base_and_free_places() {
    let app = spawn_app().await;
    let (a, b) = two_bases(&app).await;
    let mut tours = Vec::new();
    for (i, places) in [10, 50, 30].into_iter().enumerate() {
        let first = leg(&app, &a, None, 0, 100).await;
        let first = if i == 0 {
            first
        } else {
            // Later days: the same shape, i days on.
            let starts = app.now() + Duration::hours(72 + 24 * i as i64);
            app.session(
                &id(&a.0),
                &a.1,
                0,
                json!({"starts_at": starts.to_rfc3339(), "ends_at": (starts + Duration::minutes(90)).to_rfc3339(), "audiences": ["junior"]}),
            )
            .await
        };
        let second = leg(&app, &b, Some(&first), 60, 100).await;
        let mut body = tour_body(&[&first, &second], places);
        if i == 2 {
            body["meeting_location"] = json!({"lat": 23.40, "lon": 113.20});
        }
        tours.push(app.post("/v1/tours", &body, Some(&app.admin)).await.expect(201).body);
    }
    let ids = |page: &Value| page["items"].as_array().unwrap().iter().map(id).collect::<Vec<_>>();
    let all = app.get("/v1/tours", None).await.expect(200).body;
    assert_eq!(ids(&all), tours.iter().map(id).collect::<Vec<_>>(), "by start");
    let roomy = app.get("/v1/tours?min_free=25", None).await.expect(200).body;
    assert_eq!(ids(&roomy), vec![id(&tours[1]), id(&tours[2])]);
    let near = app.get("/v1/tours?near=23.13,113.32&radius_km=10", None).await.expect(200).body;
    assert_eq!(ids(&near), vec![id(&tours[0]), id(&tours[1])], "the third meets 30 km away");
    assert!(near["items"][0]["distance_km"].as_f64().unwrap() < 2.0);
    let nearest = app.get("/v1/tours?near=23.40,113.20", None).await.expect(200).body;
    assert_eq!(ids(&nearest)[0], id(&tours[2]));
    let at_b = app.get(&format!("/v1/tours?base_id={}", id(&b.0)), None).await.expect(200).body;
    assert_eq!(ids(&at_b).len(), 3);
    let other_base = app.accredited_base(json!({"name_en": "No tours"})).await;
    let none = app.get(&format!("/v1/tours?base_id={}", id(&other_base.0)), None).await.expect(200).body;
    assert!(ids(&none).is_empty());
    app.get("/v1/tours?audience=senior", None).await.expect(200);
    assert!(ids(&app.get("/v1/tours?audience=senior", None).await.body).is_empty());
    // Pages: every tour once, in order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/v1/tours?limit=1{cursor}"), None).await.expect(200).body;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all));
    // Booking a tour lowers the free places a search filters on.
    let (school, token) = app.school_account("学校").await;
    app.post(&format!("/v1/tours/{}/bookings", id(&tours[1])), &tour_booking_body(&school, 28, 2), Some(&token))
        .await
        .expect(201);
    let roomy = app.get("/v1/tours?min_free=25", None).await.expect(200).body;
    assert_eq!(ids(&roomy), vec![id(&tours[2])]);
    app.get("/v1/tours?min_free=-1", None).await.expect_invalid("min_free");
    app.get("/v1/tours?radius_km=5", None).await.expect_invalid("radius_km");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schools_racing_for_a_tour_and_its_legs_never_overbook_nor_half_book() {
    // 24 schools want the whole tour, 4 more only its first leg: 60 places hold 5 groups.
    const SCHOOLS: usize = 24;
    const SINGLES: usize = 4;
    let app = spawn_app().await;
    let second_server = app.second_server().await;
    let (a, b) = two_bases(&app).await;
    let first = leg(&app, &a, None, 0, 60).await;
    let second = leg(&app, &b, Some(&first), 60, 60).await;
    let tour = app.post("/v1/tours", &tour_body(&[&first, &second], 100), Some(&app.admin)).await.expect(201).body;
    let mut schools = Vec::new();
    for i in 0..SCHOOLS + SINGLES {
        schools.push(app.school(json!({"name": format!("赛跑学校{i}")})).await);
    }
    let client = reqwest::Client::new();
    let tasks = schools.iter().enumerate().map(|(i, school)| {
        let (client, admin) = (client.clone(), app.admin.clone());
        let server = if i % 2 == 0 { app.base_url.clone() } else { second_server.clone() };
        let (path, body) = if i < SCHOOLS {
            (format!("/v1/tours/{}/bookings", id(&tour)), tour_booking_body(school, 10, 1))
        } else {
            ("/v1/bookings".to_string(), booking_body(&first, school, 10, 1))
        };
        tokio::spawn(async move {
            let res = client.post(format!("{server}{path}")).bearer_auth(admin).json(&body).send().await.unwrap();
            let status = res.status().as_u16();
            (i < SCHOOLS, status, res.json::<Value>().await.unwrap_or(Value::Null))
        })
    });
    let results: Vec<(bool, u16, Value)> =
        futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("task")).collect();
    assert!(
        results.iter().all(|(_, s, _)| *s == 201 || *s == 409),
        "{:?}",
        results.iter().map(|r| r.1).collect::<Vec<_>>()
    );
    let tours_won = results.iter().filter(|(t, s, _)| *t && *s == 201).count() as i64;
    let singles_won = results.iter().filter(|(t, s, _)| !*t && *s == 201).count() as i64;
    assert_eq!(tours_won + singles_won, 5, "60 places hold 5 groups of 11: {tours_won} + {singles_won}");
    assert!(tours_won >= 1);
    for (_, _, b) in results.iter().filter(|(t, s, _)| *t && *s == 201) {
        let got = app.get(&format!("/v1/tour-bookings/{}", id(b)), Some(&app.admin)).await.expect(200).body;
        let legs = got["legs"].as_array().unwrap();
        assert_eq!(legs.len(), 2);
        assert!(legs.iter().all(|l| l["status"] == "confirmed"), "a half-booked tour: {got:#}");
    }
    assert_eq!(used_and_free(&app, &first).await.0, 11 * (tours_won + singles_won));
    assert_eq!(used_and_free(&app, &second).await.0, 11 * tours_won);
    let t = app.get(&format!("/v1/tours/{}", id(&tour)), None).await.expect(200).body;
    assert_eq!(t["free"].as_i64().unwrap(), 60 - 11 * (tours_won + singles_won));
    let report = app.get("/v1/admin/consistency", Some(&app.admin)).await.expect(200).body;
    assert_eq!(report["consistent"], true, "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tour_booking_is_whole_or_absent_after_a_sigkill_mid_race() {
    use crate::races::{login, start_server, wait_ready};
    let test_db = crate::helpers::fresh_database().await;
    let client = reqwest::Client::new();
    let mut server = start_server(&test_db.url);
    wait_ready(&client, &server.url).await;
    let admin = login(&client, &server.url).await;
    let post = |path: String, body: Value| {
        let (client, url, admin) = (client.clone(), server.url.clone(), admin.clone());
        async move {
            let r = client.post(format!("{url}{path}")).bearer_auth(admin).json(&body).send().await.unwrap();
            let status = r.status();
            let body = r.json::<Value>().await.unwrap();
            assert!(status.is_success(), "{path}: {status} {body}");
            body
        }
    };
    let mut legs = Vec::new();
    let starts = chrono::Utc::now() + Duration::days(3);
    for (i, lat) in [23.1382, 23.10].into_iter().enumerate() {
        let mut body = crate::helpers::base_body();
        body["status"] = json!("accredited");
        body["location"] = json!({"lat": lat, "lon": 113.3});
        let base = post("/v1/bases".into(), body).await;
        let at = starts + Duration::hours(3 * i as i64);
        let session = json!({"starts_at": at.to_rfc3339(), "ends_at": (at + Duration::minutes(90)).to_rfc3339(), "capacity": 100000, "audiences": ["junior"]});
        legs.push(post(format!("/v1/bases/{}/sessions", id(&base)), session).await);
    }
    let tour = post("/v1/tours".into(), tour_body(&[&legs[0], &legs[1]], 10_000)).await;
    let mut schools = Vec::new();
    for i in 0..24 {
        schools.push(post("/v1/schools".into(), json!({"name": format!("学校{i}"), "district_code": "440106", "address": "x", "location": {"lat": 23.1, "lon": 113.3}, "kind": "primary", "student_count": 100})).await);
    }
    // Each client books the tour for its school, cancels, and books again, until the kill.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let tasks: Vec<_> = schools
        .iter()
        .map(|school| {
            let (client, url, admin, tx) = (client.clone(), server.url.clone(), admin.clone(), tx.clone());
            let (path, body) = (format!("{url}/v1/tours/{}/bookings", id(&tour)), tour_booking_body(school, 10, 1));
            tokio::spawn(async move {
                loop {
                    let Ok(res) = client.post(&path).bearer_auth(&admin).json(&body).send().await else { return };
                    if res.status() != 201 {
                        return;
                    }
                    let Ok(b) = res.json::<Value>().await else { return };
                    let _ = tx.send(id(&b));
                    let cancel = client
                        .post(format!("{url}/v1/tour-bookings/{}/cancel", id(&b)))
                        .bearer_auth(&admin)
                        .json(&json!({"reason": "again"}))
                        .send()
                        .await;
                    if cancel.is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut made = Vec::new();
    while made.len() < 30 {
        match tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv()).await {
            Ok(Some(id)) => made.push(id),
            _ => break,
        }
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    while let Ok(id) = rx.try_recv() {
        made.push(id);
    }
    assert!(made.len() >= 30, "tour bookings before the kill: {}", made.len());

    let mut restarted = start_server(&test_db.url);
    wait_ready(&client, &restarted.url).await;
    let admin = login(&client, &restarted.url).await;
    let get = |path: String| {
        let (client, url, admin) = (client.clone(), restarted.url.clone(), admin.clone());
        async move { client.get(format!("{url}{path}")).bearer_auth(admin).send().await.unwrap() }
    };
    for b in &made {
        let r = get(format!("/v1/tour-bookings/{b}")).await;
        assert_eq!(r.status(), 200, "tour booking {b} answered 201 before the crash");
        let body: Value = r.json().await.unwrap();
        let legs = body["legs"].as_array().unwrap();
        assert_eq!(legs.len(), 2, "{body}");
        let want = if body["status"] == "confirmed" { "confirmed" } else { "cancelled" };
        assert!(legs.iter().all(|l| l["status"] == want), "half-cancelled: {body}");
    }
    // Every leg booking of the sessions belongs to a whole tour booking.
    for leg in &legs {
        let mut cursor = String::new();
        loop {
            let page: Value =
                get(format!("/v1/bookings?session_id={}&limit=500{cursor}", id(leg))).await.json().await.unwrap();
            for b in page["items"].as_array().unwrap() {
                let tb = b["tour_booking_id"].as_str().expect("every booking here is a tour leg");
                let whole: Value = get(format!("/v1/tour-bookings/{tb}")).await.json().await.unwrap();
                assert_eq!(whole["legs"].as_array().unwrap().len(), 2);
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
    }
    let report: Value = get("/v1/admin/consistency".into()).await.json().await.unwrap();
    assert_eq!(report["consistent"], true, "{report:#}");
    restarted.child.kill().ok();
    restarted.child.wait().ok();
}

#[tokio::test]
async fn two_legs_at_one_base_count_towards_its_limit_and_a_missed_tour_is_one_no_show() {
    let app = spawn_app().await;
    let (a, b) = two_bases(&app).await;
    let morning = leg(&app, &a, None, 0, 100).await;
    let afternoon = leg(&app, &a, Some(&morning), 60, 100).await;
    let tour = app.post("/v1/tours", &tour_body(&[&morning, &afternoon], 40), Some(&app.admin)).await.expect(201).body;
    let (school, token) = app.school_account("学校").await;
    // One visit at the base already: with the tour's two legs there it would hold three.
    let other_day = app.session(&id(&a.0), &a.1, 120, json!({"audiences": ["junior"]})).await;
    let single =
        app.post("/v1/bookings", &booking_body(&other_day, &school, 10, 1), Some(&token)).await.expect(201).body;
    let path = format!("/v1/tours/{}/bookings", id(&tour));
    app.post(&path, &tour_booking_body(&school, 10, 1), Some(&token)).await.expect_problem(409, "school-booking-limit");
    app.post(&format!("/v1/bookings/{}/cancel", id(&single)), &json!({}), Some(&token)).await.expect(200);
    app.post(&path, &tour_booking_body(&school, 10, 1), Some(&token)).await.expect(201);

    // The group misses the whole tour: two legs, one no-show. With one more missed visit the
    // school has missed two, not three: it is not suspended.
    let first = app.session(&id(&b.0), &b.1, 30, json!({"audiences": ["junior"]})).await;
    app.post("/v1/bookings", &booking_body(&first, &school, 10, 1), Some(&token)).await.expect(201);
    app.clock.advance(Duration::hours(80));
    let report = app.sweep().await;
    assert_eq!(report.no_shows, 3, "{report:?}");
    let later = app.session(&id(&b.0), &b.1, 48, json!({"audiences": ["junior"]})).await;
    app.post("/v1/bookings", &booking_body(&later, &school, 10, 1), Some(&token)).await.expect(201);
}

#[tokio::test]
async fn an_idempotency_key_belongs_to_one_tour() {
    let app = spawn_app().await;
    let (a, b) = two_bases(&app).await;
    let first = leg(&app, &a, None, 0, 100).await;
    let second = leg(&app, &b, Some(&first), 60, 100).await;
    let one = app.post("/v1/tours", &tour_body(&[&first, &second], 40), Some(&app.admin)).await.expect(201).body;
    let other = app.post("/v1/tours", &tour_body(&[&first, &second], 40), Some(&app.admin)).await.expect(201).body;
    let (school, token) = app.school_account("学校").await;
    let send = |tour: &Value| {
        let req = app
            .client
            .post(app.url(&format!("/v1/tours/{}/bookings", id(tour))))
            .bearer_auth(&token)
            .header("idempotency-key", "same-key")
            .json(&tour_booking_body(&school, 10, 1));
        app.send(req)
    };
    send(&one).await.expect(201);
    // The same key and body to another tour is another request: not the first one's answer.
    let r = send(&other).await;
    assert_eq!(r.header("idempotent-replayed"), None);
    r.expect_problem(422, "idempotency-key-reused");
}
