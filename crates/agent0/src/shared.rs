//! agent0's state that several replicas must share (ARCHITECTURE §6, issue 10): the server-side
//! sessions, the access-token cache, and the leases that make one replica — not N — do a slow
//! step for a key (a token exchange, a refresh-token rotation). [`SharedState::in_process`]
//! keeps all of it in this process (the embedded default, no server needed);
//! [`SharedState::redis`] keeps it in Redis (`--redis redis://…`), so a person logged in
//! through replica A chats through replica B and N replicas perform one exchange per key.
//!
//! A lease is Redis's `SET NX PX` with a random token, released by compare-and-delete, so a
//! holder that dies only delays the others by the lease's lifetime. In process, the callers'
//! per-key locks ([`crate::single_flight::KeyedLocks`]) already serialize the work, so the
//! in-process lease is always granted.

pub mod redis;
pub mod relay;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::Clock;

use crate::approvals::{ApprovalStore, MemoryApprovals};
use crate::session::{MemorySessionStore, SESSION_CAPACITY, SessionStore};
use crate::tokens::{MokaTokenCache, TOKEN_CAPACITY, TokenCache};

/// A lease's lifetime in Redis: its holder renews it every third of this while it works, so a
/// replica that dies holding one delays the others by at most this, however long the work may
/// take (the work's own limit is the `ttl` given to [`lead_or_follow`]).
const LIVE_TTL: Duration = Duration::from_secs(3);
/// How often a replica waiting for another's lease looks for the result.
const FOLLOW_POLL: Duration = Duration::from_millis(25);

/// Why the shared state could not be used (never carries a token or a password).
#[derive(Debug, thiserror::Error)]
pub enum SharedStateError {
    /// The URL is not a Redis URL this build understands.
    #[error("{url} is not a usable Redis URL: {message}")]
    Url {
        /// The URL without its password.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// Redis did not answer (down, unreachable, too slow).
    #[error("Redis at {url} is unavailable: {message}")]
    Unavailable {
        /// The URL without its password.
        url: String,
        /// What happened.
        message: String,
    },
    /// Another replica held a lease for longer than it may.
    #[error("another replica is still working on {what}")]
    Busy {
        /// What was waited for.
        what: &'static str,
    },
}

/// A held lease: the work for its key is this holder's until released or expired.
#[derive(Debug, Clone)]
pub struct Lease {
    name: String,
    token: String,
}

/// Cross-replica leases (the in-process one is always granted).
#[async_trait::async_trait]
pub trait Leases: Send + Sync {
    /// The lease `name` for `ttl`, or `None` when someone else holds it.
    async fn try_acquire(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, SharedStateError>;
    /// Extends `lease` to `ttl` from now; `false` when it is no longer this holder's.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, SharedStateError>;
    /// Gives `lease` back (only if it is still this holder's).
    async fn release(&self, lease: Lease) -> Result<(), SharedStateError>;
}

/// One process, one replica: the callers' per-key locks already serialize the work.
pub struct LocalLeases;

#[async_trait::async_trait]
impl Leases for LocalLeases {
    async fn try_acquire(
        &self,
        name: &str,
        _ttl: Duration,
    ) -> Result<Option<Lease>, SharedStateError> {
        Ok(Some(Lease {
            name: name.to_owned(),
            token: String::new(),
        }))
    }

    async fn renew(&self, _lease: &Lease, _ttl: Duration) -> Result<bool, SharedStateError> {
        Ok(true)
    }

    async fn release(&self, _lease: Lease) -> Result<(), SharedStateError> {
        Ok(())
    }
}

/// What a caller of [`lead_or_follow`] got.
pub(crate) enum Turn<T> {
    /// Someone else did the work; here is its result.
    Done(T),
    /// This caller holds the lease and does the work (then releases it).
    Lead(HeldLease),
}

/// A lease this task holds: released by [`HeldLease::release`], or in the background if the
/// task is dropped first (a client that went away), so others need not wait for it to expire.
pub(crate) struct HeldLease {
    leases: Arc<dyn Leases>,
    lease: Option<Lease>,
    /// Keeps the lease alive while its holder lives (see [`LIVE_TTL`]).
    renewal: tokio::task::JoinHandle<()>,
}

impl HeldLease {
    fn hold(leases: &Arc<dyn Leases>, lease: Lease) -> Self {
        let renewal = tokio::spawn({
            let (leases, lease) = (leases.clone(), lease.clone());
            async move {
                loop {
                    tokio::time::sleep(LIVE_TTL / 3).await;
                    if !matches!(leases.renew(&lease, LIVE_TTL).await, Ok(true)) {
                        return;
                    }
                }
            }
        });
        Self {
            leases: leases.clone(),
            lease: Some(lease),
            renewal,
        }
    }

