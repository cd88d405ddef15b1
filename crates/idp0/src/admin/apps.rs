//! `/api/v1/apps`: OIDC web applications (Okta's Applications API, `oidc_client` only) and their
//! user assignments. The app id is also its OAuth `client_id`, as in Okta. The client secret is
//! returned once, in the creation response; only its SHA-256 is stored. Creating answers 200
//! (as Okta does), lifecycle 200 `{}`, deletion 204 and only once INACTIVE (403 E0000056).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminError;
use super::authorization_servers::lifecycle_status;
use super::ids::{new_id, okta_time, random_alnum};
use super::model::{ACTIVE, App, AppUser, INACTIVE, OauthClientSettings};
use super::wire::{Admin, Body, ListQuery, checked, href};
use crate::state::Idp;

const KIND: &str = "App";

fn app_url(idp: &Idp, id: &str) -> String {
    format!("{}/api/v1/apps/{id}", idp.issuer())
}

fn render_app(idp: &Idp, a: &App) -> Value {
    let url = app_url(idp, &a.id);
    let mut settings = serde_json::to_value(&a.oauth_client).unwrap_or_else(|_| json!({}));
    settings["issuer_mode"] = json!("ORG_URL");
    let action = if a.status == ACTIVE {
        "deactivate"
    } else {
        "activate"
    };
    json!({
        "id": a.id,
        "name": "oidc_client",
        "label": a.label,
        "status": a.status,
        "created": okta_time(a.created),
        "lastUpdated": okta_time(a.last_updated),
        "signOnMode": "OPENID_CONNECT",
        "features": [],
        "credentials": {
            "userNameTemplate": {"template": "${source.login}", "type": "BUILT_IN"},
            "oauthClient": {
                "autoKeyRotation": true,
                "client_id": a.id,
                "token_endpoint_auth_method": a.token_endpoint_auth_method,
                "pkce_required": true,
            },
        },
        "settings": {"app": {}, "oauthClient": settings},
        "_links": {
            "self": href(url.clone()),
            "users": href(format!("{url}/users")),
            action: href(format!("{url}/lifecycle/{action}")),
        },
    })
}

fn render_app_user(idp: &Idp, app: &str, u: &AppUser) -> Value {
    let login = idp.user(&u.id).map(|user| user.username.clone());
    json!({
        "id": u.id,
        "externalId": null,
        "created": okta_time(u.created),
        "lastUpdated": okta_time(u.created),
        "scope": u.scope,
        "status": "ACTIVE",
        "syncState": "DISABLED",
        "credentials": {"userName": login},
        "profile": {},
        "_links": {
            "app": href(app_url(idp, app)),
            "user": href(format!("{}/api/v1/users/{}", idp.issuer(), u.id)),
        },
    })
}

fn find<'d>(doc: &'d super::model::Document, id: &str) -> Result<&'d App, AdminError> {
    doc.app(checked(id, KIND)?)
        .ok_or_else(|| AdminError::not_found(format!("{id} ({KIND})")))
}

fn find_mut<'d>(doc: &'d mut super::model::Document, id: &str) -> Result<&'d mut App, AdminError> {
    doc.app_mut(checked(id, KIND)?)
        .ok_or_else(|| AdminError::not_found(format!("{id} ({KIND})")))
}

/// `GET /api/v1/apps?q=&limit=&after=`: `q` matches the start of the label or name.
pub(crate) async fn list_apps(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    query: ListQuery,
) -> Response {
    let doc = admin.document();
    let items = doc
        .apps
        .iter()
        .filter(|a| query.matches(&a.label) || query.matches("oidc_client"))
        .map(|a| (a.id.clone(), render_app(&idp, a)))
        .collect();
    query.page(idp.issuer(), items)
}

