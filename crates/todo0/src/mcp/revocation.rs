//! Verified tokens, and how todo0 learns that one was revoked (RFC 7662 token introspection;
//! RFC 7009 revocation happens at the authorization server).
//!
//! A verified access token is remembered by its SHA-256 until it expires (`TokenCache`), so a
//! warm call costs a hash, not a signature check, and never waits on the network. When the MCP
//! server has client credentials, a background sweep (`spawn_sweep`) asks the authorization
//! server's introspection endpoint, every [`RevocationConfig::interval`], about each cached token
//! used since the previous sweep; one that comes back `active: false` is dropped from the cache
//! and denied until it would have expired. A revoked token therefore stops working within one
//! interval plus one sweep's duration of its next use.
//!
//! When introspection fails (the authorization server is unreachable or answers an error), the
//! tokens stay accepted and are asked about again at the next sweep: tokens are short-lived
//! signed JWTs whose signature, audience and expiry are still checked, so an outage of the
//! authorization server delays revocation rather than taking todo0 down. One warning is logged
//! per failed sweep, without any token.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use moka::policy::Expiry;
use moka::sync::Cache;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::auth::Caller;

/// Verified tokens kept at most (least recently used dropped first: they are only re-verified).
const VERIFIED_CAPACITY: u64 = 10_000;
/// Revoked tokens remembered at most. One that is forgotten early is verified again, marked
/// used, and found revoked again by the next sweep.
const DENIED_CAPACITY: u64 = 100_000;
/// The largest introspection response read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A verified token.
pub(crate) struct Verified {
    pub(crate) caller: Caller,
    /// `exp`, Unix seconds.
    pub(crate) exp: i64,
    /// Kept for introspection only; never logged.
    token: SecretString,
    /// Used since the last sweep.
    used: AtomicBool,
    /// How long the cache keeps it (until `exp`).
    ttl: Duration,
}

impl Verified {
    pub(crate) fn mark_used(&self) {
        self.used.store(true, Ordering::Relaxed);
    }
}

struct UntilExpiry;

impl Expiry<[u8; 32], Arc<Verified>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Verified>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl Expiry<[u8; 32], Duration> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        ttl: &Duration,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(*ttl)
    }
}

/// Verified tokens and revoked ones, by SHA-256 of the token.
pub(crate) struct TokenCache {
    verified: Cache<[u8; 32], Arc<Verified>>,
    denied: Cache<[u8; 32], Duration>,
}

impl TokenCache {
    pub(crate) fn new() -> Self {
        Self {
            verified: Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .expire_after(UntilExpiry)
                .build(),
            denied: Cache::builder()
                .max_capacity(DENIED_CAPACITY)
                .expire_after(UntilExpiry)
                .build(),
        }
    }

    pub(crate) fn is_denied(&self, key: &[u8; 32]) -> bool {
        self.denied.contains_key(key)
    }

    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<Arc<Verified>> {
        self.verified.get(key)
    }

    /// Remembers a token verified now, valid for `ttl` more (marked used).
    pub(crate) fn insert(
        &self,
        key: [u8; 32],
        token: &str,
        caller: Caller,
        exp: i64,
        ttl: Duration,
    ) {
        let verified = Verified {
            caller,
            exp,
            token: SecretString::from(token.to_owned()),
            used: AtomicBool::new(true),
            ttl,
        };
        self.verified.insert(key, Arc::new(verified));
    }

    /// Drops a token and denies it for `ttl`.
    fn deny(&self, key: [u8; 32], ttl: Duration) {
        self.denied.insert(key, ttl);
        self.verified.invalidate(&key);
    }

    /// The tokens used since the last call, their flags cleared.
    fn take_used(&self) -> Vec<([u8; 32], Arc<Verified>)> {
        self.verified
            .iter()
            .filter(|(_, v)| v.used.swap(false, Ordering::Relaxed))
            .map(|(k, v)| (*k, v))
            .collect()
    }

    /// Cached tokens (tests and diagnostics).
    pub(crate) fn len(&self) -> u64 {
        self.verified.run_pending_tasks();
        self.verified.entry_count()
    }
}

/// How revoked tokens are found: the introspection endpoint and this server's credentials there.
#[derive(Clone)]
pub struct RevocationConfig {
    /// The authorization server's `introspection_endpoint` (RFC 8414).
    pub introspection_endpoint: String,
    /// This server's client at the authorization server (`--client-id`, `OKTA_CLIENT_ID`).
    pub client_id: String,
    /// Its secret (`client_secret_basic`).
    pub client_secret: SecretString,
    /// Time between sweeps (`--revocation-check-interval`).
    pub interval: Duration,
    /// Introspection requests in flight at once.
    pub concurrency: usize,
    http: reqwest::Client,
}

