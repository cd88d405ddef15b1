//! `/workload-principals/api/v1/ai-agents`: AI agent identities (Okta for AI Agents), their
//! public keys (`credentials/jwks`) and managed connections. Creating, activating, deactivating
//! and deleting an agent answer 202 with the `Location` of an operation (idp0 completes it at
//! once). An agent is activated only with an owner, deleted only once not ACTIVE; a connection
//! is deleted only once INACTIVE. An uploaded key must be an RSA or EC public key with no
//! private members.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminError;
use super::authorization_servers::lifecycle_status;
use super::ids::{new_id, okta_time};
use super::model::{
    ACTIVE, Agent, AgentConnection, AgentKey, Document, INACTIVE, Operation, STAGED,
};
use super::translate::IDENTITY_ASSERTION_CUSTOM_AS;
use super::wire::{Admin, Body, ListQuery, checked, href};
use crate::state::Idp;

const KIND: &str = "AiAgent";
/// JWK members that only a private key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn agent_url(idp: &Idp, id: &str) -> String {
    format!("{}/workload-principals/api/v1/ai-agents/{id}", idp.issuer())
}

/// The ORN of an agent (OKTA.md §4).
pub(crate) fn agent_orn(org_id: &str, agent_id: &str) -> String {
    format!("orn:okta:directory:{org_id}:workload-principals:ai-agents:{agent_id}")
}

fn render_agent(idp: &Idp, org_id: &str, a: &Agent) -> Value {
    let url = agent_url(idp, &a.id);
    json!({
        "id": a.id,
        "orn": agent_orn(org_id, &a.id),
        "status": a.status,
        "profile": {"name": a.name, "description": a.description},
        "appId": a.app_id,
        "created": okta_time(a.created),
        "lastUpdated": okta_time(a.last_updated),
        "_links": {
            "self": href(url.clone()),
            "jwks": href(format!("{url}/credentials/jwks")),
            "connections": href(format!("{url}/connections")),
        },
    })
}

fn render_key(idp: &Idp, agent: &str, k: &AgentKey) -> Value {
    let mut value = k.jwk.clone();
    value["id"] = json!(k.id);
    value["status"] = json!(k.status);
    value["created"] = json!(okta_time(k.created));
    value["lastUpdated"] = json!(okta_time(k.last_updated));
    value["_links"] =
        json!({"self": href(format!("{}/credentials/jwks/{}", agent_url(idp, agent), k.id))});
    value
}

fn render_connection(idp: &Idp, agent: &str, c: &AgentConnection) -> Value {
    json!({
        "id": c.id,
        "connectionType": c.connection_type,
        "authorizationServer": {"orn": c.authorization_server_orn, "resourceIndicator": c.resource_indicator},
        "resourceIndicator": c.resource_indicator,
        "scopeCondition": c.scope_condition,
        "scopes": c.scopes,
        "status": c.status,
        "created": okta_time(c.created),
        "lastUpdated": okta_time(c.last_updated),
        "_links": {"self": href(format!("{}/connections/{}", agent_url(idp, agent), c.id))},
    })
}

/// An operation's JSON (also `GET /workload-principals/api/v1/operations/{id}`).
pub(crate) fn render_operation(idp: &Idp, o: &Operation) -> Value {
    json!({
        "id": o.id,
        "type": o.kind,
        "status": o.status,
        "resource": {"id": o.resource_id, "type": "ai-agent"},
        "created": okta_time(o.created),
        "started": okta_time(o.created),
        "completed": okta_time(o.created),
        "_links": {"self": href(operation_url(idp, &o.id))},
    })
}

fn operation_url(idp: &Idp, id: &str) -> String {
    format!(
        "{}/workload-principals/api/v1/operations/{id}",
        idp.issuer()
    )
}

/// 202 with the operation's `Location` and body.
fn accepted(idp: &Idp, operation: &Operation) -> Response {
    let mut response =
        (StatusCode::ACCEPTED, Json(render_operation(idp, operation))).into_response();
    if let Ok(value) = operation_url(idp, &operation.id).parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn completed(kind: &str, resource_id: &str, now: i64) -> Operation {
    Operation {
        id: new_id("aop"),
        kind: kind.into(),
        status: "COMPLETED".into(),
        resource_id: resource_id.into(),
        created: now,
    }
}

fn find<'d>(doc: &'d Document, id: &str) -> Result<&'d Agent, AdminError> {
    doc.agent(checked(id, KIND)?)
        .ok_or_else(|| AdminError::not_found(format!("{id} ({KIND})")))
}

