//! Delegated access tokens for MCP servers by Cross-App Access (ARCHITECTURE §5.3,
//! draft-ietf-oauth-identity-assertion-authz-grant): the person's ID token is exchanged at the
//! org authorization server for an ID-JAG (RFC 8693, with `audience` = the resource AS issuer
//! and `resource` = the MCP server), which is redeemed at the resource AS with the JWT bearer
//! grant (RFC 7523), both steps by [`TokenClient::exchange_for_access_token`]. The agent
//! authenticates both legs as itself (`private_key_jwt` by default).
//!
//! Access tokens are cached per (person, connection, scope set) until shortly before they expire
//! (a bounded [`TokenCache`], in process by default, or Redis shared by several replicas), with
//! one exchange in flight per key (concurrent callers wait for it; other keys do not) — across
//! replicas too, through a lease ([`crate::shared`]); ID-JAGs are used once and dropped. A warm
//! cache means no IdP round trip.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use protocol::oauth::{ErrorCode, TokenType};
use protocol::token_client::{
    ClientAuth, ClientSetupError, CrossAppAccess, CrossAppAccessError, CrossAppAccessStep,
    IdJagRequest, TokenClient, TokenClientError,
};
use protocol::{Clock, Scopes, UnixTime};
use secrecy::SecretString;

use crate::shared::redis::hashed;
use crate::shared::{Leases, LocalLeases, SharedStateError, Turn, lead_or_follow};
use crate::single_flight::KeyedLocks;

mod cache;
mod sts;

pub use cache::{MokaTokenCache, TOKEN_CAPACITY, TokenCache, TokenKey};
pub use sts::StsTarget;

/// A token is renewed this many seconds before it expires, so no call carries a token that
/// expires in flight.
pub const EXPIRY_MARGIN: i64 = 60;
/// How long one replica may hold an exchange before others take over (the two legs' 15 s HTTP
/// timeouts fit in it with room to spare).
const MINT_LEASE: std::time::Duration = std::time::Duration::from_secs(45);
/// Lifetime assumed when the server does not say (RFC 6749 §5.1 makes `expires_in` optional).
const DEFAULT_LIFETIME: i64 = 300;

/// Where an ID-JAG-protected resource gets its tokens.
#[derive(Debug, Clone)]
pub struct IdJagTarget {
    /// The connection's name (cache key and audit).
    pub connection: String,
    /// The resource authorization server's issuer: the ID-JAG's `audience`.
    pub as_issuer: String,
    /// Its token endpoint, where the ID-JAG is redeemed.
    pub as_token_endpoint: String,
    /// The resource indicator (RFC 8707): the ID-JAG's `resource`.
    pub resource: String,
}

/// The person the agent acts for (no `Debug`: it holds their ID token).
#[derive(Clone)]
pub struct Principal {
    /// Their subject at the IdP.
    pub subject: String,
    /// Display name.
    pub name: String,
    /// Email, when known.
    pub email: Option<String>,
    /// The verified ID token from their login (the subject token of the exchange).
    pub id_token: SecretString,
}

/// A cached access token (no `Debug`).
#[derive(Clone)]
pub struct AccessToken {
    /// The token.
    pub token: SecretString,
    /// What the resource AS granted.
    pub scopes: Scopes,
    /// When it is no longer used.
    pub expires_at: UnixTime,
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The person must act first (brokered consent; draft-parecki-oauth-jwt-grant-interaction).
    #[error("{connection} needs your consent first")]
    InteractionRequired {
        /// The connection.
        connection: String,
        /// Where the person goes to consent.
        interaction_uri: String,
        /// Seconds to wait between retries of the exchange, when the server said.
        interval: Option<u64>,
        /// Seconds the interaction stays open, when the server said.
        expires_in: Option<u64>,
    },
    /// Consent was asked for and is not given yet (`interaction_pending`, or `slow_down`:
    /// the retries came too fast).
    #[error("{connection} is still waiting for your consent")]
    ConsentPending {
        /// The connection.
        connection: String,
        /// Whether the server asked to slow down.
        slow_down: bool,
    },
    /// The person (or the ISV) denied consent (`access_denied`).
    #[error("consent to {connection} was denied")]
    ConsentDenied {
        /// The connection.
        connection: String,
    },
    /// The consent link expired before it was used (`expired_token`).
    #[error("the consent link for {connection} expired")]
    ConsentExpired {
        /// The connection.
        connection: String,
    },
    /// The IdP no longer accepts the person's ID token: they must log in again.
    #[error("your login is no longer accepted by the identity provider; log in again")]
    LoginExpired,
    /// An authorization server refused (the text names which and why, never a token).
    #[error("{0}")]
    Refused(String),
    /// An authorization server could not be reached.
    #[error("{0}")]
    Unavailable(String),
}

