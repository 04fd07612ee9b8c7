//! Health, readiness, metrics, request ids, the docs page, and problems for unknown routes.

use serde_json::json;

use crate::helpers::spawn_app;

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