fn find_mut<'d>(doc: &'d mut Document, id: &str) -> Result<&'d mut Agent, AdminError> {
    doc.agent_mut(checked(id, KIND)?)
        .ok_or_else(|| AdminError::not_found(format!("{id} ({KIND})")))
}

/// `GET /workload-principals/api/v1/ai-agents?q=&limit=&after=`.
pub(crate) async fn list_agents(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    query: ListQuery,
) -> Response {
    let doc = admin.document();
    let items = doc
        .agents
        .iter()
        .filter(|a| query.matches(&a.name))
        .map(|a| (a.id.clone(), render_agent(&idp, admin.org_id(), a)))
        .collect();
    query.page(idp.issuer(), items)
}

#[derive(Deserialize, Default)]
pub(crate) struct Profile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
}

/// The body of `POST /workload-principals/api/v1/ai-agents`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentRequest {
    #[serde(default)]
    profile: Profile,
    #[serde(default)]
    app_id: Option<String>,
}

/// `POST /workload-principals/api/v1/ai-agents` → 202 + `Location`; the agent is STAGED.
pub(crate) async fn create_agent(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Body(request): Body<AgentRequest>,
) -> Result<Response, AdminError> {
    if request.profile.name.trim().is_empty() {
        return Err(AdminError::invalid(
            "profile.name",
            "profile.name: The field cannot be left blank",
        ));
    }
    let now = idp.clock.now();
    let operation = admin
        .mutate(&idp, |doc| {
            if let Some(app) = &request.app_id
                && doc.app(app).is_none()
            {
                return Err(AdminError::invalid(
                    "appId",
                    format!("appId: {app:?} is not an app of this org"),
                ));
            }
            let agent = Agent {
                id: new_id("wlp"),
                name: request.profile.name,
                description: request.profile.description.unwrap_or_default(),
                app_id: request.app_id,
                status: STAGED.into(),
                created: now,
                last_updated: now,
                keys: vec![],
                connections: vec![],
                owners: vec![],
            };
            let operation = completed("CREATE", &agent.id, now);
            doc.agents.push(agent);
            doc.record_operation(operation.clone());
            Ok(operation)
        })
        .await?;
    Ok(accepted(&idp, &operation))
}

/// `GET /workload-principals/api/v1/ai-agents/{id}`.
pub(crate) async fn get_agent(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    Ok(Json(render_agent(&idp, admin.org_id(), find(&doc, &id)?)))
}

