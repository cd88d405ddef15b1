//! Strict JWT verification (RFC 7519 §7.2, RFC 8725 best practices) against a key set.
//!
//! Order of checks: size limit before any parsing; header parsed by us (so `alg: none` and HMAC
//! are refused by name, and any `crit` header is refused: RFC 7515 §4.1.11 lets a recipient
//! accept only extensions it understands, and we understand none); key found by `kid` (a JWKS cache may refresh once, rate-limited); the
//! token's `alg` must be the key's pinned algorithm; signature; `typ`; then `iss`, `aud`, `exp`,
//! `nbf` and `iat` against an injected [`Clock`]. Warm verification does no I/O.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::claims::Audience;
use crate::clock::Clock;
use crate::keys::pinned_algorithm;

/// Tokens longer than this are refused before parsing.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY_SECONDS: i64 = 30;

/// Why a token was refused. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Larger than the configured limit.
    #[error("token exceeds {0} bytes")]
    TooLarge(usize),
    /// Not a compact JWS with a JSON header and payload.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is `none`, an HMAC algorithm, or unknown.
    #[error("algorithm {0:?} is not accepted")]
    DisallowedAlgorithm(String),
    /// The header has a `crit` parameter; we understand no critical extension (RFC 7515 §4.1.11).
    #[error("token header names critical extensions we do not understand")]
    UnsupportedCritical,
    /// The header has no `kid`.
    #[error("token header has no kid")]
    MissingKid,
    /// No key with that `kid`, even after a refresh.
    #[error("unknown signing key")]
    UnknownKid,
    /// `alg` differs from the key's algorithm.
    #[error("algorithm {found:?} does not match the key's {expected:?}")]
    AlgorithmMismatch {
        /// The key's algorithm.
        expected: Algorithm,
        /// The token's algorithm.
        found: Algorithm,
    },
    /// The signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// `typ` is not what this kind of token must carry.
    #[error("unexpected token type {0:?}")]
    WrongType(Option<String>),
    /// `iss` differs.
    #[error("unexpected issuer")]
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    #[error("unexpected audience")]
    WrongAudience,
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// Before `nbf`, or `iat` in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// A required claim is absent or mistyped.
    #[error("missing or invalid claim {0}")]
    Claim(&'static str),
    /// The key set could not be fetched.
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

/// A verification key with the algorithm it is pinned to.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The one algorithm this key verifies.
    pub alg: Algorithm,
    /// The key.
    pub key: Arc<DecodingKey>,
}

/// Keys by `kid`, built from a JWKS. Keys without `kid`, symmetric keys and keys whose type
/// contradicts their `alg` are left out.
#[derive(Clone, Default)]
pub struct KeySet(HashMap<String, VerifyingKey>);

