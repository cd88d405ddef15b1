//! Brokered consent inside a turn (OKTA.md §2, issue 8): a tool call whose connection answers
//! `interaction_required` shows the person a consent card and the turn waits for them, polling
//! the same exchange at the server's `interval` (longer after `slow_down`) until it succeeds —
//! then the pending call runs, once, and the turn finishes without asking the model again about
//! the person's message — or until consent is denied, the link expires, the person sends a new
//! message in the conversation, or logs out: the call is then not run and the turn ends with one
//! clear sentence, so the model never retries in a loop. The turn lives on the replica that
//! polls, so its SSE stream simply stays open; if the browser goes away the turn still finishes
//! and is stored. Waits are bounded: [`MAX_WAITS_PER_PERSON`] per person,
//! [`MAX_WAITS`] in all; past them the card is shown and the call is not waited for.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::{Agent, AgentEvent, TurnOwner};
use crate::config::AuthStrategy;
use crate::confirm::Verdict;
use crate::mcp::{McpError, McpServer, ToolOutcome};
use crate::tokens::{StsTarget, TokenError};

/// Turns waiting for consent at once, for everyone.
pub(super) const MAX_WAITS: usize = 1024;
/// Turns waiting for consent at once for one person.
pub(super) const MAX_WAITS_PER_PERSON: usize = 4;
/// Seconds between polls when the server names no `interval` (the draft's default).
const DEFAULT_INTERVAL: u64 = 5;
/// How much longer each poll waits after `slow_down` (RFC 8628 §3.5).
const SLOW_DOWN_STEP: u64 = 5;
/// The longest interval honoured.
const MAX_INTERVAL: u64 = 60;
/// How long a turn waits for consent when the server names no `expires_in`, in seconds.
const DEFAULT_WAIT: u64 = 10 * 60;

struct Waiter {
    subject: String,
    conversation: String,
    end: watch::Sender<Option<Verdict>>,
}

/// The turns waiting for consent, so a new message or a logout can end their wait.
#[derive(Default)]
pub struct ConsentWaits {
    waiting: Mutex<HashMap<u64, Waiter>>,
    next: AtomicU64,
}

/// A registered wait; dropped when the wait is over.
struct WaitGuard<'a> {
    waits: &'a ConsentWaits,
    id: u64,
    ended: watch::Receiver<Option<Verdict>>,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.waits.lock().remove(&self.id);
    }
}

impl ConsentWaits {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waiter>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, subject: &str, conversation: &str) -> Option<WaitGuard<'_>> {
        let mut waiting = self.lock();
        let theirs = waiting.values().filter(|w| w.subject == subject).count();
        if waiting.len() >= MAX_WAITS || theirs >= MAX_WAITS_PER_PERSON {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (end, ended) = watch::channel(None);
        waiting.insert(
            id,
            Waiter {
                subject: subject.to_owned(),
                conversation: conversation.to_owned(),
                end,
            },
        );
        Some(WaitGuard {
            waits: self,
            id,
            ended,
        })
    }

    fn end_where(&self, verdict: Verdict, matches: impl Fn(&Waiter) -> bool) {
        for waiter in self.lock().values().filter(|w| matches(w)) {
            let _ = waiter.end.send(Some(verdict));
        }
    }

    /// Ends the waits in `conversation` (the person sent a new message there).
    pub fn supersede(&self, subject: &str, conversation: &str) {
        self.end_where(Verdict::Superseded, |w| {
            w.subject == subject && w.conversation == conversation
        });
    }

    /// Ends every wait of `subject` (logout).
    pub fn forget_person(&self, subject: &str) {
        self.end_where(Verdict::LoggedOut, |w| w.subject == subject);
    }

    /// Turns waiting now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no turn waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Agent {
    /// Calls `tool`, and when its connection needs consent first, shows the card and waits for
    /// it (see the module docs) before calling once more. `Err(note)` when the turn must stop
    /// there (consent denied, expired, or the wait ended), with its last words.
    pub(super) async fn call_with_consent(
        &self,
        owner: TurnOwner<'_>,
        server: &McpServer,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        events: &tokio::sync::mpsc::UnboundedSender<AgentEvent>,
    ) -> (Result<ToolOutcome, McpError>, Option<&'static str>) {
        let principal = owner.principal;
        let first = self
            .hub
            .call_tool(principal, server, tool, arguments.clone())
            .await;
        let first = match first {
            // The IdP handed out the link to an exchange nobody showed (a tool listing's): its
            // retries say only "pending". The remembered link gets the card.
            Err(McpError::Token(TokenError::ConsentPending { .. })) => {
                match self.remembered_interaction(principal, server) {
                    Some(open) => Err(McpError::Token(open)),
                    None => first,
                }
            }
            other => other,
        };
        let Err(McpError::Token(TokenError::InteractionRequired {
            connection,
            interaction_uri,
            interval,
            expires_in,
        })) = first
        else {
            return (first, None);
        };
        let card = |waiting| AgentEvent::ConsentRequired {
            connection: connection.clone(),
            interaction_uri: interaction_uri.clone(),
            waiting,
            resource: None,
        };
        let again = || {
            McpError::Token(TokenError::InteractionRequired {
                connection: connection.clone(),
                interaction_uri: interaction_uri.clone(),
                interval,
                expires_in,
            })
        };
        let AuthStrategy::OauthSts { resource, .. } = &server.auth else {
            // Not a brokered connection: the card is all that can be done.
            let _ = events.send(card(false));
            return (Err(again()), None);
        };
        let Some(guard) = self
            .consent_waits
            .register(&principal.subject, owner.conversation)
        else {
            tracing::warn!(user = %principal.subject, "too many turns wait for consent; not waiting");
            let _ = events.send(card(false));
            return (Err(again()), None);
        };
        let _ = events.send(card(true));
        let target = StsTarget {
            connection: &server.name,
            resource,
        };
        tracing::info!(target: "agent0::audit", user = %principal.subject, connection = %server.name, "waiting for consent");
        let ended = self
            .poll_consent(principal, target, guard, interval, expires_in)
            .await;
        match ended {
            None => {
                tracing::info!(target: "agent0::audit", user = %principal.subject, connection = %server.name, "consent given; the call resumes");
                let result = self.hub.call_tool(principal, server, tool, arguments).await;
                (result, None)
            }
            Some((verdict, error)) => (Err(McpError::Token(error)), Some(consent_note(verdict))),
        }
    }

    /// The open consent link of `server` (a brokered connection) for `principal`, if any.
    fn remembered_interaction(
        &self,
        principal: &crate::tokens::Principal,
        server: &McpServer,
    ) -> Option<TokenError> {
        let AuthStrategy::OauthSts { resource, .. } = &server.auth else {
            return None;
        };
        let target = StsTarget {
            connection: &server.name,
            resource,
        };
        self.hub.broker().open_interaction(principal, target)
    }

    /// Polls the exchange until it succeeds (`None`) or the wait ends (`Some`: why, and the
    /// error the call's result reports).
    async fn poll_consent(
        &self,
        principal: &crate::tokens::Principal,
        target: StsTarget<'_>,
        mut guard: WaitGuard<'_>,
        interval: Option<u64>,
        expires_in: Option<u64>,
    ) -> Option<(Verdict, TokenError)> {
        let connection = target.connection.to_owned();
        let mut every = interval.unwrap_or(DEFAULT_INTERVAL).clamp(1, MAX_INTERVAL);
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(expires_in.unwrap_or(DEFAULT_WAIT).min(DEFAULT_WAIT));
        let expired = || {
            Some((
                Verdict::Expired,
                TokenError::ConsentExpired {
                    connection: connection.clone(),
                },
            ))
        };
        loop {
            let wake = tokio::time::Instant::now() + Duration::from_secs(every);
            if wake > deadline {
                return expired();
            }
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                _ = guard.ended.changed() => {}
            }
            if let Some(verdict) = *guard.ended.borrow() {
                let error = TokenError::ConsentExpired {
                    connection: connection.clone(),
                };
                return Some((verdict, error));
            }
            match self.hub.broker().brokered_token(principal, target).await {
                Ok(_) => return None,
                Err(TokenError::InteractionRequired { .. }) => {}
                Err(TokenError::ConsentPending { slow_down, .. }) => {
                    if slow_down {
                        every = (every + SLOW_DOWN_STEP).min(MAX_INTERVAL);
                    }
                }
                // The IdP may be briefly away: keep waiting until the deadline.
                Err(TokenError::Unavailable(_)) => {}
                Err(e @ TokenError::ConsentDenied { .. }) => return Some((Verdict::Denied, e)),
                Err(TokenError::ConsentExpired { .. }) => return expired(),
                Err(e) => return Some((Verdict::Expired, e)),
            }
        }
    }
}

