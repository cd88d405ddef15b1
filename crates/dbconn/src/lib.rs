//! PostgreSQL plumbing shared by idp0, todo0 and agent0, so each service's backend holds only its
//! queries: URL redaction (every error and banner), the plain-identifier check for schema names,
//! connect options with the service's own schema unless the URL chooses a `search_path`, schema
//! creation, one set of pool settings, and the "is the database unavailable" classification.
//!
//! # Schemas
//! One URL may serve the whole stack (`secure-agent up --database …`): each service keeps its
//! tables and its migration history (`_sqlx_migrations`, numbered from 1 by every service) in its
//! own schema (`idp0`, `todo0`, `agent0`), created at first start if missing (that needs the
//! database's CREATE privilege once). A URL that sets `search_path`
//! (`?options=-c%20search_path%3DNAME`) is used as it is.
//!
//! # Pool
//! At most [`MAX_CONNECTIONS`] connections per service instance; a caller waits at most
//! [`ACQUIRE_TIMEOUT`] for one (connecting included), so an outage fails requests within seconds
//! instead of hanging them. Each connection is checked before it is handed out, so one the server
//! dropped (restart, `pg_terminate_backend`) is replaced; idle connections close after
//! [`IDLE_TIMEOUT`], every connection after [`MAX_LIFETIME`].
//!
//! # Migrations
//! Every store (PostgreSQL and SQLite alike) applies its migrations through [`migrate`], which
//! refuses a database that records a migration this binary does not know — a replica of an older
//! release started against a database a newer one migrated — with one message that says so and
//! what to do, before anything runs against it.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

pub mod sqlite_readers;
pub mod sqlite_writer;
pub mod temporary;
#[cfg(feature = "test-support")]
pub mod testing;

pub use temporary::TemporaryDatabase;

/// Most connections one service instance opens.
pub const MAX_CONNECTIONS: u32 = 10;
/// How long a caller waits for a pooled connection (connecting included) before giving up; also
/// how long the first connection at start may take.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle pooled connection is closed after this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Every pooled connection is closed (and replaced when needed) after this long.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Why a database could not be used; never contains the URL's password.
#[derive(Debug)]
pub enum Error {
    /// The URL does not parse as a PostgreSQL URL (the URL is not repeated: it may hold a
    /// password).
    InvalidUrl,
    /// A schema name that is not a plain identifier.
    InvalidSchema,
    /// The server did not answer within [`ACQUIRE_TIMEOUT`].
    NoAnswer,
    /// The driver's error.
    Sqlx(sqlx::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl => f.write_str(
                "the PostgreSQL database URL is invalid: expected \
                 postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=require]",
            ),
            Self::InvalidSchema => {
                f.write_str("a schema name must be a lower-case identifier of at most 63 bytes")
            }
            Self::NoAnswer => write!(
                f,
                "the server did not answer within {} s",
                ACQUIRE_TIMEOUT.as_secs()
            ),
            Self::Sqlx(e) => f.write_str(&cause(e)),
        }
    }
}

