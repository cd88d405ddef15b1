//! `/api/v1/authorizationServers`: custom authorization servers with their scopes, access
//! policies and rules (Okta's Authorization Servers API). Creating answers 201, lifecycle and
//! deletion 204; a server is deleted only once INACTIVE.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminError;
use super::ids::{new_id, okta_time};
use super::model::{ACTIVE, AuthorizationServer, INACTIVE, Policy, Rule, Scope};
use super::wire::{Admin, Body, ListQuery, checked, href};
use crate::state::Idp;

const KIND: &str = "AuthorizationServer";

fn server_url(idp: &Idp, id: &str) -> String {
    format!("{}/api/v1/authorizationServers/{id}", idp.issuer())
}

fn render_server(idp: &Idp, s: &AuthorizationServer) -> Value {
    let url = server_url(idp, &s.id);
    json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "audiences": s.audiences,
        "issuer": format!("{}/oauth2/{}", idp.issuer(), s.id),
        "issuerMode": "ORG_URL",
        "status": s.status,
        "created": okta_time(s.created),
        "lastUpdated": okta_time(s.last_updated),
        "credentials": {"signing": {"rotationMode": "AUTO", "use": "sig"}},
        "_links": {
            "self": href(url.clone()),
            "scopes": href(format!("{url}/scopes")),
            "policies": href(format!("{url}/policies")),
            "metadata": [href(format!("{}/oauth2/{}/.well-known/openid-configuration", idp.issuer(), s.id))],
        },
    })
}

fn render_scope(idp: &Idp, server: &str, s: &Scope) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "displayName": s.display_name,
        "consent": s.consent,
        "default": s.default,
        "metadataPublish": "NO_CLIENTS",
        "system": false,
        "_links": {"self": href(format!("{}/scopes/{}", server_url(idp, server), s.id))},
    })
}

fn render_policy(idp: &Idp, server: &str, p: &Policy) -> Value {
    let url = format!("{}/policies/{}", server_url(idp, server), p.id);
    json!({
        "id": p.id,
        "type": "OAUTH_AUTHORIZATION_POLICY",
        "name": p.name,
        "description": p.description,
        "priority": p.priority,
        "status": p.status,
        "system": false,
        "conditions": {"clients": {"include": p.clients}},
        "created": okta_time(p.created),
        "lastUpdated": okta_time(p.last_updated),
        "_links": {"self": href(url.clone()), "rules": href(format!("{url}/rules"))},
    })
}

fn render_rule(idp: &Idp, server: &str, policy: &str, r: &Rule) -> Value {
    json!({
        "id": r.id,
        "type": "RESOURCE_ACCESS",
        "name": r.name,
        "priority": r.priority,
        "status": r.status,
        "system": false,
        "conditions": {
            "people": {"groups": {"include": r.groups}, "users": {"include": r.users}},
            "grantTypes": {"include": r.grant_types},
            "scopes": {"include": r.scopes},
        },
        "actions": {"token": {
            "accessTokenLifetimeMinutes": r.access_token_lifetime_minutes,
            "refreshTokenLifetimeMinutes": r.refresh_token_lifetime_minutes,
            "refreshTokenWindowMinutes": r.refresh_token_window_minutes,
        }},
        "created": okta_time(r.created),
        "lastUpdated": okta_time(r.last_updated),
        "_links": {"self": href(format!("{}/policies/{policy}/rules/{}", server_url(idp, server), r.id))},
    })
}

fn created(value: Value) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

fn find<'d>(
    doc: &'d super::model::Document,
    id: &str,
) -> Result<&'d AuthorizationServer, AdminError> {
    doc.server(checked(id, KIND)?)
        .ok_or_else(|| AdminError::not_found(format!("{id} ({KIND})")))
}

fn find_mut<'d>(
    doc: &'d mut super::model::Document,
    id: &str,
) -> Result<&'d mut AuthorizationServer, AdminError> {
    doc.server_mut(checked(id, KIND)?)
        .ok_or_else(|| AdminError::not_found(format!("{id} ({KIND})")))
}

/// The body of `POST` / `PUT /api/v1/authorizationServers`.
#[derive(Deserialize)]
pub(crate) struct ServerRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
}

