//! Where minted access tokens are kept until shortly before they expire: the [`TokenCache`]
//! seam (so a shared store such as Redis can stand in for several replicas), and the in-process
//! [`MokaTokenCache`], bounded in size, each entry expiring at its own token's usable end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::policy::Expiry;
use moka::sync::Cache;
use protocol::Clock;

use super::AccessToken;
use crate::shared::SharedStateError;

/// Tokens kept in process at most (least recently used dropped first: they are only minted
/// again).
pub const TOKEN_CAPACITY: u64 = 10_000;

/// Whose token, for what, with which scopes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey {
    /// The person's subject at the IdP.
    pub subject: String,
    /// The connection's name.
    pub connection: String,
    /// The scope set asked for (space-separated, as requested).
    pub scopes: String,
}

/// A store of access tokens. An entry is never returned at or after its `expires_at` (which
/// already holds the refresh margin). A shared store fails when it cannot be reached.
#[async_trait::async_trait]
pub trait TokenCache: Send + Sync {
    /// The unexpired token under `key`.
    async fn get(&self, key: &TokenKey) -> Result<Option<AccessToken>, SharedStateError>;
    /// Keeps `token` under `key` until its `expires_at`.
    async fn insert(&self, key: TokenKey, token: AccessToken) -> Result<(), SharedStateError>;
    /// Drops the token under `key` (the resource refused it).
    async fn invalidate(&self, key: &TokenKey) -> Result<(), SharedStateError>;
    /// Drops every token of `subject` (logout).
    async fn invalidate_person(&self, subject: &str) -> Result<(), SharedStateError>;
    /// Whether `subject` holds an unexpired token for `connection`.
    async fn has_live(&self, subject: &str, connection: &str) -> Result<bool, SharedStateError>;
}

/// The in-process cache: `moka`, bounded, with a per-entry lifetime of `expires_at - now` read
/// from the injected clock at insertion. Reads also check `expires_at` against the injected
/// clock, so expiry follows that clock even where moka's own clock has not moved.
pub struct MokaTokenCache {
    tokens: Cache<TokenKey, AccessToken>,
    clock: Arc<dyn Clock>,
}

impl MokaTokenCache {
    /// A cache of at most `capacity` tokens.
    pub fn new(capacity: u64, clock: Arc<dyn Clock>) -> Self {
        let tokens = Cache::builder()
            .max_capacity(capacity)
            .expire_after(UntilUsableEnd {
                clock: clock.clone(),
            })
            .support_invalidation_closures()
            .build();
        Self { tokens, clock }
    }
}

struct UntilUsableEnd {
    clock: Arc<dyn Clock>,
}

impl UntilUsableEnd {
    fn lifetime(&self, token: &AccessToken) -> Duration {
        Duration::from_secs(u64::try_from(token.expires_at - self.clock.now()).unwrap_or(0))
    }
}

impl Expiry<TokenKey, AccessToken> for UntilUsableEnd {
    fn expire_after_create(
        &self,
        _key: &TokenKey,
        token: &AccessToken,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(self.lifetime(token))
    }

    fn expire_after_update(
        &self,
        _key: &TokenKey,
        token: &AccessToken,
        _updated_at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.lifetime(token))
    }
}

#[async_trait::async_trait]
impl TokenCache for MokaTokenCache {
    async fn get(&self, key: &TokenKey) -> Result<Option<AccessToken>, SharedStateError> {
        let now = self.clock.now();
        Ok(self.tokens.get(key).filter(|t| now < t.expires_at))
    }

    async fn insert(&self, key: TokenKey, token: AccessToken) -> Result<(), SharedStateError> {
        self.tokens.insert(key, token);
        Ok(())
    }

    async fn invalidate(&self, key: &TokenKey) -> Result<(), SharedStateError> {
        self.tokens.invalidate(key);
        Ok(())
    }

