//! Where sessions are kept: the [`SessionStore`] seam, the in-process [`MemorySessionStore`]
//! (bounded, each entry gone at its session's end), and [`StoredSession`], the serialized record
//! a shared store (Redis) keeps. A record is bound to its session id: a record found under an id
//! that is not its own is treated as absent, so a store that mixes keys up can only ask a person
//! to log in again, never hand them another person's session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::ops::compute::Op;
use moka::policy::Expiry;
use moka::sync::Cache;
use protocol::{Clock, UnixTime};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Session;
use crate::shared::SharedStateError;
use crate::tokens::Principal;

/// Sessions kept in process at most (the least recently used is dropped first: that person
/// logs in again).
pub const SESSION_CAPACITY: u64 = 100_000;

/// A store of sessions, each kept until its `expires_at` at most. Losing one (eviction, expiry,
/// a flushed Redis) means "log in again".
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// Keeps a new session until its `expires_at`.
    async fn create(&self, session: &Session) -> Result<(), SharedStateError>;
    /// Session `id`, if it is still kept.
    async fn find(&self, id: &str) -> Result<Option<Arc<Session>>, SharedStateError>;
    /// Replaces session `session.id` (its lifetime unchanged); a session already gone stays
    /// gone.
    async fn update(&self, session: &Session) -> Result<(), SharedStateError>;
    /// Ends session `id`.
    async fn delete(&self, id: &str) -> Result<(), SharedStateError>;
    /// How many sessions are kept, when the store can say cheaply.
    async fn count(&self) -> Option<u64>;
}

/// The in-process store: `moka`, bounded, each entry expiring at its session's `expires_at`
/// (read from the injected clock at insertion, and checked against it at every read).
pub struct MemorySessionStore {
    sessions: Cache<String, Arc<Session>>,
    clock: Arc<dyn Clock>,
}

impl MemorySessionStore {
    /// A store of at most `capacity` sessions.
    pub fn new(capacity: u64, clock: Arc<dyn Clock>) -> Self {
        let sessions = Cache::builder()
            .max_capacity(capacity)
            .expire_after(UntilSessionEnd {
                clock: clock.clone(),
            })
            .build();
        Self { sessions, clock }
    }
}

struct UntilSessionEnd {
    clock: Arc<dyn Clock>,
}

impl Expiry<String, Arc<Session>> for UntilSessionEnd {
    fn expire_after_create(
        &self,
        _id: &String,
        session: &Arc<Session>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(
            u64::try_from(session.expires_at - self.clock.now()).unwrap_or(0),
        ))
    }

    fn expire_after_update(
        &self,
        _id: &String,
        _session: &Arc<Session>,
        _updated_at: Instant,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        remaining
    }
}

#[async_trait::async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(&self, session: &Session) -> Result<(), SharedStateError> {
        self.sessions
            .insert(session.id.clone(), Arc::new(session.clone()));
        Ok(())
    }

    async fn find(&self, id: &str) -> Result<Option<Arc<Session>>, SharedStateError> {
        let now = self.clock.now();
        Ok(self.sessions.get(id).filter(|s| now < s.expires_at))
    }

    async fn update(&self, session: &Session) -> Result<(), SharedStateError> {
        let renewed = Arc::new(session.clone());
        // Only while it is still there: a logout during a refresh is not undone.
        self.sessions
            .entry(session.id.clone())
            .and_compute_with(|kept| match kept {
                Some(_) => Op::Put(renewed),
                None => Op::Nop,
            });
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), SharedStateError> {
        self.sessions.invalidate(id);
        Ok(())
    }

    async fn count(&self) -> Option<u64> {
        self.sessions.run_pending_tasks();
        Some(self.sessions.entry_count())
    }
}

/// A session as a shared store keeps it (secrets in clear: the store is as trusted as this
/// process; no `Debug`).
#[derive(Serialize, Deserialize)]
pub struct StoredSession {
    id: String,
    subject: String,
    name: String,
    email: Option<String>,
    id_token: String,
    claims: Value,
    id_token_expires_at: UnixTime,
    refresh_token: Option<String>,
    csrf: String,
    expires_at: UnixTime,
}

impl StoredSession {
    /// The record of `session`.
    pub fn from_session(session: &Session) -> Self {
        Self {
            id: session.id.clone(),
            subject: session.principal.subject.clone(),
            name: session.principal.name.clone(),
            email: session.principal.email.clone(),
            id_token: session.principal.id_token.expose_secret().to_owned(),
            claims: session.claims.clone(),
            id_token_expires_at: session.id_token_expires_at,
            refresh_token: session
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            csrf: session.csrf.clone(),
            expires_at: session.expires_at,
        }
    }

    /// The session, if this record belongs to `id` (compared in constant time).
    pub fn into_session(self, id: &str) -> Option<Session> {
        if !protocol::constant_time::is_equal(&self.id, id) {
            return None;
        }
        Some(Session {
            id: self.id,
            principal: Principal {
                subject: self.subject,
                name: self.name,
                email: self.email,
                id_token: SecretString::from(self.id_token),
            },
            claims: self.claims,
            id_token_expires_at: self.id_token_expires_at,
            refresh_token: self.refresh_token.map(SecretString::from),
            csrf: self.csrf,
            expires_at: self.expires_at,
        })
    }
}
