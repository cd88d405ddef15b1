//! `bench agent`'s deployments of agent0 (issue 10, "Performance"): the embedded default (one
//! replica, SQLite conversations, sessions and tokens in process), and with `--database` and
//! `--redis` the shared engines: PostgreSQL conversations with in-process caches (one replica,
//! the baseline for Redis's cost), then sessions, tokens and leases in Redis (one replica, and
//! `--replicas N`). Replicas run in this process, each with its own `AppState`, listener,
//! Redis connection and PostgreSQL pool, and one cookie key, as replicas behind a load balancer
//! share theirs.
//!
//! Each deployment starts clean: a SQLite file of its own, a fresh PostgreSQL schema
//! (`agent0_bench_<hex>`, dropped at the end) unless the URL chooses a `search_path`, and a fresh
//! Redis key prefix (`agent0-bench-<hex>:`) whose keys the people's logouts remove.

use std::sync::Arc;

use agent0::conversations::{ConversationStore, PostgresConversations, SqliteConversations};
use agent0::shared::SharedState;
use anyhow::{Context, bail};
use tokio::sync::oneshot;

use super::Stack;

/// Where a deployment keeps its state.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Engines {
    /// SQLite conversations; sessions, tokens and leases in process: the embedded default.
    Embedded,
    /// PostgreSQL conversations; sessions, tokens and leases still in process (Redis's baseline).
    Postgres,
    /// PostgreSQL conversations; sessions, tokens and leases in Redis, shared by the replicas.
    Shared,
}

impl Engines {
    pub(super) fn sessions(self) -> &'static str {
        match self {
            Self::Embedded | Self::Postgres => "in-process",
            Self::Shared => "redis",
        }
    }

    pub(super) fn conversations(self) -> &'static str {
        match self {
            Self::Embedded => "sqlite",
            Self::Postgres | Self::Shared => "postgres",
        }
    }
}

/// One measured configuration.
#[derive(Clone, Copy)]
pub(super) struct Setup {
    pub(super) engines: Engines,
    pub(super) replicas: usize,
}

impl Setup {
    /// `sqlite+in-process x1`, `postgres+redis x2`, …
    pub(super) fn label(self) -> String {
        format!(
            "{}+{} x{}",
            self.engines.conversations(),
            self.engines.sessions(),
            self.replicas
        )
    }
}

/// The shared engines' URLs (`--database`, `--redis`).
pub(super) struct SharedEngines {
    pub(super) database: String,
    pub(super) redis: String,
}

/// The configurations to measure, in order: the embedded default alone; with the shared
/// engines, also PostgreSQL with in-process caches, PostgreSQL + Redis, and PostgreSQL + Redis
/// with `replicas` replicas.
pub(super) fn setups(
    replicas: usize,
    database: Option<&str>,
    redis: Option<&str>,
) -> anyhow::Result<(Vec<Setup>, Option<SharedEngines>)> {
    if replicas == 0 {
        bail!("--replicas needs a positive number");
    }
    let single = |engines| Setup {
        engines,
        replicas: 1,
    };
    match (database, redis) {
        (None, None) if replicas > 1 => bail!(
            "--replicas {replicas} needs the shared engines: --database postgres://… and \
             --redis redis://… (or AGENT_DATABASE_URL and AGENT_REDIS_URL); replicas cannot \
             share sessions kept in process"
        ),
        (None, None) => Ok((vec![single(Engines::Embedded)], None)),
        (Some(database), Some(redis)) => {
            if !dbconn::is_postgres_url(database) {
                bail!(
                    "--database must be a postgres:// URL (the shared engines are PostgreSQL \
                     and Redis), not {}",
                    dbconn::redact_url(database)
                );
            }
            let mut setups = vec![
                single(Engines::Embedded),
                single(Engines::Postgres),
                single(Engines::Shared),
            ];
            if replicas > 1 {
                setups.push(Setup {
                    engines: Engines::Shared,
                    replicas,
                });
            }
            let engines = SharedEngines {
                database: database.to_owned(),
                redis: redis.to_owned(),
            };
            Ok((setups, Some(engines)))
        }
        _ => bail!(
            "--database and --redis go together (or AGENT_DATABASE_URL and AGENT_REDIS_URL): \
             give both to measure the shared engines, or neither for the embedded default"
        ),
    }
}

/// A running deployment: its replicas' base URLs and states.
pub(super) struct Deployment {
    pub(super) bases: Vec<String>,
    states: Vec<agent0::AppState>,
    stops: Vec<oneshot::Sender<()>>,
    /// A schema this deployment made, dropped by [`Deployment::stop`]: (database URL, schema).
    schema: Option<(String, String)>,
    /// What the banner shows about where state lives.
    pub(super) description: String,
}

