//! Concurrency: many clients race for one session and a shared pool, across two kepu servers
//! on one database; the same idempotency key raced; a server killed mid-race. Afterwards no
//! pool is over capacity, usage equals the confirmed bookings exactly, and every 201 exists.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, booking_body, id, spawn_app};

const CLIENTS: usize = 64;

/// A deterministic spread of group sizes (5 to 44 students).
fn group(i: usize) -> (i32, i32) {
    let students = 5 + ((i * 37) % 40) as i32;
    (students, (students + 19) / 20)
}

pub async fn schools(app: &TestApp, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(app.school(json!({"name": format!("赛跑学校{i}")})).await);
    }
    out
}

async fn post_booking(client: &reqwest::Client, base_url: &str, token: &str, body: &Value) -> (u16, Value) {
    let res =
        client.post(format!("{base_url}/v1/bookings")).bearer_auth(token).json(body).send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Pool usage and confirmed visitors must agree exactly, and never exceed capacity.
pub async fn assert_consistent(app: &TestApp, sessions: &[&Value]) {
    let report = app.get("/v1/admin/consistency", Some(&app.admin)).await.expect(200).body;
    assert_eq!(report["consistent"], true, "{report:#}");
    for s in sessions {
        let now = app.get(&format!("/v1/sessions/{}", id(s)), None).await.expect(200).body;
        let mut confirmed = 0;
        let mut cursor = String::new();
        loop {
            let page = app
                .get(&format!("/v1/bookings?session_id={}&status=confirmed&limit=500{cursor}", id(s)), Some(&app.admin))
                .await
                .expect(200)
                .body;
            for b in page["items"].as_array().unwrap() {
                confirmed += b["students"].as_i64().unwrap() + b["teachers"].as_i64().unwrap();
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        for p in now["pools"].as_array().unwrap() {
            assert!(p["used"].as_i64() <= p["capacity"].as_i64(), "over capacity: {p}");
            if p["own"] == true {
                assert_eq!(p["used"].as_i64().unwrap(), confirmed, "own pool usage = confirmed visitors");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_clients_on_two_servers_never_overbook_a_session_or_a_shared_pool() {
    let app = spawn_app().await;
    let second = app.second_server().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let daily = app
        .post(
            "/v1/capacity-pools",
            &json!({"name": "daily", "unit": "visitors", "capacity": 500, "base_id": base["id"]}),
            Some(&op),
        )
        .await
        .expect(201)
        .body;
    let hot = app.session(&id(&base), &op, 72, json!({"capacity": 400, "pool_ids": [daily["id"]]})).await;
    let other = app.session(&id(&base), &op, 76, json!({"capacity": 400, "pool_ids": [daily["id"]]})).await;
    let schools = schools(&app, CLIENTS).await;
    let client = reqwest::Client::new();
    let tasks = schools.iter().enumerate().map(|(i, school)| {
        let (client, admin) = (client.clone(), app.admin.clone());
        let server = if i % 2 == 0 { app.base_url.clone() } else { second.clone() };
        let (students, teachers) = group(i);
        let first = booking_body(&hot, school, students, teachers);
        let then = booking_body(&other, school, students, teachers);
        tokio::spawn(async move {
            let a = post_booking(&client, &server, &admin, &first).await;
            let b = post_booking(&client, &server, &admin, &then).await;
            vec![a, b]
        })
    });
    let results: Vec<(u16, Value)> =
        futures::future::join_all(tasks).await.into_iter().flat_map(|r| r.expect("task")).collect();
    let created: Vec<&Value> = results.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
    let refused = results.iter().filter(|(s, _)| *s == 409).count();
    assert_eq!(
        created.len() + refused,
        results.len(),
        "only 201 or 409: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(refused > 0, "demand must exceed capacity for the race to mean anything");
    let demand: i64 = (0..CLIENTS).map(|i| i64::from(group(i).0 + group(i).1)).sum::<i64>() * 2;
    assert!(demand > 500);
    for b in &created {
        let got = app.get(&format!("/v1/bookings/{}", id(b)), Some(&app.admin)).await.expect(200).body;
        assert_eq!(got["status"], "confirmed");
    }
    assert_consistent(&app, &[&hot, &other]).await;
    let pool = app.get(&format!("/v1/capacity-pools/{}", id(&daily)), None).await.body;
    let confirmed: i64 =
        created.iter().map(|b| b["students"].as_i64().unwrap() + b["teachers"].as_i64().unwrap()).sum();
    assert_eq!(pool["used"].as_i64().unwrap(), confirmed, "the shared pool holds exactly the confirmed visitors");
    assert!(confirmed <= 500 && confirmed > 400, "the pool fills up: {confirmed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_waitlist_and_cancellations_keep_the_books_exact() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 120})).await;
    let schools = schools(&app, 32).await;
    let client = reqwest::Client::new();
    let tasks = schools.iter().enumerate().map(|(i, school)| {
        let (client, admin, url) = (client.clone(), app.admin.clone(), app.base_url.clone());
        let (students, teachers) = group(i);
        let mut body = booking_body(&s, school, students, teachers);
        body["waitlist"] = json!(true);
        tokio::spawn(async move {
            let (status, b) = post_booking(&client, &url, &admin, &body).await;
            // Every third confirmed group cancels at once, racing the others.
            if status == 201 && i % 3 == 0 {
                let res = client
                    .post(format!("{url}/v1/bookings/{}/cancel", b["id"].as_str().unwrap()))
                    .bearer_auth(&admin)
                    .json(&json!({"reason": "plans changed"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
            }
            status
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 201 || *s == 202), "{statuses:?}");
    assert!(statuses.contains(&202));
    app.sweep().await;
    assert_consistent(&app, &[&s]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_idempotency_key_raced_makes_one_booking() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({})).await;
    let (school, token) = app.school_account("学校").await;
    let body = booking_body(&s, &school, 10, 1);
    let client = reqwest::Client::new();
    let tasks = (0..16).map(|_| {
        let (client, token, body, url) = (client.clone(), token.clone(), body.clone(), app.base_url.clone());
        tokio::spawn(async move {
            let res = client
                .post(format!("{url}/v1/bookings"))
                .bearer_auth(token)
                .header("idempotency-key", "same-key")
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        })
    });
    let replies: Vec<(u16, Value)> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    let ids: HashSet<String> = replies.iter().filter(|(s, _)| *s == 201).map(|(_, b)| id(b)).collect();
    assert_eq!(ids.len(), 1, "{replies:?}");
    assert!(
        replies
            .iter()
            .all(|(s, b)| *s == 201 || b["type"].as_str().is_some_and(|t| t.ends_with("idempotency-key-in-use"))),
        "{replies:?}"
    );
    let list = app.get("/v1/bookings", Some(&token)).await.body;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

/// A `kepu serve` child process on a database.
pub(crate) struct Server {
    pub(crate) child: std::process::Child,
    pub(crate) url: String,
}

/// A server a failing test leaves behind is killed with it (it would hold the test's output
/// open).
impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

pub(crate) fn start_server(database_url: &str) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_kepu"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", database_url)
        .env("KEPU_ADMIN_PASSWORD", "crash-test-password")
        .env("KEPU_SWEEP_SECONDS", "0")
        .env("KEPU_DB_MAX_CONNECTIONS", "6")
        .env("KEPU_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start kepu");
    Server { child, url: format!("http://127.0.0.1:{port}") }
}

pub(crate) async fn wait_ready(client: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if client.get(format!("{url}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("kepu did not become ready at {url}");
}

pub(crate) async fn login(client: &reqwest::Client, url: &str) -> String {
    let r: Value = client
        .post(format!("{url}/v1/auth/token"))
        .json(&json!({"username": "admin", "password": "crash-test-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_confirmed_booking_survives_a_sigkill_mid_race() {
    let test_db = crate::helpers::fresh_database().await;
    let client = reqwest::Client::new();
    let mut server = start_server(&test_db.url);
    wait_ready(&client, &server.url).await;
    let admin = login(&client, &server.url).await;
    let post = |path: &str, body: Value| {
        let (client, url, admin) = (client.clone(), server.url.clone(), admin.clone());
        let path = path.to_string();
        async move {
            let r = client.post(format!("{url}{path}")).bearer_auth(admin).json(&body).send().await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    let mut base_body = crate::helpers::base_body();
    base_body["status"] = json!("accredited");
    let base = post("/v1/bases", base_body).await;
    let starts = chrono::Utc::now() + chrono::Duration::days(3);
    let session = post(
        &format!("/v1/bases/{}/sessions", id(&base)),
        json!({"starts_at": starts.to_rfc3339(), "ends_at": (starts + chrono::Duration::hours(2)).to_rfc3339(), "capacity": 100000, "audiences": ["junior"]}),
    )
    .await;
    let mut schools = Vec::new();
    for i in 0..CLIENTS {
        schools.push(post("/v1/schools", json!({"name": format!("学校{i}"), "district_code": "440106", "address": "x", "location": {"lat": 23.1, "lon": 113.3}, "kind": "primary", "student_count": 100})).await);
    }
    // Each client books for its school until the server dies.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let tasks: Vec<_> = schools
        .iter()
        .map(|school| {
            let (client, url, admin, tx) = (client.clone(), server.url.clone(), admin.clone(), tx.clone());
            let body = booking_body(&session, school, 10, 1);
            tokio::spawn(async move {
                // One active booking per school per base at a time is plenty: book, cancel, repeat.
                loop {
                    let Ok(res) =
                        client.post(format!("{url}/v1/bookings")).bearer_auth(&admin).json(&body).send().await
                    else {
                        return;
                    };
                    if res.status() != 201 {
                        return;
                    }
                    let Ok(b) = res.json::<Value>().await else { return };
                    let _ = tx.send(id(&b));
                    // Keep every other booking; cancel the rest so the school can book again.
                    let keep = b["id"].as_str().unwrap().ends_with(['0', '2', '4', '6', '8', 'a', 'c', 'e']);
                    if keep {
                        return;
                    }
                    let cancel = client
                        .post(format!("{url}/v1/bookings/{}/cancel", id(&b)))
                        .bearer_auth(&admin)
                        .json(&json!({"reason": "retry"}))
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
    // Kill the server once it has answered a good number of 201s, with requests in flight.
    let mut confirmed = Vec::new();
    while confirmed.len() < 40 {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(id)) => confirmed.push(id),
            _ => break,
        }
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    while let Ok(id) = rx.try_recv() {
        confirmed.push(id);
    }
    assert!(confirmed.len() >= 40, "the race produced bookings before the kill: {}", confirmed.len());

    let mut restarted = start_server(&test_db.url);
    wait_ready(&client, &restarted.url).await;
    let admin = login(&client, &restarted.url).await;
    for b in &confirmed {
        let r = client.get(format!("{}/v1/bookings/{b}", restarted.url)).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(r.status(), 200, "booking {b} answered 201 before the crash and must exist after it");
        let body: Value = r.json().await.unwrap();
        assert!(body["status"] == "confirmed" || body["status"] == "cancelled", "{body}");
    }
    let report: Value = client
        .get(format!("{}/v1/admin/consistency", restarted.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["consistent"], true, "{report:#}");
    restarted.child.kill().ok();
    restarted.child.wait().ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attaching_and_detaching_a_pool_while_schools_book_keeps_the_books_exact() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 5000})).await;
    let extra = app
        .post(
            "/v1/capacity-pools",
            &json!({"name": "guides", "unit": "visitors", "capacity": 5000, "base_id": base["id"]}),
            Some(&op),
        )
        .await
        .expect(201)
        .body;
    let schools = schools(&app, 48).await;
    let client = reqwest::Client::new();
    let bookings = schools.iter().enumerate().map(|(i, school)| {
        let (client, admin, url) = (client.clone(), app.admin.clone(), app.base_url.clone());
        let body = booking_body(&s, school, 10 + (i % 5) as i32, 1);
        tokio::spawn(async move { post_booking(&client, &url, &admin, &body).await.0 })
    });
    let attach_path = format!("/v1/capacity-pools/{}/sessions", id(&extra));
    let detach_path = format!("{attach_path}/{}", id(&s));
    let toggles = async {
        for round in 0..6 {
            let r = if round % 2 == 0 {
                app.post(&attach_path, &json!({"session_id": s["id"]}), Some(&op)).await
            } else {
                app.delete(&detach_path, Some(&op)).await
            };
            assert!(r.status.is_success(), "{:?}", r.body);
        }
    };
    let (statuses, ()) = tokio::join!(futures::future::join_all(bookings), toggles);
    assert!(statuses.into_iter().all(|s| s.unwrap() == 201));
    assert_consistent(&app, &[&s]).await;
    let pool = app.get(&format!("/v1/capacity-pools/{}", id(&extra)), None).await.body;
    assert_eq!(pool["used"], 0, "detached at the end: it holds nothing");
}

#[tokio::test]
async fn marking_calendar_days_at_once_from_many_clients_keeps_one_mark_each() {
    let app = spawn_app().await;
    let second = app.second_server().await;
    // 48 clients over two servers, on four days.
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let (client, token) = (app.client.clone(), app.admin.clone());
            let base = if i % 2 == 0 { app.base_url.clone() } else { second.clone() };
            tokio::spawn(async move {
                let body = json!({"name": format!("holiday {i}"), "working": i % 3 == 0});
                let url = format!("{base}/v1/calendar/days/2027-05-0{}", 3 + i % 4);
                client.put(url).bearer_auth(token).json(&body).send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let days = app.get("/v1/calendar/days?year=2027", None).await.expect(200).body;
    assert_eq!(days["items"].as_array().unwrap().len(), 4, "{days}");
}
