//! The bootstrap's state file, `.okta-bootstrap-state.json` in the output folder: the sample's
//! keys (OKTA.md §5) plus ours (`version`, `orgId`, `userId`, the agent key's `kid`, the trusted
//! origins' ids, an agent creation still in flight). Written atomically (0600) after every step
//! so a re-run continues where the last one stopped and `rollback` knows what to delete. A file
//! that cannot be read, or that names another org, is refused: it is never replaced silently.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The file name, in the output folder.
pub(crate) const STATE_FILE: &str = ".okta-bootstrap-state.json";

/// The format written by this version.
const VERSION: u32 = 1;

/// A managed connection of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentConnection {
    pub(crate) agent_id: String,
    pub(crate) connection_id: String,
}

/// What the bootstrap created (ids), in the sample's key names where it has one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct State {
    #[serde(default)]
    pub(crate) version: u32,
    pub(crate) okta_domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mcp_audience: Option<String>,
    #[serde(default)]
    pub(crate) mcp_auth_server_ids: Vec<String>,
    #[serde(default)]
    pub(crate) agent0_app_ids: Vec<String>,
    #[serde(default)]
    pub(crate) todo0_app_ids: Vec<String>,
    /// User ids assigned to the agent0 app.
    #[serde(default)]
    pub(crate) agent0_app_user_ids: Vec<String>,
    #[serde(default)]
    pub(crate) todo0_app_user_ids: Vec<String>,
    #[serde(default)]
    pub(crate) agent_identity_ids: Vec<String>,
    /// The `Location` of an agent creation that had not completed (polled again on a re-run
    /// instead of creating a second agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pending_agent_operation: Option<String>,
    /// `resource-owners` once the owners are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) agent_owner_setup_method: Option<String>,
    /// The kid Okta returned for the uploaded public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) agent_key_kid: Option<String>,
    #[serde(default)]
    pub(crate) agent_connections: Vec<AgentConnection>,
    #[serde(default)]
    pub(crate) mcp_policy_ids: Vec<String>,
    #[serde(default)]
    pub(crate) mcp_policy_rule_ids: Vec<String>,
    /// Names of the trusted origins this tool created.
    #[serde(default)]
    pub(crate) trusted_origin_names: Vec<String>,
    /// Their ids, in the same order.
    #[serde(default)]
    pub(crate) trusted_origin_ids: Vec<String>,
}

