//! Connecting to the database (SQLite by default, PostgreSQL by URL) and migrating it.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// Opens a pool. SQLite gets WAL, foreign keys, a busy timeout and full fsync, so that a
/// confirmed write survives a crash, and memory-mapped reads.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options(url, max_connections)).await
}

/// Opens the pool searches read through (on a replica, or beside the primary's pool). On
/// PostgreSQL its sessions plan each search statement once, generically: a search's bound
/// times and counts make PostgreSQL estimate its cached generic plan (the same index walk)
/// a little dearer than a plan made for the values, so it would otherwise plan anew on every
/// execution, which costs more than running the statement. The plan test checks that the
/// generic plans walk indexes too.
pub async fn connect_reads(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut opts = options(url, max_connections);
    opts.map_sqlx_postgres_opts(|o| o.options([("plan_cache_mode", "force_generic_plan")]));
    Database::connect(opts).await
}

fn options(url: &str, max_connections: u32) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url);
    opts.max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        // A connection is pinged before use only after it sat idle (when a server, proxy or
        // firewall may have dropped it), not on every checkout: that ping is a round trip.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .synchronous(SqliteSynchronous::Full)
                // Reads of a city-sized file: pages mapped rather than copied in by a system
                // call each, and a page cache that holds a search's working set (SQLite's
                // default is 2 MiB per connection).
                .pragma("mmap_size", "268435456")
                .pragma("cache_size", "-16384")
        });
    opts
}

/// Runs every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Runs several INSERTs, then an optional UPDATE, then a query, in one round trip where the
/// database allows it: on PostgreSQL as one statement (the writes as data-modifying CTEs, the
/// query's rows beside the UPDATE's count; parameterised, not concatenated); on embedded
/// SQLite, where a round trip costs nothing, one after the other. Answers the rows the UPDATE
/// changed and the query's rows. The query reads as of the statement's start, after every
/// lock the transaction already holds, so it must not depend on these writes (PostgreSQL does
/// not show them to it; SQLite does). Every write runs even when the UPDATE changes nothing: a
/// caller that needs all or nothing rolls back on 0.
pub async fn writes_then_read<T: sea_orm::FromQueryResult>(
    conn: &impl sea_orm::ConnectionTrait,
    inserts: Vec<sea_orm::sea_query::InsertStatement>,
    update: Option<sea_orm::sea_query::UpdateStatement>,
    read: sea_orm::sea_query::SelectStatement,
) -> Result<(u64, Vec<T>), DbErr> {
    use sea_orm::sea_query::{PostgresQueryBuilder, QueryBuilder, SqlWriterValues, Write};
    use sea_orm::{DbBackend, Statement};
    let backend = conn.get_database_backend();
    if backend != DbBackend::Postgres {
        for insert in inserts {
            conn.execute(&insert).await?;
        }
        let updated = match update {
            Some(update) => conn.execute(&update).await?.rows_affected(),
            None => 0,
        };
        return Ok((updated, T::find_by_statement(backend.build(&read)).all(conn).await?));
    }
    // Written straight into one buffer (the parameters numbered on across the parts), not
    // through a WITH statement tree, which sea-query copies whole while building.
    let pg = PostgresQueryBuilder;
    let mut sql = SqlWriterValues::new("$", true);
    let mut ctes = 0;
    for insert in &inserts {
        let _ = write!(sql, "{} w{ctes} AS (", if ctes == 0 { "WITH" } else { "," });
        pg.prepare_insert_statement(insert, &mut sql);
        sql.write_char(')').ok();
        ctes += 1;
    }
    let counted = match update {
        Some(mut update) => {
            update.returning(sea_orm::sea_query::Query::returning().expr(sea_orm::sea_query::Expr::val(1)));
            let _ = write!(sql, "{} u AS (", if ctes == 0 { "WITH" } else { "," });
            pg.prepare_update_statement(&update, &mut sql);
            sql.write_char(')').ok();
            "(SELECT COUNT(*) FROM u)"
        }
        None => "0::bigint",
    };
    // One row carries the count even when the query finds nothing: `(SELECT 1) LEFT JOIN
    // (query)`, its rows marked present.
    let _ = write!(
        sql,
        " SELECT {counted} AS _updated, r.* FROM (SELECT 1) AS one LEFT JOIN (SELECT TRUE AS _present, q.* FROM ("
    );
    pg.prepare_select_statement(&read, &mut sql);
    sql.write_str(") AS q) AS r ON TRUE").ok();
    let (sql, values) = sql.into_parts();
    let mut updated = 0;
    let mut out = Vec::new();
    for row in conn.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await? {
        updated = row.try_get::<i64>("", "_updated")?;
        if row.try_get::<Option<bool>>("", "_present")?.is_some() {
            out.push(T::from_query_result(&row, "")?);
        }
    }
    Ok((u64::try_from(updated).unwrap_or(0), out))
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

/// Begins a read-only transaction whose statements all see one snapshot, so that a list's
/// page and what is read beside it (pools, tags) agree. On PostgreSQL `REPEATABLE READ READ
/// ONLY` (which a streaming replica serves too); SQLite's deferred read transaction is a
/// snapshot already.
pub async fn begin_read(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::{AccessMode, DbBackend, IsolationLevel, TransactionTrait};
    match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)).await
        }
        _ => db.begin().await,
    }
}

