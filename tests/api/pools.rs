//! Capacity pools shared by sessions: a base's daily cap, a guide pool counted in groups, a
//! city-wide quota across two bases; attaching and detaching.

use serde_json::{Value, json};

use crate::helpers::{TestApp, booking_body, id, spawn_app};

async fn pool(app: &TestApp, id_: &str) -> Value {
    app.get(&format!("/v1/capacity-pools/{id_}"), None).await.expect(200).body
}

#[tokio::test]
async fn a_daily_cap_limits_two_sessions_together() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let cap = app
        .post(
            "/v1/capacity-pools",
            &json!({"name": "daily cap", "unit": "visitors", "capacity": 70, "base_id": base["id"]}),
            Some(&op),
        )
        .await
        .expect(201)
        .body;
    let morning = app.session(&id(&base), &op, 72, json!({"capacity": 50, "pool_ids": [cap["id"]]})).await;
    let afternoon = app.session(&id(&base), &op, 76, json!({"capacity": 50, "pool_ids": [cap["id"]]})).await;
    assert_eq!(morning["pools"].as_array().unwrap().len(), 2);
    let (s1, t1) = app.school_account("一").await;
    let (s2, t2) = app.school_account("二").await;
    let (s3, t3) = app.school_account("三").await;
    app.post("/v1/bookings", &booking_body(&morning, &s1, 38, 2), Some(&t1)).await.expect(201);
    let a = app.get(&format!("/v1/sessions/{}", id(&afternoon)), None).await.body;
    assert_eq!(a["free"], 30, "the afternoon's own pool has 50, the day has 30 left");
    app.post("/v1/bookings", &booking_body(&afternoon, &s2, 28, 2), Some(&t2)).await.expect(201);
    let r = app.post("/v1/bookings", &booking_body(&afternoon, &s3, 9, 1), Some(&t3)).await;
    r.expect_problem(409, "capacity-exhausted");
    let p = pool(&app, cap["id"].as_str().unwrap()).await;
    assert_eq!((p["used"].as_i64(), p["free"].as_i64()), (Some(70), Some(0)));
    assert_eq!(p["session_ids"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_guide_pool_counts_groups_not_visitors() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let guides = app
        .post(
            "/v1/capacity-pools",
            &json!({"name": "guides", "unit": "groups", "capacity": 2, "base_id": base["id"]}),
            Some(&op),
        )
        .await
        .expect(201)
        .body;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 200, "pool_ids": [guides["id"]]})).await;
    for (i, n) in [(0, 40), (1, 5)] {
        let (school, token) = app.school_account(&format!("学校{i}")).await;
        app.post("/v1/bookings", &booking_body(&s, &school, n, 2), Some(&token)).await.expect(201);
    }
    let (school, token) = app.school_account("学校三").await;
    app.post("/v1/bookings", &booking_body(&s, &school, 5, 1), Some(&token))
        .await
        .expect_problem(409, "capacity-exhausted");
    let now = app.get(&format!("/v1/sessions/{}", id(&s)), None).await.body;
    assert_eq!(now["free"], 0, "no guide left");
    assert_eq!(pool(&app, guides["id"].as_str().unwrap()).await["used"], 2);
}