impl Deployment {
    /// Opens the stores and starts `setup.replicas` replicas on loopback ports. `index` numbers
    /// the deployment (its SQLite file).
    pub(super) async fn start(
        stack: &Stack,
        setup: Setup,
        shared: Option<&SharedEngines>,
        index: usize,
    ) -> anyhow::Result<Self> {
        let fresh = fresh_hex();
        let mut schema = None;
        let mut description = String::new();
        let mut bases = Vec::new();
        let mut states = Vec::new();
        let mut stops = Vec::new();
        for _ in 0..setup.replicas {
            let store: Arc<dyn ConversationStore> = match setup.engines {
                Engines::Embedded => {
                    let path = stack.dir.join(format!("agent0-{index}.db"));
                    description = format!("conversations sqlite://{}", path.display());
                    Arc::new(SqliteConversations::open(&path).await?)
                }
                Engines::Postgres | Engines::Shared => {
                    let url = &shared
                        .context("the shared engines need --database")?
                        .database;
                    let (store, chosen) = open_postgres(url, &fresh).await?;
                    description = format!(
                        "conversations {} ({})",
                        dbconn::redact_url(url),
                        chosen.as_deref().map_or_else(
                            || "the URL's search_path".to_owned(),
                            |s| format!("schema {s}")
                        )
                    );
                    schema = chosen.map(|s| (url.clone(), s));
                    store
                }
            };
            let state = match setup.engines {
                Engines::Embedded | Engines::Postgres => {
                    SharedState::in_process(stack.clock.clone())
                }
                Engines::Shared => {
                    let url = &shared.context("the shared engines need --redis")?.redis;
                    let prefix = format!("agent0-bench-{fresh}:");
                    let state = SharedState::redis(url, &prefix, stack.clock.clone())
                        .await
                        .with_context(|| format!("connecting replica {} to Redis", bases.len()))?;
                    description.push_str(&format!(
                        "; sessions {} (prefix {prefix})",
                        state.description
                    ));
                    state
                }
            };
            let state =
                agent0::AppState::with_shared_state(super::agent_config(stack, store)?, state)
                    .await?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            bases.push(format!("http://{}", listener.local_addr()?));
            let (stop, stopped) = oneshot::channel::<()>();
            let app = agent0::router(state.clone());
            tokio::spawn(async move {
                httpserve::serve(listener, app, async move {
                    let _ = stopped.await;
                })
                .await
            });
            states.push(state);
            stops.push(stop);
        }
        Ok(Self {
            bases,
            states,
            stops,
            schema,
            description,
        })
    }

    /// ID-JAG exchanges each replica has made since it started (each an IdP round trip).
    pub(super) fn exchanges(&self) -> Vec<u64> {
        self.states
            .iter()
            .map(|s| s.agent().hub().broker().exchange_count())
            .collect()
    }

    /// Stops the replicas, ends their MCP sessions and drops the schema this deployment made.
    pub(super) async fn stop(self) {
        for stop in self.stops {
            let _ = stop.send(());
        }
        for state in &self.states {
            state
                .agent()
                .hub()
                .close_all(std::time::Duration::from_secs(3))
                .await;
        }
        drop(self.states);
        if let Some((url, schema)) = self.schema
            && let Err(e) = PostgresConversations::drop_schema(&url, &schema).await
        {
            eprintln!("bench: could not drop the schema {schema}: {e}");
        }
    }
}

/// A store on `url`: confined to the fresh schema `agent0_bench_<fresh>` (returned, to drop
/// later), or in the URL's own `search_path` when it chooses one (nothing to drop).
async fn open_postgres(
    url: &str,
    fresh: &str,
) -> anyhow::Result<(Arc<dyn ConversationStore>, Option<String>)> {
    let shown = dbconn::redact_url(url);
    let options = dbconn::parse(url).with_context(|| format!("parsing {shown}"))?;
    if dbconn::chooses_search_path(&options) {
        let store = agent0::conversations::open(url)
            .await
            .with_context(|| format!("opening the conversation store at {shown}"))?;
        return Ok((store, None));
    }
    let schema = format!("agent0_bench_{fresh}");
    let store = PostgresConversations::connect_in_schema(url, &schema)
        .await
        .with_context(|| format!("opening the conversation store at {shown}"))?;
    Ok((Arc::new(store), Some(schema)))
}

/// 24 random lower-case hex digits (a schema name and key prefix of this deployment's own).
fn fresh_hex() -> String {
    weblogin::random_token()
        .bytes()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}
