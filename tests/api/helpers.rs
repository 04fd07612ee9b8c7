//! A fresh, migrated kepu per test, served over real HTTP on a random port, with a client
//! that has one helper per verb.

use std::sync::Arc;

use kepu::config::Config;
use kepu::domain::enums::Role;
use kepu::domain::users::{self, Scope};
use kepu::state::{AppState, OffsetClock};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use uuid::Uuid;

pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const PASSWORD: &str = "user-password-1";

/// A database nobody else uses: a temp SQLite file, or a new PostgreSQL database on the
/// server of `TEST_DATABASE_URL`. Either is removed when this is dropped, also when the test
/// fails.
pub struct TestDb {
    pub url: String,
    /// The PostgreSQL server's URL and the database's name.
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else { return };
        // This runs inside the test's runtime, where blocking on a future is refused, and maybe
        // while that runtime shuts down or the test panics: a thread of its own, with its own
        // runtime, joined here. FORCE ends the connections the app's pools still hold.
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let dropped = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = Database::connect(server.as_str()).await.map_err(|e| e.to_string())?;
                let dropped = admin.execute_unprepared(&sql).await.map(|_| ()).map_err(|e| e.to_string());
                admin.close().await.ok();
                dropped
            })
        })
        .join();
        // Never panic here: a panic while the test is already panicking aborts the whole run.
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database {name}: {e}"),
            Err(_) => eprintln!("could not drop the test database {name}: the dropping thread panicked"),
        }
    }
}

pub async fn fresh_database() -> TestDb {
    // Every test makes one first: HTTP clients built afterwards find the TLS provider set.
    kepu::security::install_tls_provider();
    match std::env::var("TEST_DATABASE_URL") {
        Ok(server) if server.starts_with("postgres") => {
            let name = format!("kepu_test_{}", Uuid::new_v4().simple());
            let admin = Database::connect(server.as_str()).await.expect("connect to TEST_DATABASE_URL");
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
            admin.close().await.ok();
            let (path, query) = server.split_once('?').map_or((server.as_str(), None), |(p, q)| (p, Some(q)));
            let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
            let url = match query {
                Some(q) => format!("{base}/{name}?{q}"),
                None => format!("{base}/{name}"),
            };
            TestDb { url, postgres: Some((server, name)), _dir: None }
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("kepu.db").display());
            TestDb { url, postgres: None, _dir: Some(dir) }
        }
    }
}

pub fn is_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"))
}

pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    pub admin: String,
    /// The server's clock: `app.clock.advance(…)` moves time for the API.
    pub clock: Arc<OffsetClock>,
    pub state: AppState,
    _db: TestDb,
}

/// The answer to a request: status, headers and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn etag(&self) -> String {
        self.header("etag").expect("an ETag").to_string()
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {:#}", self.body);
        self
    }

    /// Asserts a problem of this status whose `type` ends with `slug`.
    #[track_caller]
    pub fn expect_problem(self, status: u16, slug: &str) -> Self {
        let r = self.expect(status);
        assert_eq!(r.header("content-type"), Some("application/problem+json"), "{:#}", r.body);
        let kind = r.body["type"].as_str().unwrap_or_default();
        assert!(kind.ends_with(&format!("/{slug}")), "problem type {kind} should end with {slug}: {:#}", r.body);
        assert_eq!(r.body["status"], status);
        assert!(r.body["title"].is_string() && r.body["detail"].is_string());
        r
    }

    /// The fields named by a validation problem.
    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["field"].as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    /// Asserts a 422 naming `field`.
    #[track_caller]
    pub fn expect_invalid(self, field: &str) -> Self {
        let r = self.expect_problem(422, "validation");
        assert!(r.fields().iter().any(|f| f == field), "expected field {field} in {:#}", r.body);
        r
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let test_db = fresh_database().await;
    let mut config = Config::new(test_db.url.clone());
    config.db_max_connections = Some(if is_postgres() { 6 } else { 4 });
    // Tests move the clock by days; tokens outlive that unless a test says otherwise.
    config.token_ttl = std::time::Duration::from_secs(20 * 366 * 24 * 3600);
    // Tests race many clients from one address and one admin account: request-rate limits are
    // off unless a test turns them on (tests/api/privacy.rs does).
    config.rate_anonymous = kepu::security::RateLimit { per_minute: 0 };
    config.rate_account = kepu::security::RateLimit { per_minute: 0 };
    configure(&mut config);
    let db = kepu::db::connect(&config.database_url, config.db_max_connections.unwrap_or(4)).await.expect("connect");
    kepu::db::migrate(&db).await.expect("migrate");
    let clock = Arc::new(OffsetClock::default());
    let state = AppState::new(db.clone(), config, clock.clone());
    let base_url = serve(state.clone()).await;
    let scope = Scope { role: Role::Admin, district_code: None, school_id: None, base_ids: vec![] };
    users::create(&db, None, "admin".into(), ADMIN_PASSWORD.into(), scope, chrono::Utc::now()).await.expect("admin");
    let mut app =
        TestApp { base_url, client: reqwest::Client::new(), db, admin: String::new(), clock, state, _db: test_db };
    app.admin = app.login("admin", ADMIN_PASSWORD).await;
    app
}

