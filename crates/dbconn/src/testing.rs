//! Test support (feature `test-support`, for dev-dependencies): a fresh schema `t_<uuid>` or a
//! fresh database per test, dropped by a guard when the test ends, passed or failed.
//!
//! PostgreSQL is required, never skipped: each suite names its `*_TEST_DATABASE_URL` override
//! (default [`DEFAULT_URL`]), and an unreachable server fails the test with [`required`]'s
//! message, which says what to start.
//!
//! [`PrivatePostgres`] and [`PrivateRedis`] are servers of a test's own, for fault tests that stop
//! and restart them.
//!
//! This lives here rather than in testkit because testkit depends on idp0 and todo0, whose own
//! unit tests need it.

mod servers;

use std::fmt::Display;

pub use servers::{PrivatePostgres, PrivateRedis};

use sqlx::{Connection, PgConnection};

/// The test server when the suite's variable is unset.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test database URL: `$env_var`, or [`DEFAULT_URL`].
pub fn database_url(env_var: &str) -> String {
    std::env::var(env_var).unwrap_or_else(|_| DEFAULT_URL.into())
}

/// The failure for a server that cannot be used: what is required and how to start it.
pub fn required(url: &str, env_var: &str, error: impl Display) -> String {
    format!(
        "PostgreSQL is required at {} for these tests, start it with `pg_ctlcluster <version> \
         main start` (or point {env_var} at one): {error}",
        crate::redact_url(url)
    )
}

/// A fresh, lower-case name `t_<32 hex>`: a plain identifier, unique per call.
pub fn fresh_name() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

/// `url` with `options=-c search_path=SCHEMA` added (what a person could pass).
pub fn with_search_path(url: &str, schema: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed
                .query_pairs_mut()
                .append_pair("options", &format!("-c search_path={schema}"));
            parsed.into()
        }
        Err(_) => url.to_owned(),
    }
}

/// Runs `work` to completion on a short-lived runtime of its own thread (`Drop` cannot await,
/// and may run inside another runtime).
fn block_on_thread<F>(work: F) -> Result<(), String>
where
    F: std::future::Future<Output = Result<(), crate::Error>> + Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(work)
            .map_err(|e| e.to_string())
    })
    .join()
    .unwrap_or_else(|_| Err("the clean-up thread panicked".into()))
}

/// A fresh schema name in the test database; dropping the guard drops the schema (if it was
/// created). The schema itself is created by the service's `connect_in_schema`.
#[derive(Debug)]
pub struct TestSchema {
    url: String,
    env_var: String,
    name: String,
}

impl TestSchema {
    /// A fresh schema name on the database `$env_var` (or [`DEFAULT_URL`]) names.
    pub fn new(env_var: &str) -> Self {
        Self {
            url: database_url(env_var),
            env_var: env_var.to_owned(),
            name: fresh_name(),
        }
    }

    /// The test database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database URL confined to this schema by its own `options`.
    pub fn url_with_search_path(&self) -> String {
        with_search_path(&self.url, &self.name)
    }

    /// The failure for a server that cannot be used (see [`required`]).
    pub fn required(&self, error: impl Display) -> String {
        required(&self.url, &self.env_var, error)
    }

    /// Creates the schema now (for tests that name it through the URL).
    pub async fn create(&self) -> Result<(), String> {
        let mut conn = PgConnection::connect(&self.url)
            .await
            .map_err(|e| self.required(e))?;
        // A generated name (`t_` + hex), never input: it may be spliced.
        let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", self.name);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        Ok(())
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        if let Err(e) = block_on_thread(async move { crate::drop_schema(&url, &name).await }) {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}

/// A fresh database `t_<uuid>` on the test server, created now; dropping the guard drops it
/// (closing its remaining sessions). For a whole stack whose services each use their default
/// schema.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a fresh database on the server `$env_var` (or [`DEFAULT_URL`]) names.
    pub async fn create(env_var: &str) -> Result<Self, String> {
        let admin_url = database_url(env_var);
        let name = fresh_name();
        let mut parsed =
            url::Url::parse(&admin_url).map_err(|e| required(&admin_url, env_var, e))?;
        parsed.set_path(&format!("/{name}"));
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .map_err(|e| required(&admin_url, env_var, e))?;
        // A generated name (`t_` + hex), never input: it may be spliced.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("creating the test database {name}: {e}"))?;
        let _ = conn.close().await;
        Ok(Self {
            admin_url,
            name,
            url: parsed.into(),
        })
    }

    /// The URL of the fresh database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The fresh database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = block_on_thread(async move {
            let mut conn = PgConnection::connect(&url).await?;
            // A generated name (`t_` + hex), never input: it may be spliced.
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            Ok(())
        });
        if let Err(e) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}
