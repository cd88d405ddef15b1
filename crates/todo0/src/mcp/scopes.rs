//! todo0's scopes (ARCHITECTURE §5.6), which ones each JSON-RPC call and REST operation needs,
//! and the [`ScopePolicy`] that decides what deleting accepts. The MCP guard, `tools/list`, the
//! protected resource metadata, the REST API and its OpenAPI document all read this one table
//! through the configured policy, so what is advertised is what is enforced.
//!
//! Okta's TypeScript sample defines only `mcp:connect`, `mcp:tools:read` and `mcp:tools:manage`
//! at its authorization server and puts deleting under `mcp:tools:manage`; its agent requests
//! exactly those three. [`ScopePolicy::SampleCompatible`] lets such an agent delete.

use std::fmt;
use std::str::FromStr;

use protocol::Scopes;

/// Needed for any request (open a session, list tools).
pub const CONNECT: &str = "mcp:connect";
/// Reading and searching todos.
pub const READ: &str = "mcp:tools:read";
/// Creating, renaming and completing todos.
pub const MANAGE: &str = "mcp:tools:manage";
/// Deleting todos.
pub const DELETE: &str = "mcp:tools:delete";

/// What an MCP tool or a REST operation does, as far as scopes are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// List, search, read one.
    Read,
    /// Create, rename, complete, toggle.
    Manage,
    /// Delete.
    Delete,
}

/// The tools and what each does.
pub const TOOLS: [(&str, Action); 5] = [
    ("get-todos", Action::Read),
    ("create-todo", Action::Manage),
    ("update-todo", Action::Manage),
    ("toggle-todo", Action::Manage),
    ("delete-todo", Action::Delete),
];

/// What a tool does, if it is one of ours.
pub fn tool_action(tool: &str) -> Option<Action> {
    TOOLS
        .iter()
        .find(|(name, _)| *name == tool)
        .map(|(_, action)| *action)
}

/// The scopes that allow one thing: holding any one of them suffices. [`Need::preferred`] is the
/// one a client is asked for when it holds none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    preferred: &'static str,
    also: &'static [&'static str],
}

impl Need {
    const fn only(scope: &'static str) -> Self {
        Self {
            preferred: scope,
            also: &[],
        }
    }

    /// The scope a `403 insufficient_scope` challenge names to a caller holding none of the
    /// accepted ones, and the one `_meta.requiredScopes` lists.
    pub fn preferred(self) -> &'static str {
        self.preferred
    }

    /// Every accepted scope, the preferred one first.
    pub fn accepted(self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.preferred).chain(self.also.iter().copied())
    }

    /// Whether more than one scope is accepted.
    pub fn has_alternatives(self) -> bool {
        !self.also.is_empty()
    }

    /// Whether `granted` holds one of the accepted scopes.
    pub fn is_met_by(self, granted: &Scopes) -> bool {
        self.accepted().any(|scope| granted.contains(scope))
    }

    /// The accepted scope `granted` holds, else the preferred one: what a challenge names, so
    /// that a client requesting its current scopes plus the challenged ones gets a token that
    /// passes, without being asked to swap a scope it already holds for another.
    fn named_for(self, granted: &Scopes) -> &'static str {
        self.accepted()
            .find(|scope| granted.contains(scope))
            .unwrap_or(self.preferred)
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.preferred)?;
        for scope in self.also {
            write!(f, " (or {scope})")?;
        }
        Ok(())
    }
}

/// Which scopes allow deleting todos: a setting of both todo0 services (`--scope-policy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScopePolicy {
    /// Deleting needs `mcp:tools:delete` (ARCHITECTURE §5.6): least privilege, and the agent's
    /// step-up to a destructive scope is visible.
    #[default]
    LeastPrivilege,
    /// Deleting is allowed with `mcp:tools:delete` or `mcp:tools:manage`, as in Okta's
    /// TypeScript sample. A caller with neither is challenged for `mcp:tools:manage`: the scope
    /// the sample's authorization server defines and its agent can request (asking for both would
    /// make a client request both, and an authorization server without `mcp:tools:delete`
    /// refuses that with `invalid_scope`).
    SampleCompatible,
}

impl ScopePolicy {
    /// Every policy, as spelled in settings.
    pub const NAMES: [&'static str; 2] = ["least-privilege", "sample-compatible"];

    /// The policy's name, as spelled in settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeastPrivilege => "least-privilege",
            Self::SampleCompatible => "sample-compatible",
        }
    }

    /// The scopes that allow `action` (besides `mcp:connect` for MCP calls).
    pub fn need(self, action: Action) -> Need {
        match (self, action) {
            (_, Action::Read) => Need::only(READ),
            (_, Action::Manage) => Need::only(MANAGE),
            (Self::LeastPrivilege, Action::Delete) => Need::only(DELETE),
            (Self::SampleCompatible, Action::Delete) => Need {
                preferred: MANAGE,
                also: &[DELETE],
            },
        }
    }

    /// The scopes that allow `tool` (besides `mcp:connect`), if it is one of ours.
    pub fn tool_need(self, tool: &str) -> Option<Need> {
        tool_action(tool).map(|action| self.need(action))
    }

    /// Everything a JSON-RPC call needs: `mcp:connect`, plus the tool's scopes for `tools/call`.
    /// An unknown tool needs only `mcp:connect` (the MCP layer then answers "unknown tool").
    pub fn required(self, method: &str, tool: Option<&str>) -> Requirement {
        let mut needs = vec![Need::only(CONNECT)];
        if method == "tools/call" {
            needs.extend(tool.and_then(|tool| self.tool_need(tool)));
        }
        Requirement(needs)
    }

    /// Every scope some call accepts, for protected resource metadata (`scopes_supported`).
    pub fn scopes_supported(self) -> Vec<String> {
        let mut scopes = vec![CONNECT.to_owned()];
        for action in [Action::Read, Action::Manage, Action::Delete] {
            for scope in self.need(action).accepted() {
                if !scopes.iter().any(|s| s == scope) {
                    scopes.push(scope.to_owned());
                }
            }
        }
        scopes
    }
}

