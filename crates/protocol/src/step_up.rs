//! Scope step-up for an MCP client (MCP authorization spec 2025-11-25, "Step-Up Authorization
//! Flow"; ARCHITECTURE §5.5): a `403` whose `WWW-Authenticate` says
//! `Bearer error="insufficient_scope", scope="…"` (RFC 6750 §3.1) is met by requesting the union
//! of the token's scopes and the challenged ones, then retrying, at most [`MAX_STEP_UPS`] times
//! per call.
//!
//! Only the decision lives here, without I/O: [`classify_challenge`] sorts a challenge into a
//! step-up or a refusal, and a [`StepUp`] (one per call) answers each `insufficient_scope` with
//! the scopes to request next or a typed [`GiveUp`] reason, which each client words its own way.
//! Transport, token minting and caching stay with the clients (agent0's hub, the CLI).

use crate::Scopes;
use crate::www_authenticate;

/// Step-ups allowed for one call.
pub const MAX_STEP_UPS: usize = 2;

/// What a `401`/`403` challenge asks of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `error="insufficient_scope"` (RFC 6750 §3.1): step up to `scope` (when named).
    InsufficientScope {
        /// The scopes the resource needs.
        scope: Option<Scopes>,
        /// `error: error_description`.
        description: String,
    },
    /// Any other challenge (no token, `invalid_token`, not Bearer).
    Refused {
        /// What the server said.
        description: String,
    },
}

/// Sorts a `WWW-Authenticate` value (RFC 6750 §3, parsed per RFC 9110) into step-up or refusal.
/// A `scope` that is not a valid scope list (RFC 6749 §3.3) counts as naming none.
pub fn classify_challenge(header: &str) -> Challenge {
    let challenges = www_authenticate::parse(header).unwrap_or_default();
    let Some(bearer) = www_authenticate::find_bearer(&challenges) else {
        return Challenge::Refused {
            description: "refused without a Bearer challenge".into(),
        };
    };
    let description = match (bearer.error(), bearer.param("error_description")) {
        (Some(error), Some(text)) => format!("{error}: {text}"),
        (Some(error), None) => error.to_owned(),
        (None, _) => "an access token is required".to_owned(),
    };
    if bearer.error() == Some("insufficient_scope") {
        Challenge::InsufficientScope {
            scope: bearer.scope().and_then(|s| Scopes::parse(s).ok()),
            description,
        }
    } else {
        Challenge::Refused { description }
    }
}

/// Why a call stops stepping up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveUp {
    /// The challenge names no scope (or an empty one): there is nothing to request.
    NamesNoScope,
    /// The token already has every scope the challenge names: asking again would loop.
    AlreadyGranted {
        /// The scopes the challenge named.
        needed: Scopes,
    },
    /// The call has stepped up `limit` times and the server still wants more.
    LimitReached {
        /// The scopes the last challenge named.
        needed: Scopes,
        /// The step-ups taken.
        limit: usize,
    },
}

/// The step-up state of one call: how many step-ups it has taken, and the scopes it had before
/// the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUp {
    limit: usize,
    taken: usize,
    first: Option<Scopes>,
}

impl Default for StepUp {
    fn default() -> Self {
        Self::new()
    }
}

impl StepUp {
    /// A call that may step up [`MAX_STEP_UPS`] times.
    pub fn new() -> Self {
        Self::with_limit(MAX_STEP_UPS)
    }

