//! The `kepu` binary: parse the command line, set up logs, run the subcommand.

use std::io::BufRead;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kepu::config::{Config, DEFAULT_BIND, DEFAULT_DATABASE_URL};
use kepu::domain::enums::Role;
use kepu::domain::users::{self, Scope};
use kepu::{db, demo, startup, telemetry};
use uuid::Uuid;

/// mimalloc: a service allocates and frees many small buffers per request, which glibc's
/// allocator serves noticeably slower.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "kepu", version, about = "Registry and booking service for science-popularisation bases")]
struct Cli {
    /// Database URL: sqlite://FILE?mode=rwc (default) or postgres://…
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    database_url: String,
    /// A read-only replica (PostgreSQL streaming replica) for searches and public lists;
    /// writes, and the reads that decide them, always go to DATABASE_URL.
    #[arg(long, env = "DATABASE_READ_URL", global = true)]
    database_read_url: Option<String>,
    /// Connections in the database pool (default: 8 for SQLite; for PostgreSQL 4 per CPU core,
    /// 4 to 32).
    #[arg(long, env = "KEPU_DB_MAX_CONNECTIONS", global = true)]
    db_max_connections: Option<u32>,
    /// Lifetime of a bearer token, in hours.
    #[arg(long, env = "KEPU_TOKEN_TTL_HOURS", default_value_t = 12, global = true)]
    token_ttl_hours: u64,
    /// Seconds a verified bearer token is trusted without looking it up again (0: always look
    /// it up). Revocations made through another kepu process take effect within this time.
    #[arg(long, env = "KEPU_AUTH_CACHE_SECONDS", default_value_t = 5, global = true)]
    auth_cache_seconds: u64,
    /// Failed log-ins from one client address (an IPv6 one by its /64), for any usernames,
    /// within 15 minutes before that address is answered 429 (at least 1).
    #[arg(long, env = "KEPU_LOGIN_FAILURES_PER_ADDRESS", default_value_t = 50, global = true)]
    login_failures_per_address: u64,
    /// Failed log-ins for one username, from all addresses, within an hour before only the
    /// addresses the account logged in from in the last 30 days may still try; others are
    /// answered 429 (at least 1). Besides, after 3 failures on a username from one address
    /// within a day, that address waits 1 s, 2 s, 4 s, … up to 15 min after each further one
    /// (a log-in from it clears them).
    #[arg(long, env = "KEPU_LOGIN_FAILURES_PER_ACCOUNT_HOUR", default_value_t = 100, global = true)]
    login_failures_per_account_hour: u64,
    /// Where people reach this service, e.g. https://kepu.example.gov.cn, for links in what it
    /// sends out (calendar feeds); unset: links are paths.
    #[arg(long, env = "KEPU_PUBLIC_URL", global = true)]
    public_url: Option<String>,
    /// Origins whose web pages may call the API, separated by commas, e.g.
    /// https://console.example.gov.cn (CORS); unset: none.
    #[arg(long, env = "KEPU_CORS_ORIGINS", global = true, value_delimiter = ',', value_parser = kepu::security::parse_origin)]
    cors_origins: Vec<axum::http::HeaderValue>,
    /// Reverse proxies (addresses or networks, separated by commas) whose X-Forwarded-For names
    /// the client; unset: the TCP peer is the client.
    #[arg(long, env = "KEPU_TRUSTED_PROXIES", global = true, value_delimiter = ',', value_parser = kepu::security::parse_proxy)]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Requests a minute for callers without a valid token, per address, with bursts of ten
    /// seconds' worth (0: no limit).
    #[arg(long, env = "KEPU_RATE_ANONYMOUS_PER_MINUTE", default_value_t = 600, global = true)]
    rate_anonymous_per_minute: u32,
    /// Requests a minute per signed-in account, with bursts of ten seconds' worth (0: no limit).
    #[arg(long, env = "KEPU_RATE_ACCOUNT_PER_MINUTE", default_value_t = 1200, global = true)]
    rate_account_per_minute: u32,
    /// Days before a visit that the sweep reminds its school, e.g. `3,1` (the base's operators
    /// are reminded the day before, always); `0` alone: no school reminders.
    #[arg(long, env = "KEPU_REMINDER_DAYS", default_value = "3,1", global = true, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(0..=60))]
    reminder_days: Vec<u32>,
    /// Networks (separated by commas) that webhook URLs may reach although they are not public,
    /// e.g. `10.1.0.0/16`; unset: public addresses only (no loopback, private, link-local, …).
    #[arg(long, env = "KEPU_WEBHOOK_ALLOW", global = true, value_delimiter = ',', value_parser = kepu::security::parse_proxy)]
    webhook_allow: Vec<ipnet::IpNet>,
    /// Milliseconds between the webhook worker's looks for new notices and due deliveries.
    #[arg(long, env = "KEPU_WEBHOOK_POLL_MS", default_value_t = 1000, global = true, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    webhook_poll_ms: u64,
    /// Seconds one webhook attempt may take.
    #[arg(long, env = "KEPU_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 5, global = true, value_parser = clap::value_parser!(u64).range(1..=60))]
    webhook_timeout_seconds: u64,
    /// Seconds between a webhook delivery's attempts, in order (each ±20 % jitter), separated by
    /// commas; after the last, the delivery is given up.
    #[arg(
        long,
        env = "KEPU_WEBHOOK_RETRY_SECONDS",
        default_value = "5,30,120,600,1800,3600,7200,14400,28800,28800",
        global = true,
        value_delimiter = ','
    )]
    webhook_retry_seconds: Vec<u64>,
    /// A webhook subscription is disabled after this many failed attempts in a row …
    #[arg(long, env = "KEPU_WEBHOOK_DISABLE_AFTER_FAILURES", default_value_t = 10, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    webhook_disable_after_failures: u32,
    /// … the first of them at least this many hours ago.
    #[arg(long, env = "KEPU_WEBHOOK_DISABLE_AFTER_HOURS", default_value_t = 12, global = true)]
    webhook_disable_after_hours: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (migrates first).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "KEPU_BIND", default_value = DEFAULT_BIND)]
        bind: String,
        /// Load the demo city (idempotent) before serving.
        #[arg(long)]
        demo: bool,
        /// Seconds between sweeps (no-shows, expired waiting lists, reminders, the statistics
        /// rollup, …); 0 disables.
        #[arg(long, env = "KEPU_SWEEP_SECONDS", default_value_t = 30)]
        sweep_seconds: u64,
        /// Do not deliver webhooks from this process (another instance does).
        #[arg(long, env = "KEPU_NO_WEBHOOK_WORKER")]
        no_webhook_worker: bool,
    },
    /// Run pending migrations and exit.
    Migrate,
    /// Load the demo city (idempotent).
    SeedDemo,
    /// Print the OpenAPI document.
    Openapi,
    /// Benchmark: booking throughput over HTTP against the raw database, and search latency.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// A campaign's draw.
    Draw {
        #[command(subcommand)]
        what: DrawCommand,
    },
    /// Create an account; the password is read from KEPU_PASSWORD or the first line of stdin.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        district_code: Option<String>,
        #[arg(long)]
        school_id: Option<Uuid>,
        /// A base the operator runs (repeatable).
        #[arg(long = "base-id")]
        base_ids: Vec<Uuid>,
    },
}

