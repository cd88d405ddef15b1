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
//! **Parking.** rmcp gives every session a worker task, a service task and their channels:
//! about 110 KB each (heaptrack, 256 sessions: 28 of the server's 37 MB of heap), held for the
//! session's whole life although the `tools/call`s the guard answers itself never reach them.
//! A session whose worker nothing uses — its client completed initialization, no request of
//! it is on its way through rmcp and no stream of it is open — is *parked*: its worker is
//! closed and only this table's entry (owner, idle time, the client's `initialize`
//! parameters) stays. The next request that needs rmcp (a listing, a `GET` stream, a call
//! the guard does not answer) gets a new worker through rmcp's own session restore
//! ([`SessionStore`], [`SessionManager::restore_session`]: rmcp replays the client's
//! `initialize` and `notifications/initialized` to it), before it is served, so the client
//! sees the same session. A session whose handshake the guard answered ([`super::handshake`])
//! starts parked and never had a worker; one rmcp opened is parked as soon as its handshake
//! completes (nothing has run in its worker yet), and later when its worker has gone unused for
//! [`SessionLimits::park_after`] (10 s: a client resuming a stream within rmcp's 10 s finds
//! its messages, and a client sending rmcp requests back to back pays no restore for each); a
//! client that holds a `GET` stream open keeps its worker. Requests for a parked session wait for each other while one
//! of them restores it (one restore per session). Nothing a session holds is lost: todo0's
//! tools keep no per-session state, and a session with a stream open is never parked.
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

use futures::{Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, SessionConfig,
};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionState, SessionStore,
    SessionStoreError,
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
    /// How long a session's rmcp worker is kept unused before the session is parked (see
    /// "Parking"); no flag. Below [`SessionLimits::DEFAULT_PARK_AFTER`] a client resuming a
    /// stream (`Last-Event-ID`) may find its messages gone.
    pub park_after: Duration,
}

impl SessionLimits {
    /// Default idle time: 30 minutes.
    pub const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);
    /// Default sessions per person.
    pub const DEFAULT_PER_OWNER: usize = 64;
    /// Default sessions in all.
    pub const DEFAULT_TOTAL: usize = 10_000;
    /// Default time an unused worker is kept: as long as rmcp keeps a finished request's
    /// messages for a client resuming its stream, so a resume still finds them, and a request
    /// whose client went away still runs to its end.
    pub const DEFAULT_PARK_AFTER: Duration = COMPLETED_CACHE_TTL;
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle: Self::DEFAULT_IDLE,
            per_owner: Self::DEFAULT_PER_OWNER,
            total: Self::DEFAULT_TOTAL,
            park_after: Self::DEFAULT_PARK_AFTER,
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
    /// The client's `initialize` parameters, from which rmcp restores a parked session.
    init: Option<SessionState>,
    /// Requests of it on their way through rmcp, and its open rmcp streams.
    users: usize,
    /// When `users` last became 0.
    unused_since: Instant,
    /// rmcp holds no worker for it.
    parked: bool,
    /// rmcp is re-creating its worker and replaying the handshake to it: until the request
    /// that restores it is through, no other request may reach the worker.
    restoring: bool,
    /// Workers closed by parking whose end rmcp has not reported yet (its own task calls
    /// `close_session` when a worker ends; those calls must not end the session).
    parked_closes: usize,
}

impl Open {
    fn new(owner: Owner) -> Self {
        let now = Instant::now();
        Self {
            owner,
            ready: false,
            last_used: now,
            init: None,
            users: 0,
            unused_since: now,
            parked: false,
            restoring: false,
            parked_closes: 0,
        }
    }

    /// Whether its worker may be closed now, having been unused for `quiet`.
    fn parkable(&self, now: Instant, quiet: Duration) -> bool {
        self.ready
            && !self.parked
            && !self.restoring
            && self.users == 0
            && self.init.is_some()
            && now.duration_since(self.unused_since) >= quiet
    }
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
    /// Held while a worker is closed for parking, and by a request of a parked session while
    /// rmcp restores it: a session is never restored while its old worker is being closed, and
    /// concurrent requests of one parked session restore it once.
    transitions: tokio::sync::Mutex<()>,
}

/// A request of a session on its way through rmcp, or one of its open streams: the session is
/// not parked while one exists.
pub(crate) struct User {
    sessions: Weak<OwnedSessions>,
    id: SessionId,
}

impl Drop for User {
    fn drop(&mut self) {
        if let Some(sessions) = self.sessions.upgrade()
            && let Some(open) = sessions.table().owners.get_mut(&self.id)
        {
            open.users = open.users.saturating_sub(1);
            if open.users == 0 {
                open.unused_since = Instant::now();
            }
        }
    }
}

