//! Health, readiness, metrics, request ids, the docs page, and problems for unknown routes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::helpers::{booking_body, id, spawn_app};

#[tokio::test]
async fn healthz_and_readyz_answer_ok() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.expect(200).body, json!({"status": "ok"}));
    assert_eq!(app.get("/readyz", None).await.expect(200).body, json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_answers_503_when_the_database_is_unreachable() {
    let app = spawn_app().await;
    app.db.clone().close().await.expect("close the pool");
    app.get("/readyz", None).await.expect_problem(503, "unavailable");
    assert_eq!(app.get("/healthz", None).await.status, 200, "liveness does not depend on the database");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_echoed() {
    let app = spawn_app().await;
    let generated = app.get("/healthz", None).await;
    let id = generated.header("x-request-id").expect("x-request-id");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let echoed = app.send(app.client.get(app.url("/v1/districts")).header("x-request-id", "trace-me-42")).await;
    assert_eq!(echoed.header("x-request-id"), Some("trace-me-42"));
    let problem = app.get("/v1/bases/not-a-uuid", None).await;
    assert!(problem.header("x-request-id").is_some(), "errors carry one too");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.get("/v1/districts/440106", None).await.expect(200);
    }
    app.get("/v1/districts/999999", None).await.expect(404);
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = res.text().await.unwrap();
    let line = |status: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("http_requests_total{")
                    && l.contains("route=\"/v1/districts/{code}\"")
                    && l.contains(&format!("status=\"{status}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
    };
    // The recorder is process-wide, so other tests may add to the counts.
    assert!(line("200").expect("a 200 series") >= 3.0, "{text}");
    assert!(line("404").expect("a 404 series") >= 1.0);
    assert!(text.contains("http_request_duration_seconds_bucket{"), "latency histogram");
}

/// A sample of the Prometheus text: its value, if a line has this name and every label.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

#[tokio::test]
async fn metrics_describe_every_family_and_count_bookings_searches_and_the_pool() {
    let app = spawn_app().await;
    let (base, op) = app.accredited_base(json!({})).await;
    let s = app.session(&id(&base), &op, 72, json!({"capacity": 50})).await;
    let (first, first_token) = app.school_account("第一小学").await;
    let (second, second_token) = app.school_account("第二小学").await;
    app.post("/v1/bookings", &booking_body(&s, &first, 40, 2), Some(&first_token)).await.expect(201);
    let body = booking_body(&s, &second, 20, 1);
    app.post("/v1/bookings", &body, Some(&second_token)).await.expect_problem(409, "capacity-exhausted");
    let mut waiting = body.clone();
    waiting["waitlist"] = json!(true);
    app.post("/v1/bookings", &waiting, Some(&second_token)).await.expect(202);
    app.get("/v1/sessions?near=23.14,113.33&radius_km=10", None).await.expect(200);
    app.get("/v1/sessions", None).await.expect(200);
    app.get("/v1/bases?near=23.14,113.33&radius_km=10", None).await.expect(200);
    app.get("/v1/bases?format=geojson", None).await.expect(200);

    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    // Every family has its HELP and TYPE; a histogram's samples end in _bucket, _sum, _count.
    let mut declared: BTreeMap<&str, (bool, Option<&str>)> = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some("#"), Some("HELP"), Some(name)) => declared.entry(name).or_default().0 = true,
            (Some("#"), Some("TYPE"), Some(name)) => declared.entry(name).or_default().1 = words.next(),
            _ => {}
        }
    }
    let sampled: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    for name in &sampled {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|f| declared.get(f).is_some_and(|d| d.1 == Some("histogram")))
            .unwrap_or(name);
        let (help, kind) = declared.get(family).copied().unwrap_or_default();
        assert!(help && kind.is_some(), "{family} lacks # HELP or # TYPE:\n{text}");
    }
    for family in ["http_requests_total", "kepu_bookings_total", "kepu_search_duration_seconds"] {
        assert!(declared.contains_key(family), "{family} is exported:\n{text}");
    }

    // The recorder is process-wide, so other tests may add to the counts.
    for labels in [
        &[("outcome", "confirmed")][..],
        &[("outcome", "waitlisted")],
        &[("outcome", "refused"), ("reason", "capacity-exhausted")],
    ] {
        assert!(sample(&text, "kepu_bookings_total", labels).is_some_and(|v| v >= 1.0), "{labels:?}:\n{text}");
    }
    for line in text.lines().filter(|l| l.starts_with("kepu_bookings_total{")) {
        let reason = line.split("reason=\"").nth(1).map(|r| r.split('"').next().unwrap());
        assert!(
            reason.is_none_or(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_lowercase() || c == '-')),
            "a refusal's reason is a problem slug: {line}"
        );
    }
    for shape in ["sessions_near", "sessions_list", "bases_near", "bases_list"] {
        let count = sample(&text, "kepu_search_duration_seconds_count", &[("shape", shape)]);
        assert!(count.is_some_and(|c| c >= 1.0), "{shape}:\n{text}");
        assert!(sample(&text, "kepu_search_duration_seconds_bucket", &[("shape", shape), ("le", "0.05")]).is_some());
    }
    for state in ["in_use", "idle"] {
        let n = sample(&text, "kepu_db_pool_connections", &[("state", state)]).expect(state);
        assert!(n >= 0.0 && n.fract() == 0.0, "{state}: {n}");
    }
    assert!(sample(&text, "kepu_db_pool_max_connections", &[]).is_some_and(|n| n >= 1.0), "{text}");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_problems() {
    let app = spawn_app().await;
    app.get("/v1/nothing-here", None).await.expect_problem(404, "not-found");
    let r = app.send(app.client.put(app.url("/v1/bases"))).await.expect_problem(405, "method-not-allowed");
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")), "{:?}", r.headers);
}

