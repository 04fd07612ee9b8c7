//! The web console: its files served from the binary under a strict policy, the cookie
//! session it signs in with (HttpOnly, SameSite=Strict, CSRF token on every write), and its
//! words complete in both languages.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, booking_body, spawn_app};

#[tokio::test]
async fn the_console_and_its_files_are_served_from_the_binary_under_a_strict_policy() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(res.headers()["content-security-policy"], kepu::console::CONSOLE_CSP);
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/assets/js/app.js"></script>"#), "{html}");
    assert!(!html.contains("http://") && !html.contains("https://"), "nothing from elsewhere: {html}");

    for path in kepu::console::asset_paths() {
        let res = app.client.get(app.url(&format!("/assets/{path}"))).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let etag = res.headers()["etag"].to_str().unwrap().to_string();
        let kind = res.headers()["content-type"].to_str().unwrap().to_string();
        let expected = match path.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            Some("svg") => "image/svg+xml",
            _ => "text/html",
        };
        assert!(kind.starts_with(expected), "{path}: {kind}");
        let body = res.text().await.unwrap();
        for remote in ["http://", "https://", "//cdn"] {
            let outside = body.match_indices(remote).any(|(i, _)| !body[i..].starts_with("http://www.w3.org/2000/svg"));
            assert!(!outside, "{path} refers to {remote}");
        }
        let again =
            app.client.get(app.url(&format!("/assets/{path}"))).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path} revalidates");
    }
    let missing = app.client.get(app.url("/assets/js/nothing.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
}

/// The `Set-Cookie` of a response.
fn set_cookie(res: &reqwest::Response) -> String {
    res.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

#[tokio::test]
async fn a_console_session_is_an_httponly_strict_cookie_and_every_write_needs_its_csrf_token() {
    let app = spawn_app().await;
    let (school, _) = app.school_account("学校").await;
    let username = format!("school-{}", &crate::helpers::id(&school)[24..]);
    let (base, op) = app.accredited_base(json!({})).await;
    let session = app.session(&crate::helpers::id(&base), &op, 72, json!({})).await;

    let login = json!({"username": username, "password": PASSWORD});
    let res = app.client.post(app.url("/v1/auth/session")).json(&login).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let cookie = set_cookie(&res);
    for part in ["kepu_session=kepu_", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let csrf = res.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_string();
    let jar = cookie.split(';').next().unwrap().to_string();
    // Behind a TLS proxy the cookie is Secure.
    let tls = app
        .client
        .post(app.url("/v1/auth/session"))
        .header("x-forwarded-proto", "https")
        .json(&login)
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&tls).contains("; Secure"), "{}", set_cookie(&tls));

    // Reads with the cookie alone; the session's CSRF token again for a reloaded page.
    let me = app.client.get(app.url("/v1/me")).header("cookie", &jar).send().await.unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["role"], "school");
    let again = app.client.get(app.url("/v1/auth/session")).header("cookie", &jar).send().await.unwrap();
    assert_eq!(again.json::<Value>().await.unwrap()["csrf_token"], csrf.as_str());

    // A write with the cookie but without (or with another) CSRF token is refused, and writes nothing.
    let booking = booking_body(&session, &school, 20, 2);
    for token in [None, Some("forged")] {
        let mut req = app.client.post(app.url("/v1/bookings")).header("cookie", &jar).json(&booking);
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403, "{token:?}");
        let problem: Value = res.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains("X-CSRF-Token"), "{problem}");
    }
    let listed = app.client.get(app.url("/v1/bookings")).header("cookie", &jar).send().await.unwrap();
    assert_eq!(listed.json::<Value>().await.unwrap()["items"].as_array().unwrap().len(), 0);
    let made = app
        .client
        .post(app.url("/v1/bookings"))
        .header("cookie", &jar)
        .header("x-csrf-token", &csrf)
        .json(&booking)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);

    // Logging out needs the token too, ends the session on the server and clears the cookie.
    let res = app.client.delete(app.url("/v1/auth/session")).header("cookie", &jar).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .client
        .delete(app.url("/v1/auth/session"))
        .header("cookie", &jar)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(set_cookie(&res).contains("Max-Age=0"), "{}", set_cookie(&res));
    let me = app.client.get(app.url("/v1/me")).header("cookie", &jar).send().await.unwrap();
    assert_eq!(me.status(), 401, "the session ended on the server");
    let ended = app.client.get(app.url("/v1/auth/session")).header("cookie", &jar).send().await.unwrap();
    assert_eq!(ended.status(), 401);
    assert!(set_cookie(&ended).contains("Max-Age=0"), "a stale cookie is cleared");
    // A stale cookie does not keep anyone from the public pages.
    let public = app.client.get(app.url("/v1/bases")).header("cookie", &jar).send().await.unwrap();
    assert_eq!(public.status(), 200);
    // A bearer token is unaffected by all this.
    assert_eq!(app.get("/v1/me", Some(&app.admin)).await.status, 200);
}