#[tokio::test]
async fn a_city_wide_quota_is_shared_by_two_bases() {
    let app = spawn_app().await;
    let (a, op_a) = app.accredited_base(json!({"name_en": "A"})).await;
    let (b, op_b) = app.accredited_base(json!({"name_en": "B"})).await;
    let body = json!({"name": "Science Week", "unit": "visitors", "capacity": 60});
    app.post("/v1/capacity-pools", &body, Some(&op_a)).await.expect_problem(403, "forbidden");
    let week = app.post("/v1/capacity-pools", &body, Some(&app.admin)).await.expect(201).body;
    assert_eq!(week["base_id"], Value::Null);
    let sa = app.session(&id(&a), &op_a, 72, json!({"capacity": 50})).await;
    let sb = app.session(&id(&b), &op_b, 72, json!({"capacity": 50})).await;
    let pool_path = format!("/v1/capacity-pools/{}/sessions", id(&week));
    // The quota is the bureau's: it decides which sessions draw on it, not the operators,
    // neither for their own sessions nor at a session's creation.
    app.post(&pool_path, &json!({"session_id": sb["id"]}), Some(&op_a)).await.expect_problem(403, "forbidden");
    app.post(&pool_path, &json!({"session_id": sa["id"]}), Some(&op_a)).await.expect_problem(403, "forbidden");
    let starts = (app.now() + chrono::Duration::hours(80)).to_rfc3339();
    let ends = (app.now() + chrono::Duration::hours(81)).to_rfc3339();
    let opted = json!({"starts_at": starts, "ends_at": ends, "capacity": 50, "audiences": ["junior"], "pool_ids": [week["id"]]});
    app.post(&format!("/v1/bases/{}/sessions", id(&a)), &opted, Some(&op_a)).await.expect_problem(403, "forbidden");
    app.post(&pool_path, &json!({"session_id": sa["id"]}), Some(&app.admin)).await.expect(200);
    app.post(&pool_path, &json!({"session_id": sb["id"]}), Some(&app.admin)).await.expect(200);
    app.post(&pool_path, &json!({"session_id": sb["id"]}), Some(&app.admin)).await.expect_problem(409, "conflict");
    // Nor may an operator take its session out of the quota.
    let detach = format!("{pool_path}/{}", id(&sa));
    app.delete(&detach, Some(&op_a)).await.expect_problem(403, "forbidden");
    let (s1, t1) = app.school_account("一").await;
    let (s2, t2) = app.school_account("二").await;
    app.post("/v1/bookings", &booking_body(&sa, &s1, 38, 2), Some(&t1)).await.expect(201);
    let r = app.post("/v1/bookings", &booking_body(&sb, &s2, 28, 2), Some(&t2)).await;
    assert!(r.expect_problem(409, "capacity-exhausted").body["detail"].as_str().unwrap().contains("20 places left"));
    app.post("/v1/bookings", &booking_body(&sb, &s2, 18, 2), Some(&t2)).await.expect(201);
    assert_eq!(pool(&app, &id(&week)).await["used"], 60);
    let consistency = app.get("/v1/admin/consistency", Some(&app.admin)).await.expect(200).body;
    assert_eq!(consistency["consistent"], true, "{consistency}");
}

#[tokio::test]
async fn attaching_counts_existing_bookings_and_detaching_gives_them_back() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let (other, other_op) = app.accredited_base(json!({"name_en": "Other"})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 100})).await;
    let (school, token) = app.school_account("学校").await;
    app.post("/v1/bookings", &booking_body(&s, &school, 36, 2), Some(&token)).await.expect(201);
    let small = app
        .post(
            "/v1/capacity-pools",
            &json!({"name": "small", "unit": "visitors", "capacity": 30, "base_id": base["id"]}),
            Some(&op),
        )
        .await
        .expect(201)
        .body;
    let r = app
        .post(&format!("/v1/capacity-pools/{}/sessions", id(&small)), &json!({"session_id": s["id"]}), Some(&op))
        .await;
    r.expect_problem(409, "capacity-exhausted");
    let big = app
        .post(
            "/v1/capacity-pools",
            &json!({"name": "big", "unit": "visitors", "capacity": 40, "base_id": base["id"]}),
            Some(&op),
        )
        .await
        .expect(201)
        .body;
    let attached = app
        .post(&format!("/v1/capacity-pools/{}/sessions", id(&big)), &json!({"session_id": s["id"]}), Some(&op))
        .await;
    assert_eq!(attached.expect(200).body["used"], 38);
    // Another base's pool is not this session's to use.
    let theirs = app
        .post(
            "/v1/capacity-pools",
            &json!({"name": "theirs", "unit": "visitors", "capacity": 400, "base_id": other["id"]}),
            Some(&other_op),
        )
        .await
        .expect(201)
        .body;
    app.post(
        &format!("/v1/capacity-pools/{}/sessions", id(&theirs)),
        &json!({"session_id": s["id"]}),
        Some(&app.admin),
    )
    .await
    .expect_problem(409, "pool-of-another-base");
    // The session is now limited to 2 more places; a waiting group gets in on detach.
    let (school2, token2) = app.school_account("学校二").await;
    let mut waiting = booking_body(&s, &school2, 9, 1);
    waiting["waitlist"] = json!(true);
    let w = app.post("/v1/bookings", &waiting, Some(&token2)).await.expect(202).body;
    let detached =
        app.delete(&format!("/v1/capacity-pools/{}/sessions/{}", id(&big), id(&s)), Some(&op)).await.expect(200).body;
    assert_eq!(detached["used"], 0);
    assert_eq!(detached["session_ids"], json!([]));
    let w_now = app.get(&format!("/v1/bookings/{}", id(&w)), Some(&token2)).await.body;
    assert_eq!(w_now["status"], "confirmed");
    let own = s["pools"][0]["id"].as_str().unwrap();
    app.delete(&format!("/v1/capacity-pools/{own}/sessions/{}", id(&s)), Some(&op))
        .await
        .expect_problem(409, "own-pool");
    let consistency = app.get("/v1/admin/consistency", Some(&app.admin)).await.expect(200).body;
    assert_eq!(consistency["consistent"], true, "{consistency}");
}

