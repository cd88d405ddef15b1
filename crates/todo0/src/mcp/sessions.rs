//! MCP sessions that carry their owner (MCP Streamable HTTP transport, "Session Management";
//! ARCHITECTURE §5.5). [`OwnedSessions`] implements rmcp's [`SessionManager`] around rmcp's own
//! [`LocalSessionManager`]: the person who opened a session is recorded in the same call that
//! creates it and removed in the same call that closes it, so the binding lives exactly as long
//! as the session and nothing can evict one without the other. Limits, all with a clear refusal:
//!
//! * a session idle for [`SessionLimits::idle`] ends, and its worker, its tools instance and its
//!   owner binding go with it. Idleness is tracked here, not by rmcp's `keep_alive`: the guard
//!   marks every request that names a session ([`OwnedSessions::visit`]), including the
//!   `tools/call`s it answers itself without rmcp's worker ([`super::direct`]), and a sweep
//!   started with the first session closes those left unused;
//! * one person holds at most [`SessionLimits::per_owner`] sessions (`429`);
//! * the server holds at most [`SessionLimits::total`] sessions (`503`).
//!
//! Who is asking reaches [`SessionManager::create_session`] (which takes no request) through a
//! task-local `RequestScope` set by the MCP guard around each request; calls made by rmcp's own
//! tasks (closing a finished session) carry no scope.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::time::Instant;

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

/// How long rmcp keeps a finished request's messages for a resuming client.
const COMPLETED_CACHE_TTL: Duration = Duration::from_secs(10);

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

/// One open session.
struct Open {
    owner: Owner,
    /// The client sent `notifications/initialized` (and rmcp accepted it).
    ready: bool,
    /// The last request that named it.
    last_used: Instant,
}

#[derive(Default)]
struct Table {
    owners: HashMap<SessionId, Open>,
    per_owner: HashMap<Owner, usize>,
}

/// rmcp's [`LocalSessionManager`] with each session's owner, idle expiry and caps.
pub struct OwnedSessions {
    inner: LocalSessionManager,
    limits: SessionLimits,
    table: Mutex<Table>,
    /// This table, for the idle sweep (which must not keep it alive).
    me: Weak<OwnedSessions>,
    sweeping: AtomicBool,
}

/// What a request naming a session found ([`OwnedSessions::visit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visit {
    /// No such open session (rmcp answers it).
    Unknown,
    /// Someone else's session.
    Foreign,
    /// The caller's, and whether its client completed initialization.
    Own { ready: bool },
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
    pub fn new(limits: SessionLimits) -> Arc<Self> {
        // Idle sessions are closed by this table's sweep: rmcp's worker does not see the calls
        // the guard answers directly, so its own idle timer would end busy sessions.
        let mut config = SessionConfig::default();
        config.keep_alive = None;
        // rmcp keeps each finished request's SSE messages for a late resume (`Last-Event-ID`)
        // for this long, in every session: 60 s by default, which under a stream of requests it
        // serves (not the direct `tools/call`s) held tens of MB. A client resuming does so after
        // the priming event's retry interval (3 s).
        config.completed_cache_ttl = COMPLETED_CACHE_TTL;
        let mut inner = LocalSessionManager::default();
        inner.session_config = config;
        Arc::new_cyclic(|me| Self {
            inner,
            limits,
            table: Mutex::new(Table::default()),
            me: me.clone(),
            sweeping: AtomicBool::new(false),
        })
    }

    /// What a request by `owner` naming session `id` finds, in one look at the table; the
    /// session's idle time starts again when it is `owner`'s.
    pub(crate) fn visit(&self, id: &str, owner: &Owner) -> Visit {
        match self.table().owners.get_mut(id) {
            None => Visit::Unknown,
            Some(open) if open.owner != *owner => Visit::Foreign,
            Some(open) => {
                open.last_used = Instant::now();
                Visit::Own { ready: open.ready }
            }
        }
    }

    /// Records that session `id`'s client completed initialization.
    pub(crate) fn mark_ready(&self, id: &str) {
        if let Some(open) = self.table().owners.get_mut(id) {
            open.ready = true;
        }
    }

    /// How often the idle sweep runs: a quarter of the idle time, within 10 ms – 60 s.
    fn sweep_period(&self) -> Duration {
        (self.limits.idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(60))
    }

    /// Starts the idle sweep once, from the first session on (inside the runtime).
    fn start_sweep(&self) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.me.clone();
        let period = self.sweep_period();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(sessions) = me.upgrade() else { return };
                sessions.close_idle().await;
            }
        });
    }

    /// Closes every session unused for the idle time.
    async fn close_idle(&self) {
        let now = Instant::now();
        let idle: Vec<SessionId> = self
            .table()
            .owners
            .iter()
            .filter(|(_, open)| now.duration_since(open.last_used) >= self.limits.idle)
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            self.forget(&id);
            if let Err(e) = self.inner.close_session(&id).await {
                tracing::warn!(error = %e, "closing an idle MCP session failed");
            }
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
        self.table().owners.get(id).map(|open| open.owner.clone())
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
        table.owners.insert(
            id.clone(),
            Open {
                owner: owner.clone(),
                ready: false,
                last_used: Instant::now(),
            },
        );
        *table.per_owner.entry(owner.clone()).or_insert(0) += 1;
        Ok(())
    }

    fn forget(&self, id: &SessionId) {
        let mut table = self.table();
        if let Some(open) = table.owners.remove(id)
            && let Entry::Occupied(mut count) = table.per_owner.entry(open.owner)
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
        self.start_sweep();
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
