//! Webhooks through the real API and a real local receiver that checks every signature,
//! answers errors and timeouts on purpose and is stopped and restarted mid-run: notices
//! arrive at least once and in order per booking, duplicates share their `webhook-id`; a
//! subscription that keeps failing is disabled and its owner told; the test event; the guard
//! against private targets; scope; two workers send each notice once.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{TestApp, booking_body, id, spawn_app, spawn_app_with};

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    /// Always 500.
    Fail,
    /// Each event's first attempt 500, a `booking_confirmed`'s second one too slow (past the
    /// sender's timeout, though the receiver takes it), then 200.
    Chaos,
}

/// One request the receiver took.
#[derive(Debug, Clone)]
struct Arrival {
    id: String,
    kind: String,
    booking_id: Option<String>,
    body: String,
    answered_ok: bool,
}

#[derive(Default)]
struct Inbox {
    secret: Option<String>,
    arrivals: Vec<Arrival>,
    bad_signatures: usize,
    attempts: HashMap<String, u32>,
}

#[derive(Clone)]
struct Receiver {
    inbox: Arc<Mutex<Inbox>>,
    mode: Arc<Mutex<Mode>>,
}

fn verify(secret: &str, headers: &HeaderMap, body: &str) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", h("webhook-id"), h("webhook-timestamp"), body).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    h("webhook-signature").split(' ').any(|s| s == format!("v1,{expected}"))
}

