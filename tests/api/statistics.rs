//! Statistics (科普统计): a known history over two years and three districts, built through
//! the API with the server's clock, and every figure checked against a recount of it.

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, booking_body, id, spawn_app};

/// What became of a booking.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Came, with these numbers.
    Came(i32, i32),
    NoShow,
    /// Cancelled this many hours before the visit.
    Cancelled(i64),
}

/// A visit of the history: base, local start, capacity, bookings (school, students,
/// teachers, outcome); `cancelled` sessions are cancelled by the base before their day.
struct Visit {
    base: usize,
    start: (i32, u32, u32, u32),
    capacity: i64,
    cancelled: bool,
    bookings: Vec<(usize, i32, i32, Outcome)>,
}

fn local(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    FixedOffset::east_opt(8 * 3600).unwrap().with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().with_timezone(&Utc)
}

fn set_clock(app: &TestApp, to: DateTime<Utc>) {
    app.clock.advance(to - app.now());
}

fn history() -> Vec<Visit> {
    use Outcome::*;
    let v = |base, start, capacity, bookings| Visit { base, start, capacity, cancelled: false, bookings };
    vec![
        v(0, (2024, 3, 15, 10), 100, vec![(0, 40, 2, Came(38, 2)), (1, 30, 2, NoShow), (2, 20, 1, Cancelled(48))]),
        v(1, (2024, 5, 20, 14), 80, vec![(0, 20, 1, Came(20, 1)), (3, 25, 2, Cancelled(3))]),
        v(2, (2024, 11, 2, 9), 60, vec![(1, 30, 2, Came(29, 2)), (2, 20, 2, Came(20, 2))]),
        Visit { base: 2, start: (2024, 11, 9, 9), capacity: 60, cancelled: true, bookings: vec![(3, 10, 1, NoShow)] },
        // 01:00 on New Year's Day, Beijing time: still 2024 in UTC, 2025 in the city.
        v(0, (2025, 1, 1, 1), 50, vec![(3, 40, 2, Came(35, 2))]),
        v(0, (2025, 7, 7, 10), 120, vec![(0, 50, 3, NoShow), (2, 40, 2, Came(40, 2)), (1, 10, 1, Cancelled(30))]),
        v(1, (2025, 7, 8, 10), 100, vec![(2, 30, 2, Came(30, 2)), (3, 30, 2, Came(28, 2))]),
        // School 2 again in the quarter: counted once however its months are read.
        v(1, (2025, 8, 20, 10), 40, vec![(2, 20, 1, Came(20, 1))]),
        v(2, (2025, 12, 30, 15), 90, vec![(0, 20, 1, Cancelled(2)), (1, 20, 1, NoShow)]),
    ]
}

/// The figures a recount of the history gives for the visits `pick` selects.
fn recount(h: &[Visit], pick: impl Fn(&Visit) -> bool) -> Value {
    let mut f = json!({"sessions_held": 0, "places_offered": 0, "bookings": 0, "visitors_booked": 0,
        "visitors_checked_in": 0, "school_groups": 0, "late_cancellations": 0, "no_shows": 0});
    let add = |f: &mut Value, k: &str, n: i64| f[k] = json!(f[k].as_i64().unwrap() + n);
    let mut schools = std::collections::BTreeSet::new();
    for v in h.iter().filter(|v| pick(v)) {
        if !v.cancelled {
            add(&mut f, "sessions_held", 1);
            add(&mut f, "places_offered", v.capacity);
        }
        for &(school, s, t, outcome) in &v.bookings {
            // A cancelled session cancels its bookings (not late: the base cancelled).
            if v.cancelled {
                continue;
            }
            match outcome {
                Outcome::Came(sp, tp) => {
                    add(&mut f, "school_groups", 1);
                    add(&mut f, "visitors_checked_in", i64::from(sp + tp));
                }
                Outcome::NoShow => add(&mut f, "no_shows", 1),
                Outcome::Cancelled(hours) => {
                    if hours < 24 {
                        add(&mut f, "late_cancellations", 1);
                    }
                    continue;
                }
            }
            add(&mut f, "bookings", 1);
            add(&mut f, "visitors_booked", i64::from(s + t));
            schools.insert(school);
        }
    }
    f["distinct_schools"] = json!(schools.len());
    let offered = f["places_offered"].as_i64().unwrap();
    f["utilisation"] = if offered == 0 {
        Value::Null
    } else {
        json!((f["visitors_checked_in"].as_i64().unwrap() as f64 / offered as f64 * 10_000.0).round() / 10_000.0)
    };
    f
}

