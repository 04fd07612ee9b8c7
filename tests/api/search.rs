//! Search at a city's size: a window of more sessions than a statement may have parameters,
//! pages that stay exact while bookings change free places, and (PostgreSQL) plans that use
//! indexes. Every expected answer is computed here from the raw rows.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{base, capacity_pool, session, session_pool};
use kepu::domain::capacity;
use kepu::domain::geo::LatLon;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// A session as an independent reader of the tables sees it.
#[derive(Debug, Clone)]
struct Expected {
    id: Uuid,
    starts_at: DateTime<Utc>,
    free: i32,
    at: LatLon,
}

/// Every open session of an accredited base, with its free places from all its pools.
async fn every_session(app: &TestApp) -> Vec<Expected> {
    let bases: HashMap<Uuid, base::Model> =
        base::Entity::find().all(&app.db).await.unwrap().into_iter().map(|b| (b.id, b)).collect();
    let pools: HashMap<Uuid, capacity_pool::Model> =
        capacity_pool::Entity::find().all(&app.db).await.unwrap().into_iter().map(|p| (p.id, p)).collect();
    let mut of_session: HashMap<Uuid, Vec<capacity_pool::Model>> = HashMap::new();
    for link in session_pool::Entity::find().all(&app.db).await.unwrap() {
        of_session.entry(link.session_id).or_default().push(pools[&link.pool_id].clone());
    }
    session::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.status == "open" && bases[&s.base_id].status == "accredited")
        .map(|s| {
            let b = &bases[&s.base_id];
            Expected {
                id: s.id,
                starts_at: s.starts_at,
                free: capacity::free_places(of_session.get(&s.id).map_or(&[][..], Vec::as_slice)),
                at: LatLon { lat: b.lat, lon: b.lon },
            }
        })
        .collect()
}

/// A session's place in the list: distance (0 without `near`), start, id.
type Key = (f64, DateTime<Utc>, Uuid);

/// What `GET /v1/sessions` should answer: the matching sessions in the list's order, each
/// with its key and free places.
fn expected_keys(
    all: &[Expected],
    near: Option<(LatLon, f64)>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    min_free: i32,
) -> Vec<(Key, i32)> {
    let mut hits: Vec<(Key, i32)> = all
        .iter()
        .filter(|s| s.starts_at >= from && s.starts_at < to && s.free >= min_free)
        .map(|s| ((near.map_or(0.0, |(c, _)| c.distance_km(s.at)), s.starts_at, s.id), s.free))
        .filter(|((d, _, _), _)| near.is_none_or(|(_, r)| *d <= r))
        .collect();
    hits.sort_by(|(a, _), (b, _)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    hits
}

fn expected_order(
    all: &[Expected],
    near: Option<(LatLon, f64)>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    min_free: i32,
) -> Vec<(Uuid, i32)> {
    expected_keys(all, near, from, to, min_free).into_iter().map(|((_, _, id), free)| (id, free)).collect()
}

fn after(a: &Key, b: &Key) -> bool {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)).is_gt()
}

fn ids_and_free(page: &Value) -> Vec<(Uuid, i32)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().parse().unwrap(), s["free"].as_i64().unwrap() as i32))
        .collect()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Seeds a city of `bases` bases with `per_base` sessions each, by bulk SQL.
async fn city(app: &TestApp, bases: u64, per_base: u64) {
    kepu::bench::city::seed(&app.db, 0, bases, per_base, app.now(), |_| {}).await.expect("seed the city");
}

