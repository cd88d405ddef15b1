//! The agent's MCP client side (MCP authorization spec 2025-11-25, ARCHITECTURE §5.5, §7): one
//! live Streamable HTTP session per (person, connection), opened with the narrowest cached token
//! that works. A `403` with `error="insufficient_scope"` is met by requesting the union of the
//! granted and the challenged scopes (a new ID-JAG each time, at most [`MAX_STEP_UPS`] per call,
//! as [`protocol::step_up`] decides) and retrying; the scopes a tool turned out to need are
//! remembered, so the next call of that tool starts with them. A tool result that refuses the token in band (Okta's sample server,
//! [`in_band`]) is met the same way: a missing scope steps up, a bad token gets one fresh token.
//! Tool lists are cached per (person, connection) for a few minutes. A brokered (`oauth-sts`)
//! server's tools are offered to a person who has no ISV token for it without any exchange (as
//! last listed, else as declared; [`McpHub::list_tools`]): consent is asked only when one is
//! called.
//!
//! No lock is held across network I/O: the session map is locked only to look up, insert or
//! remove, and opening a session (the `initialize` round trip) holds only that (person,
//! connection)'s own lock, so concurrent first calls of one person open one session while other
//! people never wait for it. Per-person state besides the sessions lives in bounded `moka`
//! caches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use protocol::step_up::{Challenge, StepUp, classify_challenge};
use protocol::{Clock, Scopes, UnixTime};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, Tool};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use secrecy::ExposeSecret;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::AuthStrategy;
use crate::single_flight::KeyedLocks;
use crate::tokens::{AccessToken, Principal, StsTarget, TokenBroker, TokenError};

mod application;
mod classify;
mod in_band;

use classify::{classify, classify_service_error, give_up_message, outcome};

pub use protocol::step_up::MAX_STEP_UPS;
/// How long a tool list is reused.
const TOOLS_TTL: i64 = 300;
/// How long a person's `interaction_required` from listing an undeclared brokered server is
/// remembered (no IdP round trip, no second card) when the IdP says nothing of the link's
/// lifetime (`expires_in`); what it says is kept within [`UNCONSENTED_HOLD_MIN`] and this
/// bound's double.
pub const UNCONSENTED_HOLD: i64 = 300;
/// The shortest such memory, whatever `expires_in` says.
const UNCONSENTED_HOLD_MIN: i64 = 30;
/// How long one MCP request may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Entries kept at most in each per-person cache (tool lists, liveness, health) and in the
/// learned scopes; least recently used dropped first.
const CACHE_CAPACITY: u64 = 10_000;
/// How long a person's connection health is remembered without being looked at or updated.
const HEALTH_IDLE: Duration = Duration::from_secs(24 * 3600);

/// Why an [`McpHub`] could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the HTTP client for MCP servers could not be built: {0}")]
pub struct McpSetupError(String);

/// A configured MCP server.
#[derive(Debug, Clone)]
pub struct McpServer {
    /// Short name (tool prefixes, status, audit).
    pub name: String,
    /// Display name.
    pub label: String,
    /// The Streamable HTTP endpoint.
    pub url: String,
    /// How it is authorized.
    pub auth: AuthStrategy,
    /// Tools (by their name at this server) that run without asking the person, even when
    /// destructive or needing a scope they have not approved (see [`crate::confirm`]).
    pub auto_approve: Vec<String>,
    /// Whether a tool *result* that refuses the token (Okta's TypeScript sample signals a
    /// missing scope that way, [`in_band`]) steps up or retries like an HTTP challenge. Only for
    /// servers that answer so: with it, a tool that relays someone else's error body verbatim
    /// could make agent0 ask for more scopes and run the tool again.
    pub in_band_refusals: bool,
    /// For a brokered (`oauth-sts`) server: the tools it is known to offer (GitHub's own
    /// declarations for the sample's GitHub MCP server, a `tools_file` for others), offered to a
    /// person who holds no ISV token for it yet — with no exchange, so no consent is asked until
    /// one of them is called — unless someone's listing since agent0 started replaced them.
    /// `None`: such a person's listing needs the exchange.
    pub declared_tools: Option<Arc<[Tool]>>,
}

