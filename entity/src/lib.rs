//! sea-orm entities of kepu: one module per table. Storage types, not the API.

pub mod api_token;
pub mod audit_log;
pub mod base;
pub mod base_audience;
pub mod base_theme;
pub mod district;
pub mod exhibit;
pub mod login_failure;
pub mod operator_base;
pub mod school;
pub mod user;
