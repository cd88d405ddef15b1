//! agent0's shared state on Redis (`redis` crate, one auto-reconnecting `ConnectionManager`):
//!
//! - `{prefix}session:{sha256(id)}` — a session record (JSON), `SET NX EX` until the session
//!   ends, replaced with `SET XX KEEPTTL` (a logged-out session is never brought back);
//! - `{prefix}token:{h(subject)}:{h(connection)}:{h(scopes)}` — an access token (JSON), `PX`
//!   until its usable end (`exp` less the margin), with `{prefix}token-person:{h(subject)}`
//!   (a hash: token key → `h(connection)`) to find a person's tokens at logout and for the
//!   panel; `h` is a truncated SHA-256, so subjects and scopes are not in key names;
//! - `{prefix}lease:{name}` — a lease, `SET NX PX` with a random token, released by a
//!   compare-and-delete script.
//!
//! Every command has a deadline ([`COMMAND_TIMEOUT`]): with Redis gone, a request fails fast
//! (503) and the manager reconnects by itself when Redis is back. Values are never logged.

use std::sync::Arc;
use std::time::Duration;

use protocol::{Clock, Scopes, UnixTime};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Lease, Leases, SharedStateError, redact_url};
use crate::approvals::{APPROVAL_LIFETIME, ApprovalKey, ApprovalStore};
use crate::session::{Session, SessionStore, StoredSession};
use crate::tokens::{AccessToken, TokenCache, TokenKey};

/// The key prefix of a production deployment.
pub const DEFAULT_PREFIX: &str = "agent0:";
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may take, reconnection included.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a person's token index is kept after its last token was added.
const PERSON_INDEX_TTL: u64 = 24 * 3600;

/// Extends a lease only if it is still the caller's.
const RENEW: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";

/// Releases a lease only if it is still the caller's.
const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

