//! `okta rollback`: deletes what the state file records, in OKTA.md §4's teardown order (rules,
//! policies, owners, connections, agents, app assignments, apps, authorization servers, trusted
//! origins), deactivating first where Okta requires it. A 404 means already gone. A failure is
//! reported and the rest continues; the state is rewritten after every deletion, so it lists
//! exactly what is left, and is deleted only when nothing is.

use std::path::PathBuf;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::ApiArgs;
use super::bootstrap::agent_orn;
use super::client::{ApiError, OktaClient};
use super::state::State;

const API_AGENTS: &str = "/workload-principals/api/v1/ai-agents";

#[derive(clap::Args)]
pub(crate) struct RollbackArgs {
    #[command(flatten)]
    api: ApiArgs,
}

struct Teardown {
    client: OktaClient,
    out: PathBuf,
    state: State,
    failures: Vec<String>,
    deleted: usize,
}

enum Done {
    Deleted,
    AlreadyGone,
}

pub(crate) async fn run(args: RollbackArgs) -> anyhow::Result<()> {
    let out = args.api.out.clone();
    let Some(state) = State::load(&out)? else {
        println!(
            "Nothing to roll back: {} does not exist.",
            State::path(&out).display()
        );
        return Ok(());
    };
    if state.is_empty() {
        std::fs::remove_file(State::path(&out))
            .with_context(|| format!("removing {}", State::path(&out).display()))?;
        println!("Nothing left to roll back; removed the empty state file.");
        return Ok(());
    }
    let org = devstack::issuer_from_okta_domain(&state.okta_domain);
    let org = super::parse_org(&org)
        .with_context(|| format!("the oktaDomain of {}", State::path(&out).display()))?;
    let token = super::api_token()?;
    if !super::confirm(
        &format!(
            "Delete everything recorded in {} from {org}?",
            State::path(&out).display()
        ),
        args.api.yes,
    )? {
        bail!("nothing was deleted");
    }
    let client = OktaClient::new(&org, token, args.api.polling())?;
    let mut teardown = Teardown {
        client,
        out,
        state,
        failures: Vec::new(),
        deleted: 0,
    };
    println!("Rolling back {org}");
    teardown.all().await?;
    let path = State::path(&teardown.out);
    if teardown.failures.is_empty() && teardown.state.is_empty() {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        println!(
            "Done: {} deleted; removed {}. The env files and the key file are left in place.",
            teardown.deleted,
            path.display()
        );
        return Ok(());
    }
    bail!(
        "{} deletion(s) failed:\n  {}\nWhat is left is recorded in {}; fix the cause and run \
         `secure-agent okta rollback` again.",
        teardown.failures.len(),
        teardown.failures.join("\n  "),
        path.display()
    )
}

impl Teardown {
    fn save(&self) -> anyhow::Result<()> {
        self.state.save(&self.out)
    }

    /// Records the outcome of one deletion; `true` when the resource is gone.
    fn outcome(&mut self, what: &str, result: Result<Done, ApiError>) -> bool {
        match result {
            Ok(Done::Deleted) => {
                println!("  - deleted {what}");
                self.deleted += 1;
                true
            }
            Ok(Done::AlreadyGone) => {
                println!("  - {what}: already gone");
                true
            }
            Err(e) => {
                println!("  ! {what}: {e}");
                self.failures.push(format!("{what}: {e}"));
                false
            }
        }
    }

