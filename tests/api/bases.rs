//! Bases: creation, every validation rule, ETag/If-Match editing, search by place and
//! filters, pagination and GeoJSON.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, base_body, id, spawn_app};

const TIANHE: (f64, f64) = (23.1382, 113.3299);

/// Great-circle distance on the sphere of mean radius, computed independently of the service.
fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6371.0088;
    let (la1, lo1, la2, lo2) = (a.0.to_radians(), a.1.to_radians(), b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

#[tokio::test]
async fn admin_creates_a_base_and_anyone_reads_it_with_an_etag() {
    let app = spawn_app().await;
    let r = app.post("/v1/bases", &base_body(), Some(&app.admin)).await.expect(201);
    let etag = r.etag();
    let b = r.body;
    assert_eq!(b["status"], "applicant");
    assert_eq!(b["themes"], json!(["astronomy", "robotics"]), "themes are normalised to lower case and sorted");
    assert_eq!(b["location"], json!({"lat": 23.1382, "lon": 113.3299}));
    assert_eq!(b["contact"]["email"], "visit@test.cn");
    let got = app.get(&format!("/v1/bases/{}", id(&b)), None).await.expect(200);
    assert_eq!(got.etag(), etag);
    assert_eq!(got.body["name_en"], "Test Science Base");
    assert_eq!(got.body["audiences"], json!(["primary_upper", "junior"]));
}

#[tokio::test]
async fn repeated_audiences_and_themes_are_kept_once() {
    // Found by schemathesis: a repeat that was not next to its twin broke a unique index (500).
    let app = spawn_app().await;
    let b = app
        .base(json!({"audiences": ["junior", "preschool", "senior", "preschool"], "themes": ["Space", "robots", "space"]}))
        .await;
    assert_eq!(b["audiences"], json!(["preschool", "junior", "senior"]));
    assert_eq!(b["themes"], json!(["robots", "space"]));
}

#[tokio::test]
async fn each_rule_of_a_base_is_a_422_naming_its_field() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("name_zh", json!("   "), "name_zh"),
        ("name_en", json!("x".repeat(201)), "name_en"),
        ("host_org", json!(""), "host_org"),
        ("address", json!(""), "address"),
        ("category", json!("museum"), "category"),
        ("subcategory", json!("zoo"), "subcategory"),
        ("district_code", json!("110101"), "district_code"),
        ("location", json!({"lat": 39.9, "lon": 113.3}), "location.lat"),
        ("location", json!({"lat": 23.1, "lon": 116.4}), "location.lon"),
        ("location", json!({"lat": 23.1}), "location.lon"),
        ("exhibition_area_m2", json!(-5.0), "exhibition_area_m2"),
        ("contact", json!({"email": "not-an-email"}), "contact.email"),
        ("contact", json!({"phone": "call me maybe"}), "contact.phone"),
        ("contact", json!({"phone": "+++++"}), "contact.phone"),
        // maxLength counts the characters as sent, white space included.
        ("name_zh", json!(format!(" {}", "名".repeat(200))), "name_zh"),
        ("opening_hours", json!(" ".repeat(501)), "opening_hours"),
        // An object is an object: serde alone would read a struct from an array of its fields.
        ("contact", json!([null, null]), "contact"),
        ("booking_rules", json!([]), "booking_rules"),
        ("location", json!([23.1382, 113.3299]), "location"),
        ("themes", json!(["ok", ""]), "themes[1]"),
        ("themes", json!((0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()), "themes"),
        ("audiences", json!(["junior", "toddlers"]), "audiences[1]"),
        ("status", json!("famous"), "status"),
        ("name_zh", json!(42), "name_zh"),
        ("unexpected", json!(1), "unexpected"),
    ];
    for (field, value, named) in cases {
        let mut body = base_body();
        body[field] = value;
        app.post("/v1/bases", &body, Some(&app.admin)).await.expect_invalid(named);
    }
    let mut missing = base_body();
    missing.as_object_mut().unwrap().remove("name_zh");
    app.post("/v1/bases", &missing, Some(&app.admin)).await.expect_invalid("name_zh");
    let mut several = base_body();
    several["name_zh"] = json!("");
    several["location"] = json!({"lat": 0.0, "lon": 0.0});
    let r = app.post("/v1/bases", &several, Some(&app.admin)).await.expect_problem(422, "validation");
    assert_eq!(r.fields(), ["name_zh", "location.lat", "location.lon"], "every broken rule at once");
    let list = app.get("/v1/bases", None).await.expect(200).body;
    assert_eq!(list["items"], json!([]), "no partial write");
}