/// Serves `state` on a new port; returns its base URL.
pub async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(kepu::startup::serve(listener, state, std::future::pending()));
    base_url
}

impl TestApp {
    /// The database URL this app runs on.
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    /// A second kepu server on the same database, with its own connection pool (as a second
    /// instance behind a load balancer would be). Returns its base URL.
    pub async fn second_server(&self) -> String {
        let db = kepu::db::connect(self.database_url(), self.state.config.db_max_connections.unwrap_or(4))
            .await
            .expect("connect");
        serve(AppState::new(db, (*self.state.config).clone(), self.state.clock.clone())).await
    }

    /// Starts a webhook worker, as `kepu serve` does; `own_pool`: on a pool of its own, as a
    /// second instance's worker would be.
    pub async fn webhook_worker(&self, own_pool: bool) -> tokio::task::JoinHandle<()> {
        let state = if own_pool {
            let db = kepu::db::connect(self.database_url(), self.state.config.db_max_connections.unwrap_or(4))
                .await
                .expect("connect");
            AppState::new(db, (*self.state.config).clone(), self.state.clock.clone())
        } else {
            self.state.clone()
        };
        kepu::startup::spawn_webhook_worker(state)
    }

    /// The server's "now".
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        use kepu::state::Clock;
        self.clock.now()
    }

    /// Runs one booking sweep at the server's "now".
    pub async fn sweep(&self) -> kepu::domain::bookings::SweepReport {
        kepu::domain::bookings::sweep(&self.db, self.now()).await.expect("sweep")
    }

    /// An accredited base (created by the admin) and a logged-in operator of it.
    pub async fn accredited_base(&self, overrides: Value) -> (Value, String) {
        let mut body = json!({"status": "accredited"});
        for (k, v) in overrides.as_object().expect("object") {
            body[k] = v.clone();
        }
        let base = self.base(body).await;
        let name = format!("op-{}", &id(&base)[24..]);
        let token = self.user(&name, json!({"role": "operator", "base_ids": [id(&base)]})).await;
        (base, token)
    }

    /// A session at `base` starting `in_hours` from the server's now, lasting 90 minutes.
    pub async fn session(&self, base_id: &str, token: &str, in_hours: i64, overrides: Value) -> Value {
        let starts = self.now() + chrono::Duration::hours(in_hours);
        let mut body = json!({
            "starts_at": starts.to_rfc3339(),
            "ends_at": (starts + chrono::Duration::minutes(90)).to_rfc3339(),
            "capacity": 100,
            "audiences": ["primary_upper", "junior"],
        });
        for (k, v) in overrides.as_object().expect("object") {
            body[k] = v.clone();
        }
        self.post(&format!("/v1/bases/{base_id}/sessions"), &body, Some(token)).await.expect(201).body
    }

    /// A school and a logged-in account of it.
    pub async fn school_account(&self, name: &str) -> (Value, String) {
        let school = self.school(json!({"name": name})).await;
        let username = format!("school-{}", &id(&school)[24..]);
        let token = self.user(&username, json!({"role": "school", "school_id": id(&school)})).await;
        (school, token)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply { status, headers, body }
    }

    fn authed(&self, req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(self.authed(self.client.get(self.url(path)), token)).await
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        self.send(self.authed(self.client.post(self.url(path)).json(body), token)).await
    }

    pub async fn patch(&self, path: &str, body: &Value, token: Option<&str>, if_match: Option<&str>) -> Reply {
        let mut req = self.authed(self.client.patch(self.url(path)).json(body), token);
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        self.send(req).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(self.authed(self.client.delete(self.url(path)), token)).await
    }

    /// Logs in and returns the bearer token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self.post("/v1/auth/token", &json!({"username": username, "password": password}), None).await;
        let r = r.expect(201);
        r.body["access_token"].as_str().expect("token").to_string()
    }

    /// Tries to log in from the client address `ip`, a loopback address such as `127.0.0.7`
    /// (every 127.x.y.z reaches the server on Linux, which sees it as the peer's address).
    pub async fn login_from(&self, ip: &str, username: &str, password: &str) -> Reply {
        let local: std::net::IpAddr = ip.parse().expect("an IP address");
        let client = reqwest::Client::builder().local_address(local).build().expect("client");
        let body = json!({"username": username, "password": password});
        self.send(client.post(self.url("/v1/auth/token")).json(&body)).await
    }

    /// Creates an account through the API and logs it in.
    pub async fn user(&self, username: &str, scope: Value) -> String {
        let mut body = json!({"username": username, "password": PASSWORD});
        for (k, v) in scope.as_object().expect("scope object") {
            body[k] = v.clone();
        }
        self.post("/v1/users", &body, Some(&self.admin)).await.expect(201);
        self.login(username, PASSWORD).await
    }

    /// Creates a base through the API (as admin) and returns its JSON.
    pub async fn base(&self, overrides: Value) -> Value {
        let mut body = base_body();
        for (k, v) in overrides.as_object().expect("object") {
            body[k] = v.clone();
        }
        self.post("/v1/bases", &body, Some(&self.admin)).await.expect(201).body
    }

    pub async fn school(&self, overrides: Value) -> Value {
        let mut body = school_body();
        for (k, v) in overrides.as_object().expect("object") {
            body[k] = v.clone();
        }
        self.post("/v1/schools", &body, Some(&self.admin)).await.expect(201).body
    }

    pub async fn exhibit(&self, base_id: &str, token: &str) -> Value {
        self.post(&format!("/v1/bases/{base_id}/exhibits"), &exhibit_body(), Some(token)).await.expect(201).body
    }
}

