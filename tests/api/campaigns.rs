//! Tour sign-up campaigns: the window, who may apply, the committed seed, the draw (once, also
//! raced), its publication and verification, results looked up by citizens, and the erasure
//! of their contact details.

use chrono::Duration;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, id, spawn_app};

/// A tour of two legs 72 hours from now with `places` places.
async fn tour(app: &TestApp, places: i64) -> Value {
    let (a, op_a) = app.accredited_base(json!({"name_en": format!("A {}", uuid::Uuid::now_v7())})).await;
    let (b, op_b) = app
        .accredited_base(
            json!({"name_en": format!("B {}", uuid::Uuid::now_v7()), "location": {"lat": 23.10, "lon": 113.26}}),
        )
        .await;
    let first = app.session(&id(&a), &op_a, 72, json!({"audiences": ["junior"]})).await;
    let second = app.session(&id(&b), &op_b, 76, json!({"audiences": ["junior"]})).await;
    let body = json!({
        "title": "科学周一日游", "audience": "junior", "meeting_point": "正门",
        "meeting_location": {"lat": 23.13, "lon": 113.32}, "places": places, "legs": [first["id"], second["id"]],
    });
    app.post("/v1/tours", &body, Some(&app.admin)).await.expect(201).body
}

async fn campaign(app: &TestApp, tours: &[&Value], max_wins: i64) -> Value {
    let opens = app.now() + Duration::hours(1);
    let body = json!({
        "title": "2026 科技活动周", "opens_at": opens.to_rfc3339(), "closes_at": (opens + Duration::hours(24)).to_rfc3339(),
        "for_schools": true, "for_citizens": true, "max_wins": max_wins,
        "tours": tours.iter().map(|t| t["id"].clone()).collect::<Vec<_>>(),
    });
    app.post("/v1/campaigns", &body, Some(&app.admin)).await.expect(201).body
}

fn citizen(i: usize, tours: &[&Value]) -> Value {
    let district = ["440106", "440104", "440111"][i % 3];
    json!({
        "kind": "citizen", "name": format!("市民{i}"), "phone": format!("139 {:04} {:04}", i / 10_000, i % 10_000),
        "people": 1 + (i % 4) as i64, "district_code": district,
        "preferences": tours.iter().map(|t| t["id"].clone()).collect::<Vec<_>>(),
    })
}

fn apply_path(c: &Value) -> String {
    format!("/v1/campaigns/{}/applications", id(c))
}

/// Applies from the client address 127.0.x.y numbered `n` (citizens' applications are limited
/// per address).
async fn apply_from(app: &TestApp, n: usize, c: &Value, body: &Value) -> crate::helpers::Reply {
    let ip: std::net::IpAddr = format!("127.0.{}.{}", 1 + n / 250, 1 + n % 250).parse().unwrap();
    let client = reqwest::Client::builder().local_address(ip).build().unwrap();
    app.send(client.post(app.url(&apply_path(c))).json(body)).await
}