#[tokio::test]
async fn malformed_or_non_json_bodies_are_400_and_415() {
    let app = spawn_app().await;
    let req = app.client.post(app.url("/v1/bases")).bearer_auth(&app.admin).header("content-type", "application/json");
    app.send(req.body("{\"name_zh\": ")).await.expect_problem(400, "malformed-json");
    let req = app.client.post(app.url("/v1/bases")).bearer_auth(&app.admin).header("content-type", "application/json");
    app.send(req.body("{} trailing")).await.expect_problem(400, "malformed-json");
    let req = app.client.post(app.url("/v1/bases")).bearer_auth(&app.admin).header("content-type", "text/plain");
    app.send(req.body("hello")).await.expect_problem(415, "unsupported-media-type");
}

#[tokio::test]
async fn patch_needs_if_match_and_refuses_a_stale_one() {
    let app = spawn_app().await;
    let created = app.post("/v1/bases", &base_body(), Some(&app.admin)).await.expect(201);
    let path = format!("/v1/bases/{}", id(&created.body));
    let etag = created.etag();
    let change = json!({"opening_hours": "Mon–Fri 10:00–16:00"});
    app.patch(&path, &change, Some(&app.admin), None).await.expect_problem(428, "precondition-required");
    let edited = app.patch(&path, &change, Some(&app.admin), Some(&etag)).await.expect(200);
    assert_ne!(edited.etag(), etag);
    assert_eq!(edited.body["opening_hours"], "Mon–Fri 10:00–16:00");
    assert_eq!(edited.body["name_zh"], "测试科普基地", "unnamed fields keep their values");
    app.patch(&path, &json!({"address": "elsewhere"}), Some(&app.admin), Some(&etag))
        .await
        .expect_problem(412, "precondition-failed");
    app.patch(&path, &json!({"address": "elsewhere"}), Some(&app.admin), Some("garbage"))
        .await
        .expect_problem(412, "precondition-failed");
    assert_eq!(app.get(&path, None).await.body["address"], "天河路1号", "the stale edit did not land");
}

#[tokio::test]
async fn two_concurrent_edits_with_the_same_etag_cannot_both_win() {
    let app = spawn_app().await;
    let created = app.post("/v1/bases", &base_body(), Some(&app.admin)).await.expect(201);
    let path = format!("/v1/bases/{}", id(&created.body));
    let etag = created.etag();
    let edits = (0..8).map(|i| {
        let (app, path, etag) = (&app, &path, &etag);
        async move { app.patch(path, &json!({"address": format!("edit {i}")}), Some(&app.admin), Some(etag)).await }
    });
    let replies = futures::future::join_all(edits).await;
    let ok: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    let stale = replies.iter().filter(|r| r.status == 412).count();
    assert_eq!(ok.len(), 1, "exactly one edit wins: {replies:?}");
    assert_eq!(stale, 7);
    let now = app.get(&path, None).await.body;
    assert_eq!(now["address"], ok[0].body["address"]);
}

#[tokio::test]
async fn patch_null_clears_an_optional_field_but_not_a_required_one() {
    let app = spawn_app().await;
    let created = app.post("/v1/bases", &base_body(), Some(&app.admin)).await.expect(201);
    let path = format!("/v1/bases/{}", id(&created.body));
    let r =
        app.patch(&path, &json!({"opening_hours": null}), Some(&app.admin), Some(&created.etag())).await.expect(200);
    assert_eq!(r.body["opening_hours"], Value::Null);
    app.patch(&path, &json!({"name_zh": null}), Some(&app.admin), Some(&r.etag())).await.expect_invalid("name_zh");
    app.patch(&path, &json!({"id": "x"}), Some(&app.admin), Some(&r.etag())).await.expect_invalid("id");
    app.patch(&path, &json!({"location": {"lat": 1.0, "lon": 113.3}}), Some(&app.admin), Some(&r.etag()))
        .await
        .expect_invalid("location.lat");
}

#[tokio::test]
async fn operators_edit_their_base_but_only_admins_change_status_or_district() {
    let app = spawn_app().await;
    let b = app.base(json!({})).await;
    let path = format!("/v1/bases/{}", id(&b));
    let operator = app.user("op", json!({"role": "operator", "base_ids": [id(&b)]})).await;
    let etag = app.get(&path, None).await.etag();
    let r = app.patch(&path, &json!({"themes": ["space"]}), Some(&operator), Some(&etag)).await.expect(200);
    app.patch(&path, &json!({"status": "accredited"}), Some(&operator), Some(&r.etag()))
        .await
        .expect_problem(403, "forbidden");
    app.patch(&path, &json!({"district_code": "440104"}), Some(&operator), Some(&r.etag()))
        .await
        .expect_problem(403, "forbidden");
    let r = app.patch(&path, &json!({"status": "accredited"}), Some(&app.admin), Some(&r.etag())).await.expect(200);
    assert_eq!(r.body["status"], "accredited");
}

