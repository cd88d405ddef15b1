//! A database migrated by a newer secure-agent (a replica of an older release started against
//! it) is refused at open with `dbconn`'s message, on both backends, before anything runs.

use sqlx::Connection;

use super::{PostgresStore, SqliteStore};
use crate::domain::TodoError;

const PG_ENV: &str = "TODO0_TEST_DATABASE_URL";

/// Records a migration this binary does not have, as a newer todo0 would have.
const FUTURE: &str = "INSERT INTO _sqlx_migrations \
                      (version, description, success, checksum, execution_time) \
                      VALUES (99990101000000, 'from a newer secure-agent', true, x'00', 0)";

fn assert_refused(refused: &TodoError) {
    let message = refused.to_string();
    assert!(matches!(refused, TodoError::Invalid(_)), "{refused:?}");
    assert!(
        message.contains("migrated by a newer secure-agent"),
        "{message}"
    );
    assert!(message.contains("99990101000000"), "{message}");
    assert!(message.contains("Fix:"), "{message}");
}

#[tokio::test]
async fn a_sqlite_file_migrated_by_a_newer_release_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("todo0.db");
    drop(SqliteStore::open(&path).await?);
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
    sqlx::raw_sql(FUTURE).execute(&mut conn).await?;
    conn.close().await?;
    let Err(refused) = SqliteStore::open(&path).await else {
        panic!("a newer schema must be refused");
    };
    assert_refused(&refused);
    Ok(())
}

#[tokio::test]
async fn a_postgres_schema_migrated_by_a_newer_release_is_refused() -> anyhow::Result<()> {
    let url = dbconn::testing::database_url(PG_ENV);
    let guard = dbconn::testing::TestSchema::new(PG_ENV);
    drop(
        PostgresStore::connect_in_schema(&url, guard.name())
            .await
            .map_err(|e| anyhow::anyhow!(dbconn::testing::required(&url, PG_ENV, e)))?,
    );
    let mut conn = sqlx::PgConnection::connect(&url).await?;
    // The schema name is generated (`t_` + hex), never input: it may be spliced.
    let sql = FUTURE
        .replace(
            "_sqlx_migrations",
            &format!("{}._sqlx_migrations", guard.name()),
        )
        .replace("x'00'", "'\\x00'::bytea");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let Err(refused) = PostgresStore::connect_in_schema(&url, guard.name()).await else {
        panic!("a newer schema must be refused");
    };
    assert_refused(&refused);
    Ok(())
}
