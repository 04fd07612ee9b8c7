//! Request-rate limits: a bucket per address for callers without a token, one per account for
//! the signed-in, whichever address they come from; health and metrics never limited; behind
//! trusted proxies, the address they name.

use std::net::IpAddr;

use crate::helpers::{TestApp, spawn_app_with};
use kepu::security::{RateLimit, parse_proxy};

/// A client whose connections come from `address` (any 127.0.0.0/8 address reaches the
/// server on 127.0.0.1).
fn client_from(address: &str) -> reqwest::Client {
    let ip: IpAddr = address.parse().expect("an address");
    reqwest::Client::builder().local_address(ip).build().expect("a client")
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = client.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("an answer")
}

fn field(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// 60 a minute: bursts of 10.
fn sixty_a_minute(c: &mut kepu::config::Config) {
    c.rate_anonymous = RateLimit { per_minute: 60 };
    c.rate_account = RateLimit { per_minute: 60 };
}

#[tokio::test]
async fn anonymous_callers_are_limited_per_address_and_told_when_to_come_back() {
    let app = spawn_app_with(sixty_a_minute).await;
    let here = client_from("127.0.0.2");
    for i in 0..10 {
        let r = get(&app, &here, "/v1/districts", None).await;
        assert_eq!(r.status(), 200, "request {i} of the burst");
        assert_eq!(field(&r, "ratelimit-policy"), "\"anonymous\";q=10;w=10");
        assert!(
            field(&r, "ratelimit").starts_with(&format!("\"anonymous\";r={};", 9 - i)),
            "{}",
            field(&r, "ratelimit")
        );
    }
    let refused = get(&app, &here, "/v1/districts", None).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = field(&refused, "retry-after").parse().expect("Retry-After in seconds");
    assert!((1..=6).contains(&retry), "one request refills in 6 s: {retry}");
    assert!(field(&refused, "ratelimit").starts_with("\"anonymous\";r=0;t="));
    let problem: serde_json::Value = refused.json().await.expect("a problem");
    assert!(problem["type"].as_str().unwrap().ends_with("/rate-limited"), "{problem}");
    let metrics = get(&app, &here, "/metrics", None).await.text().await.expect("metrics");
    assert!(metrics.contains("kepu_rate_limited_total{policy=\"anonymous\"}"), "counted");

    // Another address has its own bucket; probes and scrapers are never limited; a signed-in
    // account from the limited address draws on its account's bucket.
    assert_eq!(get(&app, &client_from("127.0.0.3"), "/v1/districts", None).await.status(), 200);
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get(&app, &here, path, None).await.status(), 200, "{path}");
    }
    let me = get(&app, &here, "/v1/me", Some(&app.admin)).await;
    assert_eq!((me.status().as_u16(), field(&me, "ratelimit-policy")), (200, "\"account\";q=10;w=10".into()));
}

#[tokio::test]
async fn a_signed_in_account_is_limited_across_addresses_and_others_are_not() {
    let app = spawn_app_with(sixty_a_minute).await;
    // Creating that account was the admin's first request of its burst of 10.
    let started = std::time::Instant::now();
    let expert = app.user("limited-expert", serde_json::json!({"role": "evaluator"})).await;
    // Each from another address: the rest of the burst passes, then the account is limited. The
    // bucket refills a request a second, so a slow machine lets that many more through.
    let mut passed = 0;
    for i in 0..40 {
        let from = client_from(&format!("127.0.1.{}", i + 1));
        match get(&app, &from, "/v1/me", Some(&app.admin)).await.status().as_u16() {
            200 => passed += 1,
            429 => break,
            other => panic!("request {i}: {other}"),
        }
    }
    let refilled = started.elapsed().as_secs() + 1;
    assert!(passed >= 9 && passed <= 9 + refilled, "{passed} passed in {refilled} s: per account, not address");
    let elsewhere = client_from("127.0.2.1");
    assert_eq!(get(&app, &elsewhere, "/v1/me", Some(&expert)).await.status(), 200, "another account");
    // A bad token is no account: it draws on the address's bucket (and is then refused 401).
    assert_eq!(get(&app, &elsewhere, "/v1/me", Some("forged")).await.status(), 401);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_address_it_names_counts_and_elsewhere_forwarded_for_is_ignored() {
    let app = spawn_app_with(|c| {
        sixty_a_minute(c);
        c.trusted_proxies = vec![parse_proxy("127.0.0.2").expect("a proxy")];
    })
    .await;
    let proxy = client_from("127.0.0.2");
    let via = |client: reqwest::Client, forwarded: &'static str| {
        let url = app.url("/v1/districts");
        async move { client.get(url).header("x-forwarded-for", forwarded).send().await.expect("an answer").status() }
    };
    // The client may forge the left of the header; the proxy appends the address it saw.
    for _ in 0..10 {
        assert_eq!(via(proxy.clone(), "10.9.9.9, 203.0.113.7").await, 200);
    }
    assert_eq!(via(proxy.clone(), "10.9.9.8, 203.0.113.7").await, 429, "the last untrusted hop counts");
    assert_eq!(via(proxy.clone(), "203.0.113.8").await, 200, "another client behind the proxy");
    // Not a trusted proxy: its X-Forwarded-For is ignored, so forging it does not help.
    let direct = client_from("127.0.0.3");
    for i in 0..10 {
        let forged: &'static str = ["198.51.100.1", "198.51.100.2"][i % 2];
        assert_eq!(via(direct.clone(), forged).await, 200);
    }
    assert_eq!(via(direct.clone(), "198.51.100.3").await, 429);
}
