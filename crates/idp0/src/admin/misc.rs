//! The rest of the management API: `GET /api/v1/users/me` (the user the admin token acts as:
//! idp0.toml's `admin_user`, else its first user), `GET /api/v1/org`, `/api/v1/trustedOrigins`
//! (kept and listed; idp0 itself serves no cross-origin browser calls), `POST
//! /governance/api/v1/resource-owners` (an agent's owners; `principalOrns: null` removes them),
//! the agents' operations, and Okta's 404 body for every other path under the API prefixes.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminError;
use super::agents::{agent_orn, render_operation};
use super::authorization_servers::lifecycle_status;
use super::ids::{new_id, okta_time};
use super::model::{ACTIVE, TrustedOrigin};
use super::wire::{Admin, Body, ListQuery, checked, href};
use crate::state::Idp;

/// Any other path: 401 without the admin token, else Okta's 404.
pub(crate) async fn not_found(
    admin: Result<Admin, AdminError>,
    OriginalUri(uri): OriginalUri,
) -> AdminError {
    match admin {
        Err(e) => e,
        Ok(_) => AdminError::not_found(format!("{} (Path)", uri.path())),
    }
}

/// `GET /api/v1/users/me`.
pub(crate) async fn get_me(
    Admin(_admin): Admin,
    State(idp): State<Idp>,
) -> Result<Json<Value>, AdminError> {
    let directory = idp.directory();
    let user = directory
        .config
        .admin_user
        .as_ref()
        .ok_or_else(|| AdminError::not_found("me (User)"))?;
    let (first, last) = user.name.split_once(' ').unwrap_or((&user.name, ""));
    Ok(Json(json!({
        "id": user.id,
        "status": ACTIVE,
        "type": {"id": "oty_default"},
        "profile": {
            "login": user.username,
            "email": user.email,
            "firstName": first,
            "lastName": last,
        },
        "_links": {"self": href(format!("{}/api/v1/users/{}", idp.issuer(), user.id))},
    })))
}

/// `GET /api/v1/org`.
pub(crate) async fn get_org(Admin(admin): Admin, State(idp): State<Idp>) -> Json<Value> {
    let subdomain = url::Url::parse(idp.issuer())
        .ok()
        .and_then(|u| match u.host() {
            // An org's subdomain is its host's first label; an IP address stays whole.
            Some(url::Host::Domain(d)) => Some(d.split('.').next().unwrap_or(d).to_owned()),
            Some(other) => Some(other.to_string()),
            None => None,
        })
        .unwrap_or_default();
    Json(json!({
        "id": admin.org_id(),
        "companyName": "idp0",
        "subdomain": subdomain,
        "website": idp.issuer(),
        "status": ACTIVE,
        "_links": {"self": href(format!("{}/api/v1/org", idp.issuer()))},
    }))
}

fn render_origin(idp: &Idp, o: &TrustedOrigin) -> Value {
    let url = format!("{}/api/v1/trustedOrigins/{}", idp.issuer(), o.id);
    json!({
        "id": o.id,
        "name": o.name,
        "origin": o.origin,
        "scopes": o.scopes,
        "status": o.status,
        "created": okta_time(o.created),
        "createdBy": o.created_by,
        "lastUpdated": okta_time(o.last_updated),
        "lastUpdatedBy": o.created_by,
        "_links": {"self": href(url)},
    })
}

/// `GET /api/v1/trustedOrigins?q=&limit=&after=`: `q` matches the start of name or origin.
pub(crate) async fn list_trusted_origins(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    query: ListQuery,
) -> Response {
    let doc = admin.document();
    let items = doc
        .trusted_origins
        .iter()
        .filter(|o| query.matches(&o.name) || query.matches(&o.origin))
        .map(|o| (o.id.clone(), render_origin(&idp, o)))
        .collect();
    query.page(idp.issuer(), items)
}

/// The body of `POST /api/v1/trustedOrigins`.
#[derive(Deserialize)]
pub(crate) struct OriginRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    origin: String,
    #[serde(default)]
    scopes: Vec<Value>,
}

fn normalized_origin(origin: &str) -> Result<String, AdminError> {
    let bad = || {
        AdminError::invalid(
            "origin",
            "origin: give scheme://host[:port] (http or https, no path, query or fragment)",
        )
    };
    let url = url::Url::parse(origin).map_err(|_| bad())?;
    let is_bare = matches!(url.scheme(), "http" | "https")
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty();
    if !is_bare {
        return Err(bad());
    }
    Ok(url.origin().ascii_serialization())
}

