//! Paused turns across replicas (issue 10). A turn that pauses at a tool call waiting for the
//! person's confirmation ([`crate::confirm`]) is a task on the replica that ran it; behind a
//! load balancer the person's decision, their next message or their logout may reach another
//! replica. Through Redis pub/sub, under the deployment's key prefix:
//!
//! - `{prefix}confirm:all` carries what every replica must hear: a decision for a confirmation
//!   the receiving replica does not hold ([`Broadcast::Decide`]), and the new messages and
//!   logouts that end other replicas' cards ([`Broadcast::Notice`]);
//! - `{prefix}confirm:to:{replica}` carries the answers to one replica: whether the decision
//!   was taken (exactly one replica holds the card; the others say [`ReplyBody::NotHere`]), then
//!   the resumed turn's events and its end, with a heartbeat while it runs.
//!
//! The replica that decides streams the resumed turn to the person as if it ran there. The
//! session id (a bearer secret) never goes on the wire: cards are matched on its SHA-256.
//! What Redis pub/sub loses while a replica reconnects is not retried: a decision then fails
//! with "not waiting any more", and a lost notice leaves a card to wait out its lifetime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::SharedStateError;
use super::redis::RedisConn;
use crate::agent::{AgentError, AgentEvent, TurnSummary};
use crate::confirm::{ConfirmError, Confirmations, Decision, Notice, Owner, Sink, session_digest};
use crate::conversations::StoreError;

/// How long the deciding replica waits for the replica holding the card to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a replica running a relayed turn says it is still at it.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Silence after which a relayed turn is given up (the replica running it is gone).
const SILENCE: Duration = Duration::from_secs(20);
/// Answers buffered for one relayed turn (more end it: the person's stream is not read).
const REPLY_BUFFER: usize = 4096;
/// Notices sent in one pipelined round trip at most.
const NOTICE_BATCH: usize = 256;
/// The longest wait between two attempts to subscribe again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What every replica hears.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Broadcast {
    /// The person decided on confirmation `id`; whoever holds it answers on `reply_to`.
    Decide {
        request: String,
        reply_to: String,
        id: String,
        subject: String,
        /// The [`session_digest`] of the deciding session.
        session: String,
        conversation: String,
        decision: Decision,
    },
    /// A new message or a logout on replica `from` (which applied it already: applied again,
    /// it would end a card opened there since).
    Notice { from: String, notice: Notice },
}

/// An answer to one replica about one of its requests.
#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    request: String,
    body: ReplyBody,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ReplyBody {
    /// This replica holds the card and resumed the turn.
    Accepted,
    /// This replica does not hold it (or it is someone else's).
    NotHere,
    /// This replica held it, but it expired.
    Expired,
    /// The resumed turn's next event.
    Event { event: Box<AgentEvent> },
    /// The turn is still running.
    Alive,
    /// The turn ended.
    Finished { summary: TurnSummary },
    /// The turn could not go on.
    Failed { error: WireError },
    /// The turn paused again (its last event was the new card).
    Paused,
}

/// An [`AgentError`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireError {
    InvalidMessage { message: String },
    LoginExpired,
    NotFound,
    Unavailable { message: String },
    Failed { message: String },
}

impl From<AgentError> for WireError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::InvalidMessage(message) => Self::InvalidMessage { message },
            AgentError::LoginExpired => Self::LoginExpired,
            AgentError::Store(StoreError::NotFound) => Self::NotFound,
            AgentError::Store(StoreError::Unavailable(message)) => Self::Unavailable { message },
            AgentError::Store(
                StoreError::Database(message) | StoreError::Incompatible(message),
            ) => Self::Failed { message },
        }
    }
}

impl From<WireError> for AgentError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::InvalidMessage { message } => Self::InvalidMessage(message),
            WireError::LoginExpired => Self::LoginExpired,
            WireError::NotFound => Self::Store(StoreError::NotFound),
            WireError::Unavailable { message } => Self::Store(StoreError::Unavailable(message)),
            WireError::Failed { message } => Self::Store(StoreError::Database(message)),
        }
    }
}