impl ServerRequest {
    fn check(&self, doc: &super::model::Document, except: Option<&str>) -> Result<(), AdminError> {
        if self.name.trim().is_empty() {
            return Err(AdminError::invalid(
                "name",
                "name: The field cannot be left blank",
            ));
        }
        if doc
            .authorization_servers
            .iter()
            .any(|s| s.name == self.name && Some(s.id.as_str()) != except)
        {
            return Err(AdminError::invalid(
                "name",
                "name: An object with this field already exists in the current organization",
            ));
        }
        if self.audiences.len() != 1 {
            return Err(AdminError::invalid(
                "audiences",
                "audiences: give exactly one audience (the resource URL access tokens are for)",
            ));
        }
        Ok(())
    }
}

/// `GET /api/v1/authorizationServers?q=&limit=&after=`: `q` matches the start of the name or
/// of an audience.
pub(crate) async fn list_servers(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    query: ListQuery,
) -> Response {
    let doc = admin.document();
    let items = doc
        .authorization_servers
        .iter()
        .filter(|s| query.matches(&s.name) || s.audiences.iter().any(|a| query.matches(a)))
        .map(|s| (s.id.clone(), render_server(&idp, s)))
        .collect();
    query.page(idp.issuer(), items)
}

/// `POST /api/v1/authorizationServers` → 201, ACTIVE.
pub(crate) async fn create_server(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Body(request): Body<ServerRequest>,
) -> Result<Response, AdminError> {
    let now = idp.clock.now();
    let server = admin
        .mutate(&idp, |doc| {
            request.check(doc, None)?;
            let server = AuthorizationServer {
                id: new_id("aus"),
                name: request.name,
                description: request.description.unwrap_or_default(),
                audiences: request.audiences,
                status: ACTIVE.into(),
                created: now,
                last_updated: now,
                scopes: vec![],
                policies: vec![],
            };
            doc.authorization_servers.push(server.clone());
            Ok(server)
        })
        .await?;
    Ok(created(render_server(&idp, &server)))
}

/// `GET /api/v1/authorizationServers/{id}`.
pub(crate) async fn get_server(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    Ok(Json(render_server(&idp, find(&doc, &id)?)))
}

/// `PUT /api/v1/authorizationServers/{id}`: name, description, audiences.
pub(crate) async fn update_server(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
    Body(request): Body<ServerRequest>,
) -> Result<Json<Value>, AdminError> {
    let now = idp.clock.now();
    let server = admin
        .mutate(&idp, |doc| {
            request.check(doc, Some(&id))?;
            let server = find_mut(doc, &id)?;
            server.name = request.name;
            server.description = request.description.unwrap_or_default();
            server.audiences = request.audiences;
            server.last_updated = now;
            Ok(server.clone())
        })
        .await?;
    Ok(Json(render_server(&idp, &server)))
}