/// What a tool call came to.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    /// The structured result, else the content blocks as JSON.
    pub result: Value,
    /// Whether the tool reported a failure.
    pub is_error: bool,
    /// `(from, to)` scopes when the call stepped up.
    pub step_up: Option<(Scopes, Scopes)>,
}

/// Why an MCP operation failed (the text is for the person and the model; no token in it).
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// Getting a token failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The server refused the token (not a scope problem).
    #[error("{server} refused the agent's access token: {description}")]
    Unauthorized {
        /// The connection.
        server: String,
        /// The challenge's error.
        description: String,
    },
    /// The server still wants more after the allowed step-ups, or the AS would not grant it.
    #[error("{server}: {message}")]
    Scope {
        /// The connection.
        server: String,
        /// What happened.
        message: String,
    },
    /// The server answered the call with a JSON-RPC error (it is reachable).
    #[error("{server} answered with an error: {message}")]
    Failed {
        /// The connection.
        server: String,
        /// What it said.
        message: String,
    },
    /// Transport or protocol failure.
    #[error("{server} is unavailable: {message}")]
    Unavailable {
        /// The connection.
        server: String,
        /// What happened.
        message: String,
    },
}

type SessionKey = (String, String);

struct LiveSession {
    token_id: [u8; 32],
    service: RunningService<RoleClient, ClientConfig>,
}

/// Sessions, learned scopes and tool lists for every configured MCP server.
pub struct McpHub {
    servers: Vec<McpServer>,
    broker: Arc<TokenBroker>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    /// Locked only to read or change the map, never across an `.await`.
    sessions: std::sync::Mutex<HashMap<SessionKey, Arc<LiveSession>>>,
    /// Held while a (person, connection)'s session is being opened.
    opening: KeyedLocks<SessionKey>,
    learned: Cache<(String, String), Scopes>,
    tools: Cache<SessionKey, (Arc<[Tool]>, UnixTime)>,
    live: Cache<SessionKey, UnixTime>,
    health: Cache<SessionKey, Health>,
    /// The application connection (GitHub REST), when configured and enabled.
    application: Option<Arc<crate::github::GithubRest>>,
    /// The last tool list of each brokered (`oauth-sts`) server, offered to people who have not
    /// consented yet.
    brokered_tools: Cache<String, Arc<[Tool]>>,
    /// Until when a person's listing of an undeclared brokered server is known to need their
    /// consent (no exchange, no card until then).
    unconsented: Cache<SessionKey, UnixTime>,
}

/// When a person's last call to a connection succeeded and when one last failed to reach it
/// (for the Managed Connections panel: a server that stopped answering shows as unreachable
/// until the next success).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// The last successful call.
    pub last_success_at: Option<UnixTime>,
    /// The last call that could not reach the server.
    pub last_failure_at: Option<UnixTime>,
    /// Whether the last call failed (times are whole seconds, so they cannot tell).
    last_failed: bool,
}

impl Health {
    /// Whether the last use failed (no success since).
    pub fn is_unreachable(&self) -> bool {
        self.last_failed
    }
}

/// Which step of a call failed, and how.
enum Failure {
    InsufficientScope(Option<Scopes>, String),
    Unauthorized(String),
    /// The transport failed; `unsent` when the server surely did not run the request (the
    /// connection was refused, or the server no longer knew the session).
    Broken {
        message: String,
        unsent: bool,
    },
    Fatal(McpError),
}

/// Whether a request may be sent again after its connection broke with no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Running it twice does no harm (a listing, a read-only or idempotent tool).
    Safe,
    /// It may have changed something: sent again only when it surely never ran.
    Unsafe,
}

