//! kepu: the registry and booking service for a city's science-popularisation bases.

/// `kepu bench`: booking throughput against the raw database, and search latency.
pub mod bench;
/// Settings from the environment and flags.
pub mod config;
/// The web console at `/`: pages over the API, embedded in the binary.
pub mod console;
/// Connecting to and migrating the database.
pub mod db;
/// The demo city: districts' bases, exhibits, schools and an admin.
pub mod demo;
/// The rules, independent of HTTP.
pub mod domain;
/// The one error type, answered as RFC 9457 problems.
pub mod error;
/// The HTTP API: one module per resource.
pub mod http;
/// The OpenAPI document.
pub mod openapi;
/// Security headers and CORS.
pub mod security;
/// Router, middleware, serving and graceful shutdown.
pub mod startup;
/// Shared state of the handlers.
pub mod state;
/// Logs, request ids and metrics.
pub mod telemetry;