/// `DELETE /api/v1/authorizationServers/{id}` → 204, once INACTIVE.
pub(crate) async fn delete_server(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    admin
        .mutate(&idp, |doc| {
            if find(doc, &id)?.status != INACTIVE {
                return Err(AdminError::invalid(
                    "status",
                    "status: deactivate the authorization server before deleting it",
                ));
            }
            doc.authorization_servers.retain(|s| s.id != id);
            Ok(())
        })
        .await?;
    // Deleted for good (ids are never reused): its private keys go too.
    if let Err(e) = idp.delete_server_keys(&id) {
        tracing::warn!(server = %id, error = %e, "could not remove a deleted server's keys");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/authorizationServers/{id}/lifecycle/activate|deactivate` → 204.
pub(crate) async fn post_server_lifecycle(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, action)): Path<(String, String)>,
) -> Result<StatusCode, AdminError> {
    let status = lifecycle_status(&action)?;
    let now = idp.clock.now();
    admin
        .mutate(&idp, |doc| {
            let server = find_mut(doc, &id)?;
            server.status = status.into();
            server.last_updated = now;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The status an `activate` / `deactivate` action leads to; 404 for any other action.
pub(crate) fn lifecycle_status(action: &str) -> Result<&'static str, AdminError> {
    match action {
        "activate" => Ok(ACTIVE),
        "deactivate" => Ok(INACTIVE),
        _ => Err(AdminError::not_found(format!("lifecycle/{action}"))),
    }
}

/// `GET …/scopes`.
pub(crate) async fn list_scopes(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
    query: ListQuery,
) -> Result<Response, AdminError> {
    let doc = admin.document();
    let server = find(&doc, &id)?;
    let items = server
        .scopes
        .iter()
        .filter(|s| query.matches(&s.name))
        .map(|s| (s.id.clone(), render_scope(&idp, &id, s)))
        .collect();
    Ok(query.page(idp.issuer(), items))
}

/// The body of `POST …/scopes`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScopeRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    consent: Option<String>,
    #[serde(default)]
    default: bool,
}

/// `POST …/scopes` → 201.
pub(crate) async fn create_scope(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
    Body(request): Body<ScopeRequest>,
) -> Result<Response, AdminError> {
    let is_token = protocol::Scopes::parse(&request.name).is_ok_and(|s| s.iter().count() == 1)
        && !request.name.contains(' ');
    if !is_token {
        return Err(AdminError::invalid(
            "name",
            "name: a scope name is one token of printable characters without spaces",
        ));
    }
    let consent = request.consent.unwrap_or_else(|| "IMPLICIT".into());
    if !matches!(consent.as_str(), "IMPLICIT" | "REQUIRED" | "FLEXIBLE") {
        return Err(AdminError::invalid(
            "consent",
            "consent: must be IMPLICIT, REQUIRED or FLEXIBLE",
        ));
    }
    let scope = admin
        .mutate(&idp, |doc| {
            let server = find_mut(doc, &id)?;
            if server.scopes.iter().any(|s| s.name == request.name) {
                return Err(AdminError::invalid(
                    "name",
                    "name: An object with this field already exists in the current organization",
                ));
            }
            let scope = Scope {
                id: new_id("scp"),
                display_name: request.display_name.unwrap_or_else(|| request.name.clone()),
                name: request.name,
                description: request.description.unwrap_or_default(),
                consent,
                default: request.default,
            };
            server.scopes.push(scope.clone());
            Ok(scope)
        })
        .await?;
    Ok(created(render_scope(&idp, &id, &scope)))
}

/// `GET …/scopes/{scope}`.
pub(crate) async fn get_scope(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, scope)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    let found = find(&doc, &id)?
        .scopes
        .iter()
        .find(|s| s.id == scope)
        .ok_or_else(|| AdminError::not_found(format!("{scope} (OAuth2Scope)")))?;
    Ok(Json(render_scope(&idp, &id, found)))
}

/// `DELETE …/scopes/{scope}` → 204 (refused while a connection or rule needs it).
pub(crate) async fn delete_scope(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, scope)): Path<(String, String)>,
) -> Result<StatusCode, AdminError> {
    admin
        .mutate(&idp, |doc| {
            let server = find_mut(doc, &id)?;
            super::wire::remove_where(
                &mut server.scopes,
                |s| s.id == scope,
                AdminError::not_found(format!("{scope} (OAuth2Scope)")),
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/policies`.
pub(crate) async fn list_policies(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
    query: ListQuery,
) -> Result<Response, AdminError> {
    let doc = admin.document();
    let server = find(&doc, &id)?;
    let items = server
        .policies
        .iter()
        .filter(|p| query.matches(&p.name))
        .map(|p| (p.id.clone(), render_policy(&idp, &id, p)))
        .collect();
    Ok(query.page(idp.issuer(), items))
}

#[derive(Deserialize, Default)]
pub(crate) struct Include {
    #[serde(default)]
    include: Vec<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct PolicyConditions {
    #[serde(default)]
    clients: Include,
}

/// The body of `POST …/policies`.
#[derive(Deserialize)]
pub(crate) struct PolicyRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conditions: PolicyConditions,
}

/// `POST …/policies` → 201.
pub(crate) async fn create_policy(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
    Body(request): Body<PolicyRequest>,
) -> Result<Response, AdminError> {
    if request.name.trim().is_empty() {
        return Err(AdminError::invalid(
            "name",
            "name: The field cannot be left blank",
        ));
    }
    if request
        .kind
        .as_deref()
        .is_some_and(|k| k != "OAUTH_AUTHORIZATION_POLICY")
    {
        return Err(AdminError::invalid(
            "type",
            "type: an authorization server policy is OAUTH_AUTHORIZATION_POLICY",
        ));
    }
    if request.conditions.clients.include.is_empty() {
        return Err(AdminError::invalid(
            "conditions.clients.include",
            "conditions.clients.include: name the client ids (or ALL_CLIENTS) the policy applies to",
        ));
    }
    let status = match request.status.as_deref() {
        None | Some(ACTIVE) => ACTIVE,
        Some(INACTIVE) => INACTIVE,
        Some(_) => return Err(AdminError::invalid("status", "status: ACTIVE or INACTIVE")),
    };
    let now = idp.clock.now();
    let directory = idp.directory();
    let policy = admin
        .mutate(&idp, |doc| {
            // Okta refuses a policy naming a client it does not know.
            let unknown = request.conditions.clients.include.iter().find(|c| {
                *c != "ALL_CLIENTS"
                    && doc.app(c).is_none()
                    && doc.agent(c).is_none()
                    && directory.client(c).is_none()
            });
            if let Some(unknown) = unknown {
                return Err(AdminError::invalid(
                    "conditions.clients.include",
                    format!("conditions.clients.include: {unknown:?} is not a client of this org"),
                ));
            }
            let server = find_mut(doc, &id)?;
            let policy = Policy {
                id: new_id("00p"),
                name: request.name,
                description: request.description.unwrap_or_default(),
                priority: request.priority.unwrap_or(1),
                status: status.into(),
                clients: request.conditions.clients.include,
                created: now,
                last_updated: now,
                rules: vec![],
            };
            server.policies.push(policy.clone());
            Ok(policy)
        })
        .await?;
    Ok(created(render_policy(&idp, &id, &policy)))
}

fn policy_of<'d>(
    doc: &'d super::model::Document,
    id: &str,
    policy: &str,
) -> Result<&'d Policy, AdminError> {
    find(doc, id)?
        .policies
        .iter()
        .find(|p| p.id == policy)
        .ok_or_else(|| AdminError::not_found(format!("{policy} (Policy)")))
}