/// Why a relayed decision failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// No replica holds the card (or it expired).
    #[error(transparent)]
    Confirmation(#[from] ConfirmError),
    /// Redis cannot carry the decision now.
    #[error(transparent)]
    Unavailable(#[from] SharedStateError),
}

/// This replica's end of the relay.
pub struct TurnRelay {
    conn: RedisConn,
    /// This replica's random name (its answers' channel).
    replica: String,
    /// This replica's requests waiting for answers.
    waiters: Mutex<HashMap<String, mpsc::Sender<ReplyBody>>>,
    /// Whether the subscription is up (answers to this replica can arrive).
    listening: std::sync::atomic::AtomicBool,
}

const ALL: &str = "confirm:all";

fn to_replica(replica: &str) -> String {
    format!("confirm:to:{replica}")
}

impl TurnRelay {
    /// A relay over `conn`; nothing is heard until [`TurnRelay::start`].
    pub fn new(conn: RedisConn) -> Self {
        Self {
            conn,
            replica: weblogin::random_token(),
            waiters: Mutex::new(HashMap::new()),
            listening: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Relays `confirmations`: this replica's notices go out, and other replicas' decisions
    /// and notices come in. The tasks end once `confirmations` is dropped.
    pub fn start(self: &Arc<Self>, confirmations: &Arc<Confirmations>) {
        if let Some(notices) = confirmations.relay_notices() {
            tokio::spawn(send_notices(Arc::downgrade(self), notices));
        }
        tokio::spawn(listen(self.clone(), Arc::downgrade(confirmations)));
    }

    /// Takes `decision` on confirmation `id`, held by another replica: the turn resumes there
    /// and reports to `sink` here. `owner.session` is the raw session id.
    pub async fn decide(
        self: &Arc<Self>,
        id: &str,
        owner: &Owner<'_>,
        decision: Decision,
        sink: Sink,
    ) -> Result<(), RelayError> {
        if !self.listening.load(std::sync::atomic::Ordering::Acquire) {
            return Err(SharedStateError::Unavailable {
                url: self.conn.shown_url().to_owned(),
                message: "this replica is not subscribed to the other replicas' answers yet"
                    .to_owned(),
            }
            .into());
        }
        let request = weblogin::random_token();
        let (sender, mut answers) = mpsc::channel(REPLY_BUFFER);
        let waiter = Waiter::register(self, &request, sender);
        let message = Broadcast::Decide {
            request: request.clone(),
            reply_to: self.replica.clone(),
            id: id.to_owned(),
            subject: owner.subject.to_owned(),
            session: session_digest(owner.session),
            conversation: owner.conversation.to_owned(),
            decision,
        };
        let replicas = self.conn.publish(ALL, &encode(&message)).await?;
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        let mut not_here = 0;
        loop {
            match tokio::time::timeout_at(deadline, answers.recv()).await {
                Ok(Some(ReplyBody::Accepted)) => break,
                Ok(Some(ReplyBody::Expired)) => return Err(ConfirmError::Expired.into()),
                Ok(Some(ReplyBody::NotHere)) => {
                    not_here += 1;
                    if not_here >= replicas {
                        return Err(ConfirmError::NotFound.into());
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return Err(ConfirmError::NotFound.into()),
            }
        }
        tokio::spawn(follow(waiter, answers, sink));
        Ok(())
    }

    async fn reply(&self, replica: &str, request: &str, body: ReplyBody) {
        let reply = Reply {
            request: request.to_owned(),
            body,
        };
        if let Err(e) = self
            .conn
            .publish(&to_replica(replica), &encode(&reply))
            .await
        {
            tracing::warn!(error = %e, "a relayed turn's answer could not be sent");
        }
    }

    fn deliver(&self, reply: Reply) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        let Some(waiter) = waiters.get(&reply.request) else {
            return;
        };
        if waiter.try_send(reply.body).is_err() {
            // Nobody reads this turn's stream fast enough: it ends here.
            waiters.remove(&reply.request);
        }
    }
}

/// A request waiting for answers; forgotten when dropped.
struct Waiter {
    relay: Weak<TurnRelay>,
    request: String,
}

impl Waiter {
    fn register(relay: &Arc<TurnRelay>, request: &str, sender: mpsc::Sender<ReplyBody>) -> Self {
        relay
            .waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request.to_owned(), sender);
        Self {
            relay: Arc::downgrade(relay),
            request: request.to_owned(),
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Some(relay) = self.relay.upgrade() {
            relay
                .waiters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.request);
        }
    }
}

fn encode<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The deciding replica's side: the resumed turn's answers, into the person's stream.
async fn follow(waiter: Waiter, mut answers: mpsc::Receiver<ReplyBody>, mut sink: Sink) {
    let gone = || {
        AgentError::Store(StoreError::Unavailable(
            "the replica running this turn stopped answering".to_owned(),
        ))
    };
    let ended = loop {
        match tokio::time::timeout(SILENCE, answers.recv()).await {
            Ok(Some(ReplyBody::Event { event })) => {
                let _ = sink.events.send(*event);
            }
            Ok(Some(ReplyBody::Finished { summary })) => break Some(Ok(summary)),
            Ok(Some(ReplyBody::Failed { error })) => break Some(Err(error.into())),
            Ok(Some(ReplyBody::Paused)) => break None,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                let _ = sink.events.send(AgentEvent::Error {
                    message: "The replica running this turn stopped answering; its result \
                              shows in the conversation if it finished."
                        .to_owned(),
                });
                break Some(Err(gone()));
            }
        }
    };
    drop(waiter);
    if let (Some(result), Some(finished)) = (ended, sink.finished.take()) {
        let _ = finished.send(result);
    }
}

/// The holding replica's side: the resumed turn's events and end, to the deciding replica.
async fn forward(
    relay: Arc<TurnRelay>,
    reply_to: String,
    request: String,
    mut events: mpsc::UnboundedReceiver<AgentEvent>,
    end: oneshot::Receiver<Result<TurnSummary, AgentError>>,
) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    let event = Box::new(event);
                    relay.reply(&reply_to, &request, ReplyBody::Event { event }).await;
                }
                None => break,
            },
            _ = heartbeat.tick() => relay.reply(&reply_to, &request, ReplyBody::Alive).await,
        }
    }
    let body = match end.await {
        Ok(Ok(summary)) => ReplyBody::Finished { summary },
        Ok(Err(e)) => ReplyBody::Failed { error: e.into() },
        Err(_) => ReplyBody::Paused,
    };
    relay.reply(&reply_to, &request, body).await;
}