impl KeySet {
    /// Reads the usable keys of a JWKS.
    pub fn from_jwks(jwks: &JwkSet) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let alg = pinned_algorithm(jwk).ok()?;
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((
                    kid,
                    VerifyingKey {
                        alg,
                        key: Arc::new(key),
                    },
                ))
            })
            .collect();
        Self(keys)
    }

    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<VerifyingKey> {
        self.0.get(kid).cloned()
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no usable keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Finds the verification key for a `kid`.
#[async_trait]
pub trait KeyResolver: Send + Sync {
    /// The key, or [`JwtError::UnknownKid`].
    async fn resolve(&self, kid: &str) -> Result<VerifyingKey, JwtError>;
}

/// A key set held in memory (for an issuer in the same process, or pinned configuration).
#[derive(Default)]
pub struct StaticKeys(RwLock<KeySet>);

impl StaticKeys {
    /// Keys from a JWKS.
    pub fn new(jwks: &JwkSet) -> Self {
        Self(RwLock::new(KeySet::from_jwks(jwks)))
    }

    /// Replaces the keys (after a rotation).
    pub fn replace(&self, jwks: &JwkSet) {
        let keys = KeySet::from_jwks(jwks);
        if let Ok(mut guard) = self.0.write() {
            *guard = keys;
        }
    }
}

#[async_trait]
impl KeyResolver for StaticKeys {
    async fn resolve(&self, kid: &str) -> Result<VerifyingKey, JwtError> {
        self.0
            .read()
            .ok()
            .and_then(|keys| keys.get(kid))
            .ok_or(JwtError::UnknownKid)
    }
}

/// A remote JWKS, fetched lazily and refetched when an unknown `kid` appears, at most once per
/// `min_refresh_interval` (so a flood of forged `kid`s cannot turn into a flood of fetches).
pub struct RemoteJwks {
    http: reqwest::Client,
    jwks_uri: String,
    keys: RwLock<KeySet>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_refresh_interval: Duration,
}

impl RemoteJwks {
    /// A cache for `jwks_uri`; nothing is fetched until the first unknown `kid` or [`Self::refresh`].
    pub fn new(
        http: reqwest::Client,
        jwks_uri: impl Into<String>,
        min_refresh_interval: Duration,
    ) -> Self {
        Self {
            http,
            jwks_uri: jwks_uri.into(),
            keys: RwLock::new(KeySet::default()),
            last_fetch: tokio::sync::Mutex::new(None),
            min_refresh_interval,
        }
    }

    /// Discovers `issuer`'s metadata (OIDC / RFC 8414, issuer checked) and caches its JWKS.
    pub async fn discover(
        http: reqwest::Client,
        issuer: &str,
        min_refresh_interval: Duration,
    ) -> Result<Self, crate::discovery::DiscoveryError> {
        let metadata = crate::discovery::discover(&http, issuer).await?;
        let jwks_uri = metadata.jwks_uri.ok_or_else(|| {
            crate::discovery::DiscoveryError::NotFound(format!("{issuer} (no jwks_uri)"))
        })?;
        Ok(Self::new(http, jwks_uri, min_refresh_interval))
    }

    /// The JWKS URL.
    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// Fetches the JWKS now (warm-up at start).
    pub async fn refresh(&self) -> Result<(), JwtError> {
        let mut last = self.last_fetch.lock().await;
        self.fetch_locked(&mut last).await
    }

    async fn fetch_locked(&self, last: &mut Option<Instant>) -> Result<(), JwtError> {
        *last = Some(Instant::now());
        let jwks: JwkSet = crate::discovery::get_json(&self.http, &self.jwks_uri)
            .await
            .map_err(|e| JwtError::KeysUnavailable(e.to_string()))?;
        let keys = KeySet::from_jwks(&jwks);
        if let Ok(mut guard) = self.keys.write() {
            *guard = keys;
        }
        Ok(())
    }

    fn cached(&self, kid: &str) -> Option<VerifyingKey> {
        self.keys.read().ok().and_then(|keys| keys.get(kid))
    }
}

#[async_trait]
impl KeyResolver for RemoteJwks {
    async fn resolve(&self, kid: &str) -> Result<VerifyingKey, JwtError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut last = self.last_fetch.lock().await;
        // Another task may have refreshed while we waited for the lock.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let may_fetch = last.is_none_or(|at| at.elapsed() >= self.min_refresh_interval);
        if !may_fetch {
            return Err(JwtError::UnknownKid);
        }
        self.fetch_locked(&mut last).await?;
        self.cached(kid).ok_or(JwtError::UnknownKid)
    }
}

/// Which `typ` header values a kind of token may carry (compared case-insensitively, with an
/// optional `application/` prefix, RFC 7515 §4.1.9).
#[derive(Debug, Clone, Copy)]
pub struct TypeRule {
    allowed: &'static [&'static str],
    allow_absent: bool,
}

impl TypeRule {
    /// Any `typ`, or none (ID tokens, client assertions).
    pub const ANY: TypeRule = TypeRule {
        allowed: &[],
        allow_absent: true,
    };
    /// Exactly `oauth-id-jag+jwt`.
    pub const ID_JAG: TypeRule = TypeRule {
        allowed: &[crate::oauth::ID_JAG_JWT_TYPE],
        allow_absent: false,
    };
    /// RFC 9068 `at+jwt`, or Okta's access tokens, which carry no `typ` (or `JWT`).
    pub const ACCESS_TOKEN: TypeRule = TypeRule {
        allowed: &[crate::oauth::ACCESS_TOKEN_JWT_TYPE, "JWT"],
        allow_absent: true,
    };

    fn accepts(&self, typ: Option<&str>) -> bool {
        match typ {
            None => self.allow_absent,
            Some(_) if self.allowed.is_empty() => true,
            Some(typ) => {
                let lower = typ.to_ascii_lowercase();
                let bare = lower.strip_prefix("application/").unwrap_or(&lower);
                self.allowed.iter().any(|a| a.eq_ignore_ascii_case(bare))
            }
        }
    }
}

/// What a token must satisfy beyond its signature.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// Exact `iss`.
    pub issuer: String,
    /// `aud` must contain at least one of these.
    pub audiences: Vec<String>,
    /// Allowed `typ` values.
    pub typ: TypeRule,
    /// Clock skew tolerance in seconds.
    pub leeway: i64,
    /// Size limit.
    pub max_bytes: usize,
}