    async fn invalidate_person(&self, subject: &str) -> Result<(), SharedStateError> {
        let subject = subject.to_owned();
        // Fails only when the cache was built without invalidation closures; it is not.
        let _ = self
            .tokens
            .invalidate_entries_if(move |key, _| key.subject == subject);
        Ok(())
    }

    async fn has_live(&self, subject: &str, connection: &str) -> Result<bool, SharedStateError> {
        let now = self.clock.now();
        Ok(self.tokens.iter().any(|(key, token)| {
            key.subject == subject && key.connection == connection && now < token.expires_at
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use protocol::clock::FixedClock;
    use protocol::{Scopes, UnixTime};
    use secrecy::SecretString;

    use super::*;

    fn key(subject: &str) -> TokenKey {
        TokenKey {
            subject: subject.into(),
            connection: "todo0".into(),
            scopes: "mcp:connect".into(),
        }
    }

    fn token(expires_at: UnixTime) -> AccessToken {
        AccessToken {
            token: SecretString::from("t"),
            scopes: Scopes::parse("mcp:connect").unwrap(),
            expires_at,
        }
    }

    #[tokio::test]
    async fn an_entry_is_gone_at_its_expires_at_by_the_injected_clock() {
        let clock = FixedClock::at(1_000);
        let cache = MokaTokenCache::new(10, clock.clone());
        cache.insert(key("alice"), token(1_240)).await.unwrap();
        clock.advance(239);
        assert!(cache.get(&key("alice")).await.unwrap().is_some());
        assert!(cache.has_live("alice", "todo0").await.unwrap());
        clock.advance(1);
        assert!(cache.get(&key("alice")).await.unwrap().is_none());
        assert!(!cache.has_live("alice", "todo0").await.unwrap());
    }

    #[tokio::test]
    async fn moka_drops_an_entry_when_its_lifetime_has_passed_in_real_time() {
        // The injected clock stands still: only moka's own per-entry expiry can drop it.
        let clock = FixedClock::at(1_000);
        let cache = MokaTokenCache::new(10, clock.clone());
        cache.insert(key("alice"), token(1_001)).await.unwrap();
        cache.insert(key("bob"), token(1_000)).await.unwrap();
        assert!(cache.get(&key("alice")).await.unwrap().is_some());
        assert!(
            cache.tokens.get(&key("bob")).is_none(),
            "no lifetime left: never kept"
        );
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert!(cache.get(&key("alice")).await.unwrap().is_none());
        cache.tokens.run_pending_tasks();
        assert_eq!(cache.tokens.entry_count(), 0);
    }

    #[tokio::test]
    async fn the_cache_stays_bounded_under_many_persons() {
        let clock = FixedClock::at(1_000);
        let cache = MokaTokenCache::new(100, clock);
        for i in 0..2_000 {
            cache
                .insert(key(&format!("person{i}")), token(2_000))
                .await
                .unwrap();
        }
        cache.tokens.run_pending_tasks();
        assert!(
            cache.tokens.entry_count() <= 100,
            "{}",
            cache.tokens.entry_count()
        );
    }

    #[tokio::test]
    async fn invalidation_drops_one_entry_or_one_persons_entries() {
        let clock = FixedClock::at(1_000);
        let cache = MokaTokenCache::new(10, clock);
        let github = TokenKey {
            connection: "github".into(),
            ..key("alice")
        };
        cache.insert(key("alice"), token(2_000)).await.unwrap();
        cache.insert(github.clone(), token(2_000)).await.unwrap();
        cache.insert(key("bob"), token(2_000)).await.unwrap();

        cache.invalidate(&key("alice")).await.unwrap();
        assert!(cache.get(&key("alice")).await.unwrap().is_none());
        assert!(cache.get(&github).await.unwrap().is_some());

        cache.invalidate_person("alice").await.unwrap();
        assert!(cache.get(&github).await.unwrap().is_none());
        assert!(!cache.has_live("alice", "github").await.unwrap());
        assert!(cache.get(&key("bob")).await.unwrap().is_some());
    }
}
