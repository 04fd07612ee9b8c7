//! sea-orm entities of kepu: one module per table. Storage types, not the API.

pub mod api_token;
pub mod audit_log;
pub mod base;
pub mod base_audience;
pub mod base_theme;
pub mod booking;
pub mod capacity_pool;
pub mod district;
pub mod exhibit;
pub mod idempotency_key;
pub mod login_failure;
pub mod notification;
pub mod operator_base;
pub mod school;
pub mod session;
pub mod session_pool;
pub mod user;
