//! A city-sized database made by bulk SQL (never downloaded): accredited bases spread over the
//! city's box, each with sessions over the next 90 days, every session with its own pool,
//! partly used. The same statements on PostgreSQL and SQLite but for ids and times.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbBackend};

use crate::db::RawSql;
use crate::domain::geo::CITY_BBOX;

/// Capacity of every seeded session.
pub const CAPACITY: i32 = 120;
/// Days ahead over which a base's sessions are spread.
pub const DAYS: i64 = 90;
/// Bases per statement: a progress step, and a transaction of moderate size.
const BATCH: u64 = 1000;

/// Ids of seeded rows: a kind's prefix and a running number, as a UUID.
const BASE_IDS: u64 = 0x0b00_0000_0000_0000;
const SESSION_IDS: u64 = 0x0500_0000_0000_0000;
const POOL_IDS: u64 = 0x0900_0000_0000_0000;

/// Adds bases `from..to` (numbered), each with `per_base` open sessions over the next
/// [`DAYS`] days from `now`, and their pools (`used` spread over 0–100 of [`CAPACITY`]).
/// Numbering continues across calls, so a city can be grown in steps.
pub async fn seed(
    db: &impl ConnectionTrait,
    from: u64,
    to: u64,
    per_base: u64,
    now: DateTime<Utc>,
    progress: impl Fn(u64),
) -> Result<(), sea_orm::DbErr> {
    let backend = db.get_database_backend();
    // Sessions start at whole hours from tomorrow (UTC midnight), so times are exact text on
    // SQLite too.
    let day0 = first_day(now);
    let mut start = from;
    while start < to {
        let end = (start + BATCH).min(to);
        let [audiences, themes] = audiences_and_themes(backend, start, end);
        for stmt in [bases(backend, start, end, now), audiences, themes, pools(backend, start, end, per_base, now)] {
            db.execute_raw(stmt).await?;
        }
        db.execute_raw(sessions(backend, start, end, per_base, day0, now)).await?;
        db.execute_raw(links(backend, start, end, per_base)).await?;
        progress(end);
        start = end;
    }
    Ok(())
}

/// `i` over `from..to` as a recursive CTE (both backends).
fn numbers(name: &str, col: &str, from: u64, to: u64) -> String {
    // 64-bit: products of these numbers overflow PostgreSQL's `integer`.
    format!(
        "{name}({col}) AS (SELECT CAST({from} AS BIGINT) UNION ALL SELECT {col} + 1 FROM {name} WHERE {col} + 1 < {to})"
    )
}

/// The id of number `n` of a kind.
fn id(backend: DbBackend, prefix: u64, n: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("CAST(lpad(to_hex(CAST({prefix} AS bigint) + {n}), 32, '0') AS uuid)"),
        _ => format!("unhex(printf('%032x', {prefix} + {n}))"),
    }
}

/// A time `secs` seconds after the Unix epoch, as each backend stores it.
fn time(backend: DbBackend, secs: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("to_timestamp({secs})"),
        _ => format!("strftime('%Y-%m-%dT%H:%M:%S+00:00', {secs}, 'unixepoch')"),
    }
}

/// The (numbered) session of base `i`: `i * per_base + j`.
fn session_no(per_base: u64) -> String {
    format!("(i * {per_base} + j)")
}

/// Start of session `j` of base `i`, in seconds: about one a day, at 09:00–15:30 local time.
fn starts(day0: DateTime<Utc>, per_base: u64) -> String {
    let day0 = day0.timestamp();
    format!("({day0} + (j * {span} / {per_base}) * 86400 + (1 + (j % 4) * 2) * 3600 + (i % 2) * 1800)", span = DAYS - 1)
}

/// The city's district codes (six digits each), run together.
fn district_codes() -> String {
    let data: serde_json::Value = serde_json::from_str(migration::DISTRICTS_JSON).unwrap_or_default();
    let districts = data["districts"].as_array().cloned().unwrap_or_default();
    districts.iter().filter_map(|d| d["code"].as_str()).collect()
}

