//! Database migrations for kepu, in sea-orm's convention; run at start-up and by `kepu migrate`.

pub use sea_orm_migration::prelude::*;

mod helpers;
mod m20261129_000001_registry;
mod m20261129_000002_seed_districts;
mod m20261129_000003_bookings;
mod m20261129_000004_standing;
mod m20261129_000005_review_comments;
mod m20261129_000006_public_holidays;
mod m20261129_000007_search_indexes;
mod m20261129_000008_login_addresses;
mod m20261129_000009_tours;
mod m20261129_000010_campaigns;
mod m20261129_000011_changes;
mod m20261130_000012_loans;
mod m20261130_000013_webhooks;
mod m20261130_000014_statistics_rollup;

/// The Guangzhou district reference data (GB/T 2260 codes, names, seat points, city bbox).
pub const DISTRICTS_JSON: &str = include_str!("../data/guangzhou-districts.json");

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_registry::Migration),
            Box::new(m20261129_000002_seed_districts::Migration),
            Box::new(m20261129_000003_bookings::Migration),
            Box::new(m20261129_000004_standing::Migration),
            Box::new(m20261129_000005_review_comments::Migration),
            Box::new(m20261129_000006_public_holidays::Migration),
            Box::new(m20261129_000007_search_indexes::Migration),
            Box::new(m20261129_000008_login_addresses::Migration),
            Box::new(m20261129_000009_tours::Migration),
            Box::new(m20261129_000010_campaigns::Migration),
            Box::new(m20261129_000011_changes::Migration),
            Box::new(m20261130_000012_loans::Migration),
            Box::new(m20261130_000013_webhooks::Migration),
            Box::new(m20261130_000014_statistics_rollup::Migration),
        ]
    }
}
