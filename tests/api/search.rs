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

/// The plan of `stmt`: every (node type, relation) in it.
async fn plan_nodes(conn: &impl sea_orm::ConnectionTrait, stmt: sea_orm::Statement) -> Vec<(String, String)> {
    use sea_orm::DbBackend;
    let backend = conn.get_database_backend();
    let explain = match backend {
        DbBackend::Postgres => format!("EXPLAIN (FORMAT JSON) {}", stmt.sql),
        _ => format!("EXPLAIN QUERY PLAN {}", stmt.sql),
    };
    let rows = conn.query_all_raw(sea_orm::Statement { sql: explain, ..stmt }).await.expect("explain");
    let mut out = Vec::new();
    if backend == DbBackend::Postgres {
        fn walk(node: &Value, out: &mut Vec<(String, String)>) {
            let kind = node["Node Type"].as_str().unwrap_or_default().to_string();
            out.push((kind, node["Relation Name"].as_str().unwrap_or_default().to_string()));
            for child in node["Plans"].as_array().into_iter().flatten() {
                walk(child, out);
            }
        }
        let plan: Value = rows[0].try_get("", "QUERY PLAN").expect("a JSON plan");
        walk(&plan[0]["Plan"], &mut out);
    } else {
        for row in rows {
            let detail: String = row.try_get("", "detail").expect("a plan line");
            out.push((detail, String::new()));
        }
    }
    out
}

/// Asserts that a plan reads no whole table of the search (on PostgreSQL: no sequential scan
/// of them; on SQLite: no `SCAN` of them but in an index's order, and no Bloom filter).
#[track_caller]
fn assert_indexed(what: &str, nodes: &[(String, String)]) {
    const TABLES: [&str; 4] = ["sessions", "bases", "capacity_pools", "session_pools"];
    let whole: Vec<_> = nodes
        .iter()
        .filter(|(kind, rel)| {
            let pg = kind == "Seq Scan" && TABLES.contains(&rel.as_str());
            // A Bloom filter is built by reading its whole table.
            let sqlite = TABLES.iter().any(|t| kind == &format!("SCAN {t}") || kind.starts_with("BLOOM FILTER"));
            pg || sqlite
        })
        .collect();
    assert!(whole.is_empty(), "{what} reads a whole table: {nodes:?}");
    assert!(
        nodes.iter().any(|(kind, _)| kind.contains("Index") || kind.contains("USING")),
        "{what} uses no index: {nodes:?}"
    );
}