#[derive(Deserialize, Default)]
pub(crate) struct OauthCredentials {
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Credentials {
    #[serde(default)]
    oauth_client: OauthCredentials,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Settings {
    #[serde(default)]
    oauth_client: Option<OauthClientSettings>,
}

/// The body of `POST /api/v1/apps`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    sign_on_mode: String,
    #[serde(default)]
    credentials: Credentials,
    #[serde(default)]
    settings: Settings,
}

fn check(request: &AppRequest) -> Result<(), AdminError> {
    if request.name != "oidc_client" || request.sign_on_mode != "OPENID_CONNECT" {
        return Err(AdminError::invalid(
            "name",
            "name: idp0 creates OIDC apps only (name \"oidc_client\", signOnMode \"OPENID_CONNECT\")",
        ));
    }
    if request.label.trim().is_empty() {
        return Err(AdminError::invalid(
            "label",
            "label: The field cannot be left blank",
        ));
    }
    let settings = request.settings.oauth_client.as_ref().ok_or_else(|| {
        AdminError::invalid("settings.oauthClient", "settings.oauthClient: required")
    })?;
    if settings.application_type != "web" {
        return Err(AdminError::invalid(
            "settings.oauthClient.application_type",
            "settings.oauthClient.application_type: idp0 creates web apps only",
        ));
    }
    if settings.redirect_uris.is_empty() {
        return Err(AdminError::invalid(
            "settings.oauthClient.redirect_uris",
            "settings.oauthClient.redirect_uris: give at least one redirect URI",
        ));
    }
    let uris = [
        ("redirect_uris", &settings.redirect_uris),
        (
            "post_logout_redirect_uris",
            &settings.post_logout_redirect_uris,
        ),
    ];
    let single = [
        ("initiate_login_uri", &settings.initiate_login_uri),
        ("client_uri", &settings.client_uri),
        ("logo_uri", &settings.logo_uri),
    ];
    for (field, uri) in uris
        .iter()
        .flat_map(|(field, list)| list.iter().map(move |uri| (*field, uri)))
        .chain(
            single
                .iter()
                .filter_map(|(field, uri)| uri.as_ref().map(|uri| (*field, uri))),
        )
    {
        check_web_uri(field, uri)?;
    }
    if settings.response_types.iter().any(|r| r != "code") {
        return Err(AdminError::invalid(
            "settings.oauthClient.response_types",
            "settings.oauthClient.response_types: only \"code\" is supported",
        ));
    }
    if settings
        .grant_types
        .iter()
        .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return Err(AdminError::invalid(
            "settings.oauthClient.grant_types",
            "settings.oauthClient.grant_types: authorization_code and refresh_token are supported",
        ));
    }
    Ok(())
}

/// The longest URI an app may name.
const MAX_URI_LEN: usize = 2048;