/// Whether `id` looks like an Okta id: 1 to 64 letters, digits, `-` or `_`.
fn is_okta_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl State {
    pub(crate) fn new(okta_domain: &str) -> Self {
        Self {
            version: VERSION,
            okta_domain: okta_domain.to_owned(),
            ..Self::default()
        }
    }

    pub(crate) fn path(out: &Path) -> PathBuf {
        out.join(STATE_FILE)
    }

    /// The state in `out`, `None` when there is no file; an unreadable file is an error that
    /// says how to proceed.
    pub(crate) fn load(out: &Path) -> anyhow::Result<Option<Self>> {
        let path = Self::path(out);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let state: Self = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a readable bootstrap state ({e}); it records what was created in Okta, \
                 so it is not replaced: repair it, or move it away and remove the resources it \
                 lists in the Admin Console before running the command again",
                path.display()
            )
        })?;
        if let Some(bad) = state.ids().find(|id| !is_okta_id(id)) {
            bail!(
                "{} records {bad:?}, which is not an Okta id (letters, digits, - and _); it                  would be put in a request path, so the file is refused: repair it",
                path.display()
            );
        }
        if state.version > VERSION {
            bail!(
                "{} was written by a newer secure-agent (version {}); use that version",
                path.display(),
                state.version
            );
        }
        Ok(Some(state))
    }

    /// Every recorded id (each goes into a request path).
    fn ids(&self) -> impl Iterator<Item = &String> {
        self.org_id
            .iter()
            .chain(&self.user_id)
            .chain(&self.mcp_auth_server_ids)
            .chain(&self.agent0_app_ids)
            .chain(&self.todo0_app_ids)
            .chain(&self.agent0_app_user_ids)
            .chain(&self.todo0_app_user_ids)
            .chain(&self.agent_identity_ids)
            .chain(
                self.agent_connections
                    .iter()
                    .flat_map(|c| [&c.agent_id, &c.connection_id]),
            )
            .chain(&self.mcp_policy_ids)
            .chain(&self.mcp_policy_rule_ids)
            .chain(&self.trusted_origin_ids)
    }

    /// Refuses a state of another org.
    pub(crate) fn check_org(&self, out: &Path, org: &str) -> anyhow::Result<()> {
        let recorded = devstack::issuer_from_okta_domain(&self.okta_domain);
        if !recorded.eq_ignore_ascii_case(org.trim_end_matches('/')) {
            bail!(
                "{} belongs to the org {}, not {org}; use another --out folder, or run \
                 `secure-agent okta rollback --out {}` for that org first",
                Self::path(out).display(),
                self.okta_domain,
                out.display()
            );
        }
        Ok(())
    }

    /// Writes the state atomically, 0600.
    pub(crate) fn save(&self, out: &Path) -> anyhow::Result<()> {
        let path = Self::path(out);
        let mut state = self.clone();
        state.version = VERSION;
        let text = serde_json::to_string_pretty(&state)? + "\n";
        httpserve::fsutil::write_private(&path, &text)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Whether nothing is recorded any more (the org's resources are all gone).
    pub(crate) fn is_empty(&self) -> bool {
        self.mcp_auth_server_ids.is_empty()
            && self.agent0_app_ids.is_empty()
            && self.todo0_app_ids.is_empty()
            && self.agent0_app_user_ids.is_empty()
            && self.todo0_app_user_ids.is_empty()
            && self.agent_identity_ids.is_empty()
            && self.pending_agent_operation.is_none()
            && self.agent_owner_setup_method.is_none()
            && self.agent_connections.is_empty()
            && self.mcp_policy_ids.is_empty()
            && self.mcp_policy_rule_ids.is_empty()
            && self.trusted_origin_names.is_empty()
            && self.trusted_origin_ids.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_keys_are_read_and_written() {
        let sample = r#"{"oktaDomain":"dev-1.okta.com","mcpAuthServerIds":["aus1"],
            "agent0AppIds":["0oa1"],"todo0AppIds":["0oa2"],"agent0AppUserIds":["00u1"],
            "todo0AppUserIds":["00u1"],"agentIdentityIds":["wlp1"],
            "agentConnections":[{"agentId":"wlp1","connectionId":"c1"}],
            "agentOwnerSetupMethod":"resource-owners","mcpPolicyIds":["p1"],
            "mcpPolicyRuleIds":["r1"],"trustedOriginNames":["agent0"]}"#;
        let state: State = serde_json::from_str(sample).unwrap();
        assert_eq!(state.agent_connections[0].connection_id, "c1");
        let written = serde_json::to_value(&state).unwrap();
        for key in [
            "oktaDomain",
            "mcpAuthServerIds",
            "agent0AppIds",
            "todo0AppIds",
            "agent0AppUserIds",
            "todo0AppUserIds",
            "agentIdentityIds",
            "agentConnections",
            "agentOwnerSetupMethod",
            "mcpPolicyIds",
            "mcpPolicyRuleIds",
            "trustedOriginNames",
        ] {
            assert!(written.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn a_state_whose_ids_would_leave_their_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for id in ["../../users/00u1", "0oa1#", "0oa1?x", "", "%2e%2e"] {
            let text = serde_json::json!({"oktaDomain": "a.okta.com", "todo0AppUserIds": [id]});
            std::fs::write(State::path(dir.path()), text.to_string()).unwrap();
            let error = State::load(dir.path()).unwrap_err().to_string();
            assert!(error.contains("not an Okta id"), "{id}: {error}");
        }
    }

    #[test]
    fn a_corrupt_or_foreign_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(State::path(dir.path()), "{not json").unwrap();
        let error = State::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("not replaced"), "{error}");
        State::new("a.okta.com").save(dir.path()).unwrap();
        let state = State::load(dir.path()).unwrap().unwrap();
        assert!(state.check_org(dir.path(), "https://a.okta.com").is_ok());
        let error = state
            .check_org(dir.path(), "https://b.okta.com")
            .unwrap_err()
            .to_string();
        assert!(error.contains("belongs to the org"), "{error}");
        assert!(state.is_empty());
    }
}