/// Every figure of the city by year, each district by quarter and the first base by month,
/// against a recount of `h`.
async fn assert_recounted(app: &TestApp, h: &[Visit], bases: &[(Value, String)], districts: &[&str], when: &str) {
    // The city, each year.
    for year in [2024, 2025] {
        let got = app.get(&format!("/v1/statistics?scope=city&year={year}"), None).await.expect(200).body;
        let rows = got["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["period"], year.to_string());
        assert_figures(&rows[0], &recount(h, |v| local_year(v) == year), &format!("{when}: city {year}"));
        let loans = if year == 2025 { 1 } else { 0 };
        assert_eq!(rows[0]["exhibit_loans_lent"], loans);
        assert_eq!(rows[0]["exhibit_loans_borrowed"], loans);
    }
    // Each district, by quarter (public).
    for (i, d) in districts.iter().enumerate() {
        for year in [2024, 2025] {
            let got = app
                .get(&format!("/v1/statistics?scope=district&id={d}&year={year}&period=quarter"), None)
                .await
                .expect(200)
                .body;
            let rows = got["rows"].as_array().unwrap();
            assert_eq!(rows.len(), 4);
            for (q, row) in rows.iter().enumerate() {
                assert_eq!(row["period"], format!("{year}-Q{}", q + 1));
                let quarter = |v: &Visit| (v.start.1 - 1) / 3 == q as u32;
                let expected = recount(h, |v| v.base == i && local_year(v) == year && quarter(v));
                assert_figures(row, &expected, &format!("{when}: {d} {year} Q{}", q + 1));
            }
        }
    }
    // A base by month, for its operator; every district at once.
    let (b0, op0) = &bases[0];
    let got = app.get("/v1/statistics?scope=base&year=2025&period=month", Some(op0)).await.expect(200).body;
    let rows = got["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    for (m, row) in rows.iter().enumerate() {
        assert_eq!(row["id"], b0["id"]);
        let expected = recount(h, |v| v.base == 0 && v.start.0 == 2025 && v.start.1 == m as u32 + 1);
        assert_figures(row, &expected, &format!("{when}: base 0 2025-{:02}", m + 1));
    }
    assert_eq!(rows[0]["sessions_held"], 1, "New Year's night counts in the city's January");
    let all = app.get("/v1/statistics?scope=district&year=2024", None).await.expect(200).body;
    assert_eq!(all["rows"].as_array().unwrap().len(), 11, "every district, with zeros");
}

fn local_year(v: &Visit) -> i32 {
    v.start.0
}

fn assert_figures(row: &Value, expected: &Value, what: &str) {
    for (k, want) in expected.as_object().unwrap() {
        assert_eq!(&row[k], want, "{what}: {k} in {row}");
    }
}

#[tokio::test]
async fn every_figure_equals_a_recount_of_a_known_history() {
    let app = spawn_app().await;
    let districts = ["440106", "440104", "440105"];
    let mut bases = Vec::new();
    for d in districts {
        bases.push(app.accredited_base(json!({"district_code": d})).await);
    }
    let mut schools = Vec::new();
    for i in 0..4 {
        schools.push(app.school_account(&format!("学校{i}")).await);
    }
    let real_now = app.now();
    let mut h = history();
    let mut made_bookings = Vec::new();

    for v in &h {
        let (y, m, d, hour) = v.start;
        let start = local(y, m, d, hour);
        let (base, op) = &bases[v.base];
        set_clock(&app, start - Duration::days(3));
        let body = json!({"starts_at": start.to_rfc3339(), "ends_at": (start + Duration::minutes(90)).to_rfc3339(),
            "capacity": v.capacity, "audiences": ["junior"]});
        let session = app.post(&format!("/v1/bases/{}/sessions", id(base)), &body, Some(op)).await.expect(201).body;
        let mut made = Vec::new();
        for &(school, s, t, outcome) in &v.bookings {
            let (school, token) = &schools[school];
            let b = app.post("/v1/bookings", &booking_body(&session, school, s, t), Some(token)).await.expect(201).body;
            made.push((b, token.clone(), outcome));
        }
        made_bookings.push(made.iter().map(|(b, _, _)| b.clone()).collect::<Vec<_>>());
        if v.cancelled {
            app.post(&format!("/v1/sessions/{}/cancel", id(&session)), &json!({"reason": "闭馆"}), Some(op))
                .await
                .expect(200);
            continue;
        }
        for (b, token, outcome) in &made {
            if let Outcome::Cancelled(hours) = outcome {
                set_clock(&app, start - Duration::hours(*hours));
                app.post(&format!("/v1/bookings/{}/cancel", id(b)), &json!({}), Some(token)).await.expect(200);
            }
        }
        set_clock(&app, start + Duration::minutes(5));
        for (b, _, outcome) in &made {
            if let Outcome::Came(sp, tp) = outcome {
                let body = json!({"code": b["code"], "students_present": sp, "teachers_present": tp});
                app.post(&format!("/v1/bookings/{}/check-in", id(b)), &body, Some(op)).await.expect(200);
            }
        }
        set_clock(&app, start + Duration::hours(3));
        app.sweep().await;
    }
    // An exhibit lent in July 2025 from the first base to the second.
    set_clock(&app, local(2025, 7, 1, 9));
    let (owner, owner_op) = &bases[0];
    let (borrower, borrower_op) = &bases[1];
    let mut e = crate::helpers::exhibit_body();
    e["shareable"] = json!(true);
    let e = app.post(&format!("/v1/bases/{}/exhibits", id(owner)), &e, Some(owner_op)).await.expect(201).body;
    let loan_body = json!({"borrower_base_id": borrower["id"], "starts_on": "2025-07-02", "ends_on": "2025-07-20", "purpose": "展览"});
    let loan =
        app.post(&format!("/v1/exhibits/{}/loans", id(&e)), &loan_body, Some(borrower_op)).await.expect(201).body;
    for step in ["approve", "dispatch"] {
        app.post(&format!("/v1/exhibit-loans/{}/{step}", id(&loan)), &json!({}), Some(owner_op)).await.expect(200);
    }
    set_clock(&app, real_now);

    let (b0, op0) = &bases[0];

    // Read from the raw rows; then with every closed month rolled up.
    assert_recounted(&app, &h, &bases, &districts, "raw").await;
    let report = kepu::domain::statistics::rollup::roll_up(&app.db, app.now(), 100).await.unwrap();
    assert!(report.rolled >= 22, "every closed month since March 2024: {report:?}");
    assert_recounted(&app, &h, &bases, &districts, "rolled up").await;
    let again = kepu::domain::statistics::rollup::roll_up(&app.db, app.now(), 100).await.unwrap();
    assert_eq!(again.rolled, 0, "fresh months are not rolled again");

    // Months later the base checks in the group it had recorded as a no-show in July 2025:
    // July is read from the raw rows until it is rolled up again, and nothing else is.
    let late = &made_bookings[5][0];
    let body = json!({"code": late["code"], "students_present": 45, "teachers_present": 3});
    app.post(&format!("/v1/bookings/{}/check-in", id(late)), &body, Some(op0)).await.expect(200);
    h[5].bookings[0].3 = Outcome::Came(45, 3);
    let fresh = kepu::domain::statistics::rollup::fresh_months(&app.db, 2025).await.unwrap();
    assert!(!fresh.contains(&202507) && fresh.contains(&202508), "{fresh:?}");
    assert_recounted(&app, &h, &bases, &districts, "July changed").await;
    let report = kepu::domain::statistics::rollup::roll_up(&app.db, app.now(), 100).await.unwrap();
    assert_eq!(report.rolled, 1, "July alone");
    assert_recounted(&app, &h, &bases, &districts, "July rolled up again").await;

    // CSV: a BOM, the stable header, one line per row.
    let res = app
        .client
        .get(app.url("/v1/statistics?scope=district&id=440106&year=2024"))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let bytes = res.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], kepu::domain::statistics::CSV_COLUMNS.join(","));
    assert_eq!(lines.len(), 2);
    let expected = recount(&h, |v| v.base == 0 && v.start.0 == 2024);
    assert!(
        lines[1].starts_with(&format!(
            "district,440106,天河区,2024,{},{},",
            expected["sessions_held"], expected["places_offered"]
        )),
        "{}",
        lines[1]
    );

    // Who reads what.
    let (b1, _) = &bases[1];
    app.get(&format!("/v1/statistics?scope=base&id={}", id(b1)), None).await.expect(401);
    app.get(&format!("/v1/statistics?scope=base&id={}", id(b1)), Some(op0)).await.expect_problem(403, "forbidden");
    app.get(&format!("/v1/statistics?scope=base&id={}", id(b1)), Some(&app.admin)).await.expect(200);
    app.get("/v1/statistics?scope=base", Some(&app.admin)).await.expect_invalid("id");
    app.get("/v1/statistics?scope=district&id=999999", None).await.expect_invalid("id");
    app.get("/v1/statistics?scope=city&year=1999", None).await.expect_invalid("year");
    app.get("/v1/statistics?scope=galaxy", None).await.expect_invalid("scope");

    // The district annual report: per base and in total, with the district's standing.
    let officer = app.user("tianhe-officer", json!({"role": "district_officer", "district_code": "440106"})).await;
    let other = app.user("yuexiu-officer", json!({"role": "district_officer", "district_code": "440104"})).await;
    app.get("/v1/districts/440106/report?year=2025", Some(&other)).await.expect_problem(403, "forbidden");
    app.get("/v1/districts/440106/report?year=2025", None).await.expect(401);
    let report = app.get("/v1/districts/440106/report?year=2025", Some(&officer)).await.expect(200).body;
    let expected = recount(&h, |v| v.base == 0 && v.start.0 == 2025);
    let own = app.get("/v1/statistics?scope=base&year=2025", Some(&officer)).await.expect(200).body;
    let own = own["rows"].as_array().unwrap();
    assert_eq!(own.len(), 1, "the officer's district's one base: {own:?}");
    assert_eq!(own[0]["id"], b0["id"]);
    assert_figures(&own[0], &expected, "Tianhe's base for its officer");
    assert_figures(&report["totals"], &expected, "Tianhe 2025 totals");
    let listed = report["bases"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["base_id"], b0["id"]);
    assert_eq!(listed[0]["status"], "accredited");
    assert_eq!(listed[0]["exhibit_loans_lent"], 1);
    assert_figures(&listed[0], &expected, "Tianhe's base 2025");
    assert_eq!(report["bases_by_status"]["accredited"], 1);
    let csv = app
        .client
        .get(app.url("/v1/districts/440106/report?year=2025&format=csv"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    let bytes = csv.bytes().await.unwrap();
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(lines[0].starts_with("base_id,name,status,grade,signs,signs_overdue,signs_update_due,sessions_held"));
    assert_eq!(lines.len(), 3, "a base and the district: {text}");
    assert!(lines[2].starts_with("district,天河区,"));
}

#[tokio::test]
async fn tours_and_campaigns_are_counted_where_their_legs_are() {
    let app = spawn_app().await;
    set_clock(&app, local(2030, 5, 1, 9));
    let (a, op_a) = app.accredited_base(json!({"district_code": "440106"})).await;
    let (b, op_b) = app
        .accredited_base(
            json!({"district_code": "440106", "name_en": "Second", "location": {"lat": 23.10, "lon": 113.26}}),
        )
        .await;
    let (c, _) = app.accredited_base(json!({"district_code": "440104", "name_en": "Third"})).await;
    let first = app.session(&id(&a), &op_a, 72, json!({"audiences": ["junior"]})).await;
    let second = app.session(&id(&b), &op_b, 76, json!({"audiences": ["junior"]})).await;
    let tour = json!({"title": "科学一日游", "audience": "junior", "meeting_point": "正门",
        "meeting_location": {"lat": 23.13, "lon": 113.32}, "places": 10, "legs": [first["id"], second["id"]]});
    let tour = app.post("/v1/tours", &tour, Some(&app.admin)).await.expect(201).body;
    let opens = app.now() + Duration::hours(1);
    let campaign = json!({"title": "科技活动周", "opens_at": opens.to_rfc3339(),
        "closes_at": (opens + Duration::hours(24)).to_rfc3339(), "for_schools": true, "for_citizens": true,
        "max_wins": 1, "tours": [tour["id"]]});
    let campaign = app.post("/v1/campaigns", &campaign, Some(&app.admin)).await.expect(201).body;
    set_clock(&app, opens + Duration::minutes(5));
    let apply = format!("/v1/campaigns/{}/applications", id(&campaign));
    let mut applied = Vec::new();
    for i in 0..6usize {
        let body = json!({"kind": "citizen", "name": format!("市民{i}"), "phone": format!("139 0000 {i:04}"),
            "people": 3, "district_code": "440106", "preferences": [tour["id"]]});
        let ip: std::net::IpAddr = format!("127.0.9.{}", i + 1).parse().unwrap();
        let client = reqwest::Client::builder().local_address(ip).build().unwrap();
        applied.push(app.send(client.post(app.url(&apply)).json(&body)).await.expect(201).body);
    }
    set_clock(&app, opens + Duration::hours(25));
    app.post(&format!("/v1/campaigns/{}/draw", id(&campaign)), &json!({}), Some(&app.admin)).await.expect(200);
    let mut winners = 0;
    for (i, a) in applied.iter().enumerate() {
        let mine = app.get(&format!("{apply}/{}?phone=1390000{i:04}", id(a)), None).await.expect(200).body;
        winners += i64::from(mine["status"] == "won");
    }
    assert!(winners >= 1, "10 places for families of 3");
    let seen = app.get(&format!("/v1/tours/{}", id(&tour)), None).await.expect(200).body;
    let booked = 10 - seen["free"].as_i64().unwrap();
    assert_eq!(booked, winners * 3, "the tour's places went to the winners");

    // Before it leaves, the tour has not departed; after, it counts once per unit.
    let city = |app: &TestApp| {
        let url = app.url("/v1/statistics?scope=city&year=2030");
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().json::<Value>().await.unwrap()["rows"][0].clone() }
    };
    assert_eq!(city(&app).await["tour_departures"], 0);
    set_clock(&app, local(2030, 5, 1, 9) + Duration::hours(80));
    let row = city(&app).await;
    assert_eq!(row["tour_departures"], 1);
    assert_eq!(row["tour_places"], 10);
    assert_eq!(row["tour_booked"], booked);
    assert_eq!(row["tour_fill"], ((booked as f64 / 10.0) * 10_000.0).round() / 10_000.0);
    assert_eq!(row["campaign_applicants"], 6);
    assert_eq!(row["campaign_winners"], winners);
    let tianhe =
        app.get("/v1/statistics?scope=district&id=440106&year=2030", None).await.expect(200).body["rows"][0].clone();
    assert_eq!(
        (tianhe["tour_departures"].as_i64(), tianhe["campaign_applicants"].as_i64()),
        (Some(1), Some(6)),
        "one tour, two legs: once"
    );
    for (base, legs) in [(&a, 1), (&b, 1), (&c, 0)] {
        let row = app
            .get(&format!("/v1/statistics?scope=base&id={}&year=2030", id(base)), Some(&app.admin))
            .await
            .expect(200)
            .body["rows"][0]
            .clone();
        assert_eq!(row["tour_departures"], legs, "{row}");
        assert_eq!(row["campaign_applicants"], 6 * legs);
        assert_eq!(row["campaign_winners"], winners * legs, "winners where they won a place");
    }
}