/// What [`OwnedSessions::enter`] holds for a request: its [`User`], and for a parked session
/// the right to have it restored.
pub(crate) struct Entered<'a> {
    user: User,
    restoring: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        // The request that may have restored the session is through (rmcp answers only after
        // the replayed handshake completed): others may now use the worker. Cleared before the
        // lock is released (fields drop after this).
        if self.restoring.is_some()
            && let Some(sessions) = self.user.sessions.upgrade()
            && let Some(open) = sessions.table().owners.get_mut(&self.user.id)
        {
            open.restoring = false;
        }
    }
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
            transitions: tokio::sync::Mutex::new(()),
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

    /// Marks a request of session `id` that goes to rmcp; when the session is parked or being
    /// restored, waits until no other request is restoring it (rmcp restores it when it sees
    /// the request). `None` for a session not in the table (rmcp answers `404`).
    pub(crate) async fn enter(&self, id: &str) -> Option<Entered<'_>> {
        let (user, parked) = self.hold(id)?;
        let restoring = match parked {
            true => Some(self.transitions.lock().await),
            false => None,
        };
        Some(Entered { user, restoring })
    }

    /// A [`User`] of session `id`, and whether the session is parked or being restored.
    fn hold(&self, id: &str) -> Option<(User, bool)> {
        let mut table = self.table();
        let id = table.owners.get_key_value(id)?.0.clone();
        let open = table.owners.get_mut(&id)?;
        open.users += 1;
        let parked = open.parked || open.restoring;
        let user = User {
            sessions: self.me.clone(),
            id,
        };
        Some((user, parked))
    }

    /// Closes session `id`'s rmcp worker, keeping the session, when nothing has used the
    /// worker for `quiet` (see "Parking" above). Whether it was parked.
    pub(crate) async fn park(&self, id: &str, quiet: Duration) -> bool {
        let parkable = |table: &Table| {
            table
                .owners
                .get(id)
                .is_some_and(|open| open.parkable(Instant::now(), quiet))
        };
        // Checked before waiting for the lock too, so that a request restoring some other
        // session does not hold up the handshakes that will not park anything.
        if !parkable(&self.table()) {
            return false;
        }
        let _transition = self.transitions.lock().await;
        let id = {
            let mut table = self.table();
            let Some(id) = table.owners.get_key_value(id).map(|(id, _)| id.clone()) else {
                return false;
            };
            let Some(open) = table.owners.get_mut(&id) else {
                return false;
            };
            if !open.parkable(Instant::now(), quiet) {
                return false;
            }
            open.parked = true;
            open.parked_closes += 1;
            id
        };
        if let Err(e) = self.inner.close_session(&id).await {
            tracing::warn!(error = %e, "closing a parked MCP session's worker failed");
        }
        true
    }

    /// Whether session `id` is open and parked (its rmcp worker closed).
    pub fn is_parked(&self, id: &str) -> bool {
        self.table().owners.get(id).is_some_and(|open| open.parked)
    }

    /// Open sessions whose rmcp worker is running (not parked).
    pub fn workers(&self) -> usize {
        self.table().owners.values().filter(|o| !o.parked).count()
    }

    /// How often the sweep runs: a quarter of the idle time or the park delay, whichever is
    /// shorter, within 10 ms – 60 s.
    fn sweep_period(&self) -> Duration {
        (self.limits.idle / 4)
            .min(self.limits.park_after)
            .clamp(Duration::from_millis(10), Duration::from_secs(60))
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
                sessions.park_unused().await;
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
            if self.forget(&id) == Some(true) {
                continue;
            }
            if let Err(e) = self.inner.close_session(&id).await {
                tracing::warn!(error = %e, "closing an idle MCP session failed");
            }
        }
    }

    /// Parks every session whose worker went unused for [`SessionLimits::park_after`].
    async fn park_unused(&self) {
        let now = Instant::now();
        let quiet = self.limits.park_after;
        let unused: Vec<SessionId> = self
            .table()
            .owners
            .iter()
            .filter(|(_, open)| open.parkable(now, quiet))
            .map(|(id, _)| id.clone())
            .collect();
        for id in unused {
            self.park(&id, quiet).await;
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

    /// Records session `id` unless a limit is reached.
    fn admit(&self, id: &SessionId, open: Open) -> Result<(), Refusal> {
        let mut table = self.table();
        if table.owners.len() >= self.limits.total {
            return Err(Refusal::ServerFull(self.limits.total));
        }
        let held = table.per_owner.get(&open.owner).copied().unwrap_or(0);
        if held >= self.limits.per_owner {
            return Err(Refusal::OwnerLimit(self.limits.per_owner));
        }
        *table.per_owner.entry(open.owner.clone()).or_insert(0) += 1;
        table.owners.insert(id.clone(), open);
        Ok(())
    }

    /// Opens session `id` for `owner`, whose `initialize` the guard answers itself
    /// ([`super::handshake`]): it starts parked, with no rmcp worker (rmcp restores one from
    /// `init` when a request needs it), and becomes ready with [`Self::ready_if_parked`].
    pub(crate) fn open_parked(
        &self,
        id: &SessionId,
        owner: &Owner,
        init: SessionState,
    ) -> Result<(), Refusal> {
        self.start_sweep();
        let mut open = Open::new(owner.clone());
        open.parked = true;
        open.init = Some(init);
        self.admit(id, open)
    }

    /// Records that session `id`'s client completed initialization, when the session is parked
    /// and was not ready yet (its `notifications/initialized` needs no worker); whether it did.
    pub(crate) fn ready_if_parked(&self, id: &str) -> bool {
        match self.table().owners.get_mut(id) {
            Some(open) if open.parked && !open.ready => {
                open.ready = true;
                true
            }
            _ => false,
        }
    }

    /// Removes session `id`; whether it was parked (`None`: it was not here).
    fn forget(&self, id: &SessionId) -> Option<bool> {
        let mut table = self.table();
        let open = table.owners.remove(id)?;
        if let Entry::Occupied(mut count) = table.per_owner.entry(open.owner) {
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
        Some(open.parked)
    }

    /// Whether a worker end rmcp reports for session `id` is that of a worker closed by
    /// parking (counted off), not the session's end.
    fn parked_worker_ended(&self, id: &SessionId) -> bool {
        match self.table().owners.get_mut(id) {
            Some(open) if open.parked_closes > 0 => {
                open.parked_closes -= 1;
                true
            }
            _ => false,
        }
    }

    /// A stream of session `id` that keeps it from being parked while it is open.
    fn held<S>(
        &self,
        id: &SessionId,
        stream: S,
    ) -> impl Stream<Item = S::Item> + Send + Sync + use<S>
    where
        S: Stream + Send + Sync + 'static,
    {
        let user = self.hold(id).map(|(user, _)| user);
        stream.map(move |item| {
            let _ = &user;
            item
        })
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
        if let Err(refusal) = self.admit(&id, Open::new(scope.owner.clone())) {
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

    // A parked session is not here for rmcp: it restores it from the store.
    async fn has_session(&self, id: &SessionId) -> Result<bool, SessionError> {
        if self.check_owner(id).is_err() || self.is_parked(id) {
            return Ok(false);
        }
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), SessionError> {
        self.check_owner(id)?;
        let from_rmcp = SCOPE.try_with(|_| ()).is_err();
        if from_rmcp && self.parked_worker_ended(id) {
            return Ok(());
        }
        if self.forget(id) == Some(true) {
            return Ok(());
        }
        Ok(self.inner.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionError> {
        self.check_owner(id)?;
        let stream = self.inner.create_stream(id, message).await?;
        Ok(self.held(id, stream))
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
        let stream = self.inner.create_standalone_stream(id).await?;
        Ok(self.held(id, stream))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionError> {
        self.check_owner(id)?;
        let stream = self.inner.resume(id, last_event_id).await?;
        Ok(self.held(id, stream))
    }

    // Only a parked session is re-created (rmcp then replays its handshake); one known to no
    // one here never is: its owner is unknown.
    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, SessionError> {
        self.check_owner(&id)?;
        match self.table().owners.get_mut(&id) {
            Some(open) if open.parked => {
                open.parked = false;
                open.restoring = true;
            }
            _ => return Ok(RestoreOutcome::NotSupported),
        }
        Ok(self.inner.restore_session(id).await?)
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        None
    }
}

/// The client's `initialize` parameters of each open session, kept in its entry (and gone with
/// it), from which rmcp restores a parked session. Only the session's owner's requests find them.
#[async_trait::async_trait]
impl SessionStore for OwnedSessions {
    async fn load(&self, id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let caller = SCOPE.try_with(|scope| scope.owner.clone()).ok();
        Ok(self
            .table()
            .owners
            .get(id)
            .filter(|open| caller.is_none_or(|caller| caller == open.owner))
            .and_then(|open| open.init.clone()))
    }

    async fn store(&self, id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        if let Some(open) = self.table().owners.get_mut(id) {
            open.init = Some(state.clone());
        }
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), SessionStoreError> {
        if let Some(open) = self.table().owners.get_mut(id) {
            open.init = None;
        }
        Ok(())
    }
}
