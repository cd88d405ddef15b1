//! Pending tool-call confirmations on Redis:
//!
//! - `{prefix}confirm:{sha256(id)}` — a card (a hash: its owner's digest, its conversation's and
//!   session's digests, its expiry, its id and the card as JSON), `EXPIRE`d at the card's expiry;
//! - `{prefix}confirm-person:{h(subject)}` — a sorted set of the person's card keys scored by
//!   expiry, so their share is counted and their cards are found at a new message or logout.
//!
//! Creating, taking and taking a person's cards are each one Lua script, so two replicas taking
//! the same card at once cannot both get it, and a share is never exceeded by a race. The
//! expiry is judged by the injected clock, as in process.

use std::sync::Arc;

use protocol::Clock;

use super::{RedisConn, hashed};
use crate::confirm::store::{ConfirmationStore, Created, PendingCard, Which};
use crate::confirm::{MAX_PENDING_PER_PERSON, Owner};
use crate::shared::SharedStateError;

/// KEYS: card, person. ARGV: now, expires_at, ttl, share, owner, conversation, session, id, card.
const CREATE: &str = r"
redis.call('zremrangebyscore', KEYS[2], '-inf', ARGV[1])
for _, k in ipairs(redis.call('zrange', KEYS[2], 0, -1)) do
  if redis.call('exists', k) == 0 then redis.call('zrem', KEYS[2], k) end
end
if redis.call('zcard', KEYS[2]) >= tonumber(ARGV[4]) then return 0 end
redis.call('hset', KEYS[1], 'owner', ARGV[5], 'conversation', ARGV[6], 'session', ARGV[7],
  'expires', ARGV[2], 'id', ARGV[8], 'card', ARGV[9])
redis.call('expire', KEYS[1], ARGV[3])
redis.call('zadd', KEYS[2], ARGV[2], KEYS[1])
if redis.call('ttl', KEYS[2]) < tonumber(ARGV[3]) then redis.call('expire', KEYS[2], ARGV[3]) end
return 1
";

/// KEYS: card, person. ARGV: owner, now. The card if it is the owner's and alive; taken either way
/// when it is the owner's.
const TAKE: &str = r"
local f = redis.call('hmget', KEYS[1], 'owner', 'expires', 'card')
if not f[1] or f[1] ~= ARGV[1] then return false end
redis.call('del', KEYS[1])
redis.call('zrem', KEYS[2], KEYS[1])
if tonumber(f[2]) <= tonumber(ARGV[2]) then return false end
return f[3]
";

/// KEYS: person. ARGV: field (`conversation` or `session`), its digest, now. Alternating ids and
/// cards of the person's live cards that match.
const TAKE_WHERE: &str = r"
local out = {}
for _, k in ipairs(redis.call('zrange', KEYS[1], 0, -1)) do
  local f = redis.call('hmget', k, ARGV[1], 'expires', 'id', 'card')
  if not f[4] then
    redis.call('zrem', KEYS[1], k)
  elseif f[1] == ARGV[2] then
    redis.call('del', k)
    redis.call('zrem', KEYS[1], k)
    if tonumber(f[2]) > tonumber(ARGV[3]) then
      table.insert(out, f[3])
      table.insert(out, f[4])
    end
  end
end
return out
";

/// Pending confirmations on Redis.
pub struct RedisConfirmationStore {
    conn: RedisConn,
    clock: Arc<dyn Clock>,
    create: redis::Script,
    take: redis::Script,
    take_where: redis::Script,
}

impl RedisConfirmationStore {
    /// Cards under `conn`'s prefix.
    pub fn new(conn: RedisConn, clock: Arc<dyn Clock>) -> Self {
        Self {
            conn,
            clock,
            create: redis::Script::new(CREATE),
            take: redis::Script::new(TAKE),
            take_where: redis::Script::new(TAKE_WHERE),
        }
    }

    fn card_key(&self, id: &str) -> String {
        self.conn.key(&format!("confirm:{}", hashed(id)))
    }

    fn person_key(&self, subject: &str) -> String {
        self.conn
            .key(&format!("confirm-person:{}", hashed(subject)))
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, SharedStateError> {
        let mut manager = self.conn.manager.clone();
        self.conn
            .deadline(invocation.invoke_async::<T>(&mut manager))
            .await
    }
}

/// The digest a card's owner must match: person, session and conversation together.
fn owner_digest(subject: &str, session: &str, conversation: &str) -> String {
    // A JSON array keeps the three apart whatever they contain.
    hashed(&serde_json::json!([subject, session, conversation]).to_string())
}

fn decode(card: &str) -> Result<PendingCard, SharedStateError> {
    serde_json::from_str(card).map_err(|e| SharedStateError::Unavailable {
        url: "(a confirmation record)".to_owned(),
        message: format!("unreadable: {e}"),
    })
}

#[async_trait::async_trait]
impl ConfirmationStore for RedisConfirmationStore {
    async fn create(&self, id: &str, card: &PendingCard) -> Result<Created, SharedStateError> {
        let now = self.clock.now();
        let ttl = (card.expires_at - now).max(1);
        let encoded = serde_json::to_string(card).map_err(|e| SharedStateError::Unavailable {
            url: "(a confirmation record)".to_owned(),
            message: format!("unwritable: {e}"),
        })?;
        let mut invocation = self.create.prepare_invoke();
        invocation
            .key(self.card_key(id))
            .key(self.person_key(&card.subject))
            .arg(now)
            .arg(card.expires_at)
            .arg(ttl)
            .arg(MAX_PENDING_PER_PERSON)
            .arg(owner_digest(
                &card.subject,
                &card.session,
                &card.conversation,
            ))
            .arg(hashed(&card.conversation))
            .arg(hashed(&card.session))
            .arg(id)
            .arg(encoded);
        let created: i64 = self.run(&invocation).await?;
        Ok(if created == 1 {
            Created::Created
        } else {
            Created::PersonFull
        })
    }

    async fn take(
        &self,
        id: &str,
        owner: &Owner<'_>,
    ) -> Result<Option<PendingCard>, SharedStateError> {
        let mut invocation = self.take.prepare_invoke();
        invocation
            .key(self.card_key(id))
            .key(self.person_key(owner.subject))
            .arg(owner_digest(
                owner.subject,
                owner.session,
                owner.conversation,
            ))
            .arg(self.clock.now());
        let card: Option<String> = self.run(&invocation).await?;
        let Some(card) = card.map(|c| decode(&c)).transpose()? else {
            return Ok(None);
        };
        // The digest matched; the record itself must agree (it is bound to its key's owner).
        Ok(card.is_owned_by(owner).then_some(card))
    }

    async fn take_where(
        &self,
        subject: &str,
        which: Which<'_>,
    ) -> Result<Vec<(String, PendingCard)>, SharedStateError> {
        let (field, value) = match which {
            Which::Conversation(conversation) => ("conversation", hashed(conversation)),
            Which::Session(session) => ("session", hashed(session)),
        };
        let mut invocation = self.take_where.prepare_invoke();
        invocation
            .key(self.person_key(subject))
            .arg(field)
            .arg(value)
            .arg(self.clock.now());
        let flat: Vec<String> = self.run(&invocation).await?;
        let mut taken = Vec::with_capacity(flat.len() / 2);
        for pair in flat.chunks_exact(2) {
            let card = decode(&pair[1])?;
            if card.subject == subject {
                taken.push((pair[0].clone(), card));
            }
        }
        Ok(taken)
    }
}