/// `POST …/ai-agents/{id}/lifecycle/activate|deactivate` → 202 + `Location`.
pub(crate) async fn post_agent_lifecycle(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, AdminError> {
    let status = lifecycle_status(&action)?;
    let now = idp.clock.now();
    let operation = admin
        .mutate(&idp, |doc| {
            let agent = find_mut(doc, &id)?;
            if status == ACTIVE && agent.owners.is_empty() {
                return Err(AdminError::invalid(
                    "owners",
                    "owners: assign an owner (POST /governance/api/v1/resource-owners) before activating the AI agent",
                ));
            }
            agent.status = status.into();
            agent.last_updated = now;
            let kind = if status == ACTIVE { "ACTIVATE" } else { "DEACTIVATE" };
            let operation = completed(kind, &id, now);
            doc.record_operation(operation.clone());
            Ok(operation)
        })
        .await?;
    Ok(accepted(&idp, &operation))
}

/// `DELETE …/ai-agents/{id}` → 202 + `Location`, once not ACTIVE.
pub(crate) async fn delete_agent(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let now = idp.clock.now();
    let operation = admin
        .mutate(&idp, |doc| {
            if find(doc, &id)?.status == ACTIVE {
                return Err(AdminError::invalid(
                    "status",
                    "status: deactivate the AI agent before deleting it",
                ));
            }
            doc.agents.retain(|a| a.id != id);
            let operation = completed("DELETE", &id, now);
            doc.record_operation(operation.clone());
            Ok(operation)
        })
        .await?;
    Ok(accepted(&idp, &operation))
}

/// `GET …/ai-agents/{id}/credentials/jwks`.
pub(crate) async fn list_keys(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    let keys: Vec<Value> = find(&doc, &id)?
        .keys
        .iter()
        .map(|k| render_key(&idp, &id, k))
        .collect();
    Ok(Json(Value::Array(keys)))
}

/// The smallest RSA modulus accepted, in bits (Okta's own minimum for uploaded keys).
const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits (what the verifier handles).
const MAX_RSA_BITS: usize = 8192;
/// The longest `kid`.
const MAX_KID_LEN: usize = 128;

/// The public JWK `value` with its `kid` (given, or the RFC 7638 thumbprint) and `use: sig`;
/// refused unless it is an RSA (2048 to 8192 bits, exponent 65537) or EC (P-256, P-384, with
/// coordinates of the curve's size) public key without private members. Only the members a
/// verifier needs are kept (`kty`, `n`/`e` or `crv`/`x`/`y`, `kid`, `alg`, `use`): `jku`,
/// `x5u`, `x5c` and anything else are dropped, not stored and served back.
fn public_jwk(value: Value) -> Result<(Value, String), AdminError> {
    let object = value
        .as_object()
        .ok_or_else(|| AdminError::invalid("jwk", "jwk: send the public key as a JSON object"))?;
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| object.contains_key(**m)) {
        return Err(AdminError::invalid(
            "jwk",
            format!("jwk: {member:?} is private key material; upload the public key only"),
        ));
    }
    let members: &[&str] = match object.get("kty").and_then(Value::as_str) {
        Some("RSA") => &["kty", "n", "e", "kid", "alg", "use"],
        Some("EC") => &["kty", "crv", "x", "y", "kid", "alg", "use"],
        _ => return Err(AdminError::invalid("kty", "kty: RSA or EC keys only")),
    };
    if object.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return Err(AdminError::invalid(
            "use",
            "use: an AI agent's key signs its client assertions (\"sig\")",
        ));
    }
    let mut kept: serde_json::Map<String, Value> = object
        .iter()
        .filter(|(name, _)| members.contains(&name.as_str()))
        .map(|(name, v)| (name.clone(), v.clone()))
        .collect();
    let jwk: Jwk = serde_json::from_value(Value::Object(kept.clone()))
        .map_err(|e| AdminError::invalid("jwk", format!("jwk: not a JWK ({e})")))?;
    protocol::keys::pinned_algorithm(&jwk)
        .map_err(|e| AdminError::invalid("alg", format!("alg: {e}")))?;
    check_strength(&jwk)?;
    jsonwebtoken::DecodingKey::from_jwk(&jwk)
        .map_err(|e| AdminError::invalid("jwk", format!("jwk: not a usable public key ({e})")))?;
    let kid = match jwk.common.key_id.clone() {
        Some(kid) if !kid.is_empty() => kid,
        _ => protocol::keys::thumbprint(&jwk)
            .map_err(|e| AdminError::invalid("jwk", format!("jwk: {e}")))?,
    };
    if kid.len() > MAX_KID_LEN || !kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AdminError::invalid(
            "kid",
            format!("kid: up to {MAX_KID_LEN} printable characters without spaces"),
        ));
    }
    kept.insert("kid".into(), json!(kid));
    kept.insert("use".into(), json!("sig"));
    Ok((Value::Object(kept), kid))
}

/// The key's size: RSA 2048 to 8192 bits with the exponent 65537; EC coordinates of the curve's
/// length. (Whether an EC point is on its curve is checked by the verifier at each use.)
fn check_strength(jwk: &Jwk) -> Result<(), AdminError> {
    use base64::Engine;
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
    let decode = |field: &str, text: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| AdminError::invalid(field, format!("{field}: not base64url")))
    };
    match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let n = decode("n", &rsa.n)?;
            let n = n
                .iter()
                .skip_while(|b| **b == 0)
                .copied()
                .collect::<Vec<u8>>();
            let bits = n.first().map_or(0, |top| {
                (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
            });
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(AdminError::invalid(
                    "n",
                    format!("n: the RSA key has {bits} bits; use {MIN_RSA_BITS} to {MAX_RSA_BITS}"),
                ));
            }
            let e = decode("e", &rsa.e)?;
            if e.iter()
                .skip_while(|b| **b == 0)
                .copied()
                .collect::<Vec<u8>>()
                != [1, 0, 1]
            {
                return Err(AdminError::invalid(
                    "e",
                    "e: use the public exponent 65537 (\"AQAB\")",
                ));
            }
            Ok(())
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let size = match ec.curve {
                EllipticCurve::P256 => 32,
                EllipticCurve::P384 => 48,
                _ => return Err(AdminError::invalid("crv", "crv: P-256 or P-384")),
            };
            if decode("x", &ec.x)?.len() != size || decode("y", &ec.y)?.len() != size {
                return Err(AdminError::invalid(
                    "crv",
                    format!(
                        "crv: the coordinates of a {:?} key are {size} bytes",
                        ec.curve
                    ),
                ));
            }
            Ok(())
        }
        _ => Err(AdminError::invalid("kty", "kty: RSA or EC keys only")),
    }
}