#[derive(Subcommand)]
enum DrawCommand {
    /// Recompute a published draw (the JSON of `GET /v1/campaigns/{id}/draw`, from a file or
    /// `-` for stdin) and say whether seed, weights, order and places match; exits 1 if not.
    Verify {
        #[arg(long)]
        file: std::path::PathBuf,
        /// The campaign's `seed_sha256` as it was published before sign-up opened: the draw's
        /// commitment must be this one.
        #[arg(long)]
        commitment: Option<String>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// A simulated sign-up season drawn at 10× oversubscription: fairness (share with a place,
    /// districts' shares, Gini per school), draw time, and the verification of the published
    /// draw; prints one JSON object. No database.
    Lottery {
        #[arg(long, default_value_t = 20_000)]
        applicants: usize,
        #[arg(long, default_value_t = 40)]
        departures: usize,
        /// Places per departure.
        #[arg(long, default_value_t = 50)]
        places: i32,
        /// Departures one applicant may win.
        #[arg(long, default_value_t = 2)]
        max_wins: u32,
    },
    /// Bookings on one hot session and spread over many, against the same conditional
    /// updates issued directly on the database; prints one JSON object per scenario.
    Booking {
        /// A PostgreSQL server URL (a fresh database is created and dropped on it); default:
        /// a temporary SQLite file.
        #[arg(long)]
        database: Option<String>,
        /// Concurrent clients (the database connections are kepu's pool: `--db-max-connections`).
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Seed a city of this many bases (100 sessions each) first, as `bench search` does, so
        /// that bookings are measured beside the search indexes of a real city's size.
        #[arg(long, default_value_t = 0)]
        city_bases: u64,
    },
    /// Search shapes on a city-sized database seeded by bulk SQL: p50/p99 at one client,
    /// requests/s at many, rows read per request (PostgreSQL), at a tenth of the city and at
    /// the whole; prints one JSON object per shape and size.
    Search {
        /// A PostgreSQL server URL (a fresh database is created and dropped on it); default:
        /// a temporary SQLite file.
        #[arg(long)]
        database: Option<String>,
        /// Bases of the city.
        #[arg(long, default_value_t = 10_000)]
        bases: u64,
        /// Sessions per base, over the next 90 days.
        #[arg(long, default_value_t = 100)]
        sessions_per_base: u64,
        /// Requests timed one after another, per shape.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Concurrent clients of the throughput run.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Seconds of the throughput run, per shape.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Measure only the whole city (not a tenth of it first).
        #[arg(long)]
        no_growth: bool,
        /// Keep the seeded database and print its URL (to look at query plans).
        #[arg(long)]
        keep_database: bool,
    },
    /// Statistics on the search benchmark's city with a season of visits behind it (one
    /// booking per session): p50/p99 of the city's, the districts' and one district's figures
    /// by year, quarter and month; prints one JSON object per shape.
    Statistics {
        /// A PostgreSQL server URL (a fresh database is created and dropped on it); default:
        /// a temporary SQLite file.
        #[arg(long)]
        database: Option<String>,
        #[arg(long, default_value_t = 10_000)]
        bases: u64,
        #[arg(long, default_value_t = 100)]
        sessions_per_base: u64,
        /// Requests timed one after another, per shape.
        #[arg(long, default_value_t = 20)]
        requests: usize,
        /// Keep the seeded database and print its URL (to look at query plans).
        #[arg(long)]
        keep_database: bool,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
}

fn admin_password(demo: bool) -> Option<String> {
    match std::env::var("KEPU_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if demo => Some(demo::DEMO_ADMIN_PASSWORD.to_string()),
        _ => None,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_tracing();
    kepu::security::install_tls_provider();
    let mut config = Config::new(cli.database_url);
    config.database_read_url = cli.database_read_url.filter(|u| !u.is_empty());
    config.db_max_connections = cli.db_max_connections;
    config.token_ttl = std::time::Duration::from_secs(cli.token_ttl_hours.max(1) * 3600);
    config.auth_cache = std::time::Duration::from_secs(cli.auth_cache_seconds);
    config.cors_origins = cli.cors_origins;
    config.trusted_proxies = cli.trusted_proxies;
    config.rate_anonymous = kepu::security::RateLimit { per_minute: cli.rate_anonymous_per_minute };
    config.rate_account = kepu::security::RateLimit { per_minute: cli.rate_account_per_minute };
    config.reminder_days = cli.reminder_days.into_iter().filter(|d| *d > 0).collect();
    config.login_max_per_client = cli.login_failures_per_address.max(1);
    config.login_account_failures_per_hour = cli.login_failures_per_account_hour.max(1);
    config.public_url = cli.public_url.map(|u| u.trim_end_matches('/').to_string()).filter(|u| !u.is_empty());
    config.webhooks = kepu::config::WebhookConfig {
        allow: cli.webhook_allow,
        poll: std::time::Duration::from_millis(cli.webhook_poll_ms),
        timeout: std::time::Duration::from_secs(cli.webhook_timeout_seconds),
        retry_schedule: cli.webhook_retry_seconds.into_iter().map(std::time::Duration::from_secs).collect(),
        disable_after_failures: cli.webhook_disable_after_failures,
        disable_after: std::time::Duration::from_secs(cli.webhook_disable_after_hours * 3600),
    };
    match cli.command {
        Command::Bench { what: BenchCommand::Booking { database, clients, seconds, city_bases } } => {
            kepu::bench::booking(kepu::bench::BenchArgs {
                database,
                clients: clients.max(1),
                seconds: seconds.max(1),
                connections: cli.db_max_connections,
                city_bases,
            })
            .await?;
        }
        Command::Bench {
            what:
                BenchCommand::Search {
                    database,
                    bases,
                    sessions_per_base,
                    requests,
                    clients,
                    seconds,
                    no_growth,
                    keep_database,
                },
        } => {
            kepu::bench::search(kepu::bench::SearchArgs {
                database,
                bases: bases.max(1),
                per_base: sessions_per_base.max(1),
                requests: requests.max(1),
                clients: clients.max(1),
                seconds: seconds.max(1),
                growth: !no_growth,
                connections: cli.db_max_connections,
                keep_database,
            })
            .await?;
        }
        Command::Bench {
            what: BenchCommand::Statistics { database, bases, sessions_per_base, requests, keep_database },
        } => {
            kepu::bench::statistics(kepu::bench::StatisticsArgs {
                database,
                bases: bases.max(1),
                per_base: sessions_per_base.max(1),
                requests: requests.max(1),
                keep_database,
            })
            .await?;
        }
        Command::Bench { what: BenchCommand::Lottery { applicants, departures, places, max_wins } } => {
            kepu::bench::lottery(kepu::bench::LotteryArgs {
                applicants: applicants.max(1),
                departures: departures.max(1),
                places: places.max(1),
                max_wins: max_wins.max(1),
            })?;
        }
        Command::Draw { what: DrawCommand::Verify { file, commitment } } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let published: kepu::domain::lottery::Published =
                serde_json::from_str(&text).context("reading a published draw")?;
            let mut verification = kepu::domain::lottery::verify(&published);
            if let Some(c) = commitment
                && c.trim() != published.seed_sha256
            {
                verification.problems.push("the draw's commitment is not the one given with --commitment".into());
                verification.matches = false;
            }
            println!("{}", serde_json::to_string_pretty(&verification)?);
            if !verification.matches {
                std::process::exit(1);
            }
        }
        Command::Openapi => {
            print!("{}", startup::openapi_json());
        }
        Command::Migrate => {
            let conn = db::connect(&config.database_url, 1).await.context("connecting to the database")?;
            db::migrate(&conn).await.context("migrating")?;
            tracing::info!("migrations applied");
        }
        Command::SeedDemo => {
            let state = startup::build_state(config).await?;
            let password = admin_password(true).unwrap_or_default();
            demo::seed(&state.db, &password).await?;
        }
        Command::CreateUser { username, role, district_code, school_id, base_ids } => {
            let password = match std::env::var("KEPU_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    eprintln!("password for {username}:");
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let state = startup::build_state(config).await?;
            let scope = Scope { role, district_code, school_id, base_ids };
            let created =
                users::create(&state.db, None, username, password, scope, chrono::Utc::now()).await.map_err(|e| {
                    let p = e.to_problem();
                    let fields: Vec<String> = p
                        .errors
                        .unwrap_or_default()
                        .into_iter()
                        .map(|f| format!("{}: {}", f.field, f.message))
                        .collect();
                    anyhow::anyhow!("{}", if fields.is_empty() { p.detail } else { fields.join("; ") })
                })?;
            println!("{}", created.user.id);
        }
        Command::Serve { bind, demo, sweep_seconds, no_webhook_worker } => {
            let state = startup::build_state(config).await?;
            if demo {
                demo::seed(&state.db, &admin_password(true).unwrap_or_default()).await?;
            } else if let Some(p) = admin_password(false) {
                demo::ensure_admin(&state.db, &p).await?;
            }
            if sweep_seconds > 0 {
                startup::spawn_sweeper(state.clone(), std::time::Duration::from_secs(sweep_seconds));
            }
            if !no_webhook_worker {
                startup::spawn_webhook_worker(state.clone());
            }
            let listener = tokio::net::TcpListener::bind(&bind).await.with_context(|| format!("binding {bind}"))?;
            tracing::info!(addr = %listener.local_addr()?, docs = "/docs", "kepu listening");
            startup::serve(listener, state, startup::shutdown_signal()).await?;
        }
    }
    Ok(())
}
