//! Schools: registered by admins, edited by themselves, found by place and district.

use serde_json::json;

use crate::helpers::{id, school_body, spawn_app};

#[tokio::test]
async fn admin_registers_a_school_and_the_school_edits_itself() {
    let app = spawn_app().await;
    let created = app.post("/v1/schools", &school_body(), Some(&app.admin)).await.expect(201);
    let s = created.body.clone();
    assert_eq!(s["kind"], "primary");
    let path = format!("/v1/schools/{}", id(&s));
    let token = app.user("school", json!({"role": "school", "school_id": id(&s)})).await;
    let got = app.get(&path, Some(&token)).await.expect(200);
    assert_eq!(got.etag(), created.etag());
    let r = app.patch(&path, &json!({"student_count": 1300}), Some(&token), Some(&got.etag())).await.expect(200);
    assert_eq!(r.body["student_count"], 1300);
    app.patch(&path, &json!({"student_count": -1}), Some(&token), Some(&r.etag()))
        .await
        .expect_invalid("student_count");
    app.patch(&path, &json!({"student_count": 5}), Some(&token), None)
        .await
        .expect_problem(428, "precondition-required");
    app.patch(&path, &json!({"student_count": 5}), Some(&token), Some(&got.etag()))
        .await
        .expect_problem(412, "precondition-failed");
}

#[tokio::test]
async fn a_school_cannot_edit_another_school() {
    let app = spawn_app().await;
    let mine = app.school(json!({})).await;
    let other = app.school(json!({"name": "另一所学校"})).await;
    let token = app.user("school", json!({"role": "school", "school_id": id(&mine)})).await;
    app.patch(&format!("/v1/schools/{}", id(&other)), &json!({"name": "taken over"}), Some(&token), Some("\"1\""))
        .await
        .expect_problem(403, "forbidden");
    app.post("/v1/schools", &school_body(), Some(&token)).await.expect_problem(403, "forbidden");
}

#[tokio::test]
async fn schools_are_found_near_a_point_and_by_district_but_not_anonymously() {
    let app = spawn_app().await;
    let near = app.school(json!({"name": "近", "location": {"lat": 23.1390, "lon": 113.3300}})).await;
    let far =
        app.school(json!({"name": "远", "district_code": "440113", "location": {"lat": 23.0, "lon": 113.36}})).await;
    app.get("/v1/schools", None).await.expect_problem(401, "unauthorized");
    let r = app.get("/v1/schools?near=23.1382,113.3299&radius_km=2", Some(&app.admin)).await.expect(200).body;
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], near["id"]);
    assert!(items[0]["distance_km"].as_f64().unwrap() < 0.2);
    let r = app.get("/v1/schools?district=440113", Some(&app.admin)).await.expect(200).body;
    assert_eq!(r["items"][0]["id"], far["id"]);
    let r = app.get("/v1/schools?near=23.1382,113.3299", Some(&app.admin)).await.expect(200).body;
    let order: Vec<_> = r["items"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(order, [id(&near), id(&far)]);
}

#[tokio::test]
async fn school_rules_are_422_naming_the_field() {
    let app = spawn_app().await;
    for (field, value, named) in [
        ("name", json!(" "), "name"),
        ("kind", json!("university"), "kind"),
        ("district_code", json!("000000"), "district_code"),
        ("location", json!({"lat": 30.0, "lon": 113.3}), "location.lat"),
        ("student_count", json!(1_000_000), "student_count"),
        ("student_count", json!("many"), "student_count"),
    ] {
        let mut body = school_body();
        body[field] = value;
        app.post("/v1/schools", &body, Some(&app.admin)).await.expect_invalid(named);
    }
}

/// District statistics and fairness weights rest on a school's district: the bureau or the
/// officer of the school's district moves it; the school edits the rest of its profile only.
#[tokio::test]
async fn a_schools_district_is_changed_by_the_bureau_or_its_district_only() {
    let app = spawn_app().await;
    let s = app.school(json!({"district_code": "440106"})).await;
    let path = format!("/v1/schools/{}", id(&s));
    let school = app.user("moving-school", json!({"role": "school", "school_id": id(&s)})).await;
    let tianhe = app.user("school-tianhe", json!({"role": "district_officer", "district_code": "440106"})).await;
    let yuexiu = app.user("school-yuexiu", json!({"role": "district_officer", "district_code": "440104"})).await;
    let etag = || async { app.get(&path, Some(&app.admin)).await.expect(200).etag() };

    let moved = json!({"district_code": "440104"});
    app.patch(&path, &moved, Some(&school), Some(&etag().await)).await.expect_problem(403, "forbidden");
    let both = json!({"district_code": "440104", "student_count": 900});
    app.patch(&path, &both, Some(&school), Some(&etag().await)).await.expect_problem(403, "forbidden");
    let same = json!({"district_code": "440106", "student_count": 900});
    app.patch(&path, &same, Some(&school), Some(&etag().await)).await.expect(200);
    app.patch(&path, &moved, Some(&yuexiu), Some(&etag().await)).await.expect_problem(403, "forbidden");
    app.patch(&path, &json!({"student_count": 1}), Some(&tianhe), Some(&etag().await))
        .await
        .expect_problem(403, "forbidden");
    let r = app.patch(&path, &moved, Some(&tianhe), Some(&etag().await)).await.expect(200).body;
    assert_eq!((r["district_code"].as_str(), r["student_count"].as_i64()), (Some("440104"), Some(900)));
    app.patch(&path, &json!({"district_code": "440106"}), Some(&tianhe), Some(&etag().await))
        .await
        .expect_problem(403, "forbidden");
    app.patch(&path, &json!({"district_code": "440106"}), Some(&app.admin), Some(&etag().await)).await.expect(200);
    let log = app.get(&format!("/v1/audit?entity=school&entity_id={}", id(&s)), Some(&app.admin)).await.expect(200);
    assert_eq!(log.body["items"].as_array().unwrap().len(), 4, "created, edited, moved, moved back");
}