#[tokio::test]
async fn docs_page_and_spec_are_served_without_any_cdn() {
    let app = spawn_app().await;
    let spec = app.get("/openapi.json", None).await.expect(200);
    assert_eq!(spec.body["openapi"], "3.1.0");
    let html = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(html.status(), 200);
    let html = html.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    for cdn in ["unpkg.com", "cdn.jsdelivr", "cdnjs", "https://"] {
        assert!(!html.contains(cdn), "the docs page must work offline, found {cdn}");
    }
    let init = app.client.get(app.url("/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
}

/// Every answer carries `nosniff`, no referrer, no framing and a content security policy: the
/// strictest for the API (it serves no page), the docs page's own scripts and styles there.
#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    let answers = [
        app.get("/v1/districts", None).await,
        app.get("/v1/no-such-route", None).await,
        app.get("/v1/sessions?near=north", None).await,
        app.post("/v1/bases", &serde_json::json!({}), None).await,
        app.get("/openapi.json", None).await,
        app.get("/docs/", None).await,
    ];
    for r in &answers {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{}", r.status);
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        let csp = r.header("content-security-policy").expect("a content security policy");
        assert!(csp.starts_with("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    }
    assert_eq!(answers[0].header("content-security-policy"), Some(kepu::security::API_CSP));
    assert_eq!(answers[5].header("content-security-policy"), Some(kepu::security::DOCS_CSP));
    assert!(!kepu::security::DOCS_CSP.contains("unsafe") && !kepu::security::DOCS_CSP.contains("http"));
}

/// CORS is off unless origins are configured: a web page elsewhere gets no
/// `access-control-allow-origin`; a configured origin gets it, with the headers it needs.
#[tokio::test]
async fn cross_origin_calls_only_from_configured_origins() {
    let preflight = |app: &crate::helpers::TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/bookings"))
            .header("origin", origin.to_string())
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type,idempotency-key")
    };
    let closed = spawn_app().await;
    let r = closed.send(preflight(&closed, "https://console.example.gov.cn")).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = closed
        .send(closed.client.get(closed.url("/v1/districts")).header("origin", "https://console.example.gov.cn"))
        .await;
    assert_eq!((r.status.as_u16(), r.header("access-control-allow-origin")), (200, None));

    let console = "https://console.example.gov.cn";
    let open = crate::helpers::spawn_app_with(|c| {
        c.cors_origins = vec![kepu::security::parse_origin(console).expect("an origin")];
    })
    .await;
    let r = open.send(preflight(&open, console)).await;
    assert_eq!(r.header("access-control-allow-origin"), Some(console));
    let allowed = r.header("access-control-allow-headers").unwrap_or_default().to_string();
    for h in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    let r = open.send(open.client.get(open.url("/v1/districts")).header("origin", console)).await;
    assert_eq!(r.header("access-control-allow-origin"), Some(console));
    assert!(r.header("access-control-expose-headers").unwrap_or_default().contains("etag"));
    let r = open.send(preflight(&open, "https://elsewhere.example")).await;
    assert_eq!(r.header("access-control-allow-origin"), None, "only the configured origins");
}