/// A web app's URI: absolute `https` or `http` with a host, no user information, fragment or
/// wildcard, no whitespace or control characters (a `javascript:`, `data:` or `file:` redirect
/// would turn the authorization response into script or a local file).
fn check_web_uri(field: &str, uri: &str) -> Result<(), AdminError> {
    let refuse = |why: &str| {
        Err(AdminError::invalid(
            &format!("settings.oauthClient.{field}"),
            format!("settings.oauthClient.{field}: {why}"),
        ))
    };
    if uri.len() > MAX_URI_LEN {
        return refuse(&format!("a URI is at most {MAX_URI_LEN} characters"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("a URI has no spaces or control characters");
    }
    let Ok(parsed) = url::Url::parse(uri) else {
        return refuse(&format!("{uri:?} is not an absolute URI"));
    };
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host().is_none() {
        return refuse(&format!(
            "{uri:?} must be an https (or http) URL with a host"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse(&format!("{uri:?} must not carry user information"));
    }
    if parsed.fragment().is_some() || uri.contains('#') {
        return refuse(&format!("{uri:?} must not contain a fragment"));
    }
    if uri.contains('*') {
        return refuse(&format!("{uri:?}: wildcards are not supported"));
    }
    Ok(())
}

/// `POST /api/v1/apps` → 200 with `credentials.oauthClient.client_secret` (this once).
pub(crate) async fn create_app(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Body(request): Body<AppRequest>,
) -> Result<Json<Value>, AdminError> {
    check(&request)?;
    let method = request
        .credentials
        .oauth_client
        .token_endpoint_auth_method
        .clone()
        .unwrap_or_else(|| "client_secret_basic".into());
    if method != "client_secret_basic" && method != "client_secret_post" {
        return Err(AdminError::invalid(
            "credentials.oauthClient.token_endpoint_auth_method",
            "credentials.oauthClient.token_endpoint_auth_method: client_secret_basic or client_secret_post",
        ));
    }
    let secret = secrecy::SecretString::from(random_alnum(64));
    let digest = crate::store::secret_hash(secrecy::ExposeSecret::expose_secret(&secret));
    let now = idp.clock.now();
    let app = admin
        .mutate(&idp, |doc| {
            let app = App {
                id: new_id("0oa"),
                label: request.label,
                status: ACTIVE.into(),
                created: now,
                last_updated: now,
                token_endpoint_auth_method: method,
                client_secret_sha256: digest,
                oauth_client: request.settings.oauth_client.unwrap_or_default(),
                users: vec![],
            };
            doc.apps.push(app.clone());
            Ok(app)
        })
        .await?;
    let mut body = render_app(&idp, &app);
    body["credentials"]["oauthClient"]["client_secret"] =
        json!(secrecy::ExposeSecret::expose_secret(&secret));
    Ok(Json(body))
}

/// `GET /api/v1/apps/{id}` (never the secret).
pub(crate) async fn get_app(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    Ok(Json(render_app(&idp, find(&doc, &id)?)))
}

/// `DELETE /api/v1/apps/{id}` → 204 once INACTIVE, else 403 E0000056.
pub(crate) async fn delete_app(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    admin
        .mutate(&idp, |doc| {
            if find(doc, &id)?.status != INACTIVE {
                return Err(AdminError::DeleteActiveApp);
            }
            doc.apps.retain(|a| a.id != id);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/apps/{id}/lifecycle/activate|deactivate` → 200 `{}`.
pub(crate) async fn post_app_lifecycle(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let status = lifecycle_status(&action)?;
    let now = idp.clock.now();
    admin
        .mutate(&idp, |doc| {
            let app = find_mut(doc, &id)?;
            app.status = status.into();
            app.last_updated = now;
            Ok(())
        })
        .await?;
    Ok(Json(json!({})))
}

/// `GET /api/v1/apps/{id}/users`.
pub(crate) async fn list_app_users(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
    query: ListQuery,
) -> Result<Response, AdminError> {
    let doc = admin.document();
    let items = find(&doc, &id)?
        .users
        .iter()
        .map(|u| (u.id.clone(), render_app_user(&idp, &id, u)))
        .collect();
    Ok(query.page(idp.issuer(), items))
}

/// The body of `POST /api/v1/apps/{id}/users`.
#[derive(Deserialize)]
pub(crate) struct AssignRequest {
    #[serde(default)]
    id: String,
    #[serde(default)]
    scope: Option<String>,
}

/// `POST /api/v1/apps/{id}/users` `{id}` → 200 (an existing assignment is kept).
pub(crate) async fn assign_app_user(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path(id): Path<String>,
    Body(request): Body<AssignRequest>,
) -> Result<Json<Value>, AdminError> {
    if idp.user(&request.id).is_none() {
        return Err(AdminError::not_found(format!("{} (User)", request.id)));
    }
    let now = idp.clock.now();
    let user = admin
        .mutate(&idp, |doc| {
            let app = find_mut(doc, &id)?;
            if let Some(existing) = app.users.iter().find(|u| u.id == request.id) {
                return Ok(existing.clone());
            }
            let user = AppUser {
                id: request.id,
                scope: request.scope.unwrap_or_else(|| "USER".into()),
                created: now,
            };
            app.users.push(user.clone());
            Ok(user)
        })
        .await?;
    Ok(Json(render_app_user(&idp, &id, &user)))
}

/// `GET /api/v1/apps/{id}/users/{user}`.
pub(crate) async fn get_app_user(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, user)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let doc = admin.document();
    let found = find(&doc, &id)?
        .users
        .iter()
        .find(|u| u.id == user)
        .ok_or_else(|| AdminError::not_found(format!("{user} (AppUser)")))?;
    Ok(Json(render_app_user(&idp, &id, found)))
}

/// `DELETE /api/v1/apps/{id}/users/{user}` → 204.
pub(crate) async fn delete_app_user(
    Admin(admin): Admin,
    State(idp): State<Idp>,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, AdminError> {
    admin
        .mutate(&idp, |doc| {
            let app = find_mut(doc, &id)?;
            super::wire::remove_where(
                &mut app.users,
                |u| u.id == user,
                AdminError::not_found(format!("{user} (AppUser)")),
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