impl std::fmt::Debug for RevocationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationConfig")
            .field("introspection_endpoint", &self.introspection_endpoint)
            .field("client_id", &self.client_id)
            .field("interval", &self.interval)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl RevocationConfig {
    /// The default time between sweeps.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
    /// The default number of introspections in flight.
    pub const DEFAULT_CONCURRENCY: usize = 8;
    /// How long one introspection may take.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

    /// A configuration with the defaults; fails when the HTTP client cannot be built (it never
    /// falls back to one without its timeout and no-redirect policy).
    pub fn new(
        introspection_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Result<Self, reqwest::Error> {
        let http = protocol::trust::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Self::REQUEST_TIMEOUT)
            .build()?;
        Ok(Self {
            introspection_endpoint: introspection_endpoint.into(),
            client_id: client_id.into(),
            client_secret,
            interval: Self::DEFAULT_INTERVAL,
            concurrency: Self::DEFAULT_CONCURRENCY,
            http,
        })
    }
}

/// Why one introspection gave no answer (never holds the token).
#[derive(Debug, thiserror::Error)]
enum IntrospectionError {
    #[error("introspection request failed: {0}")]
    Http(String),
    #[error("introspection endpoint answered HTTP {0}")]
    Status(u16),
    #[error("introspection response is not RFC 7662 JSON")]
    Invalid,
}

#[derive(Deserialize)]
struct Introspection {
    active: bool,
}

/// RFC 7662 §2.1: `token` and `token_type_hint`, the client authenticated by HTTP Basic.
async fn is_active(
    config: &RevocationConfig,
    token: &SecretString,
) -> Result<bool, IntrospectionError> {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let response = config
        .http
        .post(&config.introspection_endpoint)
        .basic_auth(
            encode(&config.client_id),
            Some(encode(config.client_secret.expose_secret())),
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&[
            ("token", token.expose_secret()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .map_err(|e| IntrospectionError::Http(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(IntrospectionError::Status(response.status().as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Err(IntrospectionError::Invalid);
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| IntrospectionError::Http(e.without_url().to_string()))?;
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(IntrospectionError::Invalid);
    }
    let parsed: Introspection =
        serde_json::from_slice(&body).map_err(|_| IntrospectionError::Invalid)?;
    Ok(parsed.active)
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Tokens asked about.
    pub checked: usize,
    /// Found inactive, now denied.
    pub revoked: usize,
    /// Without an answer (asked again next time).
    pub failed: usize,
}

/// One sweep: introspects the tokens used since the last one, `concurrency` at a time.
pub(crate) async fn sweep(cache: &TokenCache, config: &RevocationConfig, now: i64) -> SweepReport {
    let used = cache.take_used();
    let limit = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (key, verified) in used {
        let (limit, config) = (limit.clone(), config.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let outcome = is_active(&config, &verified.token).await;
            (key, verified, outcome)
        });
    }
    let mut report = SweepReport::default();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let Ok((key, verified, outcome)) = joined else {
            report.failed += 1;
            continue;
        };
        report.checked += 1;
        match outcome {
            Ok(true) => {}
            Ok(false) => {
                report.revoked += 1;
                let left = u64::try_from(verified.exp.saturating_sub(now)).unwrap_or(0);
                // Denied a minute past `exp`, beyond any clock leeway.
                cache.deny(key, Duration::from_secs(left.saturating_add(60)));
                tracing::info!(
                    client_id = verified.caller.client_id.as_deref().unwrap_or("-"),
                    "access token revoked at the authorization server; refused from now on"
                );
            }
            Err(e) => {
                report.failed += 1;
                // Asked again at the next sweep.
                verified.mark_used();
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        tracing::warn!(
            failed = report.failed,
            checked = report.checked,
            error = %e,
            "could not check tokens for revocation; they stay accepted until the next sweep"
        );
    }
    report
}

/// Runs [`sweep`] every `config.interval` while `cache` is alive.
pub(crate) fn spawn_sweep(
    cache: Weak<TokenCache>,
    config: RevocationConfig,
    clock: Arc<dyn protocol::Clock>,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::error!("no async runtime: revoked access tokens will NOT be detected");
        return;
    };
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(cache) = cache.upgrade() else {
                return;
            };
            sweep(&cache, &config, clock.now()).await;
        }
    });
}