    /// A call that may step up `limit` times.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            limit,
            taken: 0,
            first: None,
        }
    }

    /// Answers an `insufficient_scope` challenge naming `needed`, met with a token that has
    /// `granted`: the scopes to request next (`granted ∪ needed`), counted as one step-up, or why
    /// not. Checks in order: the challenge names a scope; the token lacks one of them; the limit
    /// is not reached.
    pub fn next(&mut self, granted: &Scopes, needed: Option<&Scopes>) -> Result<Scopes, GiveUp> {
        let Some(needed) = needed.filter(|s| !s.is_empty()) else {
            return Err(GiveUp::NamesNoScope);
        };
        if granted.contains_all(needed) {
            return Err(GiveUp::AlreadyGranted {
                needed: needed.clone(),
            });
        }
        if self.taken >= self.limit {
            return Err(GiveUp::LimitReached {
                needed: needed.clone(),
                limit: self.limit,
            });
        }
        self.taken += 1;
        self.first.get_or_insert_with(|| granted.clone());
        Ok(granted.union(needed))
    }

    /// The step-ups taken so far.
    pub fn taken(&self) -> usize {
        self.taken
    }

    /// The token's scopes before the first step-up; `None` while the call has not stepped up.
    pub fn first_scopes(&self) -> Option<&Scopes> {
        self.first.as_ref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn scopes(s: &str) -> Scopes {
        Scopes::parse(s).unwrap()
    }

    #[test]
    fn insufficient_scope_steps_up_to_the_union() {
        let mut step_up = StepUp::new();
        let next = step_up.next(
            &scopes("mcp:connect mcp:tools:read"),
            Some(&scopes("mcp:connect mcp:tools:delete")),
        );
        assert_eq!(
            next,
            Ok(scopes("mcp:connect mcp:tools:read mcp:tools:delete"))
        );
        assert_eq!(step_up.taken(), 1);
        assert_eq!(
            step_up.first_scopes(),
            Some(&scopes("mcp:connect mcp:tools:read"))
        );
    }

    #[test]
    fn first_scopes_are_those_before_the_first_step_up() {
        let mut step_up = StepUp::new();
        assert_eq!(step_up.first_scopes(), None);
        step_up.next(&scopes("a"), Some(&scopes("b"))).unwrap();
        step_up.next(&scopes("a b"), Some(&scopes("c"))).unwrap();
        assert_eq!(step_up.first_scopes(), Some(&scopes("a")));
        assert_eq!(step_up.taken(), 2);
    }

    #[test]
    fn a_challenge_naming_no_scope_gives_up() {
        let mut step_up = StepUp::new();
        assert_eq!(step_up.next(&scopes("a"), None), Err(GiveUp::NamesNoScope));
        assert_eq!(
            step_up.next(&scopes("a"), Some(&Scopes::empty())),
            Err(GiveUp::NamesNoScope)
        );
        assert_eq!(step_up.taken(), 0);
        assert_eq!(step_up.first_scopes(), None);
    }

    #[test]
    fn scopes_the_token_already_has_give_up() {
        let mut step_up = StepUp::new();
        assert_eq!(
            step_up.next(&scopes("a b"), Some(&scopes("b"))),
            Err(GiveUp::AlreadyGranted {
                needed: scopes("b")
            })
        );
        assert_eq!(step_up.taken(), 0);
    }

    #[test]
    fn the_limit_gives_up_after_max_step_ups() {
        let mut step_up = StepUp::new();
        let mut granted = scopes("a");
        for (n, needed) in ["b", "c"].into_iter().enumerate() {
            granted = step_up.next(&granted, Some(&scopes(needed))).unwrap();
            assert_eq!(step_up.taken(), n + 1);
        }
        assert_eq!(MAX_STEP_UPS, 2);
        assert_eq!(
            step_up.next(&granted, Some(&scopes("d"))),
            Err(GiveUp::LimitReached {
                needed: scopes("d"),
                limit: MAX_STEP_UPS
            })
        );
        assert_eq!(step_up.taken(), MAX_STEP_UPS);
    }

    #[test]
    fn checks_run_in_order() {
        // At the limit, an empty or already-granted challenge still reports its own reason.
        let mut step_up = StepUp::with_limit(0);
        assert_eq!(step_up.next(&scopes("a"), None), Err(GiveUp::NamesNoScope));
        assert_eq!(
            step_up.next(&scopes("a"), Some(&scopes("a"))),
            Err(GiveUp::AlreadyGranted {
                needed: scopes("a")
            })
        );
        assert_eq!(
            step_up.next(&scopes("a"), Some(&scopes("b"))),
            Err(GiveUp::LimitReached {
                needed: scopes("b"),
                limit: 0
            })
        );
    }

    #[test]
    fn challenges_sort_into_step_up_or_refusal() {
        let header = r#"Bearer error="insufficient_scope", error_description="needs delete", scope="mcp:connect mcp:tools:delete", resource_metadata="http://x/.well-known/oauth-protected-resource/mcp""#;
        assert_eq!(
            classify_challenge(header),
            Challenge::InsufficientScope {
                scope: Scopes::parse("mcp:connect mcp:tools:delete").ok(),
                description: "insufficient_scope: needs delete".into(),
            }
        );
        assert_eq!(
            classify_challenge(r#"Bearer error="insufficient_scope""#),
            Challenge::InsufficientScope {
                scope: None,
                description: "insufficient_scope".into(),
            }
        );
        assert_eq!(
            classify_challenge(r#"Bearer error="invalid_token", error_description="expired""#),
            Challenge::Refused {
                description: "invalid_token: expired".into()
            }
        );
        assert_eq!(
            classify_challenge(r#"Bearer resource_metadata="http://x/""#),
            Challenge::Refused {
                description: "an access token is required".into()
            }
        );
        assert_eq!(
            classify_challenge("Basic realm=\"x\""),
            Challenge::Refused {
                description: "refused without a Bearer challenge".into()
            }
        );
    }
}