/// `POST …/ai-agents/{id}/credentials/jwks` with a bare public JWK → 201 `{id, kid, …}`.
pub(crate) async fn create_key(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
    Body(value): Body<Value>,
) -> Result<Response, AdminError> {
    let (jwk, kid) = public_jwk(value)?;
    let now = idp.clock.now();
    let key = admin
        .mutate(&idp, |doc| {
            let agent = find_mut(doc, &id)?;
            if agent.keys.iter().any(|k| k.kid == kid) {
                return Err(AdminError::invalid(
                    "kid",
                    "kid: the agent already has a key with this kid",
                ));
            }
            let key = AgentKey {
                id: new_id("pks"),
                kid,
                status: ACTIVE.into(),
                jwk,
                created: now,
                last_updated: now,
            };
            agent.keys.push(key.clone());
            agent.last_updated = now;
            Ok(key)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(render_key(&idp, &id, &key))).into_response())
}

/// `GET …/credentials/jwks/{key}` (by key id or kid).
pub(crate) async fn get_key(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    let found = find(&doc, &id)?
        .keys
        .iter()
        .find(|k| k.id == key || k.kid == key)
        .ok_or_else(|| AdminError::not_found(format!("{key} (JsonWebKey)")))?;
    Ok(Json(render_key(&idp, &id, found)))
}