fn bases(backend: DbBackend, from: u64, to: u64, now: DateTime<Utc>) -> sea_orm::Statement {
    let b = *CITY_BBOX;
    let codes = district_codes();
    let n_codes = codes.len() / 6;
    let mut sql = RawSql::new(backend);
    sql.push(&format!(
        "WITH RECURSIVE {nums} INSERT INTO bases (id, name_zh, name_en, host_org, category, subcategory, \
         district_code, address, lat, lon, status, version, created_at, updated_at, booking_opens_days, \
         booking_closes_hours) SELECT {id}, '城市基地' || i, 'City base ' || i, 'bench', 'venue', \
         'science_venue', substr('{codes}', CAST(1 + (i % {n_codes}) * 6 AS INTEGER), 6), 'bench', \
         {min_lat} + ((i * 7919) % 10007) * {dlat}, {min_lon} + ((i * 104729) % 10009) * {dlon}, \
         'accredited', 1, ",
        nums = numbers("n", "i", from, to),
        id = id(backend, BASE_IDS, "i"),
        min_lat = b.min_lat,
        dlat = (b.max_lat - b.min_lat) / 10007.0,
        min_lon = b.min_lon,
        dlon = (b.max_lon - b.min_lon) / 10009.0,
    ))
    .bind(now)
    .push(", ")
    .bind(now)
    .push(", 30, 24 FROM n");
    sql.statement()
}

/// What the city's bases serve (the grades their sessions take) and two of five themes each,
/// so that searches filtering on them, and the pages that show them, read real rows.
fn audiences_and_themes(backend: DbBackend, from: u64, to: u64) -> [sea_orm::Statement; 2] {
    let base = id(backend, BASE_IDS, "i");
    let one_of = |values: &[&str]| {
        let rows: Vec<String> =
            values.iter().enumerate().map(|(k, v)| format!("SELECT {k} AS k, '{v}' AS v")).collect();
        rows.join(" UNION ALL ")
    };
    let mut sql = RawSql::new(backend);
    sql.push(&format!(
        "WITH RECURSIVE {nums} INSERT INTO base_audiences (base_id, audience) SELECT {base}, a.v FROM n \
         CROSS JOIN ({audiences}) a",
        nums = numbers("n", "i", from, to),
        audiences = one_of(&["primary_upper", "junior", "senior"]),
    ));
    let audiences = sql.statement();
    let mut sql = RawSql::new(backend);
    sql.push(&format!(
        "WITH RECURSIVE {nums} INSERT INTO base_themes (base_id, theme) SELECT {base}, t.v FROM n \
         CROSS JOIN ({themes}) t WHERE (i + t.k) % 5 < 2",
        nums = numbers("n", "i", from, to),
        themes = one_of(&["physics", "life sciences", "space", "ocean", "engineering"]),
    ));
    [audiences, sql.statement()]
}

fn pools(backend: DbBackend, from: u64, to: u64, per_base: u64, now: DateTime<Utc>) -> sea_orm::Statement {
    let n = session_no(per_base);
    let mut sql = RawSql::new(backend);
    sql.push(&format!(
        "WITH RECURSIVE {bases}, {per} INSERT INTO capacity_pools (id, name, unit, capacity, used, base_id, \
         session_id, created_at, updated_at) SELECT {pool}, 'session', 'visitors', {CAPACITY}, ({n} * 48271) % 101, \
         {base}, {session}, ",
        bases = numbers("b", "i", from, to),
        per = numbers("s", "j", 0, per_base),
        pool = id(backend, POOL_IDS, &n),
        base = id(backend, BASE_IDS, "i"),
        session = id(backend, SESSION_IDS, &n),
    ))
    .bind(now)
    .push(", ")
    .bind(now)
    .push(" FROM b CROSS JOIN s");
    sql.statement()
}

fn sessions(
    backend: DbBackend,
    from: u64,
    to: u64,
    per_base: u64,
    day0: DateTime<Utc>,
    now: DateTime<Utc>,
) -> sea_orm::Statement {
    let n = session_no(per_base);
    let t = starts(day0, per_base);
    let json = match backend {
        DbBackend::Postgres => "CAST('[\"primary_upper\",\"junior\",\"senior\"]' AS json)",
        _ => "'[\"primary_upper\",\"junior\",\"senior\"]'",
    };
    let mut sql = RawSql::new(backend);
    sql.push(&format!(
        "WITH RECURSIVE {bases}, {per} INSERT INTO sessions (id, base_id, starts_at, ends_at, capacity, audiences, \
         booking_opens_at, booking_closes_at, max_group_size, status, own_pool_id, version, created_at, updated_at) \
         SELECT {session}, {base}, {start}, {end}, {CAPACITY}, {json}, {opens}, {closes}, NULL, 'open', {pool}, 1, ",
        bases = numbers("b", "i", from, to),
        per = numbers("s", "j", 0, per_base),
        session = id(backend, SESSION_IDS, &n),
        base = id(backend, BASE_IDS, "i"),
        start = time(backend, &t),
        end = time(backend, &format!("{t} + 5400")),
        opens = time(backend, &format!("{t} - 30 * 86400")),
        closes = time(backend, &format!("{t} - 86400")),
        pool = id(backend, POOL_IDS, &n),
    ))
    .bind(now)
    .push(", ")
    .bind(now)
    .push(" FROM b CROSS JOIN s");
    sql.statement()
}