/// `GET …/policies/{policy}`.
pub(crate) async fn get_policy(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, policy)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    Ok(Json(render_policy(
        &idp,
        &id,
        policy_of(&doc, &id, &policy)?,
    )))
}

/// `DELETE …/policies/{policy}` → 204 (its rules go with it).
pub(crate) async fn delete_policy(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, policy)): Path<(String, String)>,
) -> Result<StatusCode, AdminError> {
    admin
        .mutate(&idp, |doc| {
            let server = find_mut(doc, &id)?;
            super::wire::remove_where(
                &mut server.policies,
                |p| p.id == policy,
                AdminError::not_found(format!("{policy} (Policy)")),
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/policies/{policy}/rules`.
pub(crate) async fn list_rules(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, policy)): Path<(String, String)>,
    query: ListQuery,
) -> Result<Response, AdminError> {
    let doc = admin.document();
    let items = policy_of(&doc, &id, &policy)?
        .rules
        .iter()
        .filter(|r| query.matches(&r.name))
        .map(|r| (r.id.clone(), render_rule(&idp, &id, &policy, r)))
        .collect();
    Ok(query.page(idp.issuer(), items))
}

#[derive(Deserialize, Default)]
pub(crate) struct People {
    #[serde(default)]
    groups: Include,
    #[serde(default)]
    users: Include,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuleConditions {
    #[serde(default)]
    people: People,
    #[serde(default)]
    grant_types: Include,
    #[serde(default)]
    scopes: Include,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenActions {
    access_token_lifetime_minutes: Option<i64>,
    refresh_token_lifetime_minutes: Option<i64>,
    refresh_token_window_minutes: Option<i64>,
}

#[derive(Deserialize, Default)]
pub(crate) struct RuleActions {
    #[serde(default)]
    token: TokenActions,
}

/// The body of `POST …/rules`.
#[derive(Deserialize)]
pub(crate) struct RuleRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    conditions: RuleConditions,
    #[serde(default)]
    actions: RuleActions,
}

/// `POST …/policies/{policy}/rules` → 201.
pub(crate) async fn create_rule(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, policy)): Path<(String, String)>,
    Body(request): Body<RuleRequest>,
) -> Result<Response, AdminError> {
    if request.name.trim().is_empty() {
        return Err(AdminError::invalid(
            "name",
            "name: The field cannot be left blank",
        ));
    }
    if request
        .kind
        .as_deref()
        .is_some_and(|k| k != "RESOURCE_ACCESS")
    {
        return Err(AdminError::invalid(
            "type",
            "type: a policy rule is RESOURCE_ACCESS",
        ));
    }
    let c = request.conditions;
    if c.grant_types.include.is_empty() {
        return Err(AdminError::invalid(
            "conditions.grantTypes.include",
            "conditions.grantTypes.include: name at least one grant type",
        ));
    }
    if c.scopes.include.is_empty() {
        return Err(AdminError::invalid(
            "conditions.scopes.include",
            "conditions.scopes.include: name the scopes (or *)",
        ));
    }
    // idp0 does not evaluate a rule's people condition: a rule limited to some people would
    // apply to everyone, so it is refused rather than silently widened.
    if !c.people.users.include.is_empty() || c.people.groups.include.iter().any(|g| g != "EVERYONE")
    {
        return Err(AdminError::invalid(
            "conditions.people",
            "conditions.people: idp0 supports rules for everyone only (groups [\"EVERYONE\"], no users)",
        ));
    }
    let token = request.actions.token;
    let access = token.access_token_lifetime_minutes.unwrap_or(60);
    if !(5..=1440).contains(&access) {
        return Err(AdminError::invalid(
            "actions.token.accessTokenLifetimeMinutes",
            "actions.token.accessTokenLifetimeMinutes: must be between 5 and 1440",
        ));
    }
    let now = idp.clock.now();
    let rule = admin
        .mutate(&idp, |doc| {
            let server = find_mut(doc, &id)?;
            let known: Vec<String> = server.scopes.iter().map(|s| s.name.clone()).collect();
            // Okta's custom servers also have the OIDC scopes (system scopes): a rule for a web
            // app's sign-in names them, and must, to cover every scope the app requests.
            let is_oidc = |s: &str| crate::server::ORG_SCOPES.contains(&s);
            if let Some(unknown) = c
                .scopes
                .include
                .iter()
                .find(|s| *s != "*" && !known.contains(s) && !is_oidc(s))
            {
                return Err(AdminError::invalid(
                    "conditions.scopes.include",
                    format!("conditions.scopes.include: {unknown:?} is not a scope of this authorization server"),
                ));
            }
            let policy = server
                .policy_mut(&policy)
                .ok_or_else(|| AdminError::not_found(format!("{policy} (Policy)")))?;
            let rule = Rule {
                id: new_id("0pr"),
                name: request.name,
                priority: request.priority.unwrap_or(1),
                status: ACTIVE.into(),
                grant_types: c.grant_types.include,
                scopes: c.scopes.include,
                groups: c.people.groups.include,
                users: c.people.users.include,
                access_token_lifetime_minutes: access,
                refresh_token_lifetime_minutes: token.refresh_token_lifetime_minutes.unwrap_or(0),
                refresh_token_window_minutes: token.refresh_token_window_minutes.unwrap_or(0),
                created: now,
                last_updated: now,
            };
            policy.rules.push(rule.clone());
            Ok(rule)
        })
        .await?;
    Ok(created(render_rule(&idp, &id, &policy, &rule)))
}

/// `GET …/rules/{rule}`.
pub(crate) async fn get_rule(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, policy, rule)): Path<(String, String, String)>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    let found = policy_of(&doc, &id, &policy)?
        .rules
        .iter()
        .find(|r| r.id == rule)
        .ok_or_else(|| AdminError::not_found(format!("{rule} (PolicyRule)")))?;
    Ok(Json(render_rule(&idp, &id, &policy, found)))
}

/// `DELETE …/rules/{rule}` → 204.
pub(crate) async fn delete_rule(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, policy, rule)): Path<(String, String, String)>,
) -> Result<StatusCode, AdminError> {
    admin
        .mutate(&idp, |doc| {
            let found = find_mut(doc, &id)?
                .policy_mut(&policy)
                .ok_or_else(|| AdminError::not_found(format!("{policy} (Policy)")))?;
            super::wire::remove_where(
                &mut found.rules,
                |r| r.id == rule,
                AdminError::not_found(format!("{rule} (PolicyRule)")),
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