#[tokio::test]
async fn pool_and_cancellation_rules_are_422_after_the_role_check() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let (_, other_op) = app.accredited_base(json!({"name_en": "Other"})).await;
    let blank = json!({"name": " ", "unit": "visitors", "capacity": 0, "base_id": base["id"]});
    app.post("/v1/capacity-pools", &blank, Some(&other_op)).await.expect_problem(403, "forbidden");
    let r = app.post("/v1/capacity-pools", &blank, Some(&op)).await.expect_problem(422, "validation");
    assert_eq!(r.fields(), ["name", "capacity"]);
    let s = app.session(&id(&base), &op, 72, json!({})).await;
    let path = format!("/v1/sessions/{}/cancel", id(&s));
    app.post(&path, &json!({"reason": " "}), Some(&other_op)).await.expect_problem(403, "forbidden");
    app.post(&path, &json!({"reason": " "}), Some(&op)).await.expect_invalid("reason");
    assert_eq!(app.get(&format!("/v1/sessions/{}", id(&s)), None).await.body["status"], "open");
}

#[tokio::test]
async fn a_booking_that_waited_while_a_pool_was_attached_draws_on_it_too() {
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 30})).await;
    let body = json!({"name": "guides", "unit": "groups", "capacity": 5, "base_id": base["id"]});
    let guides = app.post("/v1/capacity-pools", &body, Some(&op)).await.expect(201).body;
    let (school, token) = app.school_account("学校").await;
    let session_id: uuid::Uuid = id(&s).parse().unwrap();

    // Another writer holds the session exclusively (as attaching does) and attaches the pool;
    // the session has no bookings yet, so the pool's count stays 0.
    let txn = kepu::db::begin_write(&app.db).await.unwrap();
    kepu::domain::sessions::lock_exclusive(&txn, session_id).await.unwrap();
    entity::session_pool::Entity::insert(entity::session_pool::ActiveModel {
        session_id: Set(session_id),
        pool_id: Set(id(&guides).parse().unwrap()),
    })
    .exec_without_returning(&txn)
    .await
    .unwrap();
    // A booking arrives meanwhile and waits for the session.
    let booking = {
        let (client, url, body) = (app.client.clone(), app.url("/v1/bookings"), booking_body(&s, &school, 20, 1));
        tokio::spawn(async move { client.post(url).bearer_auth(token).json(&body).send().await.unwrap().status() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    txn.commit().await.unwrap();
    assert_eq!(booking.await.unwrap(), 201);

    // It took its place from the pool it could not have seen when it started waiting.
    assert_eq!(pool(&app, guides["id"].as_str().unwrap()).await["used"], 1);
    let consistency = app.get("/v1/admin/consistency", Some(&app.admin)).await.expect(200).body;
    assert_eq!(consistency["consistent"], true, "{consistency}");
}