/// The keys of one dictionary object in `i18n.js`, written `'key': …`.
fn keys(block: &str) -> BTreeSet<String> {
    block
        .split('\'')
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[1].trim_start().starts_with(':'))
        .map(|w| w[0].to_string())
        .filter(|k| !k.is_empty() && !k.contains(' '))
        .collect()
}

#[tokio::test]
async fn every_word_of_the_console_is_in_chinese_and_english() {
    let app = spawn_app().await;
    let text = |path: String| {
        let app = &app;
        async move { app.client.get(app.url(&path)).send().await.unwrap().text().await.unwrap() }
    };
    let i18n = text("/assets/js/i18n.js".into()).await;
    let zh_start = i18n.find("const zh = {").expect("zh");
    let en_start = i18n.find("const en = {").expect("en");
    let end = i18n.find("export const DICTIONARIES").expect("end");
    let zh = keys(&i18n[zh_start..en_start]);
    let en = keys(&i18n[en_start..end]);
    assert!(zh.len() > 300, "{}", zh.len());
    assert_eq!(zh.difference(&en).collect::<Vec<_>>(), Vec::<&String>::new(), "in Chinese only");
    assert_eq!(en.difference(&zh).collect::<Vec<_>>(), Vec::<&String>::new(), "in English only");
    // Every key the pages ask for, and every enum value they label, has its words.
    let mut missing = Vec::new();
    for path in kepu::console::asset_paths().filter(|p| p.ends_with(".js")) {
        let source = text(format!("/assets/{path}")).await;
        // A call of `t(` or `label(` itself, not of `get(` or `.t(`.
        let called = |i: usize| i == 0 || !source[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.');
        for (i, _) in source.match_indices("t('").filter(|(i, _)| called(*i)) {
            let key: String = source[i + 3..].chars().take_while(|c| *c != '\'').collect();
            if !zh.contains(&key) {
                missing.push(format!("{path}: {key}"));
            }
        }
        for (i, _) in source.match_indices("label('").filter(|(i, _)| called(*i)) {
            let rest = &source[i + 7..];
            let group: String = rest.chars().take_while(|c| *c != '\'').collect();
            if !zh.iter().any(|k| k.starts_with(&format!("{group}."))) {
                missing.push(format!("{path}: label group {group}"));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
    // The roles and the API's enums the pages show.
    let spec: Value = serde_json::from_str(&kepu::startup::openapi_json()).unwrap();
    for (schema, group) in [
        ("Role", "role"),
        ("BookingStatus", "booking_status"),
        ("Audience", "audience"),
        ("SessionStatus", "session_status"),
        ("SignStatus", "sign_status"),
        ("SignKind", "sign_kind"),
        ("AccreditationStatus", "accreditation_status"),
        ("ExhibitKind", "exhibit_kind"),
        ("ExhibitStatus", "exhibit_status"),
        ("Subcategory", "subcategory"),
        ("Category", "category"),
        ("WeekdayName", "weekday"),
    ] {
        for v in spec["components"]["schemas"][schema]["enum"].as_array().unwrap() {
            let key = format!("{group}.{}", v.as_str().unwrap());
            assert!(zh.contains(&key), "{key}");
        }
    }
}
