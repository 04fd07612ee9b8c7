//! Connecting to the database (SQLite by default, PostgreSQL by URL) and migrating it.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// Opens a pool. SQLite gets WAL, foreign keys, a busy timeout and full fsync, so that a
/// confirmed write survives a crash.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url);
    opts.max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .synchronous(SqliteSynchronous::Full)
        });
    Database::connect(opts).await
}

/// Runs every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Runs several INSERTs and then an UPDATE in one round trip where the database allows it:
/// on PostgreSQL as one statement, the UPDATE with the inserts as data-modifying CTEs
/// (parameterised, not concatenated); on embedded SQLite, where a round trip costs nothing,
/// one after the other. Answers the rows the UPDATE changed. Every part runs even when the
/// UPDATE changes nothing: a caller that needs all or nothing rolls back on 0.
pub async fn inserts_then_update(
    conn: &impl sea_orm::ConnectionTrait,
    inserts: Vec<sea_orm::sea_query::InsertStatement>,
    update: sea_orm::sea_query::UpdateStatement,
) -> Result<u64, DbErr> {
    use sea_orm::sea_query::{CommonTableExpression, PostgresQueryBuilder, WithClause};
    use sea_orm::{DbBackend, Statement};
    let backend = conn.get_database_backend();
    if backend != DbBackend::Postgres {
        for insert in inserts {
            conn.execute(&insert).await?;
        }
        return Ok(conn.execute(&update).await?.rows_affected());
    }
    let mut with = WithClause::new();
    for (i, insert) in inserts.into_iter().enumerate() {
        with.cte(CommonTableExpression::new().query(insert).table_name(format!("w{i}")).to_owned());
    }
    let (sql, values) = update.with(with).build(PostgresQueryBuilder);
    Ok(conn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?.rows_affected())
}

/// Begins a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`), so that a read-then-write transaction waits for other writers instead
/// of failing when they commit first; PostgreSQL ignores the option.
pub async fn begin_write(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}