/// `DELETE …/credentials/jwks/{key}` → 204.
pub(crate) async fn delete_key(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, AdminError> {
    admin
        .mutate(&idp, |doc| {
            let agent = find_mut(doc, &id)?;
            super::wire::remove_where(
                &mut agent.keys,
                |k| k.id == key || k.kid == key,
                AdminError::not_found(format!("{key} (JsonWebKey)")),
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/ai-agents/{id}/connections` → `{data:[…]}`.
pub(crate) async fn list_connections(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    let data: Vec<Value> = find(&doc, &id)?
        .connections
        .iter()
        .map(|c| render_connection(&idp, &id, c))
        .collect();
    Ok(Json(json!({ "data": data })))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServerReference {
    #[serde(default)]
    orn: String,
    #[serde(default)]
    resource_indicator: Option<String>,
}

/// The body of `POST …/connections`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectionRequest {
    #[serde(default)]
    connection_type: String,
    #[serde(default)]
    authorization_server: ServerReference,
    #[serde(default)]
    resource_indicator: Option<String>,
    #[serde(default)]
    scope_condition: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

/// `POST …/ai-agents/{id}/connections` → 201 (ACTIVE).
pub(crate) async fn create_connection(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
    Body(request): Body<ConnectionRequest>,
) -> Result<Response, AdminError> {
    if request.connection_type != IDENTITY_ASSERTION_CUSTOM_AS {
        return Err(AdminError::invalid(
            "connectionType",
            "connectionType: idp0 supports IDENTITY_ASSERTION_CUSTOM_AS connections only",
        ));
    }
    let prefix = format!("orn:okta:idp:{}:authorization_servers:", admin.org_id());
    let server_id = request
        .authorization_server
        .orn
        .strip_prefix(&prefix)
        .filter(|s| super::ids::is_valid_id(s))
        .ok_or_else(|| {
            AdminError::invalid(
                "authorizationServer.orn",
                format!("authorizationServer.orn: expected {prefix}<authorization server id>"),
            )
        })?
        .to_owned();
    let resource = request
        .authorization_server
        .resource_indicator
        .or(request.resource_indicator)
        .ok_or_else(|| {
            AdminError::invalid(
                "authorizationServer.resourceIndicator",
                "authorizationServer.resourceIndicator: required",
            )
        })?;
    if request.scope_condition.as_deref().unwrap_or("INCLUDE_ONLY") != "INCLUDE_ONLY" {
        return Err(AdminError::invalid(
            "scopeCondition",
            "scopeCondition: idp0 supports INCLUDE_ONLY",
        ));
    }
    if request.scopes.is_empty() {
        return Err(AdminError::invalid(
            "scopes",
            "scopes: name at least one scope",
        ));
    }
    let now = idp.clock.now();
    let connection = admin
        .mutate(&idp, |doc| {
            let server = doc.server(&server_id).ok_or_else(|| {
                AdminError::invalid(
                    "authorizationServer.orn",
                    format!("authorizationServer.orn: no authorization server {server_id}"),
                )
            })?;
            if !server.audiences.contains(&resource) {
                return Err(AdminError::invalid(
                    "authorizationServer.resourceIndicator",
                    format!(
                        "authorizationServer.resourceIndicator: must be the server's audience {:?}",
                        server.audiences.first().cloned().unwrap_or_default()
                    ),
                ));
            }
            if let Some(unknown) = request
                .scopes
                .iter()
                .find(|s| !server.scopes.iter().any(|x| &x.name == *s))
            {
                return Err(AdminError::invalid(
                    "scopes",
                    format!(
                        "scopes: {unknown:?} is not a scope of authorization server {server_id}"
                    ),
                ));
            }
            let connection = AgentConnection {
                id: new_id("mcn"),
                connection_type: IDENTITY_ASSERTION_CUSTOM_AS.into(),
                authorization_server_orn: request.authorization_server.orn.clone(),
                authorization_server_id: server_id,
                resource_indicator: resource,
                scope_condition: "INCLUDE_ONLY".into(),
                scopes: request.scopes,
                status: ACTIVE.into(),
                created: now,
                last_updated: now,
            };
            find_mut(doc, &id)?.connections.push(connection.clone());
            Ok(connection)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(render_connection(&idp, &id, &connection)),
    )
        .into_response())
}

fn connection_of<'d>(
    doc: &'d Document,
    id: &str,
    connection: &str,
) -> Result<&'d AgentConnection, AdminError> {
    find(doc, id)?
        .connections
        .iter()
        .find(|c| c.id == connection)
        .ok_or_else(|| AdminError::not_found(format!("{connection} (Connection)")))
}

/// `GET …/connections/{connection}`.
pub(crate) async fn get_connection(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, connection)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    Ok(Json(render_connection(
        &idp,
        &id,
        connection_of(&doc, &id, &connection)?,
    )))
}

/// `POST …/connections/{connection}/lifecycle/activate|deactivate` → 204.
pub(crate) async fn post_connection_lifecycle(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, connection, action)): Path<(String, String, String)>,
) -> Result<StatusCode, AdminError> {
    let status = lifecycle_status(&action)?;
    let now = idp.clock.now();
    admin
        .mutate(&idp, |doc| {
            let agent = find_mut(doc, &id)?;
            let found = agent
                .connections
                .iter_mut()
                .find(|c| c.id == connection)
                .ok_or_else(|| AdminError::not_found(format!("{connection} (Connection)")))?;
            found.status = status.into();
            found.last_updated = now;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE …/connections/{connection}` → 204, once INACTIVE.
pub(crate) async fn delete_connection(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, connection)): Path<(String, String)>,
) -> Result<StatusCode, AdminError> {
    admin
        .mutate(&idp, |doc| {
            if connection_of(doc, &id, &connection)?.status != INACTIVE {
                return Err(AdminError::invalid(
                    "status",
                    "status: deactivate the connection before deleting it",
                ));
            }
            find_mut(doc, &id)?
                .connections
                .retain(|c| c.id != connection);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_public_rsa_or_ec_keys_are_accepted() {
        let key = protocol::keys::SigningKey::generate(protocol::keys::KeyKind::Rsa).unwrap();
        let public = serde_json::to_value(key.public_jwk()).unwrap();
        let (jwk, kid) = public_jwk(public.clone()).unwrap();
        assert_eq!(kid, key.kid());
        assert_eq!(jwk["use"], "sig");
        let mut private = public.clone();
        private["d"] = json!("AQAB");
        assert!(public_jwk(private).is_err());
        assert!(public_jwk(json!({"kty": "oct", "k": "AAAA"})).is_err());
        assert!(public_jwk(json!("not an object")).is_err());
        let mut no_kid = public;
        no_kid.as_object_mut().unwrap().remove("kid");
        assert_eq!(
            public_jwk(no_kid).unwrap().1,
            protocol::keys::thumbprint(key.public_jwk()).unwrap()
        );
    }
}