#[tokio::test]
async fn a_district_officer_creates_bases_only_in_its_district() {
    let app = spawn_app().await;
    let officer = app.user("tianhe", json!({"role": "district_officer", "district_code": "440106"})).await;
    app.post("/v1/bases", &base_body(), Some(&officer)).await.expect(201);
    let mut elsewhere = base_body();
    elsewhere["district_code"] = json!("440104");
    app.post("/v1/bases", &elsewhere, Some(&officer)).await.expect_problem(403, "forbidden");
    let mut accredited = base_body();
    accredited["status"] = json!("accredited");
    app.post("/v1/bases", &accredited, Some(&officer)).await.expect_problem(403, "forbidden");
}

/// Bases due north of Tianhe's seat at the given distances (km), named by distance.
async fn bases_north_of_tianhe(app: &TestApp, kms: &[f64]) -> Vec<String> {
    let mut ids = Vec::new();
    for km in kms {
        let lat = TIANHE.0 + km / 111.195;
        let b = app.base(json!({"name_en": format!("{km} km north"), "location": {"lat": lat, "lon": TIANHE.1}})).await;
        ids.push(id(&b));
    }
    ids
}

#[tokio::test]
async fn near_search_sorts_by_distance_and_cuts_at_the_radius() {
    let app = spawn_app().await;
    bases_north_of_tianhe(&app, &[7.0, 1.0, 12.0, 3.0, 4.9]).await;
    let east = app.base(json!({"name_en": "east", "location": {"lat": TIANHE.0, "lon": TIANHE.1 + 0.02}})).await;
    let r = app.get("/v1/bases?near=23.1382,113.3299&radius_km=5", None).await.expect(200).body;
    let items = r["items"].as_array().unwrap();
    let names: Vec<_> = items.iter().map(|b| b["name_en"].as_str().unwrap()).collect();
    assert_eq!(names, ["1 km north", "east", "3 km north", "4.9 km north"]);
    for b in items {
        let expected =
            haversine_km(TIANHE, (b["location"]["lat"].as_f64().unwrap(), b["location"]["lon"].as_f64().unwrap()));
        let got = b["distance_km"].as_f64().unwrap();
        assert!((got - expected).abs() < 0.002, "{got} vs {expected}");
    }
    assert_eq!(items[1]["id"], east["id"]);
    let all = app.get("/v1/bases?near=23.1382,113.3299", None).await.expect(200).body;
    assert_eq!(all["items"].as_array().unwrap().len(), 6, "without a radius every base is sorted by distance");
    let plain = app.get("/v1/bases", None).await.expect(200).body;
    assert!(plain["items"][0].get("distance_km").is_none());
}

#[tokio::test]
async fn filters_combine_freely() {
    let app = spawn_app().await;
    let a = app.base(json!({"name_zh": "天河机器人馆", "themes": ["Robotics"], "audiences": ["junior"]})).await;
    let b = app
        .base(json!({"name_en": "Yuexiu Farm", "district_code": "440104", "category": "non_venue", "subcategory": "agriculture",
                     "themes": ["agriculture"], "audiences": ["primary_lower"], "status": "accredited",
                     "location": {"lat": 23.1283, "lon": 113.2754}}))
        .await;
    let ids = |v: Value| -> Vec<String> { v["items"].as_array().unwrap().iter().map(id).collect() };
    let q = |path: &'static str| {
        let app = &app;
        async move { ids(app.get(path, None).await.expect(200).body) }
    };
    assert_eq!(q("/v1/bases?district=440104").await, [id(&b)]);
    assert_eq!(q("/v1/bases?category=venue").await, [id(&a)]);
    assert_eq!(q("/v1/bases?subcategory=agriculture").await, [id(&b)]);
    assert_eq!(q("/v1/bases?theme=ROBOTICS").await, [id(&a)]);
    assert_eq!(q("/v1/bases?audience=primary_lower").await, [id(&b)]);
    assert_eq!(q("/v1/bases?status=accredited").await, [id(&b)]);
    assert_eq!(q("/v1/bases?q=机器人").await, [id(&a)]);
    assert_eq!(q("/v1/bases?q=yuexiu%20FARM").await, [id(&b)]);
    assert_eq!(q("/v1/bases?q=100%25").await, Vec::<String>::new(), "LIKE wildcards are literal");
    assert_eq!(q("/v1/bases?district=440104&status=applicant").await, Vec::<String>::new());
    assert_eq!(q("/v1/bases?near=23.1283,113.2754&radius_km=1&theme=agriculture").await, [id(&b)]);
}