/// Mints and caches MCP access tokens.
pub struct TokenBroker {
    client: TokenClient,
    org_token_endpoint: String,
    agent: ClientAuth,
    clock: Arc<dyn Clock>,
    cache: Arc<dyn TokenCache>,
    leases: Arc<dyn Leases>,
    minting: KeyedLocks<TokenKey>,
    /// Moves at every logout: a token minted across one is handed out but not kept.
    forgotten: AtomicU64,
    exchanges: AtomicU64,
    /// Of `exchanges`, the brokered (`oauth-sts`) ones.
    brokered_exchanges: AtomicU64,
    /// The consent links the IdP handed out, per person and brokered connection, while open.
    interactions: moka::sync::Cache<TokenKey, sts::OpenInteraction>,
    /// Where brokered (`oauth-sts`) exchanges go, when not `org_token_endpoint`.
    sts_token_endpoint: Option<String>,
}

impl TokenBroker {
    /// A broker exchanging at `org_token_endpoint`, authenticating as `agent`, keeping tokens
    /// in process (at most [`TOKEN_CAPACITY`]).
    /// Fails when the token endpoint's HTTP client cannot be built with its settings (no
    /// redirects, a timeout): it never falls back to one without them.
    pub fn new(
        org_token_endpoint: String,
        agent: ClientAuth,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ClientSetupError> {
        let cache = Arc::new(MokaTokenCache::new(TOKEN_CAPACITY, clock.clone()));
        Self::with_cache(org_token_endpoint, agent, clock, cache)
    }

    /// A broker keeping its tokens in `cache` (one replica: no cross-replica leases).
    pub fn with_cache(
        org_token_endpoint: String,
        agent: ClientAuth,
        clock: Arc<dyn Clock>,
        cache: Arc<dyn TokenCache>,
    ) -> Result<Self, ClientSetupError> {
        Self::shared(
            org_token_endpoint,
            agent,
            clock,
            cache,
            Arc::new(LocalLeases),
        )
    }

    /// A broker keeping its tokens in `cache`, doing each exchange on one replica of those that
    /// share `leases` (the others wait for the token to appear in `cache`).
    pub fn shared(
        org_token_endpoint: String,
        agent: ClientAuth,
        clock: Arc<dyn Clock>,
        cache: Arc<dyn TokenCache>,
        leases: Arc<dyn Leases>,
    ) -> Result<Self, ClientSetupError> {
        Ok(Self {
            client: TokenClient::new()?,
            org_token_endpoint,
            agent,
            clock,
            cache,
            leases,
            minting: KeyedLocks::new(),
            forgotten: AtomicU64::new(0),
            exchanges: AtomicU64::new(0),
            brokered_exchanges: AtomicU64::new(0),
            interactions: sts::interactions_cache(),
            sts_token_endpoint: None,
        })
    }

    /// The org AS token endpoint.
    pub fn org_token_endpoint(&self) -> &str {
        &self.org_token_endpoint
    }

    /// How many exchanges this broker has made, ID-JAG and brokered (each is an IdP round
    /// trip).
    pub fn exchange_count(&self) -> u64 {
        self.exchanges.load(Ordering::Relaxed)
    }

    /// How many of those were brokered (`oauth-sts`) exchanges.
    pub fn brokered_exchange_count(&self) -> u64 {
        self.brokered_exchanges.load(Ordering::Relaxed)
    }

    /// A token for `principal` at `target` with `scopes`: from the cache, or minted (once, however
    /// many callers ask at the same time, on this replica or on others sharing the cache).
    pub async fn access_token(
        &self,
        principal: &Principal,
        target: &IdJagTarget,
        scopes: &Scopes,
    ) -> Result<AccessToken, TokenError> {
        let key = token_key(principal, target, scopes);
        self.cached_or_minted(key, || self.mint(principal, target, scopes))
            .await
    }

    /// The token under `key` from the cache, or minted by `mint` (once, however many callers
    /// ask at the same time, on this replica or on others sharing the cache) and kept unless a
    /// logout happened meanwhile.
    async fn cached_or_minted<F, Fut>(
        &self,
        key: TokenKey,
        mint: F,
    ) -> Result<AccessToken, TokenError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, TokenError>>,
    {
        if let Some(token) = self.cache.get(&key).await.map_err(cache_down)? {
            return Ok(token);
        }
        // In process first, so one replica sends one contender to the shared lease.
        let _minting = self.minting.lock(key.clone()).await;
        // Whoever held the key before may have just minted it.
        if let Some(token) = self.cache.get(&key).await.map_err(cache_down)? {
            return Ok(token);
        }
        let lease_name = format!(
            "token:{}:{}:{}",
            hashed(&key.subject),
            hashed(&key.connection),
            hashed(&key.scopes)
        );
        let minted_elsewhere = || self.cache.get(&key);
        let lease = match lead_or_follow(
            &self.leases,
            &lease_name,
            MINT_LEASE,
            "getting this token",
            minted_elsewhere,
        )
        .await
        .map_err(cache_down)?
        {
            Turn::Done(token) => return Ok(token),
            Turn::Lead(lease) => lease,
        };
        let generation = self.forgotten.load(Ordering::SeqCst);
        let minted = mint().await;
        let kept = match &minted {
            Ok(token) if self.forgotten.load(Ordering::SeqCst) == generation => {
                self.cache.insert(key, token.clone()).await
            }
            _ => Ok(()),
        };
        let released = lease.release().await;
        let token = minted?;
        if let Err(e) = kept.and(released) {
            // The token is good; only the sharing failed (the others mint their own).
            tracing::warn!(error = %e, "a minted token could not be shared");
        }
        Ok(token)
    }

    /// Drops a token the resource refused (revoked, or the resource's keys changed).
    pub async fn forget(&self, principal: &Principal, target: &IdJagTarget, scopes: &Scopes) {
        if let Err(e) = self
            .cache
            .invalidate(&token_key(principal, target, scopes))
            .await
        {
            tracing::warn!(error = %e, "a refused token could not be dropped from the cache");
        }
    }

    /// Drops every token of `subject` (at logout).
    pub async fn forget_person(&self, subject: &str) {
        self.forgotten.fetch_add(1, Ordering::SeqCst);
        let person = subject.to_owned();
        // Fails only for a cache built without invalidation closures; this one has them.
        let _ = self
            .interactions
            .invalidate_entries_if(move |key, _| key.subject == person);
        if let Err(e) = self.cache.invalidate_person(subject).await {
            tracing::warn!(error = %e, "a person's tokens could not be dropped at logout");
        }
    }

    /// Whether `subject` holds an unexpired token for `connection` (the panel's LIVE; `false`
    /// when the cache cannot be reached).
    pub async fn has_live_token(&self, subject: &str, connection: &str) -> bool {
        self.cache
            .has_live(subject, connection)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the token cache could not be read");
                false
            })
    }

    #[tracing::instrument(skip_all, fields(user = %principal.subject, connection = %target.connection, scope = %scopes))]
    async fn mint(
        &self,
        principal: &Principal,
        target: &IdJagTarget,
        scopes: &Scopes,
    ) -> Result<AccessToken, TokenError> {
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        let scope = scopes.to_string();
        let exchange = CrossAppAccess {
            org_token_endpoint: &self.org_token_endpoint,
            resource_token_endpoint: &target.as_token_endpoint,
            request: IdJagRequest {
                subject_token: &principal.id_token,
                subject_token_type: TokenType::IdToken,
                audience: &target.as_issuer,
                resource: Some(&target.resource),
                scope: (!scopes.is_empty()).then_some(scope.as_str()),
            },
        };
        let grant = self
            .client
            .exchange_for_access_token(&self.agent, &exchange)
            .await
            .map_err(|e| refused(e, &target.connection))?;
        // The ID-JAG is spent: only the access token is kept.
        let response = grant.access;
        let granted = response.granted_scopes(scopes).map_err(|e| {
            TokenError::Refused(format!(
                "{} granted an unreadable scope: {e}",
                target.as_issuer
            ))
        })?;
        let lifetime = response.expires_in.unwrap_or(DEFAULT_LIFETIME);
        let expires_at = usable_until(self.clock.now(), lifetime);
        tracing::info!(target: "agent0::audit", granted = %granted, expires_in = lifetime, "access token minted");
        Ok(AccessToken {
            token: response.access_token,
            scopes: granted,
            expires_at,
        })
    }
}