    /// Gives the lease back.
    pub(crate) async fn release(mut self) -> Result<(), SharedStateError> {
        self.renewal.abort();
        match self.lease.take() {
            Some(lease) => self.leases.release(lease).await,
            None => Ok(()),
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.renewal.abort();
        let Some(lease) = self.lease.take() else {
            return;
        };
        let leases = self.leases.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = leases.release(lease).await {
                    tracing::warn!(error = %e, "an abandoned lease could not be released");
                }
            });
        }
    }
}

/// Takes lease `name`, or — while another replica holds it — polls `done` until the result
/// appears or the lease expires (then takes it over): a live holder keeps renewing it, a dead one
/// lets it lapse within [`LIVE_TTL`]. Gives up after twice `ttl`, the longest the work may take.
pub(crate) async fn lead_or_follow<T, F, Fut>(
    leases: &Arc<dyn Leases>,
    name: &str,
    ttl: Duration,
    what: &'static str,
    mut done: F,
) -> Result<Turn<T>, SharedStateError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, SharedStateError>>,
{
    let deadline = Instant::now() + ttl * 2;
    loop {
        if let Some(lease) = leases.try_acquire(name, LIVE_TTL).await? {
            // The previous holder may have finished just before the lease was free.
            return match done().await {
                Ok(Some(value)) => {
                    leases.release(lease).await?;
                    Ok(Turn::Done(value))
                }
                Ok(None) => Ok(Turn::Lead(HeldLease::hold(leases, lease))),
                Err(e) => {
                    let _ = leases.release(lease).await;
                    Err(e)
                }
            };
        }
        tokio::time::sleep(FOLLOW_POLL).await;
        if let Some(value) = done().await? {
            return Ok(Turn::Done(value));
        }
        if Instant::now() >= deadline {
            return Err(SharedStateError::Busy { what });
        }
    }
}

/// Where sessions, tokens and leases live.
#[derive(Clone)]
pub struct SharedState {
    /// The sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// The access tokens.
    pub tokens: Arc<dyn TokenCache>,
    /// The leases.
    pub leases: Arc<dyn Leases>,
    /// The scopes people approved per conversation.
    pub approvals: Arc<dyn ApprovalStore>,
    /// How a turn paused on one replica is resumed through another (none in process).
    pub relay: Option<Arc<relay::TurnRelay>>,
    /// Where, for the banner and `/health` (`in-process` or the URL without its password).
    pub description: String,
}

impl SharedState {
    /// Everything in this process, bounded ([`SESSION_CAPACITY`] sessions, [`TOKEN_CAPACITY`]
    /// tokens).
    pub fn in_process(clock: Arc<dyn Clock>) -> Self {
        Self {
            sessions: Arc::new(MemorySessionStore::new(SESSION_CAPACITY, clock.clone())),
            tokens: Arc::new(MokaTokenCache::new(TOKEN_CAPACITY, clock)),
            leases: Arc::new(LocalLeases),
            approvals: Arc::new(MemoryApprovals::default()),
            relay: None,
            description: "in-process".to_owned(),
        }
    }

    /// Everything in the Redis at `url` under keys starting `prefix` (normally
    /// [`redis::DEFAULT_PREFIX`]). Fails, naming the URL without its password, when Redis does
    /// not answer now.
    pub async fn redis(
        url: &str,
        prefix: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SharedStateError> {
        let conn = redis::RedisConn::connect(url, prefix).await?;
        Ok(Self {
            sessions: Arc::new(redis::RedisSessionStore::new(conn.clone(), clock.clone())),
            tokens: Arc::new(redis::RedisTokenCache::new(conn.clone(), clock)),
            leases: Arc::new(redis::RedisLeases::new(conn.clone())),
            approvals: Arc::new(redis::RedisApprovals::new(conn.clone())),
            relay: Some(Arc::new(relay::TurnRelay::new(conn.clone()))),
            description: format!("redis {}", conn.shown_url()),
        })
    }
}

/// `url` with its password (if any) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(an unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn a_password_never_shows() {
        assert_eq!(
            redact_url("redis://:hunter2@cache:6380/1"),
            "redis://:***@cache:6380/1"
        );
        assert_eq!(
            redact_url("rediss://user:hunter2@cache/0"),
            "rediss://user:***@cache/0"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert!(!redact_url("redis://:hunter2@[::1").contains("hunter2"));
    }
}