/// A truncated SHA-256 (hex) of `value`: keys name what they hold without showing it.
pub(crate) fn hashed(value: &str) -> String {
    Sha256::digest(value.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One shared connection with a key prefix.
#[derive(Clone)]
pub struct RedisConn {
    manager: ConnectionManager,
    /// For connections of their own (a pub/sub subscription cannot share the manager's).
    client: redis::Client,
    prefix: Arc<str>,
    shown_url: Arc<str>,
}

impl RedisConn {
    /// Connects to `url` and checks that Redis answers (`PING`), within [`CONNECT_TIMEOUT`].
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, SharedStateError> {
        let shown = redact_url(url);
        let client = redis::Client::open(url).map_err(|e| SharedStateError::Url {
            url: shown.clone(),
            message: e.to_string(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let unavailable = |message: String| SharedStateError::Unavailable {
            url: shown.clone(),
            message,
        };
        let manager = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| unavailable("no answer in time".to_owned()))?
        .map_err(|e| unavailable(e.to_string()))?;
        let conn = Self {
            manager,
            client,
            prefix: prefix.into(),
            shown_url: shown.as_str().into(),
        };
        conn.query::<String>(&mut redis::cmd("PING")).await?;
        Ok(conn)
    }

    /// The URL without its password.
    pub fn shown_url(&self) -> &str {
        &self.shown_url
    }

    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// A new pub/sub connection, within [`CONNECT_TIMEOUT`].
    pub(crate) async fn subscriber(&self) -> Result<redis::aio::PubSub, SharedStateError> {
        self.deadline(self.client.get_async_pubsub()).await
    }

    /// Publishes `payload` on channel `{prefix}{channel}`: how many subscribers got it.
    pub(crate) async fn publish(
        &self,
        channel: &str,
        payload: &str,
    ) -> Result<usize, SharedStateError> {
        self.query(redis::cmd("PUBLISH").arg(self.key(channel)).arg(payload))
            .await
    }

    /// Publishes each of `payloads`, in order, on channel `{prefix}{channel}` in one pipelined
    /// round trip.
    pub(crate) async fn publish_all(
        &self,
        channel: &str,
        payloads: &[String],
    ) -> Result<(), SharedStateError> {
        let channel = self.key(channel);
        let mut pipe = redis::pipe();
        for payload in payloads {
            pipe.cmd("PUBLISH").arg(&channel).arg(payload).ignore();
        }
        let mut manager = self.manager.clone();
        self.deadline(pipe.query_async::<()>(&mut manager)).await
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &mut redis::Cmd,
    ) -> Result<T, SharedStateError> {
        let mut manager = self.manager.clone();
        self.deadline(cmd.query_async::<T>(&mut manager)).await
    }

    /// Runs `cmd` as is (tests look at the keys).
    #[cfg(test)]
    pub(crate) async fn raw<T: redis::FromRedisValue>(
        &self,
        cmd: &mut redis::Cmd,
    ) -> Result<T, SharedStateError> {
        self.query(cmd).await
    }

    async fn deadline<T>(
        &self,
        work: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, SharedStateError> {
        let unavailable = |message: String| SharedStateError::Unavailable {
            url: self.shown_url.to_string(),
            message,
        };
        tokio::time::timeout(COMMAND_TIMEOUT, work)
            .await
            .map_err(|_| unavailable("no answer in time".to_owned()))?
            .map_err(|e| unavailable(e.to_string()))
    }
}

/// Leases on Redis.
pub struct RedisLeases {
    conn: RedisConn,
    release: redis::Script,
    renew: redis::Script,
}

impl RedisLeases {
    /// Leases under `conn`'s prefix.
    pub fn new(conn: RedisConn) -> Self {
        Self {
            conn,
            release: redis::Script::new(RELEASE),
            renew: redis::Script::new(RENEW),
        }
    }
}

#[async_trait::async_trait]
impl Leases for RedisLeases {
    async fn try_acquire(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, SharedStateError> {
        let key = self.conn.key(&format!("lease:{name}"));
        let token = weblogin::random_token();
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Option<String> = self
            .conn
            .query(
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis),
            )
            .await?;
        Ok(set.map(|_| Lease { name: key, token }))
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, SharedStateError> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut manager = self.conn.manager.clone();
        let mut invocation = self.renew.key(&lease.name);
        invocation.arg(&lease.token).arg(millis);
        self.conn
            .deadline(invocation.invoke_async::<i64>(&mut manager))
            .await
            .map(|renewed| renewed == 1)
    }

    async fn release(&self, lease: Lease) -> Result<(), SharedStateError> {
        let mut manager = self.conn.manager.clone();
        let mut invocation = self.release.key(&lease.name);
        invocation.arg(&lease.token);
        self.conn
            .deadline(invocation.invoke_async::<i64>(&mut manager))
            .await
            .map(|_| ())
    }
}

/// Sessions on Redis.
pub struct RedisSessionStore {
    conn: RedisConn,
    clock: Arc<dyn Clock>,
}

impl RedisSessionStore {
    /// Sessions under `conn`'s prefix.
    pub fn new(conn: RedisConn, clock: Arc<dyn Clock>) -> Self {
        Self { conn, clock }
    }

    fn key(&self, id: &str) -> String {
        self.conn.key(&format!("session:{}", hashed(id)))
    }
}

fn encode<T: Serialize>(value: &T) -> String {
    // Plain structs of strings and numbers always serialize.
    serde_json::to_string(value).unwrap_or_default()
}

#[async_trait::async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, session: &Session) -> Result<(), SharedStateError> {
        let ttl = session.expires_at - self.clock.now();
        let Ok(seconds) = u64::try_from(ttl) else {
            return Ok(()); // already over: nothing to keep
        };
        let record = encode(&StoredSession::from_session(session));
        self.conn
            .query::<Option<String>>(
                redis::cmd("SET")
                    .arg(self.key(&session.id))
                    .arg(record)
                    .arg("NX")
                    .arg("EX")
                    .arg(seconds.max(1)),
            )
            .await
            .map(|_| ())
    }

    async fn find(&self, id: &str) -> Result<Option<Arc<Session>>, SharedStateError> {
        let record: Option<String> = self.conn.query(redis::cmd("GET").arg(self.key(id))).await?;
        let Some(record) = record else {
            return Ok(None);
        };
        let now = self.clock.now();
        match serde_json::from_str::<StoredSession>(&record) {
            Ok(stored) => Ok(stored
                .into_session(id)
                .filter(|s| now < s.expires_at)
                .map(Arc::new)),
            Err(e) => {
                // A record this version cannot read (never its content in the log): log in again.
                tracing::warn!(error = %e.classify_name(), "an unreadable session record was ignored");
                Ok(None)
            }
        }
    }

    async fn update(&self, session: &Session) -> Result<(), SharedStateError> {
        let record = encode(&StoredSession::from_session(session));
        self.conn
            .query::<Option<String>>(
                redis::cmd("SET")
                    .arg(self.key(&session.id))
                    .arg(record)
                    .arg("XX")
                    .arg("KEEPTTL"),
            )
            .await
            .map(|_| ())
    }

    async fn delete(&self, id: &str) -> Result<(), SharedStateError> {
        self.conn
            .query::<i64>(redis::cmd("DEL").arg(self.key(id)))
            .await
            .map(|_| ())
    }

    async fn count(&self) -> Option<u64> {
        None
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "eof",
        }
    }
}

/// An access token as Redis keeps it.
#[derive(Serialize, Deserialize)]
struct StoredToken {
    token: String,
    scopes: String,
    expires_at: UnixTime,
}

/// Access tokens on Redis.
pub struct RedisTokenCache {
    conn: RedisConn,
    clock: Arc<dyn Clock>,
}

impl RedisTokenCache {
    /// Tokens under `conn`'s prefix.
    pub fn new(conn: RedisConn, clock: Arc<dyn Clock>) -> Self {
        Self { conn, clock }
    }

    fn key(&self, key: &TokenKey) -> String {
        self.conn.key(&format!(
            "token:{}:{}:{}",
            hashed(&key.subject),
            hashed(&key.connection),
            hashed(&key.scopes)
        ))
    }

    fn person_key(&self, subject: &str) -> String {
        self.conn.key(&format!("token-person:{}", hashed(subject)))
    }

    fn decode(&self, record: Option<String>) -> Option<AccessToken> {
        let stored: StoredToken = serde_json::from_str(&record?).ok()?;
        let scopes = Scopes::parse(&stored.scopes).ok()?;
        (self.clock.now() < stored.expires_at).then(|| AccessToken {
            token: SecretString::from(stored.token),
            scopes,
            expires_at: stored.expires_at,
        })
    }
}

#[async_trait::async_trait]
impl TokenCache for RedisTokenCache {
    async fn get(&self, key: &TokenKey) -> Result<Option<AccessToken>, SharedStateError> {
        let record: Option<String> = self
            .conn
            .query(redis::cmd("GET").arg(self.key(key)))
            .await?;
        Ok(self.decode(record))
    }

    async fn insert(&self, key: TokenKey, token: AccessToken) -> Result<(), SharedStateError> {
        let millis = (token.expires_at - self.clock.now()) * 1000;
        let Ok(millis) = u64::try_from(millis) else {
            return Ok(());
        };
        if millis == 0 {
            return Ok(());
        }
        let record = encode(&StoredToken {
            token: token.token.expose_secret().to_owned(),
            scopes: token.scopes.to_string(),
            expires_at: token.expires_at,
        });
        let token_key = self.key(&key);
        let person = self.person_key(&key.subject);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&token_key)
            .arg(record)
            .arg("PX")
            .arg(millis)
            .ignore()
            .cmd("HSET")
            .arg(&person)
            .arg(&token_key)
            .arg(hashed(&key.connection))
            .ignore()
            .cmd("EXPIRE")
            .arg(&person)
            .arg(PERSON_INDEX_TTL)
            .ignore();
        let mut manager = self.conn.manager.clone();
        self.conn
            .deadline(pipe.query_async::<()>(&mut manager))
            .await
    }

    async fn invalidate(&self, key: &TokenKey) -> Result<(), SharedStateError> {
        self.conn
            .query::<i64>(redis::cmd("DEL").arg(self.key(key)))
            .await
            .map(|_| ())
    }

    async fn invalidate_person(&self, subject: &str) -> Result<(), SharedStateError> {
        let person = self.person_key(subject);
        let keys: Vec<String> = self.conn.query(redis::cmd("HKEYS").arg(&person)).await?;
        self.conn
            .query::<i64>(redis::cmd("DEL").arg(&person).arg(keys))
            .await
            .map(|_| ())
    }

    async fn has_live(&self, subject: &str, connection: &str) -> Result<bool, SharedStateError> {
        let index: Vec<(String, String)> = self
            .conn
            .query(redis::cmd("HGETALL").arg(self.person_key(subject)))
            .await?;
        let connection = hashed(connection);
        let keys: Vec<String> = index
            .into_iter()
            .filter(|(_, c)| *c == connection)
            .map(|(key, _)| key)
            .collect();
        if keys.is_empty() {
            return Ok(false);
        }
        let records: Vec<Option<String>> = self.conn.query(redis::cmd("MGET").arg(keys)).await?;
        Ok(records
            .into_iter()
            .any(|record| self.decode(record).is_some()))
    }
}

/// Approved scopes on Redis: `{prefix}approved:{h(subject)}:{h(conversation)}:{h(connection)}`,
/// a set of scope tokens kept [`APPROVAL_LIFETIME`] after the last approval.
pub struct RedisApprovals {
    conn: RedisConn,
}

impl RedisApprovals {
    /// Approvals under `conn`'s prefix.
    pub fn new(conn: RedisConn) -> Self {
        Self { conn }
    }

    fn key(&self, key: &ApprovalKey) -> String {
        self.conn.key(&format!(
            "approved:{}:{}:{}",
            hashed(&key.subject),
            hashed(&key.conversation),
            hashed(&key.connection)
        ))
    }
}

#[async_trait::async_trait]
impl ApprovalStore for RedisApprovals {
    async fn approved(&self, key: &ApprovalKey) -> Result<Scopes, SharedStateError> {
        let scopes: Vec<String> = self
            .conn
            .query(redis::cmd("SMEMBERS").arg(self.key(key)))
            .await?;
        Ok(scopes.iter().map(String::as_str).collect())
    }

    async fn approve(&self, key: &ApprovalKey, scopes: &Scopes) -> Result<(), SharedStateError> {
        if scopes.is_empty() {
            return Ok(());
        }
        let set = self.key(key);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SADD")
            .arg(&set)
            .arg(scopes.iter().collect::<Vec<_>>())
            .ignore()
            .cmd("EXPIRE")
            .arg(&set)
            .arg(APPROVAL_LIFETIME.as_secs())
            .ignore();
        let mut manager = self.conn.manager.clone();
        self.conn
            .deadline(pipe.query_async::<()>(&mut manager))
            .await
    }
}