/// The shared cache could not be used: the turn fails fast, saying so.
fn cache_down(error: SharedStateError) -> TokenError {
    tracing::warn!(error = %error, "the shared token cache failed");
    TokenError::Unavailable(
        "the agent's shared token store cannot be reached right now; try again shortly".into(),
    )
}

fn token_key(principal: &Principal, target: &IdJagTarget, scopes: &Scopes) -> TokenKey {
    TokenKey {
        subject: principal.subject.clone(),
        connection: target.connection.clone(),
        scopes: scopes.to_string(),
    }
}

/// When a token granted at `now` for `lifetime` seconds stops being used: [`EXPIRY_MARGIN`]
/// before it expires, or halfway through a lifetime too short for that margin.
fn usable_until(now: UnixTime, lifetime: i64) -> UnixTime {
    now + (lifetime - EXPIRY_MARGIN).max(lifetime / 2)
}

/// Who answers at a Cross-App Access step, as the person is told.
fn server_at(step: CrossAppAccessStep) -> &'static str {
    match step {
        CrossAppAccessStep::IdJag => "the identity provider",
        CrossAppAccessStep::AccessToken => "the authorization server",
    }
}

/// Maps a token endpoint failure to what the person and the model are told. The IdP refusing
/// the ID token (`invalid_grant` at step 1) means the login is no longer good.
fn refused(error: CrossAppAccessError, connection: &str) -> TokenError {
    let CrossAppAccessError { step, source } = error;
    let who = server_at(step);
    match source {
        TokenClientError::OAuth { error, .. } => match (&error.error, error.interaction_uri) {
            (_, Some(interaction_uri)) => TokenError::InteractionRequired {
                connection: connection.to_owned(),
                interaction_uri,
                interval: error.interval,
                expires_in: error.expires_in,
            },
            (ErrorCode::InvalidGrant, None) if step == CrossAppAccessStep::IdJag => {
                TokenError::LoginExpired
            }
            (code, None) => TokenError::Refused(format!(
                "{who} refused access to {connection}: {code}{}",
                error
                    .error_description
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )),
        },
        TokenClientError::Http { endpoint, message } => TokenError::Unavailable(format!(
            "{who} at {endpoint} could not be reached: {message}"
        )),
        e @ (TokenClientError::Invalid { .. } | TokenClientError::Signing(_)) => {
            TokenError::Refused(format!("getting a token for {connection} failed: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::oauth::ErrorResponse;

    use super::*;

    fn oauth(code: ErrorCode, interaction_uri: Option<&str>) -> TokenClientError {
        let mut error = ErrorResponse::new(code, "because");
        error.interaction_uri = interaction_uri.map(str::to_owned);
        TokenClientError::OAuth {
            endpoint: "http://idp/token".into(),
            status: 400,
            error,
        }
    }

    #[test]
    fn tokens_stop_being_used_a_margin_before_they_expire() {
        assert_eq!(usable_until(1_000, 300), 1_000 + 300 - EXPIRY_MARGIN);
        assert_eq!(usable_until(1_000, 60), 1_030, "half of a short lifetime");
    }

    fn at(step: CrossAppAccessStep, source: TokenClientError) -> CrossAppAccessError {
        CrossAppAccessError { step, source }
    }

    #[test]
    fn refusals_say_what_the_person_must_do() {
        use CrossAppAccessStep::{AccessToken, IdJag};
        assert!(matches!(
            refused(at(IdJag, oauth(ErrorCode::InvalidGrant, None)), "todo0"),
            TokenError::LoginExpired
        ));
        // The resource AS refusing an ID-JAG is not the person's login.
        let error = refused(
            at(AccessToken, oauth(ErrorCode::InvalidGrant, None)),
            "todo0",
        );
        assert_eq!(
            error.to_string(),
            "the authorization server refused access to todo0: invalid_grant (because)"
        );
        assert!(matches!(
            refused(
                at(IdJag, oauth(ErrorCode::InteractionRequired, Some("https://idp/consent"))),
                "github",
            ),
            TokenError::InteractionRequired { connection, interaction_uri, .. }
                if connection == "github" && interaction_uri == "https://idp/consent"
        ));
        let unreachable = TokenClientError::Http {
            endpoint: "http://idp/token".into(),
            message: "connection refused".into(),
        };
        assert!(matches!(
            refused(at(IdJag, unreachable), "todo0"),
            TokenError::Unavailable(m) if m.contains("could not be reached")
        ));
    }
}
