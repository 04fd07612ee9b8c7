//! Migrations run up, down and up again on each backend.

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};

use crate::helpers::fresh_database;

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    let test_db = fresh_database().await;
    let db = kepu::db::connect(&test_db.url, 2).await.unwrap();
    Migrator::up(&db, None).await.expect("up");
    let count = |db: &sea_orm::DatabaseConnection| {
        let db = db.clone();
        async move {
            let backend = db.get_database_backend();
            let row = db
                .query_one_raw(Statement::from_string(backend, "SELECT COUNT(*) AS n FROM districts"))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "n").unwrap()
        }
    };
    assert_eq!(count(&db).await, 11);
    Migrator::down(&db, None).await.expect("down");
    assert!(Migrator::get_applied_migrations(&db).await.unwrap().is_empty());
    Migrator::up(&db, None).await.expect("up again");
    assert_eq!(count(&db).await, 11);
    assert!(Migrator::get_pending_migrations(&db).await.unwrap().is_empty());
}
