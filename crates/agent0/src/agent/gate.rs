//! The person's confirmation of a tool call (J7, `crate::confirm`): whether a call may run now,
//! may not run, or stops the turn because the confirmation ended without the person's decision.

use std::collections::HashMap;
use std::time::Duration;

use protocol::Scopes;
use serde_json::Value;

use super::{Agent, AgentEvent, OfferedTool, TurnOwner};
use crate::config::AuthStrategy;
use crate::confirm::{CONFIRMATION_LIFETIME, ConfirmationRequest, Owner, Sink, Verdict};
use crate::conversations::ToolResultView;

impl Agent {
    /// Asks the person before a call that needs it (pausing the turn until they decide): whether
    /// the call may run, else its result as the model and the chips see it — and whether the
    /// turn must stop there because nobody decided on a live chat.
    pub(super) async fn confirm(
        &self,
        owner: TurnOwner<'_>,
        offered: &HashMap<String, OfferedTool<'_>>,
        id: &str,
        name: &str,
        input: &Value,
        sink: &mut Sink,
    ) -> Gate {
        // Unknown tools and malformed arguments are reported by `run_tool`, without running.
        let Some(target) = offered.get(name).filter(|_| input.is_object()) else {
            return Gate::Run;
        };
        let subject = &owner.principal.subject;
        let connection = target.server.name.as_str();
        let first = match &target.server.auth {
            AuthStrategy::IdJag { initial_scopes, .. } => initial_scopes.clone(),
            AuthStrategy::OauthSts { .. } | AuthStrategy::None => Scopes::empty(),
        };
        let approved = first.union(
            &self
                .confirmations
                .approved(subject, owner.conversation, connection)
                .await,
        );
        if !target.policy.needs_confirmation(&approved) {
            return Gate::Run;
        }
        let mut view = ToolResultView {
            id: id.to_owned(),
            tool: name.to_owned(),
            connection: connection.to_owned(),
            arguments: input.clone(),
            result: Value::Null,
            is_error: true,
            step_up: None,
            detail: None,
        };
        let confirm_owner = Owner {
            subject,
            session: owner.session,
            conversation: owner.conversation,
        };
        let (confirmation, expires_at, resumed) =
            match self
                .confirmations
                .open(&confirm_owner, connection, &target.tool)
            {
                Ok(opened) => opened,
                Err(e) => {
                    // No card was opened and the chat still listens: the turn goes on.
                    view.result = Value::String(format!("Not run: {e}."));
                    let _ = sink.events.send(AgentEvent::ToolDone(view.clone()));
                    return Gate::Declined(view);
                }
            };
        tracing::info!(target: "agent0::audit", user = %subject, connection, tool = %target.tool, "tool call awaits confirmation");
        let _ = sink
            .events
            .send(AgentEvent::ConfirmRequired(ConfirmationRequest {
                id: confirmation.clone(),
                conversation_id: owner.conversation.to_owned(),
                call_id: id.to_owned(),
                connection: connection.to_owned(),
                tool: target.tool.clone(),
                arguments: input.clone(),
                scope: target
                    .policy
                    .required_scopes
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                destructive: target.policy.destructive,
                expires_at,
            }));
        // Whoever asked for this turn stops waiting (their stream ends with the card); the
        // turn reports to whoever decides.
        *sink = Sink::detached();
        let lifetime = Duration::from_secs(CONFIRMATION_LIFETIME.unsigned_abs());
        let verdict = match tokio::time::timeout(lifetime, resumed).await {
            Ok(Ok(resume)) => {
                *sink = resume.sink;
                resume.verdict
            }
            _ => {
                self.confirmations.expire(&confirmation);
                Verdict::Expired
            }
        };
        let reason = match verdict {
            Verdict::Approved => {
                if let Some(scopes) = &target.policy.required_scopes {
                    self.confirmations
                        .approve_scopes(subject, owner.conversation, connection, scopes)
                        .await;
                }
                return Gate::Run;
            }
            Verdict::Denied => {
                "The person declined this tool call, so it did not run. Do not try it again \
                 unless they ask for it again."
            }
            Verdict::Expired => {
                "The person did not confirm this tool call in time, so it did not run."
            }
            Verdict::Superseded => {
                "The person sent a new message instead of confirming this tool call, so it did \
                 not run."
            }
            Verdict::LoggedOut => {
                "The person logged out before confirming this tool call, so it did not run."
            }
        };
        view.result = Value::String(reason.to_owned());
        let _ = sink.events.send(AgentEvent::ToolDone(view.clone()));
        if verdict.is_decision() {
            Gate::Declined(view)
        } else {
            Gate::Abandoned(view, verdict)
        }
    }
}

/// What [`Agent::confirm`] lets happen to a tool call.
pub(super) enum Gate {
    /// Run it.
    Run,
    /// Not run (the person declined, or no card could be opened); the turn goes on.
    Declined(ToolResultView),
    /// Not run, and the turn stops: the confirmation ended without the person's decision.
    Abandoned(ToolResultView, Verdict),
    /// Not asked about: the turn already stopped.
    Skip,
}

/// The result of a tool call that was not run, with the reason the model and the chip see.
pub(super) fn not_run(id: &str, name: &str, input: Value, reason: &str) -> ToolResultView {
    ToolResultView {
        id: id.to_owned(),
        tool: name.to_owned(),
        connection: String::new(),
        arguments: input,
        result: Value::String(reason.to_owned()),
        is_error: true,
        step_up: None,
        detail: None,
    }
}

/// The result of a call left unasked because an earlier confirmation ended with `verdict`.
pub(super) fn stopped_reason(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Superseded => {
            "Not run: the person sent a new message instead of confirming an earlier tool call."
        }
        Verdict::LoggedOut => "Not run: the person logged out before confirming an earlier call.",
        _ => "Not run: the person did not confirm an earlier tool call in time.",
    }
}

/// The turn's last words when it stops at a confirmation nobody decided.
pub(super) fn stopped_note(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Superseded => {
            "You sent a new message instead of confirming, so I stopped here without running \
             the remaining tool calls."
        }
        Verdict::LoggedOut => {
            "You logged out before confirming, so I stopped here without running the remaining \
             tool calls."
        }
        _ => {
            "The tool call was not confirmed in time, so I stopped here without running the \
             remaining tool calls."
        }
    }
}