#[tokio::test]
async fn a_campaign_is_applied_to_in_its_window_drawn_once_published_and_verified() {
    let app = spawn_app().await;
    let (t1, t2) = (tour(&app, 10).await, tour(&app, 10).await);
    let c = campaign(&app, &[&t1, &t2], 1).await;
    let hash = c["seed_sha256"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 64);
    assert!(c.get("seed").is_none(), "the seed stays secret until the draw");
    // Before the window: refused.
    app.post(&apply_path(&c), &citizen(1, &[&t1]), None).await.expect_problem(422, "campaign-window-closed");
    app.clock.advance(Duration::hours(2));

    let mut ids = Vec::new();
    for i in 0..14 {
        ids.push(apply_from(&app, i, &c, &citizen(i, &[&t1, &t2])).await.expect(201).body);
    }
    assert_eq!(ids[0]["phone"], "139******00", "masked in the answer: {}", ids[0]);
    // At most ten an hour from one address.
    for i in 0..10 {
        apply_from(&app, 900, &c, &citizen(200 + i, &[&t1])).await.expect(201);
    }
    apply_from(&app, 900, &c, &citizen(210, &[&t1])).await.expect_problem(429, "rate-limited");
    // One application per phone number, however it is typed.
    let mut again = citizen(0, &[&t1]);
    again["phone"] = json!("+86 139-0000-0000");
    app.post(&apply_path(&c), &again, None).await.expect_problem(409, "already-applied");
    // Wrong fields, each named.
    let mut bad = citizen(100, &[&t1]);
    bad["phone"] = json!("020-8324 1234");
    app.post(&apply_path(&c), &bad, None).await.expect_invalid("phone");
    let mut bad = citizen(101, &[&t1]);
    bad["people"] = json!(5);
    app.post(&apply_path(&c), &bad, None).await.expect_invalid("people");
    let mut bad = citizen(102, &[&t1]);
    bad["preferences"] = json!([uuid::Uuid::now_v7()]);
    app.post(&apply_path(&c), &bad, None).await.expect_invalid("preferences[0]");
    let mut bad = citizen(103, &[&t1]);
    bad.as_object_mut().unwrap().remove("district_code");
    app.post(&apply_path(&c), &bad, None).await.expect_invalid("district_code");
    // A school applies signed in, for itself only; its group follows the booking rules.
    let (school, token) = app.school_account("报名学校").await;
    let school_body = json!({
        "kind": "school", "school_id": school["id"], "students": 7, "teachers": 1,
        "contact_name": "李老师", "contact_phone": "138 0000 1234", "preferences": [t2["id"]],
    });
    app.post(&apply_path(&c), &school_body, None).await.expect_problem(401, "unauthorized");
    let mut too_few = school_body.clone();
    too_few["students"] = json!(30);
    app.post(&apply_path(&c), &too_few, Some(&token)).await.expect_invalid("teachers");
    let school_app = app.post(&apply_path(&c), &school_body, Some(&token)).await.expect(201).body;
    assert_eq!(school_app["district_code"], "440106");

    // No draw before sign-up closes; nothing published.
    let draw = format!("/v1/campaigns/{}/draw", id(&c));
    app.post(&draw, &json!({}), Some(&app.admin)).await.expect_problem(409, "campaign-not-closed");
    app.get(&draw, None).await.expect_problem(409, "campaign-not-drawn");
    let (_, other_school) = app.school_account("旁观学校").await;
    // A school finds its application again from any browser; nobody else's.
    let listed = app.get(&apply_path(&c), Some(&token)).await.expect(200).body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["items"][0]["id"], school_app["id"]);
    let none = app.get(&apply_path(&c), Some(&other_school)).await.expect(200).body;
    assert_eq!(none["items"], json!([]));
    let all = app.get(&apply_path(&c), Some(&app.admin)).await.expect(200).body;
    assert!(all["items"].as_array().unwrap().len() > 1, "the bureau lists every application");
    app.get(&apply_path(&c), None).await.expect_problem(401, "unauthorized");
    let op = app.user("campaign-op", json!({"role": "evaluator"})).await;
    app.get(&apply_path(&c), Some(&op)).await.expect_problem(403, "forbidden");
    app.clock.advance(Duration::hours(24));
    app.post(&apply_path(&c), &citizen(50, &[&t1]), None).await.expect_problem(422, "campaign-window-closed");
    app.post(&draw, &json!({}), Some(&other_school)).await.expect_problem(403, "forbidden");

    let drawn = app.post(&draw, &json!({}), Some(&app.admin)).await.expect(200).body;
    assert_eq!(drawn["status"], "drawn");
    let twice = app.post(&draw, &json!({}), Some(&app.admin)).await.expect(200).body;
    assert_eq!(twice["drawn_at"], drawn["drawn_at"], "one draw");

    // The published draw: the seed hashes to the commitment made before the window opened.
    let published = app.get(&draw, None).await.expect(200);
    let p = &published.body;
    let seed = p["seed"].as_str().unwrap();
    let digest: String = Sha256::digest(seed.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(digest, hash);
    assert_eq!(p["seed_sha256"], hash.as_str());
    assert_eq!(p["outcome"]["order"].as_array().unwrap().len(), 25, "14 + 10 families and a school");
    let text = published.body.to_string();
    for a in &ids {
        assert!(!text.contains(a["id"].as_str().unwrap()), "applicants are pseudonymised");
    }
    assert!(!text.contains("13900000000") && !text.contains("市民"), "no phone or name in the draw");
    let verdict = app.get(&format!("{draw}/verification"), None).await.expect(200).body;
    assert_eq!(verdict, json!({"matches": true, "problems": []}));

    // Places: each tour holds 10, nobody over; round 1 only (max_wins 1).
    let wins = p["outcome"]["wins"].as_array().unwrap();
    assert!(wins.iter().all(|w| w["round"] == 1));
    let report = app.get("/v1/admin/consistency", Some(&app.admin)).await.expect(200).body;
    assert_eq!(report["consistent"], true, "{report:#}");
    for t in [&t1, &t2] {
        let now = app.get(&format!("/v1/tours/{}", id(t)), None).await.expect(200).body;
        assert!(now["free"].as_i64().unwrap() >= 0 && now["free"].as_i64().unwrap() < 10, "{now}");
    }
    // Every applicant learns the result: a citizen with the id and phone, a school signed in.
    let mut won = 0;
    for (i, a) in ids.iter().enumerate() {
        let phone = format!("139{:04}{:04}", i / 10_000, i % 10_000);
        let path = format!("{}/{}?phone={phone}", apply_path(&c), id(a));
        let mine = app.get(&path, None).await.expect(200).body;
        assert!(mine["status"] == "won" || mine["status"] == "waiting", "{mine}");
        assert!(mine["draw_position"].as_i64().unwrap() >= 1);
        assert_eq!(mine["phone"], format!("139******{:02}", i % 100));
        if mine["status"] == "won" {
            won += 1;
            assert_eq!(mine["wins"][0]["status"], "confirmed");
        }
        app.get(&format!("{}/{}?phone=13800000000", apply_path(&c), id(a)), None).await.expect(404);
        app.get(&format!("{}/{}", apply_path(&c), id(a)), None).await.expect(404);
    }
    assert!(wins.len() >= 4, "20 places over parties of 1–8: at least four applicants go ({})", wins.len());
    assert!(won <= wins.len());
    let school_result =
        app.get(&format!("{}/{}", apply_path(&c), id(&school_app)), Some(&token)).await.expect(200).body;
    if school_result["status"] == "won" {
        let tb = school_result["wins"][0]["tour_booking_id"].as_str().unwrap();
        let booked = app.get(&format!("/v1/tour-bookings/{tb}"), Some(&token)).await.expect(200).body;
        assert!(booked["legs"].as_array().unwrap().iter().all(|l| l["status"] == "confirmed"));
    }
    let notes = app.get("/v1/notifications", Some(&token)).await.expect(200).body;
    let kinds: Vec<&str> = notes["items"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"campaign_won") || kinds.contains(&"campaign_waiting"), "{kinds:?}");
    // The audit log, which outlives the erasure, keeps neither a citizen's name nor number.
    let audit = app
        .get(&format!("/v1/audit?entity=application&entity_id={}", id(&ids[3])), Some(&app.admin))
        .await
        .expect(200)
        .body;
    let entry = audit["items"][0]["after"].to_string();
    assert!(!entry.contains("市民3") && !entry.contains("13900000003"), "{entry}");
    // The bureau sees phone numbers whole.
    let bureau = app.get(&format!("{}/{}", apply_path(&c), id(&ids[3])), Some(&app.admin)).await.expect(200).body;
    assert_eq!(bureau["phone"], "13900000003");

    // 90 days after the last departure the sweep erases citizens' names and numbers, not before.
    assert_eq!(kepu::domain::campaigns::sweep(&app.db, app.now()).await.unwrap(), 0);
    app.clock.advance(Duration::days(94));
    let erased = kepu::domain::campaigns::sweep(&app.db, app.now()).await.unwrap();
    assert_eq!(erased, 24);
    let bureau = app.get(&format!("{}/{}", apply_path(&c), id(&ids[3])), Some(&app.admin)).await.expect(200).body;
    assert_eq!(bureau["phone"], Value::Null);
    assert_eq!(bureau["name"], Value::Null);
    app.get(&format!("{}/{}?phone=13900000003", apply_path(&c), id(&ids[3])), None).await.expect(404);
    assert_eq!(kepu::domain::campaigns::sweep(&app.db, app.now()).await.unwrap(), 0, "once");
}