impl McpHub {
    /// A hub for `servers`, with tokens from `broker`. Fails rather than fall back to a client
    /// that would follow redirects.
    pub fn new(
        servers: Vec<McpServer>,
        broker: Arc<TokenBroker>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, McpSetupError> {
        let http = protocol::trust::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()
            .map_err(|e| McpSetupError(e.to_string()))?;
        let recently_used = Duration::from_secs(TOOLS_TTL.unsigned_abs());
        Ok(Self {
            servers,
            broker,
            clock,
            http,
            sessions: std::sync::Mutex::new(HashMap::new()),
            opening: KeyedLocks::new(),
            learned: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_idle(HEALTH_IDLE)
                .build(),
            tools: per_person(recently_used),
            live: per_person(recently_used),
            health: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_idle(HEALTH_IDLE)
                .support_invalidation_closures()
                .build(),
            application: None,
            brokered_tools: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_idle(HEALTH_IDLE)
                .build(),
            unconsented: per_person(Duration::from_secs((2 * UNCONSENTED_HOLD).unsigned_abs())),
        })
    }

    /// The configured servers.
    pub fn servers(&self) -> &[McpServer] {
        &self.servers
    }

    /// The token broker.
    pub fn broker(&self) -> &Arc<TokenBroker> {
        &self.broker
    }

    /// Whether `subject` talked to `server` successfully in the last few minutes.
    pub fn is_live(&self, subject: &str, server: &str) -> bool {
        let now = self.clock.now();
        self.live
            .get(&(subject.to_owned(), server.to_owned()))
            .is_some_and(|until| now < until)
    }

    /// Ends every open MCP session (HTTP `DELETE` to each server), waiting at most `limit`:
    /// called when agent0 stops, so servers are told while they still listen instead of keeping
    /// the sessions until they expire.
    pub async fn close_all(&self, limit: std::time::Duration) {
        let sessions: Vec<Arc<LiveSession>> = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, s)| s)
            .collect();
        let closing = sessions
            .into_iter()
            .filter_map(Arc::into_inner)
            .map(|s| async move {
                // A session still in use by a request is dropped instead: rmcp closes it in the
                // background.
                let _ = s.service.cancel().await;
            });
        let _ = tokio::time::timeout(limit, futures::future::join_all(closing)).await;
    }

    /// When `subject`'s calls to `server` last succeeded and last failed to reach it.
    pub fn health(&self, subject: &str, server: &str) -> Health {
        self.health
            .get(&(subject.to_owned(), server.to_owned()))
            .unwrap_or_default()
    }

    /// Closes `subject`'s sessions and forgets their tool lists (at logout).
    pub async fn forget_person(&self, subject: &str) {
        for server in &self.servers {
            let key = (subject.to_owned(), server.name.clone());
            // A session of theirs being opened right now is waited for (only theirs), so it
            // cannot be stored after this.
            let _opening = self.opening.lock(key.clone()).await;
            let removed = self
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            // Dropped outside the lock: it closes when its last in-flight call lets go of it.
            drop(removed);
        }
        forget_subject(&self.health, subject);
        forget_subject(&self.tools, subject);
        forget_subject(&self.live, subject);
        forget_subject(&self.unconsented, subject);
        self.broker.forget_person(subject).await;
    }

    /// `server`'s tools for `principal` (cached). A brokered (`oauth-sts`) server's tools are
    /// offered to a person who holds no ISV token for it with no exchange at all (an exchange
    /// would ask the IdP, and ask their consent, for a connection this turn may never use): as
    /// the server's last listing named them, else as it declares them
    /// ([`McpServer::declared_tools`]). Only calling one needs the token. An undeclared server
    /// not listed yet needs the exchange; its `interaction_required` is remembered for the
    /// person (see [`UNCONSENTED_HOLD`]), so the card is shown once and later turns make no IdP
    /// round trip, until consent completes (a token appears), the link expires or they log out.
    pub async fn list_tools(
        &self,
        principal: &Principal,
        server: &McpServer,
    ) -> Result<Arc<[Tool]>, McpError> {
        let key = (principal.subject.clone(), server.name.clone());
        let now = self.clock.now();
        if self.application_for(server).is_some() {
            return Ok(self.application_tools().into());
        }
        if let Some((tools, until)) = self.tools.get(&key)
            && now < until
        {
            return Ok(tools);
        }
        if let AuthStrategy::OauthSts { resource, .. } = &server.auth {
            let target = StsTarget {
                connection: &server.name,
                resource,
            };
            if self.broker.has_brokered_token(principal, target).await {
                self.unconsented.invalidate(&key);
            } else if let Some(tools) = self.known_tools(server) {
                return Ok(tools);
            } else if let Some(until) = self.unconsented.get(&key)
                && now < until
            {
                // Its card was shown at the first such turn: none again, and no IdP round trip.
                return Err(McpError::Token(TokenError::ConsentPending {
                    connection: server.name.clone(),
                    slow_down: false,
                }));
            }
        }
        let listed = self
            .with_session(
                principal,
                server,
                "tools/list",
                Repeat::Safe,
                |peer| async move { peer.list_all_tools().await },
                |_| None,
            )
            .await
            .inspect_err(|e| self.note_failure(principal, server, e));
        let tools: Arc<[Tool]> = match listed {
            Ok((tools, _)) => tools.into(),
            // A brokered server's tool names are the same for everyone: offered as someone
            // listed them (or as declared), a call asks this person's consent and waits for it.
            Err(e @ McpError::Token(TokenError::InteractionRequired { .. }))
            | Err(e @ McpError::Token(TokenError::ConsentPending { .. })) => {
                if let Some(tools) = self.known_tools(server) {
                    return Ok(tools);
                }
                let hold = match &e {
                    McpError::Token(TokenError::InteractionRequired { expires_in, .. }) => {
                        *expires_in
                    }
                    _ => None,
                };
                self.unconsented.insert(key, now + unconsented_hold(hold));
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if matches!(server.auth, AuthStrategy::OauthSts { .. }) {
            self.brokered_tools
                .insert(server.name.clone(), tools.clone());
        }
        self.unconsented.invalidate(&key);
        self.tools.insert(key, (tools.clone(), now + TOOLS_TTL));
        Ok(tools)
    }

    /// A brokered server's tools as known without listing them for this person: its last
    /// listing by anyone (which replaces the declared ones), else its declared tools.
    fn known_tools(&self, server: &McpServer) -> Option<Arc<[Tool]>> {
        self.brokered_tools
            .get(&server.name)
            .or_else(|| server.declared_tools.clone())
    }

    /// Calls `tool` on `server` for `principal`.
    pub async fn call_tool(
        &self,
        principal: &Principal,
        server: &McpServer,
        tool: &str,
        arguments: serde_json::Map<String, Value>,
    ) -> Result<ToolOutcome, McpError> {
        if let Some(rest) = self.application_for(server) {
            return self
                .call_application(rest, principal, server, tool, &arguments)
                .await
                .inspect_err(|e| self.note_failure(principal, server, e));
        }
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let repeat = self.repeat_of(principal, server, tool);
        let (result, step_up) = self
            .with_session(
                principal,
                server,
                tool,
                repeat,
                |peer| {
                    let params = params.clone();
                    async move { peer.call_tool(params).await }
                },
                |result| {
                    server
                        .in_band_refusals
                        .then(|| in_band::classify_result(result))
                        .flatten()
                },
            )
            .await
            .inspect_err(|e| self.note_failure(principal, server, e))?;
        Ok(outcome(result, step_up))
    }

    /// Whether `tool` may be called again after a broken connection: when the server's
    /// listing marks it read-only or idempotent (MCP `ToolAnnotations`), else not.
    fn repeat_of(&self, principal: &Principal, server: &McpServer, tool: &str) -> Repeat {
        let key = (principal.subject.clone(), server.name.clone());
        // This person's listing, else (a brokered server offered without one) the known tools.
        let tools = self
            .tools
            .get(&key)
            .map(|(tools, _)| tools)
            .or_else(|| self.known_tools(server));
        let harmless = tools.is_some_and(|tools| {
            tools.iter().any(|t| {
                t.name == tool
                    && t.annotations.as_ref().is_some_and(|a| {
                        a.read_only_hint == Some(true) || a.idempotent_hint == Some(true)
                    })
            })
        });
        if harmless {
            Repeat::Safe
        } else {
            Repeat::Unsafe
        }
    }

    /// Runs `op` on a live session, stepping up and reconnecting as needed: when the server
    /// challenges, or when `refusal` finds that `op`'s answer refuses the token in band.
    async fn with_session<T, F, Fut>(
        &self,
        principal: &Principal,
        server: &McpServer,
        what: &str,
        repeat: Repeat,
        op: F,
        refusal: impl Fn(&T) -> Option<Failure>,
    ) -> Result<(T, Option<(Scopes, Scopes)>), McpError>
    where
        F: Fn(Peer<RoleClient>) -> Fut,
        Fut: Future<Output = Result<T, rmcp::ServiceError>>,
    {
        let learned_key = (server.name.clone(), what.to_owned());
        let mut scopes = match &server.auth {
            AuthStrategy::IdJag { initial_scopes, .. } => {
                let learned = self.learned.get(&learned_key).unwrap_or_else(Scopes::empty);
                initial_scopes.union(&learned)
            }
            AuthStrategy::OauthSts { .. } | AuthStrategy::None => Scopes::empty(),
        };
        let mut step_up = StepUp::new();
        let mut retried = false;
        loop {
            let token = self.token(principal, server, &scopes).await?;
            let attempt = match self.session(principal, server, token.as_ref()).await {
                Ok(peer) => match tokio::time::timeout(CALL_TIMEOUT, op(peer)).await {
                    Ok(Ok(value)) => match refusal(&value) {
                        Some(failure) => Err(failure),
                        None => Ok(value),
                    },
                    Ok(Err(e)) => Err(classify_service_error(&e)),
                    Err(_) => Err(Failure::Fatal(McpError::Unavailable {
                        server: server.label.clone(),
                        message: format!("{what} did not answer within {CALL_TIMEOUT:?}"),
                    })),
                },
                Err(failure) => Err(failure),
            };
            match attempt {
                Ok(value) => {
                    self.mark_live(principal, server);
                    // What the tool turned out to need is remembered only once a call with it
                    // succeeded, so a refusal alone never widens later requests.
                    if step_up.first_scopes().is_some() {
                        self.learned.insert(learned_key.clone(), scopes.clone());
                    }
                    let stepped = step_up
                        .first_scopes()
                        .cloned()
                        .zip(token.map(|t| t.scopes))
                        .filter(|(from, to)| from != to);
                    return Ok((value, stepped));
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Broken { message, unsent }) => {
                    // A stale session (the server restarted) is worth one fresh attempt; a
                    // call that may have run is not made again unless the tool says that is
                    // harmless (behind a balancer, a replica can die after committing a write).
                    self.drop_session(principal, server);
                    if !unsent && repeat == Repeat::Unsafe {
                        return Err(McpError::Unavailable {
                            server: server.label.clone(),
                            message: format!(
                                "{message}; the call may or may not have run, so it was not \
                                 repeated (check before trying again)"
                            ),
                        });
                    }
                    if retried {
                        return Err(McpError::Unavailable {
                            server: server.label.clone(),
                            message,
                        });
                    }
                    retried = true;
                }
                Err(Failure::Unauthorized(description)) => {
                    self.drop_session(principal, server);
                    // The cache holds it under the scopes asked for (the grant may name them
                    // differently), so the next round trip mints a fresh one.
                    match &server.auth {
                        AuthStrategy::IdJag { target, .. } => {
                            self.broker.forget(principal, target, &scopes).await;
                        }
                        AuthStrategy::OauthSts { resource, .. } => {
                            let target = StsTarget {
                                connection: &server.name,
                                resource,
                            };
                            // The first refusal is revoked at the IdP, which would otherwise
                            // hand the same token back (OKTA.md §1); never a second time.
                            match token.as_ref().filter(|_| !retried) {
                                Some(refused) => {
                                    let refused = &refused.token;
                                    self.broker
                                        .revoke_brokered(principal, target, refused)
                                        .await;
                                }
                                None => self.broker.forget_brokered(principal, target).await,
                            }
                        }
                        AuthStrategy::None => {}
                    }
                    if retried || token.is_none() {
                        return Err(McpError::Unauthorized {
                            server: server.label.clone(),
                            description,
                        });
                    }
                    retried = true;
                }
                Err(Failure::InsufficientScope(needed, description)) => {
                    let Some(token) = token else {
                        return Err(McpError::Scope {
                            server: server.label.clone(),
                            message: format!("asks for a scope, but it is open ({description})"),
                        });
                    };
                    scopes = match step_up.next(&token.scopes, needed.as_ref()) {
                        Ok(wanted) => wanted,
                        Err(reason) => {
                            return Err(McpError::Scope {
                                server: server.label.clone(),
                                message: give_up_message(&reason, &token.scopes, &description),
                            });
                        }
                    };
                    tracing::info!(target: "agent0::audit", connection = %server.name, tool = what, to = %scopes, "stepping up");
                }
            }
        }
    }

    async fn token(
        &self,
        principal: &Principal,
        server: &McpServer,
        scopes: &Scopes,
    ) -> Result<Option<AccessToken>, McpError> {
        match &server.auth {
            AuthStrategy::IdJag { target, .. } => {
                let token = self.broker.access_token(principal, target, scopes).await?;
                if !token.scopes.contains_all(scopes) {
                    return Err(McpError::Scope {
                        server: server.label.clone(),
                        message: format!(
                            "the authorization server granted only {}; {scopes} is needed",
                            token.scopes
                        ),
                    });
                }
                Ok(Some(token))
            }
            AuthStrategy::OauthSts { resource, .. } => {
                let target = StsTarget {
                    connection: &server.name,
                    resource,
                };
                Ok(Some(self.broker.brokered_token(principal, target).await?))
            }
            AuthStrategy::None => Ok(None),
        }
    }

    /// The live session for `token`, opened (MCP `initialize`) when there is none yet or it was
    /// opened with another token.
    async fn session(
        &self,
        principal: &Principal,
        server: &McpServer,
        token: Option<&AccessToken>,
    ) -> Result<Peer<RoleClient>, Failure> {
        let token_id: [u8; 32] = token.map_or([0; 32], |t| {
            Sha256::digest(t.token.expose_secret().as_bytes()).into()
        });
        let key = (principal.subject.clone(), server.name.clone());
        if let Some(peer) = self.live_peer(&key, &token_id) {
            return Ok(peer);
        }
        // Only this (person, connection) waits while its session opens; whoever held the key
        // before may just have opened the one wanted.
        let _opening = self.opening.lock(key.clone()).await;
        if let Some(peer) = self.live_peer(&key, &token_id) {
            return Ok(peer);
        }
        let mut config = StreamableHttpClientTransportConfig::with_uri(server.url.as_str());
        if let Some(token) = token {
            config = config.auth_header(token.token.expose_secret());
        }
        let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
        let info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("agent0", env!("CARGO_PKG_VERSION")),
        );
        let service = match tokio::time::timeout(CALL_TIMEOUT, info.serve(transport)).await {
            Ok(Ok(service)) => service,
            Ok(Err(e)) => {
                return Err(match e.auth_challenge() {
                    Some(challenge) => classify(challenge),
                    None => Failure::Fatal(McpError::Unavailable {
                        server: server.label.clone(),
                        message: e.to_string(),
                    }),
                });
            }
            Err(_) => {
                return Err(Failure::Fatal(McpError::Unavailable {
                    server: server.label.clone(),
                    message: format!("no answer to initialize within {CALL_TIMEOUT:?}"),
                }));
            }
        };
        let peer = service.peer().clone();
        // The replaced session (if any) closes when its last in-flight call lets go of it.
        let replaced = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, Arc::new(LiveSession { token_id, service }));
        drop(replaced);
        Ok(peer)
    }

    /// The open session under `key`, when it was opened with the token `token_id`.
    fn live_peer(&self, key: &SessionKey, token_id: &[u8; 32]) -> Option<Peer<RoleClient>> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .filter(|live| {
                protocol::constant_time::is_equal(live.token_id, token_id)
                    && !live.service.is_transport_closed()
            })
            .map(|live| live.service.peer().clone())
    }

    fn drop_session(&self, principal: &Principal, server: &McpServer) {
        let removed = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(principal.subject.clone(), server.name.clone()));
        drop(removed);
    }

    /// Records that `server` could not be reached (only transport failures: a refusal or a
    /// missing scope means the server answered).
    fn note_failure(&self, principal: &Principal, server: &McpServer, error: &McpError) {
        if !matches!(error, McpError::Unavailable { .. }) {
            return;
        }
        let now = self.clock.now();
        let key = (principal.subject.clone(), server.name.clone());
        self.live.invalidate(&key);
        let mut health = self.health.get(&key).unwrap_or_default();
        health.last_failure_at = Some(now);
        health.last_failed = true;
        self.health.insert(key, health);
    }

    fn mark_live(&self, principal: &Principal, server: &McpServer) {
        let key = (principal.subject.clone(), server.name.clone());
        let mut health = self.health.get(&key).unwrap_or_default();
        health.last_success_at = Some(self.clock.now());
        health.last_failed = false;
        self.health.insert(key.clone(), health);
        let until = self.clock.now() + TOOLS_TTL;
        self.live.insert(key, until);
    }
}

