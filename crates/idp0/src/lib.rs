//! idp0: an embedded identity provider that speaks the protocols and URL layout of Okta's org and
//! custom authorization servers — OIDC login, refresh, client credentials, token exchange for
//! ID-JAGs (Cross-App Access) and their redemption — so secure-agent runs and is tested offline.
//!
//! * [`config`]: the TOML configuration; [`devconfig`]: the generated development setup.
//! * [`state::Idp`]: the assembled IdP; [`http::router`]: its routes.
//! * [`grants`]: one module per grant; [`client_auth`]: client authentication.
//! * [`store`]: durable state behind a trait (SQLite embedded, or PostgreSQL shared by replicas).
//! * [`admin`]: the Okta-compatible management API (`SSWS` admin token in the data directory).

pub mod admin;
pub mod client_auth;
pub mod config;
pub mod csrf;
pub mod devconfig;
pub mod dotenv;
pub mod error;
pub use httpserve::fsutil;
pub mod grants;
pub mod html;
pub mod http;
pub mod keyring;
pub mod login_form;
pub mod login_guard;
pub mod password;
pub mod server;
pub mod state;
pub mod store;
pub mod token_request;
pub mod tokens;

use std::path::PathBuf;
use std::sync::Arc;

use protocol::Clock;

pub use http::router;
pub use state::Idp;

/// The SQLite database in the data directory when no database URL is given.
pub const DATABASE_FILE: &str = "idp0.db";

/// How to open idp0.
pub struct Options {
    /// Data directory (created 0700): configuration, signing keys, the admin token, and the
    /// SQLite database unless `database` names another.
    pub data_dir: PathBuf,
    /// Where idp0's state lives: `postgres://…` / `postgresql://…`, or `sqlite://PATH` / a path.
    /// `None`: SQLite at `<data_dir>/idp0.db`. Replicas sharing a PostgreSQL database must also
    /// share the data directory's `keys/` (the same data directory, or a copy of it).
    pub database: Option<String>,
    /// Config file; `None` generates/uses the development configuration in the data directory.
    pub config: Option<PathBuf>,
    /// Org issuer (base URL).
    pub issuer: String,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Where the rest of the development stack runs (`secure-agent up`): a generated
    /// configuration follows it. `None` leaves an existing one as it is.
    pub topology: Option<devconfig::Topology>,
}

/// An opened IdP and what to tell the person starting it.
pub struct Opened {
    /// The IdP.
    pub idp: Idp,
    /// Demo credentials of a development configuration.
    pub demo_users: Vec<(String, String)>,
    /// The development configuration was generated on this start.
    pub generated: bool,
}

/// Opens storage, then loads (or generates) configuration and keys.
pub async fn open(options: Options) -> anyhow::Result<Opened> {
    let store = open_store(&options).await?;
    open_with_store(options, store).await
}

/// Opens (and migrates) the store `options.database` names, or the SQLite file in the data
/// directory. Its own step so that a caller that must bind its port before it knows the issuer
/// (`--port 0`) can still refuse an unusable database before binding.
pub async fn open_store(options: &Options) -> anyhow::Result<Arc<dyn store::Store>> {
    fsutil::create_private_dir(&options.data_dir)?;
    Ok(match &options.database {
        Some(url) => store::open(url).await?,
        None => Arc::new(store::SqliteStore::open(&options.data_dir.join(DATABASE_FILE)).await?),
    })
}

/// Loads (or generates) configuration and keys on a store [`open_store`] opened.
pub async fn open_with_store(
    options: Options,
    store: Arc<dyn store::Store>,
) -> anyhow::Result<Opened> {
    fsutil::create_private_dir(&options.data_dir)?;
    let (config_path, dev) = match options.config {
        Some(path) => (path, None),
        None => {
            let dev = devconfig::ensure(&options.data_dir, options.topology.as_ref())?;
            (dev.path.clone(), Some(dev))
        }
    };
    let config = config::Config::load(&config_path)?;
    let demo_users = dev
        .as_ref()
        .map(|d| d.demo_users.clone())
        .unwrap_or_default();
    let idp = Idp::new(state::IdpParts {
        config,
        issuer: options.issuer.clone(),
        store,
        clock: options.clock,
        keys_dir: Some(options.data_dir.join("keys")),
        demo_credentials: demo_users.clone(),
    })?;
    if dev.is_some() {
        devconfig::write_env_files(&options.data_dir, idp.issuer())?;
    }
    admin::enable(&idp, &options.data_dir).await?;
    Ok(Opened {
        idp,
        demo_users,
        generated: dev.is_some_and(|d| d.created),
    })
}

/// Serves idp0 on `listener` until `shutdown` resolves; purges expired state every ten minutes.
pub async fn serve(
    listener: impl Into<httpserve::Listener>,
    idp: Idp,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let purger = {
        let idp = idp.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                every.tick().await;
                if let Err(e) = idp.store.purge_expired(idp.clock.now()).await {
                    tracing::warn!(error = %e, "purging expired state failed");
                }
            }
        })
    };
    let follower = tokio::spawn(admin::follow_other_writers(idp.clone()));
    // httpserve records the peer address (ConnectInfo), which login throttling keys on.
    let result = httpserve::serve(listener, router(idp), shutdown).await;
    purger.abort();
    follower.abort();
    result
}