/// A valid base in Tianhe.
pub fn base_body() -> Value {
    json!({
        "name_zh": "测试科普基地",
        "name_en": "Test Science Base",
        "host_org": "测试依托单位",
        "category": "venue",
        "subcategory": "science_venue",
        "district_code": "440106",
        "address": "天河路1号",
        "location": {"lat": 23.1382, "lon": 113.3299},
        "exhibition_area_m2": 1200.0,
        "opening_hours": "Tue–Sun 09:00–17:00",
        "contact": {"phone": "020-1234 5678", "email": "visit@test.cn"},
        "themes": ["Astronomy", "robotics"],
        "audiences": ["primary_upper", "junior"],
        "accessibility": "lifts"
    })
}

pub fn school_body() -> Value {
    json!({
        "name": "测试小学",
        "district_code": "440106",
        "address": "天河北路2号",
        "location": {"lat": 23.14, "lon": 113.33},
        "kind": "primary",
        "student_count": 1200
    })
}

pub fn exhibit_body() -> Value {
    json!({
        "name": "傅科摆",
        "description": "The Earth turns.",
        "hall": "A",
        "kind": "interactive",
        "audiences": ["junior"]
    })
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// A booking body for `session` by `school`.
pub fn booking_body(session: &Value, school: &Value, students: i32, teachers: i32) -> Value {
    json!({
        "session_id": session["id"],
        "school_id": school["id"],
        "students": students,
        "teachers": teachers,
        "audience": "junior",
        "contact_name": "李老师",
        "contact_phone": "138 0000 1234",
    })
}