#[tokio::test]
async fn campaigns_are_the_bureaus_and_commit_before_their_window() {
    let app = spawn_app().await;
    let t = tour(&app, 10).await;
    let (_, school) = app.school_account("学校").await;
    let officer = app.user("officer", json!({"role": "district_officer", "district_code": "440106"})).await;
    let opens = app.now() + Duration::hours(1);
    let body = json!({
        "title": "周末", "opens_at": opens.to_rfc3339(), "closes_at": (opens + Duration::hours(2)).to_rfc3339(),
        "for_schools": false, "for_citizens": true, "max_wins": 1, "tours": [t["id"]],
    });
    app.post("/v1/campaigns", &body, None).await.expect_problem(401, "unauthorized");
    app.post("/v1/campaigns", &body, Some(&school)).await.expect_problem(403, "forbidden");
    app.post("/v1/campaigns", &body, Some(&officer)).await.expect_problem(403, "forbidden");
    let mut past = body.clone();
    past["opens_at"] = json!((app.now() - Duration::minutes(1)).to_rfc3339());
    app.post("/v1/campaigns", &past, Some(&app.admin)).await.expect_invalid("opens_at");
    let mut late = body.clone();
    late["closes_at"] = json!((app.now() + Duration::days(10)).to_rfc3339());
    app.post("/v1/campaigns", &late, Some(&app.admin)).await.expect_invalid("tours[0]");
    let mut nobody = body.clone();
    nobody["for_citizens"] = json!(false);
    app.post("/v1/campaigns", &nobody, Some(&app.admin)).await.expect_invalid("for_citizens");
    let mut wins = body.clone();
    wins["max_wins"] = json!(0);
    app.post("/v1/campaigns", &wins, Some(&app.admin)).await.expect_invalid("max_wins");
    let c = app.post("/v1/campaigns", &body, Some(&app.admin)).await.expect(201).body;
    let listed = app.get("/v1/campaigns", None).await.expect(200).body;
    assert_eq!(listed["items"][0]["id"], c["id"]);
    // A campaign for citizens only refuses schools.
    app.clock.advance(Duration::hours(2));
    let (s, token) = app.school_account("另一所").await;
    let school_body = json!({
        "kind": "school", "school_id": s["id"], "students": 7, "teachers": 1,
        "contact_name": "李老师", "contact_phone": "138 0000 1234", "preferences": [t["id"]],
    });
    app.post(&apply_path(&c), &school_body, Some(&token)).await.expect_invalid("school_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_drawing_at_once_make_one_draw() {
    let app = spawn_app().await;
    let second = app.second_server().await;
    let (t1, t2) = (tour(&app, 6).await, tour(&app, 6).await);
    let c = campaign(&app, &[&t1, &t2], 2).await;
    app.clock.advance(Duration::hours(2));
    for i in 0..12 {
        apply_from(&app, i, &c, &citizen(i, &[&t1, &t2])).await.expect(201);
    }
    app.clock.advance(Duration::hours(24));
    let client = reqwest::Client::new();
    let tasks = (0..8).map(|i| {
        let server = if i % 2 == 0 { app.base_url.clone() } else { second.clone() };
        let (client, admin, path) = (client.clone(), app.admin.clone(), format!("/v1/campaigns/{}/draw", id(&c)));
        tokio::spawn(async move {
            let res = client.post(format!("{server}{path}")).bearer_auth(admin).json(&json!({})).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        })
    });
    let results: Vec<(u16, Value)> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let first = &results[0].1["drawn_at"];
    assert!(results.iter().all(|(_, b)| &b["drawn_at"] == first), "one draw: {results:?}");
    let p = app.get(&format!("/v1/campaigns/{}/draw", id(&c)), None).await.expect(200).body;
    let given: i64 = p["outcome"]["wins"].as_array().unwrap().len() as i64;
    let report = app.get("/v1/admin/consistency", Some(&app.admin)).await.expect(200).body;
    assert_eq!(report["consistent"], true, "the places were taken once: {report:#}");
    assert!(given >= 2, "{given}");
    let verdict = app.get(&format!("/v1/campaigns/{}/draw/verification", id(&c)), None).await.expect(200).body;
    assert_eq!(verdict["matches"], true);
}

#[tokio::test]
async fn the_published_draw_verifies_offline_and_a_changed_seed_does_not() {
    let app = spawn_app().await;
    let t = tour(&app, 8).await;
    let c = campaign(&app, &[&t], 1).await;
    app.clock.advance(Duration::hours(2));
    for i in 0..6 {
        app.post(&apply_path(&c), &citizen(i, &[&t]), None).await.expect(201);
    }
    app.clock.advance(Duration::hours(24));
    app.post(&format!("/v1/campaigns/{}/draw", id(&c)), &json!({}), Some(&app.admin)).await.expect(200);
    let p = app.get(&format!("/v1/campaigns/{}/draw", id(&c)), None).await.expect(200).body;
    let dir = tempfile::tempdir().unwrap();
    let verify = |doc: &Value| {
        let file = dir.path().join(format!("{}.json", uuid::Uuid::now_v7()));
        std::fs::write(&file, doc.to_string()).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_kepu"))
            .args(["draw", "verify", "--file"])
            .arg(&file)
            .env("DATABASE_URL", "sqlite::memory:")
            .output()
            .unwrap()
    };
    let ok = verify(&p);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("\"matches\": true"));
    let mut other = p.clone();
    other["seed"] = json!("00".repeat(32));
    let bad = verify(&other);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("commitment"));
    // Checked against the commitment the campaign published before sign-up opened.
    let file = dir.path().join("draw.json");
    std::fs::write(&file, p.to_string()).unwrap();
    let run = |commitment: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kepu"))
            .args(["draw", "verify", "--commitment", commitment, "--file"])
            .arg(&file)
            .env("DATABASE_URL", "sqlite::memory:")
            .output()
            .unwrap()
    };
    assert!(run(c["seed_sha256"].as_str().unwrap()).status.success());
    assert_eq!(run(&"0".repeat(64)).status.code(), Some(1));
    let mut reordered = p.clone();
    reordered["outcome"]["order"].as_array_mut().unwrap().swap(0, 1);
    assert_eq!(verify(&reordered).status.code(), Some(1));
}

