//! The whole matrix of writes × roles: 401 without a token, 403 with the wrong role or
//! scope, success with the right one.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, base_body, exhibit_body, id, school_body, spawn_app};

#[derive(Clone)]
struct World {
    base: String,
    exhibit: String,
    school: String,
    user: String,
}

/// The callers: anonymous, and one account per role and scope.
const CALLERS: &[&str] = &[
    "anonymous",
    "admin",
    "officer_own",
    "officer_other",
    "evaluator",
    "operator_own",
    "operator_other",
    "school_own",
    "school_other",
];

async fn tokens(app: &TestApp, w: &World) -> Vec<(&'static str, Option<String>)> {
    let other_base = id(&app.base(json!({"name_en": "Other base"})).await);
    let other_school = id(&app.school(json!({"name": "Other school"})).await);
    let mut out = vec![("anonymous", None), ("admin", Some(app.admin.clone()))];
    let scoped = [
        ("officer_own", json!({"role": "district_officer", "district_code": "440106"})),
        ("officer_other", json!({"role": "district_officer", "district_code": "440104"})),
        ("evaluator", json!({"role": "evaluator"})),
        ("operator_own", json!({"role": "operator", "base_ids": [w.base]})),
        ("operator_other", json!({"role": "operator", "base_ids": [other_base]})),
        ("school_own", json!({"role": "school", "school_id": w.school})),
        ("school_other", json!({"role": "school", "school_id": other_school})),
    ];
    for (name, scope) in scoped {
        out.push((name, Some(app.user(&name.replace('_', "-"), scope).await)));
    }
    out
}

enum Write {
    Post(String, Value),
    Patch(String, Value),
    Delete(String),
    Get(String),
}

/// Each write, and who may perform it.
fn writes(w: &World) -> Vec<(&'static str, Write, &'static [&'static str])> {
    let new_user = json!({"username": "newcomer", "password": PASSWORD, "role": "evaluator"});
    vec![
        ("create base", Write::Post("/v1/bases".into(), base_body()), &["admin", "officer_own"]),
        (
            "edit base",
            Write::Patch(format!("/v1/bases/{}", w.base), json!({"opening_hours": "9-5"})),
            &["admin", "operator_own"],
        ),
        (
            "create exhibit",
            Write::Post(format!("/v1/bases/{}/exhibits", w.base), exhibit_body()),
            &["admin", "operator_own"],
        ),
        (
            "edit exhibit",
            Write::Patch(format!("/v1/exhibits/{}", w.exhibit), json!({"hall": "B"})),
            &["admin", "operator_own"],
        ),
        ("delete exhibit", Write::Delete(format!("/v1/exhibits/{}", w.exhibit)), &["admin", "operator_own"]),
        ("create school", Write::Post("/v1/schools".into(), school_body()), &["admin"]),
        (
            "edit school",
            Write::Patch(format!("/v1/schools/{}", w.school), json!({"student_count": 999})),
            &["admin", "school_own"],
        ),
        ("create user", Write::Post("/v1/users".into(), new_user), &["admin"]),
        ("edit user", Write::Patch(format!("/v1/users/{}", w.user), json!({"disabled": false})), &["admin"]),
        ("list users", Write::Get("/v1/users".into()), &["admin"]),
        ("read audit", Write::Get("/v1/audit".into()), &["admin"]),
    ]
}

async fn fresh_world(app: &TestApp) -> World {
    let base = id(&app.base(json!({})).await);
    let exhibit = id(&app.exhibit(&base, &app.admin).await);
    let school = id(&app.school(json!({})).await);
    let user = app.post("/v1/users", &json!({"username": format!("target-{}", uuid::Uuid::new_v4().simple()), "password": PASSWORD, "role": "evaluator"}), Some(&app.admin)).await.expect(201);
    World { base, exhibit, school, user: id(&user.body) }
}

async fn perform(app: &TestApp, write: &Write, token: Option<&str>) -> u16 {
    let reply = match write {
        Write::Post(path, body) => app.post(path, body, token).await,
        Write::Patch(path, body) => {
            // If-Match "*" keeps the matrix about access, not versions.
            app.patch(path, body, token, Some("*")).await
        }
        Write::Delete(path) => app.delete(path, token).await,
        Write::Get(path) => app.get(path, token).await,
    };
    reply.status.as_u16()
}

#[tokio::test]
async fn every_write_checks_role_and_scope() {
    let app = spawn_app().await;
    let world = fresh_world(&app).await;
    let callers = tokens(&app, &world).await;
    assert_eq!(callers.iter().map(|c| c.0).collect::<Vec<_>>(), CALLERS);
    let mut failures = Vec::new();
    for (name, _, allowed) in writes(&world) {
        for (caller, token) in &callers {
            // A fresh exhibit per attempt, so that a permitted delete cannot hide the next check.
            let w = World { exhibit: id(&app.exhibit(&world.base, &app.admin).await), ..world.clone() };
            let write = writes(&w).into_iter().find(|x| x.0 == name).unwrap().1;
            let status = perform(&app, &write, token.as_deref()).await;
            let expected_ok = allowed.contains(caller);
            let ok = match (token, expected_ok) {
                (None, _) => status == 401,
                (Some(_), true) => (200..300).contains(&status),
                (Some(_), false) => status == 403,
            };
            if !ok {
                failures.push(format!(
                    "{name} as {caller}: got {status}, expected {}",
                    if token.is_none() {
                        "401".into()
                    } else if expected_ok {
                        "2xx".to_string()
                    } else {
                        "403".into()
                    }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "access matrix broken:\n{}", failures.join("\n"));
}