async fn take(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let mode = *r.mode.lock().unwrap();
    let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let kind = event["type"].as_str().unwrap_or_default().to_string();
    let (signed, attempt) = {
        let mut inbox = r.inbox.lock().unwrap();
        let signed = inbox.secret.as_deref().is_some_and(|s| verify(s, &headers, &body));
        if !signed {
            inbox.bad_signatures += 1;
        }
        let n = inbox.attempts.entry(id.clone()).or_default();
        *n += 1;
        (signed, *n)
    };
    let slow = mode == Mode::Chaos && attempt == 2 && kind == "booking_confirmed";
    let answer = match mode {
        _ if !signed => StatusCode::BAD_REQUEST,
        Mode::Ok => StatusCode::OK,
        Mode::Fail => StatusCode::INTERNAL_SERVER_ERROR,
        Mode::Chaos if attempt == 1 => StatusCode::INTERNAL_SERVER_ERROR,
        Mode::Chaos => StatusCode::OK,
    };
    // Taken (recorded) before answering: a slow answer is a duplicate once the sender retries.
    let booking_id = event["data"]["booking_id"].as_str().map(str::to_string);
    r.inbox.lock().unwrap().arrivals.push(Arrival {
        id,
        kind,
        booking_id,
        body,
        answered_ok: answer == StatusCode::OK,
    });
    if slow {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    answer
}

/// A receiver on 127.0.0.1; [`Running::stop`] and [`Running::start`] on the same port.
struct Running {
    receiver: Receiver,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn new(mode: Mode) -> Self {
        let receiver = Receiver { inbox: Arc::default(), mode: Arc::new(Mutex::new(mode)) };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Self { receiver, addr, stop: None, task: None };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new().route("/hook", axum::routing::post(take)).with_state(self.receiver.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        }));
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    async fn start(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.expect("the same port again");
        self.serve(listener);
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn set_secret(&self, secret: &str) {
        self.receiver.inbox.lock().unwrap().secret = Some(secret.to_string());
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.receiver.inbox.lock().unwrap().arrivals.clone()
    }

    fn bad_signatures(&self) -> usize {
        self.receiver.inbox.lock().unwrap().bad_signatures
    }
}

/// A kepu that may reach loopback, with a fast poll and short retries.
async fn fast_app(retries_ms: &[u64], disable_after_failures: u32) -> TestApp {
    let retries: Vec<Duration> = retries_ms.iter().map(|ms| Duration::from_millis(*ms)).collect();
    spawn_app_with(move |c| {
        c.webhooks.allow = vec!["127.0.0.0/8".parse().unwrap()];
        c.webhooks.poll = Duration::from_millis(50);
        c.webhooks.timeout = Duration::from_secs(1);
        c.webhooks.retry_schedule = retries;
        c.webhooks.disable_after_failures = disable_after_failures;
        c.webhooks.disable_after = Duration::ZERO;
    })
    .await
}

async fn subscribe(app: &TestApp, token: &str, url: &str, types: Value) -> Value {
    app.post("/v1/webhooks", &json!({"url": url, "event_types": types}), Some(token)).await.expect(201).body
}

async fn deliveries(app: &TestApp, token: &str, hook: &Value) -> Vec<Value> {
    let page = app.get(&format!("/v1/webhooks/{}/deliveries?limit=500", id(hook)), Some(token)).await.expect(200).body;
    page["items"].as_array().unwrap().clone()
}

/// Waits until `done` holds, polling every 100 ms, for at most `secs` seconds.
async fn eventually<F: std::future::Future<Output = bool>>(secs: u64, what: &str, mut done: impl FnMut() -> F) {
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < until {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Books `count` visits for a school at a new base and cancels each: two notices per booking.
async fn bookings_and_cancellations(app: &TestApp, school: &Value, token: &str, count: usize) -> Vec<String> {
    let (base, op) = app.accredited_base(json!({})).await;
    let mut ids = Vec::new();
    for i in 0..count {
        let s = app.session(&id(&base), &op, 72 + i as i64 * 3, json!({})).await;
        let b = app.post("/v1/bookings", &booking_body(&s, school, 30, 2), Some(token)).await.expect(201).body;
        // A school holds at most two future bookings at a base: cancelled before the next.
        app.post(&format!("/v1/bookings/{}/cancel", id(&b)), &json!({}), Some(token)).await.expect(200);
        ids.push(id(&b));
    }
    ids
}

async fn notice_ids(app: &TestApp, token: &str) -> Vec<(String, String, Option<String>)> {
    let page = app.get("/v1/notifications?limit=500", Some(token)).await.expect(200).body;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (id(n), n["kind"].as_str().unwrap().to_string(), n["booking_id"].as_str().map(str::to_string)))
        .collect()
}

#[tokio::test]
async fn notices_arrive_signed_in_order_at_least_once_through_errors_timeouts_and_a_restart() {
    let app = fast_app(&[100; 30], 1000).await;
    let mut rx = Running::new(Mode::Chaos).await;
    let (school, token) = app.school_account("回调中学").await;
    let hook = subscribe(&app, &token, &rx.url(), json!([])).await;
    assert_eq!(hook["event_types"], json!(["*"]));
    rx.set_secret(hook["secret"].as_str().unwrap());
    let _worker = app.webhook_worker(false).await;

    let mut bookings = bookings_and_cancellations(&app, &school, &token, 3).await;
    // Down for a while mid-run, with notices written meanwhile; then back on the same port.
    tokio::time::sleep(Duration::from_millis(300)).await;
    rx.stop().await;
    bookings.extend(bookings_and_cancellations(&app, &school, &token, 2).await);
    tokio::time::sleep(Duration::from_millis(700)).await;
    rx.start().await;

    let notices = notice_ids(&app, &token).await;
    assert_eq!(notices.len(), 10);
    eventually(60, "every notice delivered", || async {
        let ok: HashSet<String> = rx.arrivals().into_iter().filter(|a| a.answered_ok).map(|a| a.id).collect();
        notices.iter().all(|(n, _, _)| ok.contains(n))
    })
    .await;
    let arrivals = rx.arrivals();
    assert_eq!(rx.bad_signatures(), 0, "every request is signed with the subscription's secret");

    // In order per booking: a later notice first arrives after the earlier one was taken.
    for b in &bookings {
        let of_booking: Vec<&(String, String, Option<String>)> =
            notices.iter().filter(|(_, _, bk)| bk.as_deref() == Some(b.as_str())).collect();
        assert_eq!(of_booking.len(), 2);
        let (first, second) = (&of_booking[0].0, &of_booking[1].0);
        let first_ok = arrivals.iter().position(|a| &a.id == first && a.answered_ok).unwrap();
        let second_seen = arrivals.iter().position(|a| &a.id == second).unwrap();
        assert!(first_ok < second_seen, "booking {b}: its second notice came before its first was taken");
        assert!(arrivals.iter().all(|a| a.id != *first || a.booking_id.as_deref() == Some(b.as_str())));
    }

    // Duplicates (a timed-out attempt the receiver took anyway) share id and body.
    let mut by_id: HashMap<&str, Vec<&Arrival>> = HashMap::new();
    for a in &arrivals {
        by_id.entry(a.id.as_str()).or_default().push(a);
    }
    let duplicated: Vec<_> = by_id.values().filter(|v| v.iter().filter(|a| a.answered_ok).count() > 1).collect();
    assert!(!duplicated.is_empty(), "a timed-out attempt taken by the receiver arrives twice");
    for v in by_id.values() {
        assert!(v.iter().all(|a| a.body == v[0].body && a.kind == v[0].kind), "a retry sends the same body");
    }

    // The log says how each went; the notices say they were delivered.
    let log = deliveries(&app, &token, &hook).await;
    assert_eq!(log.len(), 10);
    for d in &log {
        assert_eq!(d["status"], "delivered", "{d:#}");
        assert!(d["attempts"].as_i64().unwrap() >= 2, "{d:#}");
        assert_eq!(d["last_status"], 200);
        assert!(d["next_attempt_at"].is_null());
    }
    let page = app.get("/v1/notifications?limit=500", Some(&token)).await.expect(200).body;
    assert!(page["items"].as_array().unwrap().iter().all(|n| n["delivered_at"].is_string()));
}

#[tokio::test]
async fn a_subscription_that_keeps_failing_is_disabled_and_its_owner_told() {
    let app = fast_app(&[50; 10], 3).await;
    let failing = Running::new(Mode::Fail).await;
    let healthy = Running::new(Mode::Ok).await;
    let (school, token) = app.school_account("失败中学").await;
    let bad = subscribe(&app, &token, &failing.url(), json!(["booking_confirmed"])).await;
    failing.set_secret(bad["secret"].as_str().unwrap());
    let good = subscribe(&app, &token, &healthy.url(), json!(["webhook_disabled"])).await;
    healthy.set_secret(good["secret"].as_str().unwrap());
    let _worker = app.webhook_worker(false).await;
    bookings_and_cancellations(&app, &school, &token, 1).await;

    let path = format!("/v1/webhooks/{}", id(&bad));
    eventually(30, "the failing subscription disabled", || async {
        app.get(&path, Some(&token)).await.expect(200).body["enabled"] == false
    })
    .await;
    let hook = app.get(&path, Some(&token)).await.expect(200).body;
    assert!(hook["consecutive_failures"].as_i64().unwrap() >= 3);
    assert!(hook["disabled_reason"].as_str().unwrap().contains("in a row"));
    assert!(hook["disabled_at"].is_string());

    // The owner is told: in its notifications, and through its other subscription.
    let told: Vec<_> = notice_ids(&app, &token).await.into_iter().filter(|n| n.1 == "webhook_disabled").collect();
    assert_eq!(told.len(), 1);
    eventually(20, "the owner's other webhook told", || async {
        healthy.arrivals().iter().any(|a| a.kind == "webhook_disabled" && a.answered_ok)
    })
    .await;
    assert!(healthy.arrivals().iter().all(|a| a.kind == "webhook_disabled"), "it asked for nothing else");
    let log = app.get(&format!("/v1/audit?entity=webhook&entity_id={}", id(&bad)), Some(&app.admin)).await;
    let actions: Vec<_> =
        log.expect(200).body["items"].as_array().unwrap().iter().map(|e| e["action"].clone()).collect();
    assert!(actions.contains(&json!("webhook.create")) && actions.contains(&json!("webhook.disable")), "{actions:?}");

    // Disabled: a test event is refused; nothing more is tried.
    app.post(&format!("{path}/test"), &json!({}), Some(&token)).await.expect_problem(409, "webhook-disabled");
    let tried = failing.arrivals().len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(failing.arrivals().len(), tried);

    // Enabled again: its failures forgotten, and what it holds is tried again.
    let again = app.patch(&path, &json!({"enabled": true}), Some(&token), None).await.expect(200).body;
    assert_eq!(again["enabled"], true);
    assert_eq!(again["consecutive_failures"], 0);
    assert!(again["disabled_reason"].is_null());
    eventually(20, "a retry after enabling", || async { failing.arrivals().len() > tried }).await;
}

#[tokio::test]
async fn the_test_endpoint_sends_a_signed_test_event_through_the_delivery_path() {
    let app = fast_app(&[100; 3], 10).await;
    let rx = Running::new(Mode::Ok).await;
    let (_, officer) =
        ((), app.user("officer-wh", json!({"role": "district_officer", "district_code": "440106"})).await);
    let hook = subscribe(&app, &officer, &rx.url(), json!(["booking_confirmed"])).await;
    rx.set_secret(hook["secret"].as_str().unwrap());
    assert!(hook["secret"].as_str().unwrap().starts_with("whsec_"));
    let _worker = app.webhook_worker(false).await;
    let queued = app.post(&format!("/v1/webhooks/{}/test", id(&hook)), &json!({}), Some(&officer)).await.expect(202);
    assert_eq!(queued.body["event_type"], "webhook.test");
    assert_eq!(queued.body["status"], "pending");
    eventually(20, "the test event", || async { rx.arrivals().iter().any(|a| a.kind == "webhook.test") }).await;
    assert_eq!(rx.bad_signatures(), 0);
    let arrival = rx.arrivals().into_iter().find(|a| a.kind == "webhook.test").unwrap();
    assert_eq!(arrival.id, queued.body["event_id"].as_str().unwrap());
    let body: Value = serde_json::from_str(&arrival.body).unwrap();
    assert_eq!(body["data"]["webhook_id"], hook["id"]);
    assert!(body["timestamp"].is_string());
    eventually(10, "the log to say delivered", || async {
        let log = deliveries(&app, &officer, &hook).await;
        log.len() == 1 && log[0]["status"] == "delivered"
    })
    .await;
    let log = deliveries(&app, &officer, &hook).await;
    assert_eq!((log[0]["attempts"].clone(), log[0]["last_status"].clone()), (json!(1), json!(200)));
    // The secret is shown once: not when read again; rotating shows a new one.
    let read = app.get(&format!("/v1/webhooks/{}", id(&hook)), Some(&officer)).await.expect(200).body;
    assert!(read.get("secret").is_none());
    let rotated = app.post(&format!("/v1/webhooks/{}/rotate-secret", id(&hook)), &json!({}), Some(&officer)).await;
    let new_secret = rotated.expect(200).body["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, hook["secret"].as_str().unwrap());
    // A district officer now reads the notices addressed to its account (none yet).
    app.get("/v1/notifications", Some(&officer)).await.expect(200);
}

#[tokio::test]
async fn the_guard_refuses_private_and_loopback_targets_and_other_schemes() {
    let app = spawn_app().await;
    let (_, token) = app.school_account("守卫中学").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/",
        "ftp://93.184.215.14/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "not a url",
        "http://user:pass@93.184.215.14/hook",
    ] {
        app.post("/v1/webhooks", &json!({"url": url}), Some(&token)).await.expect_invalid("url");
    }
    app.post("/v1/webhooks", &json!({"url": "http://93.184.215.14/hook", "event_types": ["Bad Kind"]}), Some(&token))
        .await
        .expect_invalid("event_types[0]");
    // A public address is accepted; changing it to a private one is refused.
    let hook = subscribe(&app, &token, "http://93.184.215.14/hook", json!(["*"])).await;
    app.patch(&format!("/v1/webhooks/{}", id(&hook)), &json!({"url": "http://10.1.2.3/"}), Some(&token), None)
        .await
        .expect_invalid("url");
    // An evaluator has no notifications to subscribe to.
    let evaluator = app.user("eval-wh", json!({"role": "evaluator"})).await;
    app.post("/v1/webhooks", &json!({"url": "http://93.184.215.14/hook"}), Some(&evaluator))
        .await
        .expect_problem(403, "forbidden");
}

#[tokio::test]
async fn another_account_can_neither_read_nor_change_a_subscription() {
    let app = spawn_app().await;
    let (_, a) = app.school_account("甲校").await;
    let (_, b) = app.school_account("乙校").await;
    let hook = subscribe(&app, &a, "http://93.184.215.14/a", json!([])).await;
    let path = format!("/v1/webhooks/{}", id(&hook));
    app.get(&path, Some(&b)).await.expect_problem(403, "forbidden");
    app.patch(&path, &json!({"enabled": false}), Some(&b), None).await.expect_problem(403, "forbidden");
    app.delete(&path, Some(&b)).await.expect_problem(403, "forbidden");
    app.post(&format!("{path}/test"), &json!({}), Some(&b)).await.expect_problem(403, "forbidden");
    app.post(&format!("{path}/rotate-secret"), &json!({}), Some(&b)).await.expect_problem(403, "forbidden");
    app.get(&format!("{path}/deliveries"), Some(&b)).await.expect_problem(403, "forbidden");
    let owner = hook["owner_id"].as_str().unwrap();
    app.get(&format!("/v1/webhooks?owner_id={owner}"), Some(&b)).await.expect_problem(403, "forbidden");
    assert_eq!(app.get("/v1/webhooks", Some(&b)).await.expect(200).body["items"], json!([]));
    app.get("/v1/webhooks", None).await.expect_problem(401, "unauthorized");
    app.get(&format!("/v1/webhooks/{}", uuid::Uuid::now_v7()), Some(&a)).await.expect_problem(404, "not-found");

    // The owner and the bureau may; every write is in the audit log.
    assert_eq!(app.get("/v1/webhooks", Some(&a)).await.expect(200).body["items"][0]["id"], hook["id"]);
    let all = app.get(&format!("/v1/webhooks?owner_id={owner}"), Some(&app.admin)).await.expect(200).body;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    app.get(&path, Some(&app.admin)).await.expect(200);
    let change = json!({"event_types": ["visit_reminder"], "description": "desk"});
    let changed = app.patch(&path, &change, Some(&a), None).await.expect(200).body;
    assert_eq!(changed["event_types"], json!(["visit_reminder"]));
    app.delete(&path, Some(&a)).await.expect(204);
    app.get(&path, Some(&a)).await.expect_problem(404, "not-found");
    let log = app.get(&format!("/v1/audit?entity=webhook&entity_id={}", id(&hook)), Some(&app.admin)).await;
    let log = log.expect(200).body;
    let actions: Vec<_> = log["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["webhook.create", "webhook.update", "webhook.delete"] {
        assert!(actions.contains(&a), "{actions:?}");
    }
    assert!(!log.to_string().contains("whsec_"), "the secret is never in the log");
}

#[tokio::test]
async fn two_workers_on_one_database_deliver_each_notice_exactly_once() {
    let app = fast_app(&[100; 5], 1000).await;
    let rx = Running::new(Mode::Ok).await;
    let (school, token) = app.school_account("并发中学").await;
    let hook = subscribe(&app, &token, &rx.url(), json!(["*"])).await;
    rx.set_secret(hook["secret"].as_str().unwrap());
    let _one = app.webhook_worker(false).await;
    let _two = app.webhook_worker(true).await;
    bookings_and_cancellations(&app, &school, &token, 6).await;
    let notices = notice_ids(&app, &token).await;
    assert_eq!(notices.len(), 12);
    eventually(30, "every notice delivered", || async {
        let seen: HashSet<String> = rx.arrivals().into_iter().map(|a| a.id).collect();
        notices.iter().all(|(n, _, _)| seen.contains(n))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut count: HashMap<String, usize> = HashMap::new();
    for a in rx.arrivals() {
        *count.entry(a.id).or_default() += 1;
    }
    assert_eq!(count.len(), 12);
    assert!(count.values().all(|n| *n == 1), "each notice once: {count:?}");
    assert_eq!(rx.bad_signatures(), 0);
}