#[tokio::test]
async fn a_window_of_more_sessions_than_a_statement_takes_parameters_lists_a_correct_page() {
    let app = spawn_app().await;
    // 71,000 sessions in the default 90-day window: more than PostgreSQL's 65,535 parameters.
    city(&app, 710, 100).await;
    let all = every_session(&app).await;
    assert_eq!(all.len(), 71_000);
    let (from, to) = (app.now(), app.now() + Duration::days(90));

    let first = app.get("/v1/sessions?limit=20", None).await.expect(200).body;
    let expected = expected_order(&all, None, from, to, 0);
    assert_eq!(ids_and_free(&first), expected[..20]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app.get(&format!("/v1/sessions?limit=20&cursor={cursor}"), None).await.expect(200).body;
    assert_eq!(ids_and_free(&second), expected[20..40]);

    let center = LatLon { lat: 23.13, lon: 113.33 };
    let near = app.get("/v1/sessions?near=23.13,113.33&radius_km=10&min_free=45&limit=50", None).await.expect(200).body;
    let expected = expected_order(&all, Some((center, 10.0)), from, to, 45);
    assert!(expected.len() > 50, "the seeded city has more than a page near its centre");
    assert_eq!(ids_and_free(&near), expected[..50]);
    let d: Vec<f64> = near["items"].as_array().unwrap().iter().map(|s| s["distance_km"].as_f64().unwrap()).collect();
    assert!(d.windows(2).all(|w| w[0] <= w[1]) && d.iter().all(|d| *d <= 10.0), "{d:?}");
}

/// Walks every page of `query` with `limit`, calling `between` after each page, and checks
/// each page against the tables as they are when it is read: with keyset pages a client sees
/// every session that matches when its part of the list is read, once, in order.
async fn walk_and_check(
    app: &TestApp,
    query: &str,
    near: Option<(LatLon, f64)>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    min_free: i32,
    mut between: impl AsyncFnMut(usize, &[(Uuid, i32)]),
) -> Vec<Uuid> {
    let mut seen: Vec<Uuid> = Vec::new();
    let mut last: Option<Key> = None;
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/sessions?{query}&cursor={c}"),
            None => format!("/v1/sessions?{query}"),
        };
        // What the list holds now, after the last session shown.
        let now_expected = expected_keys(&every_session(app).await, near, from, to, min_free);
        let rest: Vec<(Uuid, i32)> = now_expected
            .iter()
            .filter(|(k, _)| last.is_none_or(|l| after(k, &l)))
            .map(|((_, _, id), free)| (*id, *free))
            .collect();
        let keys: HashMap<Uuid, Key> = now_expected.iter().map(|(k, _)| (k.2, *k)).collect();
        let page = app.get(&path, None).await.expect(200).body;
        let items = ids_and_free(&page);
        assert_eq!(items, rest[..items.len()], "page {pages} of {query}");
        seen.extend(items.iter().map(|(id, _)| *id));
        last = items.last().map(|(id, _)| keys[id]).or(last);
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => {
                assert_eq!(items.len(), rest.len(), "the last page holds the rest");
                break;
            }
        }
        between(pages, &rest[items.len()..]).await;
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no session twice");
    seen
}

#[tokio::test]
async fn pages_stay_exact_while_bookings_change_free_places_between_them() {
    let app = spawn_app().await;
    city(&app, 40, 12).await;
    // A city-wide pool shared by a few sessions: free places are the least over all pools.
    let pool = app
        .post(
            "/v1/capacity-pools",
            &json!({"name": "Science Week", "unit": "visitors", "capacity": 50}),
            Some(&app.admin),
        )
        .await
        .expect(201)
        .body;
    let all = every_session(&app).await;
    let (from, to) = (app.now() + Duration::days(2), app.now() + Duration::days(25));
    let in_window: Vec<&Expected> = all.iter().filter(|s| s.starts_at >= from && s.starts_at < to).collect();
    for s in in_window.iter().step_by(7) {
        app.post(&format!("/v1/capacity-pools/{}/sessions", id(&pool)), &json!({"session_id": s.id}), Some(&app.admin))
            .await
            .expect(200);
    }
    // Schools that book ahead of the reader: each booking takes 16 places from a session not yet
    // shown, which may push it below `min_free`.
    let mut schools = Vec::new();
    for k in 0..12 {
        schools.push(id(&app.school(json!({"name": format!("学校{k}")})).await));
    }
    let window = format!("from={}&to={}", rfc3339(from), rfc3339(to)).replace('+', "%2B");
    let center = LatLon { lat: 23.13, lon: 113.33 };
    let shapes = [
        (format!("{window}&limit=9"), None, 0),
        (format!("{window}&min_free=45&limit=9"), None, 45),
        (format!("{window}&near=23.13,113.33&radius_km=60&limit=9"), Some((center, 60.0)), 0),
        (format!("{window}&near=23.13,113.33&radius_km=60&min_free=45&limit=9"), Some((center, 60.0)), 45),
    ];
    let mut booked = 0;
    for (query, near, min_free) in &shapes {
        let seen = walk_and_check(&app, query, *near, (from, to), *min_free, async |page, rest| {
            // Book the second session still to come, when it has room for the group.
            if let Some((session, free)) = rest.get(1).copied()
                && free >= 16
                && page % 2 == 1
            {
                let school = &schools[booked % schools.len()];
                let body = json!({"session_id": session, "school_id": school, "students": 15, "teachers": 1,
                    "audience": "junior", "contact_name": "王老师", "contact_phone": "13800000000"});
                let r = app.post("/v1/bookings", &body, Some(&app.admin)).await;
                assert!(r.status == 201 || r.status == 409, "{:#}", r.body);
                booked += 1;
            }
        })
        .await;
        assert!(seen.len() > 9, "{query}: several pages were walked");
    }
    assert!(booked >= 4, "bookings changed free places between pages ({booked})");
}