fn links(backend: DbBackend, from: u64, to: u64, per_base: u64) -> sea_orm::Statement {
    let n = session_no(per_base);
    let mut sql = RawSql::new(backend);
    sql.push(&format!(
        "WITH RECURSIVE {bases}, {per} INSERT INTO session_pools (session_id, pool_id) \
         SELECT {session}, {pool} FROM b CROSS JOIN s",
        bases = numbers("b", "i", from, to),
        per = numbers("s", "j", 0, per_base),
        session = id(backend, SESSION_IDS, &n),
        pool = id(backend, POOL_IDS, &n),
    ));
    sql.statement()
}

/// The id of seeded base number `n`.
pub fn base_id(n: u64) -> uuid::Uuid {
    uuid::Uuid::from_u128(u128::from(BASE_IDS + n))
}

/// Ids of seeded schools and bookings.
const SCHOOL_IDS: u64 = 0x0500_1000_0000_0000;
const BOOKING_IDS: u64 = 0x0b00_1000_0000_0000;
/// Schools of the seeded city.
pub const SCHOOLS: u64 = 2_000;

/// Adds [`SCHOOLS`] schools and one booking for every session of bases `from..to`, of 30–59
/// students and 2 teachers, as the season's visits end: seven in ten checked in (a few
/// missing), one a no-show, one cancelled (every other one late), one still confirmed. For
/// the statistics, which count them.
pub async fn seed_visits(
    db: &impl ConnectionTrait,
    from: u64,
    to: u64,
    per_base: u64,
    day0: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    let backend = db.get_database_backend();
    if from == 0 {
        let mut sql = RawSql::new(backend);
        sql.push(&format!(
            "WITH RECURSIVE {nums} INSERT INTO schools (id, name, district_code, address, lat, lon, kind, student_count, \
             version, created_at, updated_at) SELECT {id}, '学校' || k, substr('{codes}', CAST(1 + (k % {n}) * 6 AS INTEGER), 6), \
             'bench', 23.1, 113.3, 'primary', 1000, 1, ",
            nums = numbers("n", "k", 0, SCHOOLS),
            id = id(backend, SCHOOL_IDS, "k"),
            codes = district_codes(),
            n = district_codes().len() / 6,
        ))
        .bind(now)
        .push(", ")
        .bind(now)
        .push(" FROM n");
        db.execute_raw(sql.statement()).await?;
    }
    let mut start = from;
    while start < to {
        let end = (start + BATCH).min(to);
        let n = session_no(per_base);
        let t = starts(day0, per_base);
        // The outcome by the session's number: 0–6 checked in, 7 no-show, 8 cancelled, 9 confirmed.
        let status = format!(
            "CASE WHEN {n} % 10 < 7 THEN 'checked_in' WHEN {n} % 10 = 7 THEN 'no_show' \
             WHEN {n} % 10 = 8 THEN 'cancelled' ELSE 'confirmed' END"
        );
        let present = |v: &str| format!("CASE WHEN {n} % 10 < 7 THEN {v} ELSE NULL END");
        let students = format!("(30 + {n} % 30)");
        let school = id(backend, SCHOOL_IDS, &format!("({n} * 7) % {SCHOOLS}"));
        let end_time = time(backend, &format!("{t} + 5400"));
        let late = format!("({n} % 20 = 8)");
        let students_present = present(&format!("{students} - {n} % 3"));
        let mut sql = RawSql::new(backend);
        sql.push(&format!(
            "WITH RECURSIVE {bases}, {per} INSERT INTO bookings (id, session_id, base_id, school_id, students, teachers, \
             audience, contact_name, contact_phone, status, code, starts_at, ends_at, late_cancellation, \
             students_present, teachers_present, created_at, updated_at, version) \
             SELECT {booking}, {session}, {base}, {school}, {students}, 2, 'junior', 'bench', '020-0000 0000', {status}, \
             'B' || {n}, {start}, {end}, {late}, {sp}, {tp}, ",
            bases = numbers("b", "i", start, end),
            per = numbers("s", "j", 0, per_base),
            booking = id(backend, BOOKING_IDS, &n),
            session = id(backend, SESSION_IDS, &n),
            base = id(backend, BASE_IDS, "i"),
            start = time(backend, &t),
            end = end_time,
            sp = students_present,
            tp = present("2"),
        ))
        .bind(now)
        .push(", ")
        .bind(now)
        .push(", 1 FROM b CROSS JOIN s");
        db.execute_raw(sql.statement()).await?;
        start = end;
    }
    Ok(())
}

/// The day the seeded sessions start from, for a city seeded at `now`.
pub fn first_day(now: DateTime<Utc>) -> DateTime<Utc> {
    (now + Duration::days(1)).date_naive().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}