/// Sends this replica's notices to the others.
async fn send_notices(relay: Weak<TurnRelay>, mut notices: mpsc::Receiver<Notice>) {
    let mut batch = Vec::with_capacity(NOTICE_BATCH);
    // What queued up while the last batch was on the wire goes in one pipelined round trip, so
    // the notices (one per chat turn) keep up with any turn rate.
    while notices.recv_many(&mut batch, NOTICE_BATCH).await > 0 {
        let Some(relay) = relay.upgrade() else {
            return;
        };
        let payloads: Vec<String> = batch
            .drain(..)
            .map(|notice| {
                encode(&Broadcast::Notice {
                    from: relay.replica.clone(),
                    notice,
                })
            })
            .collect();
        if let Err(e) = relay.conn.publish_all(ALL, &payloads).await {
            tracing::warn!(error = %e, "confirmation notices could not reach the other replicas");
        }
    }
}

/// Hears the other replicas, subscribing again whenever the subscription drops (Redis
/// restarted), until `confirmations` is gone.
async fn listen(relay: Arc<TurnRelay>, confirmations: Weak<Confirmations>) {
    let mut backoff = Duration::from_millis(50);
    while confirmations.strong_count() > 0 {
        match subscribe(&relay).await {
            Ok(pubsub) => {
                backoff = Duration::from_millis(50);
                relay
                    .listening
                    .store(true, std::sync::atomic::Ordering::Release);
                hear(&relay, &confirmations, pubsub).await;
                relay
                    .listening
                    .store(false, std::sync::atomic::Ordering::Release);
            }
            Err(e) => tracing::warn!(error = %e, "cannot hear the other replicas yet"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe(relay: &TurnRelay) -> Result<redis::aio::PubSub, SharedStateError> {
    let mut pubsub = relay.conn.subscriber().await?;
    let channels = [
        relay.conn.key(ALL),
        relay.conn.key(&to_replica(&relay.replica)),
    ];
    pubsub
        .subscribe(&channels)
        .await
        .map_err(|e| SharedStateError::Unavailable {
            url: relay.conn.shown_url().to_owned(),
            message: e.to_string(),
        })?;
    Ok(pubsub)
}

/// Handles what arrives until the subscription drops or `confirmations` is gone.
async fn hear(
    relay: &Arc<TurnRelay>,
    confirmations: &Weak<Confirmations>,
    pubsub: redis::aio::PubSub,
) {
    let everyone = relay.conn.key(ALL);
    let mut messages = pubsub.into_on_message();
    let mut alive = tokio::time::interval(Duration::from_secs(5));
    loop {
        let message = tokio::select! {
            message = messages.next() => match message {
                Some(message) => message,
                None => return,
            },
            _ = alive.tick() => {
                if confirmations.strong_count() == 0 {
                    return;
                }
                continue;
            }
        };
        let Ok(payload) = message.get_payload::<String>() else {
            continue;
        };
        if message.get_channel_name() == everyone {
            let Some(confirmations) = confirmations.upgrade() else {
                return;
            };
            match serde_json::from_str::<Broadcast>(&payload) {
                Ok(Broadcast::Notice { from, notice }) => {
                    if from != relay.replica {
                        confirmations.apply(notice);
                    }
                }
                Ok(Broadcast::Decide {
                    request,
                    reply_to,
                    id,
                    subject,
                    session,
                    conversation,
                    decision,
                }) => {
                    let owner = Owner {
                        subject: &subject,
                        session: &session,
                        conversation: &conversation,
                    };
                    let (events, resumed_events) = mpsc::unbounded_channel();
                    let (finished, end) = oneshot::channel();
                    let sink = Sink {
                        events,
                        finished: Some(finished),
                    };
                    let answer = match confirmations.decide_as(&id, &owner, decision, sink) {
                        Ok(()) => ReplyBody::Accepted,
                        Err(ConfirmError::Expired) => ReplyBody::Expired,
                        Err(_) => ReplyBody::NotHere,
                    };
                    let accepted = matches!(answer, ReplyBody::Accepted);
                    let relay = relay.clone();
                    tokio::spawn(async move {
                        relay.reply(&reply_to, &request, answer).await;
                        if accepted {
                            forward(relay, reply_to, request, resumed_events, end).await;
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "an unreadable message from another replica"),
            }
        } else if let Ok(reply) = serde_json::from_str::<Reply>(&payload) {
            relay.deliver(reply);
        }
    }
}
