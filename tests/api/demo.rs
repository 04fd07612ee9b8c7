//! The demo city loads once, covers the whole city, and a second load changes nothing.

use sea_orm::{EntityTrait, PaginatorTrait};
use std::collections::HashSet;

use crate::helpers::fresh_database;

#[tokio::test]
async fn the_demo_city_loads_idempotently_over_every_district_and_category() {
    let test_db = fresh_database().await;
    let db = kepu::db::connect(&test_db.url, 2).await.unwrap();
    kepu::db::migrate(&db).await.unwrap();
    kepu::demo::seed(&db, "a demo password").await.unwrap();
    let bases = entity::base::Entity::find().all(&db).await.unwrap();
    let schools = entity::school::Entity::find().count(&db).await.unwrap();
    let exhibits = entity::exhibit::Entity::find().count(&db).await.unwrap();
    let users = entity::user::Entity::find().count(&db).await.unwrap();
    assert!(bases.len() >= 30);
    assert!(schools >= 50);
    assert!(exhibits >= bases.len() as u64);
    assert_eq!(bases.iter().map(|b| &b.district_code).collect::<HashSet<_>>().len(), 11);
    assert_eq!(bases.iter().map(|b| &b.category).collect::<HashSet<_>>().len(), 2);
    assert_eq!(bases.iter().map(|b| &b.subcategory).collect::<HashSet<_>>().len(), 8);
    let tours = entity::tour::Entity::find().count(&db).await.unwrap();
    assert!(tours >= 2, "the demo city has science tours to try: {tours}");
    assert_eq!(entity::campaign::Entity::find().count(&db).await.unwrap(), 1, "and a Science Week campaign");

    kepu::demo::seed(&db, "a demo password").await.unwrap();
    assert_eq!(entity::base::Entity::find().count(&db).await.unwrap(), bases.len() as u64);
    assert_eq!(entity::school::Entity::find().count(&db).await.unwrap(), schools);
    assert_eq!(entity::user::Entity::find().count(&db).await.unwrap(), users);
    assert_eq!(entity::tour::Entity::find().count(&db).await.unwrap(), tours);
}
