//! The scopes a person approved in a conversation for a connection (J7, [`crate::confirm`]):
//! once they approved a call needing `mcp:tools:manage`, later calls needing no more run
//! without a card in that conversation. Behind [`ApprovalStore`], so replicas share them
//! (Redis, [`crate::shared::redis::RedisApprovals`]): a person who approved through replica A is
//! not asked again by replica B. Forgetting an approval is always safe — the person is only
//! asked again — so the in-process store is a bounded cache, and a Redis that fails reads as
//! "nothing approved".

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use protocol::Scopes;

use crate::shared::SharedStateError;

/// How long an approval is remembered after the conversation's last approval.
pub const APPROVAL_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Conversations whose approvals are remembered in process at most.
pub const APPROVAL_CAPACITY: u64 = 16 * 1024;

/// Whose approval, where, for which connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApprovalKey {
    /// The person's subject at the IdP.
    pub subject: String,
    /// The conversation.
    pub conversation: String,
    /// The connection's name.
    pub connection: String,
}

/// Approved scopes, per [`ApprovalKey`].
#[async_trait::async_trait]
pub trait ApprovalStore: Send + Sync {
    /// What `key` approved so far (empty when nothing is remembered).
    async fn approved(&self, key: &ApprovalKey) -> Result<Scopes, SharedStateError>;
    /// Adds `scopes` to what `key` approved.
    async fn approve(&self, key: &ApprovalKey, scopes: &Scopes) -> Result<(), SharedStateError>;
}

/// Approvals in this process: bounded, least recently used forgotten first, each forgotten
/// [`APPROVAL_LIFETIME`] after its last change.
pub struct MemoryApprovals {
    approved: Cache<ApprovalKey, Scopes>,
}

impl MemoryApprovals {
    /// At most `capacity` conversations' approvals.
    pub fn new(capacity: u64) -> Self {
        Self {
            approved: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(APPROVAL_LIFETIME)
                .build(),
        }
    }
}

impl Default for MemoryApprovals {
    fn default() -> Self {
        Self::new(APPROVAL_CAPACITY)
    }
}

#[async_trait::async_trait]
impl ApprovalStore for MemoryApprovals {
    async fn approved(&self, key: &ApprovalKey) -> Result<Scopes, SharedStateError> {
        Ok(self.approved.get(key).unwrap_or_else(Scopes::empty))
    }

    async fn approve(&self, key: &ApprovalKey, scopes: &Scopes) -> Result<(), SharedStateError> {
        self.approved
            .entry(key.clone())
            .and_upsert_with(|old| match old {
                Some(old) => old.into_value().union(scopes),
                None => scopes.clone(),
            });
        Ok(())
    }
}

/// What `store` says `key` approved; a store that fails reads as nothing approved (the person
/// is asked again), with a warning.
pub async fn approved_or_none(store: &Arc<dyn ApprovalStore>, key: &ApprovalKey) -> Scopes {
    store.approved(key).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "approved scopes unavailable; asking the person again");
        Scopes::empty()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(conversation: &str) -> ApprovalKey {
        ApprovalKey {
            subject: "alice".into(),
            conversation: conversation.into(),
            connection: "todo0".into(),
        }
    }

    #[tokio::test]
    async fn approvals_add_up_per_conversation_and_stay_bounded() {
        let store = MemoryApprovals::new(8);
        let manage = Scopes::parse("mcp:tools:manage").unwrap();
        let delete = Scopes::parse("mcp:tools:delete").unwrap();
        store.approve(&key("c1"), &manage).await.unwrap();
        store.approve(&key("c1"), &delete).await.unwrap();
        let both = store.approved(&key("c1")).await.unwrap();
        assert!(both.contains_all(&manage.union(&delete)));
        assert!(store.approved(&key("c2")).await.unwrap().is_empty());
        for i in 0..100 {
            store
                .approve(&key(&format!("x{i}")), &manage)
                .await
                .unwrap();
        }
        store.approved.run_pending_tasks();
        assert!(store.approved.entry_count() <= 8);
    }
}