/// How long an undeclared brokered server's `interaction_required` is remembered, given the
/// link's `expires_in`.
fn unconsented_hold(expires_in: Option<u64>) -> i64 {
    expires_in
        .map_or(UNCONSENTED_HOLD, |s| i64::try_from(s).unwrap_or(i64::MAX))
        .clamp(UNCONSENTED_HOLD_MIN, 2 * UNCONSENTED_HOLD)
}

/// A bounded per-person cache whose entries live `ttl` at most.
fn per_person<V: Clone + Send + Sync + 'static>(ttl: Duration) -> Cache<SessionKey, V> {
    Cache::builder()
        .max_capacity(CACHE_CAPACITY)
        .time_to_live(ttl)
        .support_invalidation_closures()
        .build()
}

/// Drops `subject`'s entries from a per-person cache.
fn forget_subject<V: Clone + Send + Sync + 'static>(cache: &Cache<SessionKey, V>, subject: &str) {
    let subject = subject.to_owned();
    // Fails only for a cache built without invalidation closures; these are built with them.
    let _ = cache.invalidate_entries_if(move |(s, _), _| *s == subject);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unconsented_listing_is_remembered_for_the_links_life_within_bounds() {
        assert_eq!(unconsented_hold(None), UNCONSENTED_HOLD);
        assert_eq!(
            unconsented_hold(Some(600)),
            600,
            "idp0's links live 10 minutes"
        );
        assert_eq!(unconsented_hold(Some(1)), UNCONSENTED_HOLD_MIN);
        assert_eq!(unconsented_hold(Some(86_400)), 2 * UNCONSENTED_HOLD);
        assert_eq!(unconsented_hold(Some(u64::MAX)), 2 * UNCONSENTED_HOLD);
    }
}