/// The turn's last words when it stops at a consent that was not given.
fn consent_note(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Denied => "Consent was denied, so I did not do that. Nothing was sent.",
        Verdict::Superseded => {
            "You sent a new message before giving consent, so I stopped waiting; nothing was sent."
        }
        Verdict::LoggedOut => "You logged out before giving consent, so nothing was sent.",
        _ => "Consent was not given in time, so I did not do that; ask again to get a new link.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_bounded_per_person_and_ended_by_a_new_message_or_logout() {
        let waits = ConsentWaits::default();
        let mut alice: Vec<WaitGuard<'_>> = (0..MAX_WAITS_PER_PERSON)
            .map(|i| waits.register("alice", &format!("c{i}")).expect("a slot"))
            .collect();
        assert!(
            waits.register("alice", "c9").is_none(),
            "alice's slots are used up"
        );
        let mut bob = waits.register("bob", "c0").expect("others still get one");
        waits.supersede("alice", "c0");
        assert_eq!(
            *alice[0].ended.borrow_and_update(),
            Some(Verdict::Superseded)
        );
        assert_eq!(
            *alice[1].ended.borrow_and_update(),
            None,
            "only that conversation"
        );
        assert_eq!(*bob.ended.borrow_and_update(), None, "only that person");
        waits.forget_person("alice");
        assert_eq!(
            *alice[1].ended.borrow_and_update(),
            Some(Verdict::LoggedOut)
        );
        alice.clear();
        assert_eq!(waits.len(), 1, "a finished wait frees its slot");
        drop(bob);
        assert!(waits.is_empty());
    }

    #[test]
    fn another_replicas_new_message_or_logout_ends_a_wait_here() {
        let waits = std::sync::Arc::new(ConsentWaits::default());
        let confirmations =
            crate::confirm::Confirmations::new(protocol::clock::FixedClock::frozen_now());
        confirmations.end_consent_waits_too(waits.clone());
        let mut first = waits.register("alice", "c1").expect("a slot");
        let mut second = waits.register("alice", "c2").expect("a slot");
        // What the relay delivers from another replica.
        confirmations.apply(crate::confirm::Notice::Supersede {
            subject: "alice".into(),
            conversation: "c1".into(),
        });
        assert_eq!(*first.ended.borrow_and_update(), Some(Verdict::Superseded));
        assert_eq!(*second.ended.borrow_and_update(), None);
        confirmations.apply(crate::confirm::Notice::ForgetSession {
            session: crate::confirm::session_digest("elsewhere"),
            subject: "alice".into(),
        });
        assert_eq!(*second.ended.borrow_and_update(), Some(Verdict::LoggedOut));
    }
}