/// A JSON value a statement answers in `col`: PostgreSQL sends `json`, SQLite text.
pub fn json_column(row: &sea_orm::QueryResult, col: &str) -> Result<serde_json::Value, DbErr> {
    let value: serde_json::Value = row.try_get("", col)?;
    match value.as_str() {
        Some(text) => serde_json::from_str(text).map_err(|e| DbErr::Type(format!("{col}: {e}"))),
        None => Ok(value),
    }
}

/// A hand-written statement and its parameters, numbered `$1`, `$2`, … as both PostgreSQL and
/// SQLite read them, into which sea-query expressions (the domain's conditions) are rendered
/// with the backend's own builder. For the few queries that sea-query cannot say plainly
/// (unions of ordered, limited subqueries; correlated aggregates used as filters).
#[derive(Debug)]
pub struct RawSql {
    backend: sea_orm::DbBackend,
    sql: sea_orm::sea_query::SqlWriterValues,
}

impl RawSql {
    pub fn new(backend: sea_orm::DbBackend) -> Self {
        Self { backend, sql: sea_orm::sea_query::SqlWriterValues::new("$", true) }
    }

    /// Appends SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        use std::fmt::Write;
        let _ = self.sql.write_str(text);
        self
    }

    /// Appends a parameter's placeholder.
    pub fn bind(&mut self, value: impl Into<sea_orm::Value>) -> &mut Self {
        use sea_orm::sea_query::{PostgresQueryBuilder, SqlWriter};
        self.sql.push_param(value.into(), &PostgresQueryBuilder);
        self
    }

    /// Appends an expression or condition, written by the backend's query builder.
    pub fn expr(&mut self, e: impl Into<sea_orm::sea_query::Expr>) -> &mut Self {
        use sea_orm::sea_query::{PostgresQueryBuilder, QueryBuilder, SqliteQueryBuilder};
        let e = e.into();
        match self.backend {
            sea_orm::DbBackend::Postgres => PostgresQueryBuilder.prepare_expr(&e, &mut self.sql),
            _ => SqliteQueryBuilder.prepare_expr(&e, &mut self.sql),
        }
        self
    }

    /// `col IN (ids)` with the ids as one text parameter, however many there are: a PostgreSQL
    /// array literal, or a JSON array of hex strings on SQLite (which stores UUIDs as blobs).
    pub fn in_ids(&mut self, col: &str, ids: &[uuid::Uuid]) -> &mut Self {
        if self.backend == sea_orm::DbBackend::Postgres {
            let list: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
            self.push(col).push(" = ANY(CAST(").bind(format!("{{{}}}", list.join(","))).push(" AS uuid[]))")
        } else {
            let list: Vec<String> = ids.iter().map(|id| id.simple().to_string()).collect();
            let json = serde_json::to_string(&list).unwrap_or_default();
            self.push(col).push(" IN (SELECT unhex(value) FROM json_each(").bind(json).push("))")
        }
    }

    pub fn statement(self) -> sea_orm::Statement {
        let (sql, values) = self.sql.into_parts();
        sea_orm::Statement::from_sql_and_values(self.backend, sql, values)
    }
}