impl std::error::Error for Error {}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Sqlx(e)
    }
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` as it may be shown or logged: the password (in the authority or a `password=` query
/// parameter) replaced by `***`. A URL with nothing to hide is returned as it is, so is a plain
/// file path (it has no password); a URL that does not parse is not repeated at all.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return if url.contains("://") {
            "(the database URL, which does not parse)".into()
        } else {
            url.to_owned()
        };
    };
    let in_query = parsed.query_pairs().any(|(k, _)| k == "password");
    if parsed.password().is_none() && !in_query {
        return url.to_owned();
    }
    if parsed.password().is_some() {
        // Only fails for URLs that cannot have credentials, which this one has.
        let _ = parsed.set_password(Some("***"));
    }
    if in_query {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.into()
}

/// `[a-z_][a-z0-9_]*`, 1–63 bytes: needs no quoting and is never folded or truncated, so it may
/// be spliced into SQL.
pub fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// Parses a connection URL; the error never repeats the URL (it may hold a password).
pub fn parse(url: &str) -> Result<PgConnectOptions, Error> {
    PgConnectOptions::from_str(url).map_err(|_| Error::InvalidUrl)
}

/// Whether the options already choose a `search_path` (the URL's `options=-c search_path=…`).
pub fn chooses_search_path(options: &PgConnectOptions) -> bool {
    options
        .get_options()
        .is_some_and(|o| o.contains("search_path"))
}

/// Where a service's sessions go: the connect options, and the schema to create if missing
/// (`None` when the URL chose its own `search_path`).
#[derive(Debug, Clone)]
pub struct Target {
    /// Options for every pooled session.
    pub options: PgConnectOptions,
    /// The schema the sessions are confined to, to be created before migrating.
    pub schema: Option<String>,
}

/// The service's target for `url`: sessions named `application_name` in `pg_stat_activity`
/// unless the URL names them, confined to `default_schema` unless the URL sets a `search_path`.
pub fn target(url: &str, default_schema: &str, application_name: &str) -> Result<Target, Error> {
    if !is_plain_identifier(default_schema) {
        return Err(Error::InvalidSchema);
    }
    let options = parse(url)?;
    let options = match options.get_application_name() {
        Some(_) => options,
        None => options.application_name(application_name),
    };
    Ok(if chooses_search_path(&options) {
        Target {
            options,
            schema: None,
        }
    } else {
        Target {
            options: options.options([("search_path", default_schema)]),
            schema: Some(default_schema.to_owned()),
        }
    })
}

/// A target confined to `schema` whatever the URL says, its sessions named
/// `<application_name>-<schema>`: isolated stores in one database (tests).
pub fn target_in_schema(url: &str, schema: &str, application_name: &str) -> Result<Target, Error> {
    if !is_plain_identifier(schema) {
        return Err(Error::InvalidSchema);
    }
    let options = parse(url)?
        .application_name(&format!("{application_name}-{schema}"))
        .options([("search_path", schema)]);
    Ok(Target {
        options,
        schema: Some(schema.to_owned()),
    })
}

/// The pool settings every service uses (see the crate documentation).
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(IDLE_TIMEOUT)
        .max_lifetime(MAX_LIFETIME)
        .test_before_acquire(true)
}

/// One direct connection, within [`ACQUIRE_TIMEOUT`]. Its error says why (refused, unknown host,
/// authentication, TLS), where a pool retries a refused connection until its deadline and then
/// reports only "timed out".
pub async fn connect_once(options: &PgConnectOptions) -> Result<PgConnection, Error> {
    match tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(Error::Sqlx(e)),
        Err(_) => Err(Error::NoAnswer),
    }
}

/// Whether the server answers and accepts these options (one connection, closed at once): a
/// start-up check before anything is served.
pub async fn check(options: &PgConnectOptions) -> Result<(), Error> {
    let conn = connect_once(options).await?;
    let _ = conn.close().await;
    Ok(())
}

/// A pool with [`pool_options`], after one direct connection proved the server answers
/// ([`connect_once`]), so a database that cannot be used fails at start with its cause.
pub async fn connect(options: &PgConnectOptions) -> Result<PgPool, Error> {
    check(options).await?;
    Ok(pool_options().connect_with(options.clone()).await?)
}

/// Whether `schema` exists in the database.
pub async fn schema_exists<'c, E>(executor: E, schema: &str) -> Result<bool, sqlx::Error>
where
    E: sqlx::PgExecutor<'c>,
{
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(executor)
        .await
}

/// Has `migrator` create `schema` if it is missing. sqlx creates it under its migration lock (so
/// replicas starting together do not race) before its bookkeeping table, which lands in the first
/// `search_path` schema: each schema has its own migration history. An existing schema is not
/// created again, so a user without the CREATE privilege can start on a prepared one.
pub async fn create_schema_if_missing(
    pool: &PgPool,
    migrator: &mut Migrator,
    schema: &str,
) -> Result<(), sqlx::Error> {
    if !schema_exists(pool, schema).await? {
        migrator.create_schema(schema.to_owned());
    }
    Ok(())
}

/// Why a store's migrations were not applied. The message never holds the URL; callers add the
/// database they name (redacted).
#[derive(Debug)]
pub enum MigrationError {
    /// The database records migration `.0`, which this binary does not know: a newer release
    /// migrated it. Refused before anything runs against it.
    Newer(i64),
    /// The database's migration `.0` differs from this binary's (a different build).
    Differs(i64),
    /// The database failed while migrating (unreachable included: see [`is_unavailable`]).
    Database(sqlx::Error),
    /// Any other migration failure.
    Other(MigrateError),
}

impl MigrationError {
    /// Whether the schema is not this binary's ([`Self::Newer`], [`Self::Differs`]): another
    /// version of secure-agent is needed, retrying does not help.
    pub fn is_incompatible(&self) -> bool {
        matches!(self, Self::Newer(_) | Self::Differs(_))
    }

    /// Whether the database could not be reached while migrating.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Database(e) if is_unavailable(e))
    }
}

impl fmt::Display for MigrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Newer(version) => write!(
                f,
                "the database was migrated by a newer secure-agent (it records schema migration \
                 {version}, which this binary does not know), so this binary refuses to run \
                 against it. Fix: run the same secure-agent version on every replica sharing the \
                 database (upgrade this one), or point --database at another database"
            ),
            Self::Differs(version) => write!(
                f,
                "the database's schema migration {version} differs from this binary's. Fix: run \
                 the same secure-agent version on every replica sharing the database"
            ),
            Self::Database(e) => write!(f, "migrating the database failed: {}", cause(e)),
            Self::Other(e) => write!(f, "migrating the database failed: {e}"),
        }
    }
}

impl std::error::Error for MigrationError {}

impl From<MigrateError> for MigrationError {
    fn from(e: MigrateError) -> Self {
        match e {
            MigrateError::VersionMissing(version) => Self::Newer(version),
            MigrateError::VersionMismatch(version) => Self::Differs(version),
            MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => Self::Database(e),
            other => Self::Other(other),
        }
    }
}

/// Applies `migrator`'s migrations (under its lock, where the database has one), refusing a
/// database migrated by a newer release ([`MigrationError::Newer`]) before any runs. The one
/// place every store migrates, PostgreSQL and SQLite alike.
pub async fn migrate<'a, A>(migrator: &Migrator, target: A) -> Result<(), MigrationError>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as Deref>::Target: Migrate,
{
    Ok(migrator.run(target).await?)
}

/// Drops `schema` and everything in it (test and tenant clean-up).
pub async fn drop_schema(url: &str, schema: &str) -> Result<(), Error> {
    if !is_plain_identifier(schema) {
        return Err(Error::InvalidSchema);
    }
    let mut conn = PgConnection::connect_with(&parse(url)?).await?;
    // The name was checked to be a plain identifier above, so it may be spliced.
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// Whether an error means the database cannot be reached now (down, restarting, shutting down,
/// connection refused or reset, pool exhausted): worth retrying, a 503, not a bug.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        // SQLSTATE class 08 (connection exception), 57P0x (the server is shutting down,
        // restarting or not yet accepting connections).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => false,
    }
}

/// What went wrong, in words (never the URL or a password).
pub fn cause(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::PoolTimedOut => {
            format!("no connection within {} s", ACQUIRE_TIMEOUT.as_secs())
        }
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_a_redacted_url() {
        assert_eq!(
            redact_url("postgres://u:p%40ss@db:5432/idp0?sslmode=require"),
            "postgres://u:***@db:5432/idp0?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://db/idp0?user=u&password=secret&sslmode=require"),
            "postgresql://db/idp0?user=u&password=***&sslmode=require"
        );
        assert_eq!(redact_url("postgres://u@db/idp0"), "postgres://u@db/idp0");
        assert!(!redact_url("postgres://u:secret@[bad").contains("secret"));
        // Not URLs with credentials: shown as they are.
        assert_eq!(redact_url("/var/lib/x/todo0.db"), "/var/lib/x/todo0.db");
        assert_eq!(redact_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
    }

    #[test]
    fn only_plain_identifiers_are_schema_names() {
        assert!(is_plain_identifier("idp0"));
        assert!(is_plain_identifier("_t_0a"));
        assert!(is_plain_identifier(&"a".repeat(63)));
        for bad in [
            "",
            "0a",
            "Idp0",
            "a-b",
            "a b",
            "a;drop",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!is_plain_identifier(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_default_schema_applies_unless_the_url_sets_a_search_path() {
        let t = target("postgres://u@db/x", "todo0", "todo0").unwrap();
        assert_eq!(t.schema.as_deref(), Some("todo0"));
        assert!(
            t.options
                .get_options()
                .unwrap()
                .contains("search_path=todo0")
        );
        assert_eq!(t.options.get_application_name(), Some("todo0"));

        let t = target(
            "postgres://u@db/x?options=-c%20search_path%3Dmine&application_name=me",
            "todo0",
            "todo0",
        )
        .unwrap();
        assert_eq!(t.schema, None);
        assert!(
            t.options
                .get_options()
                .unwrap()
                .contains("search_path=mine")
        );
        assert_eq!(t.options.get_application_name(), Some("me"));

        let t = target_in_schema("postgres://u@db/x", "t_1", "agent0").unwrap();
        assert_eq!(t.options.get_application_name(), Some("agent0-t_1"));
        assert!(matches!(
            target_in_schema("postgres://u@db/x", "x;y", "a"),
            Err(Error::InvalidSchema)
        ));
        let Err(e) = target("postgres://u:pw@[bad", "todo0", "todo0") else {
            panic!("a bad URL");
        };
        assert!(!e.to_string().contains("pw"), "{e}");
    }

    #[test]
    fn outages_are_unavailable_and_other_errors_are_not() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }

    #[test]
    fn tls_urls_are_accepted_and_keep_their_sslmode() {
        use sqlx::postgres::PgSslMode;
        for (url, mode) in [
            (
                "postgres://u:pw@db:5432/x?sslmode=require",
                PgSslMode::Require,
            ),
            (
                "postgresql://u@db/x?sslmode=verify-full",
                PgSslMode::VerifyFull,
            ),
            ("postgres://u@db/x?sslmode=disable", PgSslMode::Disable),
        ] {
            let t = target(url, "idp0", "idp0").unwrap();
            assert!(
                matches!(
                    (t.options.get_ssl_mode(), mode),
                    (PgSslMode::Require, PgSslMode::Require)
                        | (PgSslMode::VerifyFull, PgSslMode::VerifyFull)
                        | (PgSslMode::Disable, PgSslMode::Disable)
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn a_database_migrated_by_a_newer_release_is_refused_by_name() {
        let newer = MigrationError::from(MigrateError::VersionMissing(20990101000000));
        assert!(newer.is_incompatible() && !newer.is_unavailable());
        let message = newer.to_string();
        assert!(
            message.contains("migrated by a newer secure-agent"),
            "{message}"
        );
        assert!(message.contains("20990101000000"), "{message}");
        assert!(message.contains("Fix: run the same secure-agent version"));
        assert!(MigrationError::from(MigrateError::VersionMismatch(3)).is_incompatible());
        let down = MigrationError::from(MigrateError::Execute(sqlx::Error::PoolTimedOut));
        assert!(!down.is_incompatible() && down.is_unavailable());
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_fast_with_its_cause() {
        let started = std::time::Instant::now();
        let options = parse("postgres://u:s3cret@127.0.0.1:1/x").unwrap();
        let Err(e) = connect(&options).await else {
            panic!("nothing listens on port 1");
        };
        assert!(started.elapsed() < ACQUIRE_TIMEOUT, "{e}");
        assert!(
            matches!(&e, Error::Sqlx(inner) if is_unavailable(inner)),
            "{e:?}"
        );
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
