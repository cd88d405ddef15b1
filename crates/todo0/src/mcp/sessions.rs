//! MCP sessions that carry their owner (MCP Streamable HTTP transport, "Session Management";
//! ARCHITECTURE §5.5). [`OwnedSessions`] implements rmcp's [`SessionManager`] around rmcp's own
//! [`LocalSessionManager`]: the person who opened a session is recorded in the same call that
//! creates it and removed in the same call that closes it, so the binding lives exactly as long
//! as the session and nothing can evict one without the other. Limits, all with a clear refusal:
//!
//! * a session idle for [`SessionLimits::idle`] ends (rmcp's own `keep_alive`), and its worker,
//!   its tools instance and its owner binding go with it;
//! * one person holds at most [`SessionLimits::per_owner`] sessions (`429`);
//! * the server holds at most [`SessionLimits::total`] sessions (`503`).
//!
//! Who is asking reaches [`SessionManager::create_session`] (which takes no request) through a
//! task-local `RequestScope` set by the MCP guard around each request; calls made by rmcp's own
//! tasks (closing a finished session) carry no scope.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, SessionConfig,
};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId,
};

use crate::domain::Owner;

/// How many sessions may exist, and for how long an unused one is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session with no request for this long is closed (`--session-idle-timeout`).
    pub idle: Duration,
    /// Open sessions one person may hold (`--max-sessions-per-user`).
    pub per_owner: usize,
    /// Open sessions in all (`--max-sessions`).
    pub total: usize,
}

impl SessionLimits {
    /// Default idle time: 30 minutes.
    pub const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);
    /// Default sessions per person.
    pub const DEFAULT_PER_OWNER: usize = 64;
    /// Default sessions in all.
    pub const DEFAULT_TOTAL: usize = 10_000;
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle: Self::DEFAULT_IDLE,
            per_owner: Self::DEFAULT_PER_OWNER,
            total: Self::DEFAULT_TOTAL,
        }
    }
}

/// Why a new session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The caller already holds [`SessionLimits::per_owner`] sessions.
    OwnerLimit(usize),
    /// The server holds [`SessionLimits::total`] sessions.
    ServerFull(usize),
}

/// The caller of the request being served, and where a refusal is reported back to the guard.
#[derive(Debug, Clone)]
pub(crate) struct RequestScope {
    owner: Owner,
    refusal: Arc<Mutex<Option<Refusal>>>,
}

impl RequestScope {
    pub(crate) fn new(owner: Owner) -> Self {
        Self {
            owner,
            refusal: Arc::default(),
        }
    }

    /// The refusal `create_session` recorded while serving this request, if any.
    pub(crate) fn refusal(&self) -> Option<Refusal> {
        *self.refusal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

tokio::task_local! {
    pub(crate) static SCOPE: RequestScope;
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// rmcp's session layer failed.
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
    /// A limit was reached.
    #[error("session limit reached: {0:?}")]
    Limit(Refusal),
    /// A session was opened outside a request (no caller to own it).
    #[error("a session needs an authenticated caller")]
    NoCaller,
    /// The session belongs to someone else.
    #[error("the session belongs to another user")]
    NotOwner,
}

#[derive(Default)]
struct Table {
    owners: HashMap<SessionId, Owner>,
    per_owner: HashMap<Owner, usize>,
}

/// rmcp's [`LocalSessionManager`] with each session's owner, idle expiry and caps.
pub struct OwnedSessions {
    inner: LocalSessionManager,
    limits: SessionLimits,
    table: Mutex<Table>,
}

impl std::fmt::Debug for OwnedSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedSessions")
            .field("limits", &self.limits)
            .field("open", &self.len())
            .finish()
    }
}

impl OwnedSessions {
    /// Sessions under `limits`.
    pub fn new(limits: SessionLimits) -> Self {
        let mut config = SessionConfig::default();
        config.keep_alive = Some(limits.idle);
        let mut inner = LocalSessionManager::default();
        inner.session_config = config;
        Self {
            inner,
            limits,
            table: Mutex::new(Table::default()),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    // The table is only touched between awaits, never across one; a panic while holding it
    // cannot leave it half-updated (each update is one insert or remove), so poison is ignored.
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Who opened session `id`, while it is open.
    pub fn owner_of(&self, id: &str) -> Option<Owner> {
        self.table().owners.get(id).cloned()
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.table().owners.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Open sessions of `owner`.
    pub fn count_for(&self, owner: &Owner) -> usize {
        self.table().per_owner.get(owner).copied().unwrap_or(0)
    }

    /// Records `id` for `owner` unless a limit is reached.
    fn admit(&self, id: &SessionId, owner: &Owner) -> Result<(), Refusal> {
        let mut table = self.table();
        if table.owners.len() >= self.limits.total {
            return Err(Refusal::ServerFull(self.limits.total));
        }
        let held = table.per_owner.get(owner).copied().unwrap_or(0);
        if held >= self.limits.per_owner {
            return Err(Refusal::OwnerLimit(self.limits.per_owner));
        }
        table.owners.insert(id.clone(), owner.clone());
        *table.per_owner.entry(owner.clone()).or_insert(0) += 1;
        Ok(())
    }

    fn forget(&self, id: &SessionId) {
        let mut table = self.table();
        if let Some(owner) = table.owners.remove(id)
            && let Entry::Occupied(mut count) = table.per_owner.entry(owner)
        {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
        if table.owners.is_empty() {
            // Give back the tables' memory once every session is gone.
            table.owners.shrink_to_fit();
            table.per_owner.shrink_to_fit();
        }
    }

    /// Refuses a request that carries a caller other than the session's owner. Calls from rmcp's
    /// own tasks carry no caller and pass.
    fn check_owner(&self, id: &SessionId) -> Result<(), SessionError> {
        let caller = SCOPE.try_with(|scope| scope.owner.clone()).ok();
        match (caller, self.owner_of(id)) {
            (Some(caller), Some(owner)) if caller != owner => Err(SessionError::NotOwner),
            _ => Ok(()),
        }
    }
}

impl SessionManager for OwnedSessions {
    type Error = SessionError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), SessionError> {
        let scope = SCOPE
            .try_with(Clone::clone)
            .map_err(|_| SessionError::NoCaller)?;
        let (id, transport) = self.inner.create_session().await?;
        if let Err(refusal) = self.admit(&id, &scope.owner) {
            *scope.refusal.lock().unwrap_or_else(PoisonError::into_inner) = Some(refusal);
            drop(transport);
            self.inner.close_session(&id).await?;
            return Err(SessionError::Limit(refusal));
        }
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, SessionError> {
        self.check_owner(id)?;
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, SessionError> {
        if self.check_owner(id).is_err() {
            return Ok(false);
        }
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), SessionError> {
        self.check_owner(id)?;
        self.forget(id);
        Ok(self.inner.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionError> {
        self.check_owner(id)?;
        Ok(self.inner.create_stream(id, message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), SessionError> {
        self.check_owner(id)?;
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionError> {
        self.check_owner(id)?;
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionError> {
        self.check_owner(id)?;
        Ok(self.inner.resume(id, last_event_id).await?)
    }

    // A session known to no one here is never re-created from outside: its owner is unknown.
    async fn restore_session(
        &self,
        _id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, SessionError> {
        Ok(RestoreOutcome::NotSupported)
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        None
    }
}
