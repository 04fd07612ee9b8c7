//! Integration tests: each drives the real HTTP API of a freshly migrated kepu, on SQLite,
//! or on PostgreSQL when `TEST_DATABASE_URL` is set.

mod access;
mod accreditation;
mod audit;
mod auth;
mod bases;
mod bookings;
mod campaigns;
mod changes;
mod console;
mod demo;
mod disclosure;
mod districts;
mod evaluation;
mod exhibits;
mod helpers;
mod limits;
mod loans;
mod migrations;
mod openapi;
mod operations;
mod pools;
mod privacy;
mod races;
mod schools;
mod search;
mod sessions;
mod signage;
mod statistics;
mod tours;
mod users;
mod webhooks;