    /// Optionally deactivates (`POST {path}/lifecycle/deactivate`), then deletes `path`; either
    /// may answer 202 + an operation. 404 at either step means already gone.
    async fn delete(&self, path: &str, deactivate: bool, what: &str) -> Result<Done, ApiError> {
        if deactivate {
            let result = self
                .client
                .send_and_wait(
                    Method::POST,
                    &format!("{path}/lifecycle/deactivate"),
                    None,
                    &format!("deactivating {what}"),
                )
                .await;
            match result {
                Ok(_) => {}
                Err(e) if e.is_not_found() => return Ok(Done::AlreadyGone),
                Err(e) => return Err(e),
            }
        }
        match self
            .client
            .send_and_wait(Method::DELETE, path, None, &format!("deleting {what}"))
            .await
        {
            Ok(_) => Ok(Done::Deleted),
            Err(e) if e.is_not_found() => Ok(Done::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    async fn all(&mut self) -> anyhow::Result<()> {
        let servers = self.state.mcp_auth_server_ids.clone();
        // Rules, then policies, on each recorded authorization server.
        for rule in self.state.mcp_policy_rule_ids.clone() {
            let mut result = Ok(Done::AlreadyGone);
            'found: for server in &servers {
                for policy in &self.state.mcp_policy_ids {
                    let path = format!(
                        "/api/v1/authorizationServers/{server}/policies/{policy}/rules/{rule}"
                    );
                    result = self
                        .delete(&path, false, &format!("policy rule {rule}"))
                        .await;
                    if !matches!(result, Ok(Done::AlreadyGone)) {
                        break 'found;
                    }
                }
            }
            if self.outcome(&format!("policy rule {rule}"), result) {
                self.state.mcp_policy_rule_ids.retain(|r| r != &rule);
                self.save()?;
            }
        }
        for policy in self.state.mcp_policy_ids.clone() {
            let mut result = Ok(Done::AlreadyGone);
            for server in &servers {
                let path = format!("/api/v1/authorizationServers/{server}/policies/{policy}");
                result = self.delete(&path, false, &format!("policy {policy}")).await;
                if !matches!(result, Ok(Done::AlreadyGone)) {
                    break;
                }
            }
            if self.outcome(&format!("policy {policy}"), result) {
                self.state.mcp_policy_ids.retain(|p| p != &policy);
                self.save()?;
            }
        }
        if self.state.agent_owner_setup_method.is_some() {
            let result = self.clear_owners().await;
            if self.outcome("the AI agent's owners", result) {
                self.state.agent_owner_setup_method = None;
                self.save()?;
            }
        }
        for connection in self.state.agent_connections.clone() {
            let path = format!(
                "{API_AGENTS}/{}/connections/{}",
                connection.agent_id, connection.connection_id
            );
            let what = format!("managed connection {}", connection.connection_id);
            let result = self.delete(&path, true, &what).await;
            if self.outcome(&what, result) {
                self.state.agent_connections.retain(|c| c != &connection);
                self.save()?;
            }
        }
        if let Some(location) = self.state.pending_agent_operation.clone() {
            // An agent creation never seen to complete: find out what it made.
            match self
                .client
                .wait_operation(&location, "the pending agent creation")
                .await
            {
                Ok(operation) => {
                    if let Some(id) = operation.pointer("/resource/id").and_then(Value::as_str) {
                        self.state.agent_identity_ids.push(id.to_owned());
                    }
                    self.state.pending_agent_operation = None;
                }
                Err(
                    e @ (ApiError::OperationFailed { .. } | ApiError::Status { status: 404, .. }),
                ) => {
                    println!("  - the pending agent creation: {e}; nothing to delete");
                    self.state.pending_agent_operation = None;
                }
                Err(e) => {
                    self.failures
                        .push(format!("the pending agent creation: {e}"));
                }
            }
            self.save()?;
        }
        for agent in self.state.agent_identity_ids.clone() {
            let what = format!("AI agent {agent}");
            let result = self
                .delete(&format!("{API_AGENTS}/{agent}"), true, &what)
                .await;
            if self.outcome(&what, result) {
                self.state.agent_identity_ids.retain(|a| a != &agent);
                self.state.agent_key_kid = None;
                self.save()?;
            }
        }
        for label in ["agent0", "todo0"] {
            let (apps, users) = self.app_lists(label);
            for app in apps.clone() {
                for user in users.clone() {
                    let path = format!("/api/v1/apps/{app}/users/{user}");
                    let what = format!("assignment of {user} to {label}");
                    let result = self.delete(&path, false, &what).await;
                    if self.outcome(&what, result) {
                        self.users_mut(label).retain(|u| u != &user);
                        self.save()?;
                    }
                }
            }
            if apps.is_empty() {
                self.users_mut(label).clear();
            }
        }
        for label in ["agent0", "todo0"] {
            for app in self.app_lists(label).0 {
                let what = format!("app {label} ({app})");
                let result = self
                    .delete(&format!("/api/v1/apps/{app}"), true, &what)
                    .await;
                if self.outcome(&what, result) {
                    self.apps_mut(label).retain(|a| a != &app);
                    self.users_mut(label).clear();
                    self.save()?;
                }
            }
        }
        for server in servers {
            let path = format!("/api/v1/authorizationServers/{server}");
            let what = format!("authorization server {server}");
            let result = self.delete(&path, true, &what).await;
            if self.outcome(&what, result) {
                self.state.mcp_auth_server_ids.retain(|s| s != &server);
                self.save()?;
            }
        }
        self.trusted_origins().await
    }

    fn app_lists(&self, label: &str) -> (Vec<String>, Vec<String>) {
        if label == "agent0" {
            (
                self.state.agent0_app_ids.clone(),
                self.state.agent0_app_user_ids.clone(),
            )
        } else {
            (
                self.state.todo0_app_ids.clone(),
                self.state.todo0_app_user_ids.clone(),
            )
        }
    }

    fn apps_mut(&mut self, label: &str) -> &mut Vec<String> {
        if label == "agent0" {
            &mut self.state.agent0_app_ids
        } else {
            &mut self.state.todo0_app_ids
        }
    }

    fn users_mut(&mut self, label: &str) -> &mut Vec<String> {
        if label == "agent0" {
            &mut self.state.agent0_app_user_ids
        } else {
            &mut self.state.todo0_app_user_ids
        }
    }

    /// `principalOrns: null` for each recorded agent (OKTA.md §4 teardown).
    async fn clear_owners(&self) -> Result<Done, ApiError> {
        let Some(org_id) = self.state.org_id.as_deref() else {
            // The sample's state has no orgId: the owners go with the agent.
            return Ok(Done::AlreadyGone);
        };
        let mut done = Done::AlreadyGone;
        for agent in &self.state.agent_identity_ids {
            let body = json!({"principalOrns": null, "resourceOrns": [agent_orn(org_id, agent)]});
            match self
                .client
                .post(
                    "/governance/api/v1/resource-owners",
                    &body,
                    "clearing the agent's owners",
                )
                .await
            {
                Ok(_) => done = Done::Deleted,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Trusted origins by recorded id; names without an id (the sample's state) are looked up.
    async fn trusted_origins(&mut self) -> anyhow::Result<()> {
        let names = self.state.trusted_origin_names.clone();
        let mut ids = self.state.trusted_origin_ids.clone();
        if names.len() > ids.len() {
            match self
                .client
                .list("/api/v1/trustedOrigins", "listing the trusted origins")
                .await
            {
                Ok(list) => {
                    for name in &names[ids.len()..] {
                        let id = list
                            .iter()
                            .find(|o| o.get("name").and_then(Value::as_str) == Some(name))
                            .and_then(|o| o.get("id").and_then(Value::as_str))
                            .unwrap_or("");
                        ids.push(id.to_owned());
                    }
                }
                Err(e) => {
                    self.failures
                        .push(format!("listing the trusted origins: {e}"));
                    return Ok(());
                }
            }
        }
        for (at, id) in ids.iter().enumerate().rev() {
            let name = names.get(at).cloned().unwrap_or_else(|| id.clone());
            let result = if id.is_empty() {
                Ok(Done::AlreadyGone)
            } else {
                let what = format!("trusted origin {name}");
                self.delete(&format!("/api/v1/trustedOrigins/{id}"), false, &what)
                    .await
            };
            if self.outcome(&format!("trusted origin {name}"), result) {
                if at < self.state.trusted_origin_names.len() {
                    self.state.trusted_origin_names.remove(at);
                }
                if at < self.state.trusted_origin_ids.len() {
                    self.state.trusted_origin_ids.remove(at);
                }
                self.save()?;
            }
        }
        Ok(())
    }
}