/// `POST /api/v1/trustedOrigins` → 200, ACTIVE.
pub(crate) async fn create_trusted_origin(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Body(request): Body<OriginRequest>,
) -> Result<Json<Value>, AdminError> {
    if request.name.trim().is_empty() {
        return Err(AdminError::invalid(
            "name",
            "name: The field cannot be left blank",
        ));
    }
    let origin = normalized_origin(&request.origin)?;
    let types_ok = !request.scopes.is_empty()
        && request.scopes.iter().all(|s| {
            matches!(
                s.get("type").and_then(Value::as_str),
                Some("CORS" | "REDIRECT" | "IFRAME_EMBED")
            )
        });
    if !types_ok {
        return Err(AdminError::invalid(
            "scopes",
            "scopes: give one or more of {\"type\":\"CORS\"}, {\"type\":\"REDIRECT\"}",
        ));
    }
    let now = idp.clock.now();
    let creator = idp
        .directory()
        .config
        .admin_user
        .as_ref()
        .map(|u| u.id.clone())
        .unwrap_or_default();
    let created = admin
        .mutate(&idp, |doc| {
            let taken = |field: &str| {
                AdminError::invalid(
                    field,
                    format!("{field}: An object with this field already exists in the current organization"),
                )
            };
            if doc.trusted_origins.iter().any(|o| o.origin == origin) {
                return Err(taken("origin"));
            }
            if doc.trusted_origins.iter().any(|o| o.name == request.name) {
                return Err(taken("name"));
            }
            let entry = TrustedOrigin {
                id: new_id("tos"),
                name: request.name,
                origin,
                scopes: request.scopes,
                status: ACTIVE.into(),
                created: now,
                created_by: creator,
                last_updated: now,
            };
            doc.trusted_origins.push(entry.clone());
            Ok(entry)
        })
        .await?;
    Ok(Json(render_origin(&idp, &created)))
}

/// `GET /api/v1/trustedOrigins/{id}`.
pub(crate) async fn get_trusted_origin(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    let found = doc
        .trusted_origins
        .iter()
        .find(|o| o.id == checked(&id, "TrustedOrigin").unwrap_or_default())
        .ok_or_else(|| AdminError::not_found(format!("{id} (TrustedOrigin)")))?;
    Ok(Json(render_origin(&idp, found)))
}

/// `DELETE /api/v1/trustedOrigins/{id}` → 204.
pub(crate) async fn delete_trusted_origin(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    admin
        .mutate(&idp, |doc| {
            super::wire::remove_where(
                &mut doc.trusted_origins,
                |o| o.id == id,
                AdminError::not_found(format!("{id} (TrustedOrigin)")),
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/trustedOrigins/{id}/lifecycle/activate|deactivate` → 200 with the origin.
pub(crate) async fn post_trusted_origin_lifecycle(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let status = lifecycle_status(&action)?;
    let now = idp.clock.now();
    let entry = admin
        .mutate(&idp, |doc| {
            let entry = doc
                .trusted_origins
                .iter_mut()
                .find(|o| o.id == id)
                .ok_or_else(|| AdminError::not_found(format!("{id} (TrustedOrigin)")))?;
            entry.status = status.into();
            entry.last_updated = now;
            Ok(entry.clone())
        })
        .await?;
    Ok(Json(render_origin(&idp, &entry)))
}

/// The body of `POST /governance/api/v1/resource-owners`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OwnersRequest {
    /// `null` removes the owners.
    #[serde(default)]
    principal_orns: Option<Vec<String>>,
    #[serde(default)]
    resource_orns: Vec<String>,
}

/// `POST /governance/api/v1/resource-owners` → 200: sets (or, with `principalOrns: null`,
/// removes) the owners of AI agents.
pub(crate) async fn put_resource_owners(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Body(request): Body<OwnersRequest>,
) -> Result<Json<Value>, AdminError> {
    let org = admin.org_id().to_owned();
    let user_prefix = format!("orn:okta:directory:{org}:users:");
    let owners = request.principal_orns.clone().unwrap_or_default();
    for orn in &owners {
        let known = orn
            .strip_prefix(&user_prefix)
            .is_some_and(|id| idp.user(id).is_some());
        if !known {
            return Err(AdminError::invalid(
                "principalOrns",
                format!(
                    "principalOrns: {orn:?} is not a user of this org ({user_prefix}<user id>)"
                ),
            ));
        }
    }
    if request.resource_orns.is_empty() {
        return Err(AdminError::invalid(
            "resourceOrns",
            "resourceOrns: name at least one AI agent",
        ));
    }
    let resources = request.resource_orns.clone();
    admin
        .mutate(&idp, |doc| {
            for orn in &resources {
                let agent = doc
                    .agents
                    .iter_mut()
                    .find(|a| agent_orn(&org, &a.id) == *orn)
                    .ok_or_else(|| AdminError::not_found(format!("{orn} (AiAgent)")))?;
                agent.owners = owners.clone();
            }
            Ok(())
        })
        .await?;
    Ok(Json(json!({
        "principalOrns": request.principal_orns,
        "resourceOrns": request.resource_orns,
    })))
}

/// `GET /workload-principals/api/v1/operations/{id}`.
pub(crate) async fn get_operation(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    let found = doc
        .operations
        .iter()
        .find(|o| o.id == checked(&id, "Operation").unwrap_or_default())
        .ok_or_else(|| AdminError::not_found(format!("{id} (Operation)")))?;
    Ok(Json(render_operation(&idp, found)))
}
