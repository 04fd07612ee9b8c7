//! The committed OpenAPI document is exactly the one the code generates, and it documents
//! every operation fully. `UPDATE_OPENAPI=1 cargo test` rewrites it on purpose.

use serde_json::Value;

use crate::helpers::spawn_app;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

#[test]
fn the_committed_spec_matches_the_code() {
    let generated = kepu::startup::openapi_json();
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(COMMITTED, &generated).expect("write openapi/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale; regenerate it with `UPDATE_OPENAPI=1 cargo test --test api openapi`"
    );
}

#[tokio::test]
async fn the_served_spec_is_the_committed_one() {
    let app = spawn_app().await;
    let served = app.get("/openapi.json", None).await.expect(200).body;
    let generated: Value = serde_json::from_str(&kepu::startup::openapi_json()).unwrap();
    assert_eq!(served, generated);
}

#[test]
fn every_operation_has_a_summary_tag_id_and_documented_errors_with_examples() {
    let spec: Value = serde_json::from_str(&kepu::startup::openapi_json()).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut problems = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            for key in ["summary", "operationId"] {
                if op[key].as_str().is_none_or(str::is_empty) {
                    problems.push(format!("{name}: no {key}"));
                }
            }
            if op["tags"].as_array().is_none_or(Vec::is_empty) {
                problems.push(format!("{name}: no tag"));
            }
            let responses = op["responses"].as_object().unwrap();
            if !responses.keys().any(|s| s.starts_with('2')) {
                problems.push(format!("{name}: no success response"));
            }
            if !responses.contains_key("500") {
                problems.push(format!("{name}: no 500"));
            }
            if op.get("security").is_some() && !(responses.contains_key("401") && responses.contains_key("403")) {
                problems.push(format!("{name}: secured but no 401/403"));
            }
            if op.get("requestBody").is_some() && !(responses.contains_key("400") && responses.contains_key("422")) {
                problems.push(format!("{name}: takes a body but no 400/422"));
            }
            for (status, resp) in responses {
                if let Some(problem) = resp["content"].get("application/problem+json")
                    && problem.get("example").is_none()
                {
                    problems.push(format!("{name} {status}: problem without example"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn documented_constraints_agree_with_the_reference_data() {
    let spec: Value = serde_json::from_str(&kepu::startup::openapi_json()).unwrap();
    let schemas = &spec["components"]["schemas"];
    let bbox = *kepu::domain::geo::CITY_BBOX;
    let latlon = &schemas["LatLon"]["properties"];
    assert_eq!(latlon["lat"]["minimum"], bbox.min_lat);
    assert_eq!(latlon["lat"]["maximum"], bbox.max_lat);
    assert_eq!(latlon["lon"]["minimum"], bbox.min_lon);
    assert_eq!(latlon["lon"]["maximum"], bbox.max_lon);
    let data: Value = serde_json::from_str(migration::DISTRICTS_JSON).unwrap();
    let suffixes: Vec<&str> =
        data["districts"].as_array().unwrap().iter().map(|d| &d["code"].as_str().unwrap()[4..]).collect();
    let expected = format!("^4401({})$", suffixes.join("|"));
    assert_eq!(schemas["DistrictCode"]["pattern"], expected);
}

#[test]
fn the_documented_travel_time_is_the_one_the_tours_check() {
    use kepu::domain::tours::{BUFFER_MINUTES, COACH_KMH, DETOUR_FACTOR, MAX_LEGS, MIN_LEGS};
    let spec: Value = serde_json::from_str(&kepu::startup::openapi_json()).unwrap();
    let create = &spec["paths"]["/v1/tours"]["post"]["description"];
    let rule = format!("distance × {DETOUR_FACTOR} (detour) at {COACH_KMH} km/h,\nplus {BUFFER_MINUTES} minutes");
    assert!(create.as_str().unwrap().replace("\n", " ").contains(&rule.replace('\n', " ")), "{create}");
    assert!(create.as_str().unwrap().contains(&format!("{MIN_LEGS}–{MAX_LEGS} legs")), "{create}");
    let legs = &spec["components"]["schemas"]["NewTour"]["properties"]["legs"];
    assert_eq!(legs["minItems"], MIN_LEGS);
    assert_eq!(legs["maxItems"], MAX_LEGS);
}

/// The component schemas a request body can hold, followed through their references.
fn request_schemas(spec: &Value) -> Vec<String> {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, item) in m {
                    match (k.as_str(), item.as_str()) {
                        ("$ref", Some(r)) => out.push(r.rsplit('/').next().unwrap_or_default().to_string()),
                        _ => refs(item, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
            _ => {}
        }
    }
    let mut todo = Vec::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            refs(&op["requestBody"], &mut todo);
        }
    }
    let mut seen: Vec<String> = Vec::new();
    while let Some(name) = todo.pop() {
        if !seen.contains(&name) {
            refs(&spec["components"]["schemas"][&name], &mut todo);
            seen.push(name);
        }
    }
    seen
}

#[test]
fn documented_years_agree_with_the_rules() {
    // The patterns and bounds below are written out in src/http: they follow validate::YEARS.
    assert_eq!(kepu::domain::validate::YEARS, 2000..=2999, "update the documented years");
    let year_pattern = "^2[0-9]{3}-";
    let spec: Value = serde_json::from_str(&kepu::startup::openapi_json()).unwrap();
    let mut problems = Vec::new();
    let mut check = |at: String, name: &str, schema: &Value| {
        let format = schema["format"].as_str().unwrap_or_default();
        if (format == "date" || format == "date-time") && schema["pattern"] != year_pattern {
            problems.push(format!("{at}: a {format} without the pattern {year_pattern}"));
        }
        if name == "year" && (schema["minimum"] != 2000 || schema["maximum"] != 2999) {
            problems.push(format!("{at}: a year without minimum 2000 and maximum 2999"));
        }
    };
    for name in request_schemas(&spec) {
        let schema = &spec["components"]["schemas"][&name];
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            check(format!("{name}.{field}"), field, property);
        }
    }
    for (path, item) in spec["paths"].as_object().unwrap() {
        for op in item.as_object().unwrap().values() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or_default();
                check(format!("{path} {name}"), name, &p["schema"]);
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_reference_in_the_spec_resolves() {
    let spec: Value = serde_json::from_str(&kepu::startup::openapi_json()).unwrap();
    fn walk(v: &Value, spec: &Value, missing: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let pointer = r.trim_start_matches('#');
                    if spec.pointer(pointer).is_none() {
                        missing.push(r.clone());
                    }
                }
                map.values().for_each(|x| walk(x, spec, missing));
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, spec, missing)),
            _ => {}
        }
    }
    let mut missing = Vec::new();
    walk(&spec, &spec, &mut missing);
    missing.dedup();
    assert!(missing.is_empty(), "unresolved references: {missing:?}");
}

#[test]
fn every_operation_id_is_unique() {
    let spec: Value = serde_json::from_str(&kepu::startup::openapi_json()).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    let mut twice = Vec::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if let Some(id) = op["operationId"].as_str()
                && let Some(first) = seen.insert(id.to_string(), format!("{method} {path}"))
            {
                twice.push(format!("{id}: {first} and {method} {path}"));
            }
        }
    }
    assert!(twice.is_empty(), "operation ids used twice: {twice:?}");
}
