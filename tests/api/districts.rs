//! The district reference data.

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_eleven_districts_are_listed_with_codes_and_seats() {
    let app = spawn_app().await;
    let r = app.get("/v1/districts", None).await.expect(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 11);
    let codes: Vec<_> = items.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        ["440103", "440104", "440105", "440106", "440111", "440112", "440113", "440114", "440115", "440117", "440118"]
    );
    let tianhe = app.get("/v1/districts/440106", None).await.expect(200).body;
    assert_eq!(tianhe["name_zh"], "天河区");
    assert_eq!(tianhe["name_en"], "Tianhe");
    assert_eq!(tianhe["seat"]["lat"], 23.1382);
    assert_eq!(tianhe["seat"]["lon"], 113.3299);
}

#[tokio::test]
async fn an_unknown_district_is_404() {
    let app = spawn_app().await;
    app.get("/v1/districts/110101", None).await.expect_problem(404, "not-found");
}
