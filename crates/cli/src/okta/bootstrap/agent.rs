//! Bootstrap steps 5–9 (OKTA.md §4): the AI agent (a `202` operation, remembered while it
//! runs so a re-run polls it instead of creating a second agent), its owner, its key, its
//! activation and its managed connection to the MCP authorization server.

use std::path::PathBuf;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::super::client::ApiError;
use super::super::files;
use super::super::state::AgentConnection;
use super::{
    AGENT_NAME, API_AGENTS, CONNECTION_TYPE, KEY_FILE, Run, SCOPES, agent_orn, id_of, str_at,
};

impl Run<'_> {
    /// Step 5: the AI agent (202 + operation), or the recorded one.
    pub(super) async fn agent(&mut self, app_id: &str) -> anyhow::Result<Value> {
        const WHAT: &str = "the AI agent";
        if let Some(id) = self.state.agent_identity_ids.first().cloned() {
            if let Some(agent) = self
                .client
                .find(&format!("{API_AGENTS}/{id}"), WHAT)
                .await?
            {
                return Ok(agent);
            }
            self.recreated(WHAT, &id);
            self.state.agent_identity_ids.retain(|i| i != &id);
            self.state.agent_owner_setup_method = None;
            self.state.agent_key_kid = None;
            self.state.agent_connections.retain(|c| c.agent_id != id);
            self.save()?;
        }
        if self.state.pending_agent_operation.is_none()
            && let Some(id) = self.unrecorded_agent(app_id).await
        {
            println!(
                "  ! found the AI agent {id} of an earlier run that was not recorded: using it"
            );
            self.state.agent_identity_ids.insert(0, id.clone());
            self.save()?;
            return Ok(self
                .client
                .get(&format!("{API_AGENTS}/{id}"), "reading the AI agent")
                .await?);
        }
        let location = match self.state.pending_agent_operation.clone() {
            Some(location) => location,
            None => {
                let body = json!({
                    "profile": {"name": AGENT_NAME, "description": "secure-agent's agent0: calls todo0's MCP server on a person's behalf"},
                    "appId": app_id,
                });
                let reply = self.client.post(API_AGENTS, &body, WHAT).await?;
                match reply.location {
                    Some(location) => location,
                    None => {
                        // Created at once (no operation).
                        let id = id_of(&reply.body, WHAT)?;
                        return self.agent_created(id).await;
                    }
                }
            }
        };
        self.state.pending_agent_operation = Some(location.clone());
        self.save()?;
        let operation = match self.client.wait_operation(&location, WHAT).await {
            Ok(operation) => operation,
            Err(e @ ApiError::OperationFailed { .. }) => {
                self.state.pending_agent_operation = None;
                self.save()?;
                return Err(e.into());
            }
            Err(e) if e.is_not_found() => {
                self.state.pending_agent_operation = None;
                self.save()?;
                bail!(
                    "{WHAT}: the recorded operation is gone; run the command again to create the agent"
                );
            }
            Err(e) => return Err(e.into()),
        };
        let id = str_at(&operation, "/resource/id")
            .context("the agent's operation COMPLETED without resource.id")?
            .to_owned();
        self.state.pending_agent_operation = None;
        self.agent_created(id).await
    }

    /// An agent of this app with this tool's name that the state does not record (its creation's
    /// answer was lost). Okta documents no name search for agents: the list is read, and a list
    /// the org does not offer counts as none found.
    async fn unrecorded_agent(&self, app_id: &str) -> Option<String> {
        let agents = self
            .client
            .list(API_AGENTS, "listing the AI agents")
            .await
            .ok()?;
        agents
            .iter()
            .find(|a| {
                str_at(a, "/profile/name") == Some(AGENT_NAME)
                    && str_at(a, "/appId") == Some(app_id)
            })
            .and_then(|a| str_at(a, "/id"))
            .map(str::to_owned)
    }

    async fn agent_created(&mut self, id: String) -> anyhow::Result<Value> {
        self.created(format!("AI agent {AGENT_NAME} ({id})"));
        self.state.agent_identity_ids.insert(0, id.clone());
        self.save()?;
        Ok(self
            .client
            .get(&format!("{API_AGENTS}/{id}"), "reading the AI agent")
            .await?)
    }

    /// Step 6: the API token's user owns the agent.
    pub(super) async fn owners(
        &mut self,
        org_id: &str,
        user_id: &str,
        agent_id: &str,
    ) -> anyhow::Result<()> {
        if self.state.agent_owner_setup_method.is_some() {
            return Ok(());
        }
        let body = json!({
            "principalOrns": [format!("orn:okta:directory:{org_id}:users:{user_id}")],
            "resourceOrns": [agent_orn(org_id, agent_id)],
        });
        self.client
            .post(
                "/governance/api/v1/resource-owners",
                &body,
                "setting the agent's owner",
            )
            .await?;
        self.created(format!("owner {user_id} of the AI agent"));
        self.state.agent_owner_setup_method = Some("resource-owners".into());
        self.save()
    }

    /// Step 7: the private key file (kept when it exists) and its public JWK at the agent.
    pub(super) async fn key(&mut self, agent_id: &str) -> anyhow::Result<(String, PathBuf)> {
        let key_file = self.out.join("packages/agent0").join(KEY_FILE);
        let key = files::agent_key(&key_file)?;
        let jwks_path = format!("{API_AGENTS}/{agent_id}/credentials/jwks");
        let published = self
            .client
            .list(&jwks_path, "listing the agent's keys")
            .await?;
        let ours = serde_json::to_value(key.public_jwk())?;
        let same_key = |jwk: &Value| {
            let n = jwk.get("n").or_else(|| jwk.pointer("/jwk/n"));
            n.is_some() && n == ours.get("n")
        };
        if let Some(existing) = published.iter().find(|j| same_key(j)) {
            let kid = str_at(existing, "/kid")
                .or_else(|| str_at(existing, "/jwk/kid"))
                .unwrap_or(key.kid())
                .to_owned();
            self.state.agent_key_kid = Some(kid.clone());
            self.save()?;
            return Ok((kid, key_file));
        }
        let mut jwk = json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": key.kid()});
        jwk["n"] = ours.get("n").cloned().unwrap_or(Value::Null);
        jwk["e"] = ours.get("e").cloned().unwrap_or(Value::Null);
        let reply = self
            .client
            .post(&jwks_path, &jwk, "uploading the agent's public key")
            .await?;
        let kid = str_at(&reply.body, "/kid").unwrap_or(key.kid()).to_owned();
        self.created(format!("public key {kid} of the AI agent"));
        self.state.agent_key_kid = Some(kid.clone());
        self.save()?;
        Ok((kid, key_file))
    }

    /// Step 8: activation unless the agent is active.
    pub(super) async fn activate(&mut self, agent: &Value, agent_id: &str) -> anyhow::Result<()> {
        let current = self
            .client
            .get(&format!("{API_AGENTS}/{agent_id}"), "reading the AI agent")
            .await
            .unwrap_or_else(|_| agent.clone());
        if str_at(&current, "/status") == Some("ACTIVE") {
            return Ok(());
        }
        self.client
            .send_and_wait(
                Method::POST,
                &format!("{API_AGENTS}/{agent_id}/lifecycle/activate"),
                None,
                "activating the AI agent",
            )
            .await?;
        self.created(format!("activation of the AI agent {agent_id}"));
        self.save()
    }

    /// Step 9: the managed connection to the MCP authorization server.
    pub(super) async fn connection(
        &mut self,
        org_id: &str,
        as_id: &str,
        agent_id: &str,
    ) -> anyhow::Result<()> {
        const WHAT: &str = "the agent's managed connection";
        let path = format!("{API_AGENTS}/{agent_id}/connections");
        let orn = format!("orn:okta:idp:{org_id}:authorization_servers:{as_id}");
        let existing = self.client.list(&path, WHAT).await?;
        // The connection to this authorization server; one to another (an earlier server that
        // was deleted and created again) stays recorded for rollback.
        let is_ours = |c: &Value| {
            str_at(c, "/connectionType") == Some(CONNECTION_TYPE)
                && str_at(c, "/authorizationServer/orn") == Some(orn.as_str())
        };
        let found = existing.iter().find(|c| is_ours(c));
        let found_id = found.and_then(|f| str_at(f, "/id")).map(str::to_owned);
        let recorded: Vec<String> = self
            .state
            .agent_connections
            .iter()
            .filter(|c| c.agent_id == agent_id)
            .map(|c| c.connection_id.clone())
            .collect();
        for id in &recorded {
            let listed = existing
                .iter()
                .find(|c| str_at(c, "/id") == Some(id.as_str()));
            match listed {
                None => {
                    self.recreated(WHAT, id);
                    self.state
                        .agent_connections
                        .retain(|c| &c.connection_id != id);
                }
                Some(_) if Some(id) != found_id.as_ref() => {
                    println!(
                        "  ! {WHAT} {id} is to another authorization server: kept for rollback"
                    );
                }
                Some(_) => {}
            }
        }
        self.state
            .agent_connections
            .retain(|c| Some(&c.connection_id) != found_id.as_ref());
        let id = match found {
            Some(connection) => id_of(connection, WHAT)?,
            None => {
                let scopes: Vec<&str> = SCOPES.iter().map(|(name, _)| *name).collect();
                let body = json!({
                    "connectionType": CONNECTION_TYPE,
                    "authorizationServer": {"orn": orn, "resourceIndicator": self.plan.audience},
                    "scopeCondition": "INCLUDE_ONLY",
                    "scopes": scopes,
                });
                let reply = self.client.post(&path, &body, WHAT).await?;
                let id = id_of(&reply.body, WHAT)?;
                self.created(format!("managed connection {id}"));
                id
            }
        };
        self.state.agent_connections.push(AgentConnection {
            agent_id: agent_id.to_owned(),
            connection_id: id,
        });
        self.save()
    }
}