#[tokio::test]
async fn the_main_search_shapes_walk_indexes_and_read_no_whole_table() {
    use kepu::domain::nearest::{self, Rings};
    use kepu::domain::page::PageRequest;
    use kepu::domain::sessions::{SessionQuery, page_statement};
    use sea_orm::{ConnectionTrait, QueryTrait, TransactionTrait};

    let app = spawn_app().await;
    city(&app, 300, 100).await;
    app.db.execute_unprepared("ANALYZE").await.unwrap();
    let backend = app.db.get_database_backend();
    let now = app.now();
    let center = LatLon { lat: 23.13, lon: 113.33 };
    // Page 5's cursor, as a client would hold it.
    let mut path = "/v1/sessions?limit=20".to_string();
    for _ in 1..5 {
        let body = app.get(&path, None).await.expect(200).body;
        path = format!("/v1/sessions?limit=20&cursor={}", body["next_cursor"].as_str().unwrap());
    }
    let page5 = PageRequest::parse(Some(20), path.split("cursor=").nth(1)).unwrap();
    let first = PageRequest::parse(Some(20), None).unwrap();
    let week = SessionQuery { from: Some(now), to: Some(now + Duration::days(7)), ..Default::default() };
    let near = SessionQuery { near: Some(center), radius_km: Some(10.0), min_free: Some(45), ..week.clone() };
    // The nearest bases, as the search walks them.
    let accredited = kepu::domain::bases::status_condition(kepu::domain::enums::BaseStatus::Accredited, now);
    let cols = [base::Column::Id, base::Column::Lat, base::Column::Lon];
    let mut rings = Rings::new(center, Some(10.0), None);
    let bases =
        rings.next(4, |b| nearest::located::<base::Entity>(&app.db, accredited.clone(), cols, b)).await.unwrap();
    assert_eq!(bases.len(), 4);

    let shapes = [
        ("sessions by time", page_statement(backend, &SessionQuery::default(), &[], first, now).unwrap()),
        ("sessions by time, page 5", page_statement(backend, &SessionQuery::default(), &[], page5, now).unwrap()),
        (
            "sessions by time, filtered",
            page_statement(
                backend,
                &SessionQuery { min_free: Some(45), bookable: Some(true), ..week.clone() },
                &[],
                first,
                now,
            )
            .unwrap(),
        ),
        ("sessions near, a batch of bases", page_statement(backend, &near, &bases, first, now).unwrap()),
        (
            "a ring of bases",
            nearest::located_query::<base::Entity>(accredited.clone(), cols, Some(center.enclosing_box(10.0)))
                .build(backend),
        ),
    ];
    // With the tables this size the planner prefers the indexes of the session shapes by itself.
    for (what, stmt) in shapes.iter().take(4) {
        assert_indexed(what, &plan_nodes(&app.db, stmt.clone()).await);
    }
    // And every shape has an index path at all (a plan without one falls back to a scan).
    let txn = app.db.begin().await.unwrap();
    if is_postgres() {
        txn.execute_unprepared("SET LOCAL enable_seqscan = off").await.unwrap();
    }
    for (what, stmt) in &shapes {
        assert_indexed(what, &plan_nodes(&txn, stmt.clone()).await);
    }
    txn.rollback().await.unwrap();
}

#[tokio::test]
async fn with_a_read_url_searches_read_there_and_bookings_do_not() {
    let app = spawn_app().await;
    // A "replica" that lags: migrated, but without what the primary gets from here on.
    let replica = fresh_database().await;
    let replica_db = kepu::db::connect(&replica.url, 2).await.unwrap();
    kepu::db::migrate(&replica_db).await.unwrap();
    let mut config = (*app.state.config).clone();
    config.database_read_url = Some(replica.url.clone());
    let url = serve(kepu::startup::build_state(config).await.expect("state with a read URL")).await;
    let get = async |path: &str| app.send(app.client.get(format!("{url}{path}"))).await;

    let (base, op) = app.accredited_base(json!({"name_en": "Written to the primary"})).await;
    let session = app.session(&id(&base), &op, 72, json!({})).await;
    // Searches read the replica, which has not got them yet.
    assert_eq!(get("/v1/sessions?limit=5").await.expect(200).body["items"], json!([]));
    assert_eq!(get("/v1/bases?near=23.13,113.33&limit=5").await.expect(200).body["items"], json!([]));
    // Once "replicated" (here: written to the replica too), searches find the base there.
    let row = base::Entity::find_by_id(id(&base).parse::<Uuid>().unwrap()).one(&app.db).await.unwrap().unwrap();
    base::Entity::insert(base::ActiveModel::from(row)).exec_without_returning(&replica_db).await.unwrap();
    let found = get("/v1/bases?q=primary&limit=5").await.expect(200).body;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    // A single read, and a booking, go to the primary: the session the replica lacks is there.
    get(&format!("/v1/sessions/{}", id(&session))).await.expect(200);
    let (school, token) = app.school_account("读写分离").await;
    let booked = app
        .send(
            app.client
                .post(format!("{url}/v1/bookings"))
                .bearer_auth(&token)
                .json(&booking_body(&session, &school, 30, 2)),
        )
        .await
        .expect(201);
    assert_eq!(booked.body["status"], "confirmed");
}