#[tokio::test]
async fn bad_search_parameters_are_422_naming_them() {
    let app = spawn_app().await;
    app.get("/v1/bases?near=23.1", None).await.expect_invalid("near");
    app.get("/v1/bases?near=abc,def", None).await.expect_invalid("near");
    app.get("/v1/bases?radius_km=5", None).await.expect_invalid("radius_km");
    app.get("/v1/bases?near=23.1,113.3&radius_km=-1", None).await.expect_invalid("radius_km");
    app.get("/v1/bases?near=23.1,113.3&radius_km=abc", None).await.expect_invalid("radius_km");
    app.get("/v1/bases?category=museum", None).await.expect_invalid("category");
    app.get("/v1/bases?limit=0", None).await.expect_invalid("limit");
    app.get("/v1/bases?limit=501", None).await.expect_invalid("limit");
    app.get("/v1/bases?limit=ten", None).await.expect_invalid("limit");
    app.get("/v1/bases?cursor=bogus", None).await.expect_invalid("cursor");
    app.get("/v1/bases?format=kml", None).await.expect_invalid("format");
    app.get("/v1/bases/not-a-uuid", None).await.expect_problem(404, "not-found");
    app.get(&format!("/v1/bases/{}", uuid::Uuid::now_v7()), None).await.expect_problem(404, "not-found");
}

async fn walk(app: &TestApp, first: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = first.to_string();
    loop {
        let page = app.get(&path, None).await.expect(200).body;
        out.extend(page["items"].as_array().unwrap().iter().map(id));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("{first}&cursor={c}"),
            None => return out,
        }
    }
}

#[tokio::test]
async fn pages_cover_every_base_once_in_both_orders() {
    let app = spawn_app().await;
    let kms: Vec<f64> = (0..11).map(|i| f64::from(i) * 0.7).collect();
    let mut created = bases_north_of_tianhe(&app, &kms).await;
    // Two bases at the same spot: ties are broken by id, still without loss.
    created.extend(bases_north_of_tianhe(&app, &[2.0, 2.0]).await);
    let plain = walk(&app, "/v1/bases?limit=4").await;
    assert_eq!(plain, created, "creation order, each once");
    let near = walk(&app, "/v1/bases?near=23.1382,113.3299&limit=3").await;
    assert_eq!(near.len(), created.len());
    assert_eq!(near.iter().collect::<HashSet<_>>().len(), created.len(), "no duplicates");
    let all_at_once = app.get("/v1/bases?near=23.1382,113.3299&limit=500", None).await.body;
    let expected: Vec<String> = all_at_once["items"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(near, expected, "paging keeps the distance order");
}

#[tokio::test]
async fn geojson_is_a_feature_collection_in_lon_lat_order() {
    let app = spawn_app().await;
    let b = app.base(json!({})).await;
    for req in [
        app.client.get(app.url("/v1/bases?format=geojson")),
        app.client.get(app.url("/v1/bases")).header("accept", "application/geo+json"),
    ] {
        let r = app.send(req).await.expect(200);
        assert_eq!(r.header("content-type"), Some("application/geo+json"));
        let fc = r.body;
        assert_eq!(fc["type"], "FeatureCollection");
        let f = &fc["features"][0];
        assert_eq!(f["type"], "Feature");
        assert_eq!(f["id"], b["id"]);
        assert_eq!(f["geometry"], json!({"type": "Point", "coordinates": [113.3299, 23.1382]}));
        assert_eq!(f["properties"]["name_zh"], "测试科普基地");
        assert!(f["properties"].get("location").is_none());
        assert_eq!(fc["next_cursor"], Value::Null);
    }
    let near = app.get("/v1/bases?format=geojson&near=23.14,113.33", None).await.expect(200).body;
    assert!(near["features"][0]["properties"]["distance_km"].is_number());
}

#[tokio::test]
async fn nul_characters_are_refused_everywhere_not_passed_to_the_database() {
    let app = spawn_app().await;
    let mut body = base_body();
    body["name_zh"] = json!("科普\u{0}基地");
    app.post("/v1/bases", &body, Some(&app.admin)).await.expect_invalid("name_zh");
    let mut body = base_body();
    body["themes"] = json!(["ok", "bad\u{0}"]);
    app.post("/v1/bases", &body, Some(&app.admin)).await.expect_invalid("themes[1]");
    app.post("/v1/auth/token", &json!({"username": "ad\u{0}min", "password": "whatever pass"}), None)
        .await
        .expect_invalid("username");
    app.get("/v1/bases?q=a%00b", None).await.expect_invalid("q");
    app.get("/v1/districts/4401%0006", None).await.expect_problem(404, "not-found");
    app.get("/v1/certificates/GZKP%00", None).await.expect_problem(404, "not-found");
}
