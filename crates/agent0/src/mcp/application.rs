//! The `application` connection inside the hub: GitHub REST ([`crate::github`]) offered and
//! called like an MCP server's tools, with the ISV token from brokered consent. Arguments are
//! checked before the exchange, so a refused URL or body reaches no host at all; a `401` from
//! GitHub drops the cached ISV token and exchanges once more.

use std::sync::Arc;

use rmcp::model::Tool;
use serde_json::{Map, Value};

use super::{McpError, McpHub, McpServer, ToolOutcome};
use crate::config::{AuthStrategy, GithubApplication};
use crate::github::{GithubError, GithubRest};
use crate::tokens::{Principal, StsTarget};

impl McpHub {
    /// The same hub, also offering the application connection's tools (`None`: not configured
    /// or disabled).
    pub fn with_application(
        mut self,
        app: Option<GithubApplication>,
    ) -> Result<Self, super::McpSetupError> {
        if let Some(app) = app {
            let rest = GithubRest::new(app).map_err(|e| super::McpSetupError(e.to_string()))?;
            self.servers.push(application_server(rest.app()));
            self.application = Some(rest);
        }
        Ok(self)
    }

    /// The application connection, when `server` is it.
    pub(super) fn application_for(&self, server: &McpServer) -> Option<&Arc<GithubRest>> {
        self.application
            .as_ref()
            .filter(|rest| rest.app().name == server.name)
    }

    /// The application's tools (no network: no consent is needed to offer them).
    pub(super) fn application_tools(&self) -> Vec<Tool> {
        GithubRest::tools()
    }

    /// Calls an application tool for `principal`.
    pub(super) async fn call_application(
        &self,
        rest: &GithubRest,
        principal: &Principal,
        server: &McpServer,
        tool: &str,
        arguments: &Map<String, Value>,
    ) -> Result<ToolOutcome, McpError> {
        let refused = |message: String| ToolOutcome {
            result: Value::String(message),
            is_error: true,
            step_up: None,
        };
        let call = match rest.prepare(tool, arguments) {
            Ok(call) => call,
            Err(e) => return Ok(refused(e.to_string())),
        };
        let app = rest.app();
        let target = StsTarget {
            connection: &app.name,
            resource: &app.resource,
        };
        let mut retried = false;
        loop {
            let token = self.broker.brokered_token(principal, target).await?;
            match rest.send(&call, &token.token).await {
                Ok(result) => {
                    self.mark_live(principal, server);
                    return Ok(ToolOutcome {
                        result,
                        is_error: false,
                        step_up: None,
                    });
                }
                Err(GithubError::Unauthorized) => {
                    if retried {
                        self.broker.forget_brokered(principal, target).await;
                        return Err(McpError::Unauthorized {
                            server: server.label.clone(),
                            description: "GitHub refused a freshly exchanged token".into(),
                        });
                    }
                    tracing::info!(target: "agent0::audit", connection = %app.name, "ISV refused the token; revoking it at the IdP and exchanging again");
                    // Else the IdP hands the same token back until it expires (OKTA.md §1).
                    self.broker
                        .revoke_brokered(principal, target, &token.token)
                        .await;
                    retried = true;
                }
                Err(e @ (GithubError::Invalid(_) | GithubError::Answered(_))) => {
                    // GitHub answered: the connection works, the call did not.
                    self.mark_live(principal, server);
                    return Ok(refused(e.to_string()));
                }
                Err(GithubError::Unavailable(message)) => {
                    return Err(McpError::Unavailable {
                        server: server.label.clone(),
                        message,
                    });
                }
            }
        }
    }
}

/// The application connection as the hub lists it.
fn application_server(app: &GithubApplication) -> McpServer {
    McpServer {
        name: app.name.clone(),
        label: app.label.clone(),
        url: app.api_url.clone(),
        auth: AuthStrategy::OauthSts {
            resource: app.resource.clone(),
            okta_id: app.okta_id.clone(),
        },
        auto_approve: Vec::new(),
        in_band_refusals: false,
        declared_tools: None,
    }
}