#[tokio::test]
async fn places_freed_after_the_draw_go_to_the_waiting_list_in_draw_order() {
    let app = spawn_app().await;
    let t = tour(&app, 10).await;
    let c = campaign(&app, &[&t], 1).await;
    app.clock.advance(Duration::hours(2));
    // Three schools of 8 for 10 places: one goes, two wait.
    let mut applied = Vec::new();
    for i in 0..3 {
        let (school, token) = app.school_account(&format!("等候学校{i}")).await;
        let body = json!({
            "kind": "school", "school_id": school["id"], "students": 7, "teachers": 1,
            "contact_name": "李老师", "contact_phone": "138 0000 1234", "preferences": [t["id"]],
        });
        let a = app.post(&apply_path(&c), &body, Some(&token)).await.expect(201).body;
        applied.push((a, token));
    }
    app.clock.advance(Duration::hours(24));
    app.post(&format!("/v1/campaigns/{}/draw", id(&c)), &json!({}), Some(&app.admin)).await.expect(200);
    let mut results = Vec::new();
    for (a, token) in &applied {
        let r = app.get(&format!("{}/{}", apply_path(&c), id(a)), Some(token)).await.expect(200).body;
        results.push((r, token.clone()));
    }
    results.sort_by_key(|(r, _)| r["draw_position"].as_i64().unwrap());
    let statuses: Vec<&str> = results.iter().map(|(r, _)| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "won").count(), 1, "{statuses:?}");
    let (winner, winner_token) = results.iter().find(|(r, _)| r["status"] == "won").unwrap();
    let first_waiting = results.iter().find(|(r, _)| r["status"] == "waiting").unwrap();
    let booking = winner["wins"][0]["tour_booking_id"].as_str().unwrap();
    app.post(&format!("/v1/tour-bookings/{booking}/cancel"), &json!({}), Some(winner_token)).await.expect(200);

    let served = app.get(&format!("{}/{}", apply_path(&c), id(&first_waiting.0)), Some(&first_waiting.1)).await.body;
    assert_eq!(served["status"], "won", "the first in draw order who fits gets the freed places: {served}");
    assert_eq!(served["wins"][0]["round"], 0);
    let tb = served["wins"][0]["tour_booking_id"].as_str().unwrap();
    app.get(&format!("/v1/tour-bookings/{tb}"), Some(&first_waiting.1)).await.expect(200);
    let still = results.iter().filter(|(r, _)| r["status"] == "waiting").nth(1).unwrap();
    let still = app.get(&format!("{}/{}", apply_path(&c), id(&still.0)), Some(&still.1)).await.body;
    assert_eq!(still["status"], "waiting");
    let report = app.get("/v1/admin/consistency", Some(&app.admin)).await.expect(200).body;
    assert_eq!(report["consistent"], true, "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_applications_from_one_address_stop_at_the_limit() {
    let app = spawn_app().await;
    let t = tour(&app, 10).await;
    let c = campaign(&app, &[&t], 1).await;
    app.clock.advance(Duration::hours(2));
    let ip: std::net::IpAddr = "127.0.7.7".parse().unwrap();
    let client = reqwest::Client::builder().local_address(ip).build().unwrap();
    let tasks = (0..16).map(|i| {
        let (client, url, body) = (client.clone(), app.url(&apply_path(&c)), citizen(500 + i, &[&t]));
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().status().as_u16() })
    });
    let statuses: Vec<u16> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 6, "{statuses:?}");
}