#[tokio::test]
async fn a_rollup_never_hides_a_change_made_while_it_counts() {
    const GROUPS: usize = 12;
    let app = spawn_app().await;
    let real_now = app.now();
    let (base, op) = app.accredited_base(json!({"district_code": "440106"})).await;
    let mut schools = Vec::new();
    for i in 0..GROUPS {
        schools.push(app.school_account(&format!("学校{i}")).await);
    }
    // March 2025: twelve groups booked, none checked in, all recorded as no-shows.
    let start = local(2025, 3, 12, 10);
    set_clock(&app, start - Duration::days(3));
    let body = json!({"starts_at": start.to_rfc3339(), "ends_at": (start + Duration::minutes(90)).to_rfc3339(),
        "capacity": 600, "audiences": ["junior"]});
    let session = app.post(&format!("/v1/bases/{}/sessions", id(&base)), &body, Some(&op)).await.expect(201).body;
    let mut bookings = Vec::new();
    for (school, token) in &schools {
        bookings
            .push(app.post("/v1/bookings", &booking_body(&session, school, 40, 2), Some(token)).await.expect(201).body);
    }
    set_clock(&app, start + Duration::hours(3));
    assert_eq!(app.sweep().await.no_shows, GROUPS);
    set_clock(&app, real_now);
    let rolled = kepu::domain::statistics::rollup::roll_up(&app.db, app.now(), 100).await.unwrap();
    assert!(rolled.rolled > 0);

    // The base corrects its records while rollups run beside it, over and over.
    let check_ins = bookings.iter().map(|b| {
        let body = json!({"code": b["code"], "students_present": 40, "teachers_present": 2});
        let (app, op) = (&app, &op);
        async move { app.post(&format!("/v1/bookings/{}/check-in", id(b)), &body, Some(op)).await.expect(200) }
    });
    let rollups = (0..GROUPS).map(|_| async {
        tokio::task::yield_now().await;
        kepu::domain::statistics::rollup::roll_up(&app.db, app.now(), 100).await.unwrap()
    });
    let (_, reports) = tokio::join!(futures::future::join_all(check_ins), futures::future::join_all(rollups));
    let rolled_meanwhile: usize = reports.iter().map(|r| r.rolled).sum();

    let row = march_2025(&app).await;
    assert_eq!(row["school_groups"], GROUPS, "after {rolled_meanwhile} rollups meanwhile: {row}");
    assert_eq!(row["no_shows"], 0, "{row}");
    assert_eq!(row["visitors_checked_in"], 42 * GROUPS as i64, "{row}");
    // Once rolled up again, the same figures from the rollup.
    kepu::domain::statistics::rollup::roll_up(&app.db, app.now(), 100).await.unwrap();
    assert!(kepu::domain::statistics::rollup::fresh_months(&app.db, 2025).await.unwrap().contains(&202503));
    assert_eq!(march_2025(&app).await, row);
}

async fn march_2025(app: &TestApp) -> Value {
    app.get("/v1/statistics?scope=city&year=2025&period=month", None).await.expect(200).body["rows"][2].clone()
}
