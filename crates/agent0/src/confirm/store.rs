//! Where pending tool-call confirmations (the cards) are kept (issue 10): in this process
//! ([`MemoryConfirmationStore`], bounded, each card until its expiry) or in Redis
//! ([`crate::shared::redis::RedisConfirmationStore`], `{prefix}confirm:{sha256(id)}`, with the
//! card's expiry as TTL), chosen by [`crate::shared::SharedState`].
//!
//! A card is bound to its owner (person, session, conversation) and is taken once: of two
//! replicas taking the same card at the same moment, one gets it and the other finds nothing,
//! and a card taken by anyone but its owner is as unknown as a made-up id and stays usable by
//! its owner.

use std::collections::HashMap;
use std::sync::Arc;

use protocol::{Clock, UnixTime, constant_time};
use serde::{Deserialize, Serialize};

use super::{MAX_PENDING_PER_PERSON, Owner};
use crate::shared::SharedStateError;

/// Cards waiting at once, for everyone, in one process.
pub const MEMORY_CAPACITY: usize = 4096;

/// A card waiting for its owner's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCard {
    /// The person.
    pub subject: String,
    /// Their session.
    pub session: String,
    /// The conversation.
    pub conversation: String,
    /// The connection that would run the call.
    pub connection: String,
    /// The tool's name at that connection.
    pub tool: String,
    /// Until when it waits (Unix seconds).
    pub expires_at: UnixTime,
}

impl PendingCard {
    /// Whether `owner` may decide on it.
    pub fn is_owned_by(&self, owner: &Owner<'_>) -> bool {
        constant_time::is_equal(&self.subject, owner.subject)
            && constant_time::is_equal(&self.session, owner.session)
            && self.conversation == owner.conversation
    }
}

/// What [`ConfirmationStore::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The card waits.
    Created,
    /// Refused: too many cards wait at once.
    Full,
    /// Refused: too many of this person's cards wait at once.
    PersonFull,
}

/// Which of a person's cards [`ConfirmationStore::take_where`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which<'a> {
    /// Those of one conversation (the person sent a new message there).
    Conversation(&'a str),
    /// Those of one session (it logged out).
    Session(&'a str),
}

/// Pending cards, shared by the replicas that use the same store.
#[async_trait::async_trait]
pub trait ConfirmationStore: Send + Sync {
    /// Records card `id` until its `expires_at`, unless the store or its person's share
    /// ([`MAX_PENDING_PER_PERSON`]) is full (the new card is refused; none is evicted).
    async fn create(&self, id: &str, card: &PendingCard) -> Result<Created, SharedStateError>;
    /// Takes card `id` if it is `owner`'s and has not expired (once, atomically).
    async fn take(
        &self,
        id: &str,
        owner: &Owner<'_>,
    ) -> Result<Option<PendingCard>, SharedStateError>;
    /// Takes `subject`'s cards that match `which`, with their ids.
    async fn take_where(
        &self,
        subject: &str,
        which: Which<'_>,
    ) -> Result<Vec<(String, PendingCard)>, SharedStateError>;
}

/// Cards in this process: at most [`MEMORY_CAPACITY`], each until its expiry by the clock.
pub struct MemoryConfirmationStore {
    cards: std::sync::Mutex<HashMap<String, PendingCard>>,
    capacity: usize,
    clock: Arc<dyn Clock>,
}

impl MemoryConfirmationStore {
    /// Empty, holding at most `capacity` cards.
    pub fn new(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            cards: std::sync::Mutex::new(HashMap::new()),
            capacity,
            clock,
        }
    }

    fn cards(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingCard>> {
        let now = self.clock.now();
        let mut cards = self.cards.lock().unwrap_or_else(|p| p.into_inner());
        cards.retain(|_, card| now < card.expires_at);
        cards
    }
}

#[async_trait::async_trait]
impl ConfirmationStore for MemoryConfirmationStore {
    async fn create(&self, id: &str, card: &PendingCard) -> Result<Created, SharedStateError> {
        let mut cards = self.cards();
        if cards.len() >= self.capacity {
            return Ok(Created::Full);
        }
        let theirs = cards.values().filter(|c| c.subject == card.subject).count();
        if theirs >= MAX_PENDING_PER_PERSON {
            return Ok(Created::PersonFull);
        }
        cards.insert(id.to_owned(), card.clone());
        Ok(Created::Created)
    }

    async fn take(
        &self,
        id: &str,
        owner: &Owner<'_>,
    ) -> Result<Option<PendingCard>, SharedStateError> {
        let mut cards = self.cards();
        if !cards.get(id).is_some_and(|card| card.is_owned_by(owner)) {
            return Ok(None);
        }
        Ok(cards.remove(id))
    }

    async fn take_where(
        &self,
        subject: &str,
        which: Which<'_>,
    ) -> Result<Vec<(String, PendingCard)>, SharedStateError> {
        let mut cards = self.cards();
        let ids: Vec<String> = cards
            .iter()
            .filter(|(_, card)| card.subject == subject && is_which(card, which))
            .map(|(id, _)| id.clone())
            .collect();
        Ok(ids
            .into_iter()
            .filter_map(|id| cards.remove(&id).map(|card| (id, card)))
            .collect())
    }
}

fn is_which(card: &PendingCard, which: Which<'_>) -> bool {
    match which {
        Which::Conversation(conversation) => card.conversation == conversation,
        Which::Session(session) => constant_time::is_equal(&card.session, session),
    }
}