impl fmt::Display for ScopePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope policy name that is not one of [`ScopePolicy::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope policy {0:?}: use least-privilege (the default) or sample-compatible")]
pub struct UnknownScopePolicy(pub String);

impl FromStr for ScopePolicy {
    type Err = UnknownScopePolicy;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "least-privilege" => Ok(Self::LeastPrivilege),
            "sample-compatible" => Ok(Self::SampleCompatible),
            _ => Err(UnknownScopePolicy(text.to_owned())),
        }
    }
}

/// What one JSON-RPC message (or several) needs: every [`Need`] met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement(Vec<Need>);

impl Requirement {
    /// Just `mcp:connect`.
    pub fn connect() -> Self {
        Self(vec![Need::only(CONNECT)])
    }

    /// Both requirements.
    pub fn and(mut self, other: Requirement) -> Self {
        for need in other.0 {
            if !self.0.contains(&need) {
                self.0.push(need);
            }
        }
        self
    }

    /// Whether `granted` meets every need.
    pub fn is_met_by(&self, granted: &Scopes) -> bool {
        self.0.iter().all(|need| need.is_met_by(granted))
    }

    /// The scopes a `403 insufficient_scope` challenge names to a caller holding `granted`: for
    /// each need, the accepted scope the caller holds, else the preferred one.
    pub fn challenge(&self, granted: &Scopes) -> Scopes {
        self.0.iter().map(|need| need.named_for(granted)).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn scopes(text: &str) -> Scopes {
        Scopes::parse(text).unwrap()
    }

    #[test]
    fn each_tool_call_needs_connect_and_its_own_scope() {
        let policy = ScopePolicy::LeastPrivilege;
        let none = Scopes::empty();
        assert_eq!(
            policy
                .required("tools/call", Some("delete-todo"))
                .challenge(&none)
                .to_string(),
            "mcp:connect mcp:tools:delete"
        );
        assert_eq!(
            policy.required("tools/list", None).challenge(&none),
            scopes("mcp:connect")
        );
        assert_eq!(
            policy.required("tools/call", Some("nope")).challenge(&none),
            scopes("mcp:connect")
        );
        assert!(
            !policy
                .required("tools/call", Some("delete-todo"))
                .is_met_by(&scopes("mcp:connect mcp:tools:manage"))
        );
    }

    #[test]
    fn sample_compatible_deletes_with_manage_or_delete_and_asks_for_manage() {
        let policy = ScopePolicy::SampleCompatible;
        let delete = policy.required("tools/call", Some("delete-todo"));
        assert!(delete.is_met_by(&scopes("mcp:connect mcp:tools:manage")));
        assert!(delete.is_met_by(&scopes("mcp:connect mcp:tools:delete")));
        assert!(!delete.is_met_by(&scopes("mcp:connect mcp:tools:read")));
        assert!(
            !delete.is_met_by(&scopes("mcp:tools:manage")),
            "connect too"
        );
        assert_eq!(
            delete.challenge(&scopes("mcp:connect mcp:tools:read")),
            scopes("mcp:connect mcp:tools:manage")
        );
        // A caller that already holds an accepted scope is not asked to swap it.
        assert_eq!(
            delete.challenge(&scopes("mcp:tools:delete")),
            scopes("mcp:connect mcp:tools:delete")
        );
        // Only deleting changes.
        for (tool, action) in TOOLS {
            if action != Action::Delete {
                assert_eq!(
                    policy.tool_need(tool),
                    ScopePolicy::LeastPrivilege.tool_need(tool)
                );
            }
        }
        assert_eq!(
            policy.need(Action::Delete).to_string(),
            "mcp:tools:manage (or mcp:tools:delete)"
        );
    }

    #[test]
    fn both_policies_support_all_four_scopes() {
        for policy in [ScopePolicy::LeastPrivilege, ScopePolicy::SampleCompatible] {
            assert_eq!(
                policy.scopes_supported(),
                [CONNECT, READ, MANAGE, DELETE],
                "{policy}"
            );
        }
    }

    #[test]
    fn scope_policies_parse_from_their_names_and_nothing_else() {
        assert_eq!(ScopePolicy::default(), ScopePolicy::LeastPrivilege);
        for name in ScopePolicy::NAMES {
            let policy: ScopePolicy = name.parse().unwrap();
            assert_eq!(policy.as_str(), name);
            assert_eq!(policy.to_string(), name);
        }
        assert_eq!(
            " sample-compatible ".parse::<ScopePolicy>(),
            Ok(ScopePolicy::SampleCompatible)
        );
        for bad in ["", "sample", "Least-Privilege", "least_privilege", "manage"] {
            let error = bad.parse::<ScopePolicy>().unwrap_err();
            assert_eq!(error, UnknownScopePolicy(bad.to_owned()));
            let message = error.to_string();
            for name in ScopePolicy::NAMES {
                assert!(message.contains(name), "{message}");
            }
        }
    }
}