impl Expectations {
    /// Default leeway and size limit.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, typ: TypeRule) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            typ,
            leeway: DEFAULT_LEEWAY_SECONDS,
            max_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// Also accepts `audience` (e.g. a token endpoint URL besides the issuer).
    pub fn or_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }
}

/// A verified token.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    /// The key that signed it.
    pub kid: String,
    /// Its algorithm.
    pub alg: Algorithm,
    /// Its claims.
    pub claims: T,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    /// Whether the header has a `crit` parameter at all (any value, even `null` or an empty
    /// list, which §4.1.11 forbids anyway): set by [`read_header`].
    #[serde(skip)]
    has_crit: bool,
}

#[derive(Deserialize)]
struct RegisteredClaims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
}

/// Verifies JWTs against one key source with an injected clock.
#[derive(Clone)]
pub struct JwtVerifier {
    keys: Arc<dyn KeyResolver>,
    clock: Arc<dyn Clock>,
}

impl JwtVerifier {
    /// A verifier over `keys`.
    pub fn new(keys: Arc<dyn KeyResolver>, clock: Arc<dyn Clock>) -> Self {
        Self { keys, clock }
    }

    /// Verifies `token` and returns its claims as `T`.
    pub async fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        expect: &Expectations,
    ) -> Result<Verified<T>, JwtError> {
        if token.len() > expect.max_bytes {
            return Err(JwtError::TooLarge(expect.max_bytes));
        }
        let header = read_header(token)?;
        if header.has_crit {
            return Err(JwtError::UnsupportedCritical);
        }
        let alg = accepted_algorithm(&header.alg)?;
        let kid = header.kid.ok_or(JwtError::MissingKid)?;
        let key = self.keys.resolve(&kid).await?;
        if key.alg != alg {
            return Err(JwtError::AlgorithmMismatch {
                expected: key.alg,
                found: alg,
            });
        }
        let mut validation = Validation::new(alg);
        // Time, issuer and audience are checked below against our clock, with clearer errors.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => JwtError::BadSignature,
                _ => JwtError::Malformed("undecodable payload"),
            })?;
        if !expect.typ.accepts(header.typ.as_deref()) {
            return Err(JwtError::WrongType(header.typ));
        }
        let registered: RegisteredClaims = serde_json::from_value(data.claims.clone())
            .map_err(|_| JwtError::Malformed("registered claims have the wrong types"))?;
        self.check_registered(&registered, expect)?;
        let claims =
            serde_json::from_value(data.claims).map_err(|_| JwtError::Claim("claim set"))?;
        Ok(Verified { kid, alg, claims })
    }

    fn check_registered(
        &self,
        claims: &RegisteredClaims,
        expect: &Expectations,
    ) -> Result<(), JwtError> {
        let now = self.clock.now();
        if claims.iss.as_deref() != Some(expect.issuer.as_str()) {
            return Err(JwtError::WrongIssuer);
        }
        match &claims.aud {
            Some(aud) if expect.audiences.iter().any(|a| aud.contains(a)) => {}
            _ => return Err(JwtError::WrongAudience),
        }
        let exp = claims.exp.ok_or(JwtError::Claim("exp"))?;
        if now > exp.saturating_add(expect.leeway) {
            return Err(JwtError::Expired);
        }
        let not_before = [claims.nbf, claims.iat].into_iter().flatten();
        for t in not_before {
            if t > now.saturating_add(expect.leeway) {
                return Err(JwtError::NotYetValid);
            }
        }
        Ok(())
    }
}

fn read_header(token: &str) -> Result<RawHeader, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("not a compact JWS"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwtError::Malformed("header is not base64url"))?;
    let not_json = || JwtError::Malformed("header is not a JSON object");
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|_| not_json())?;
    let has_crit = object.contains_key("crit");
    let mut header: RawHeader =
        serde_json::from_value(serde_json::Value::Object(object)).map_err(|_| not_json())?;
    header.has_crit = has_crit;
    Ok(header)
}

/// Asymmetric signature algorithms only: `none` and HMAC are refused by name.
fn accepted_algorithm(alg: &str) -> Result<Algorithm, JwtError> {
    use std::str::FromStr;
    let refused = || JwtError::DisallowedAlgorithm(alg.chars().take(16).collect());
    let parsed = Algorithm::from_str(alg).map_err(|_| refused())?;
    match parsed {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Err(refused()),
        other => Ok(other),
    }
}

/// Decodes a JWT's claims WITHOUT verifying anything, for display of tokens we already trust
/// (e.g. printing what the CLI received). Never use for a decision.
pub fn decode_unverified(token: &str) -> Result<serde_json::Value, JwtError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or(JwtError::Malformed("not a compact JWS"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwtError::Malformed("payload is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed("payload is not JSON"))
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
