//! Brokered consent's browser side (OKTA.md §1): the interaction page behind `interaction_uri`
//! (the person, signed in to idp0 as the person the link was made for, approves or denies), the
//! ISV's callback `/oauth2/v1/sts/callback` (code + PKCE redeemed, tokens sealed into the
//! vault), and the Connected apps page (each consent, with Remove).
//!
//! A link or callback that is unknown, expired, reused, another person's, or carries a foreign
//! `state` gets a clear page and changes nothing. State changes are compare-and-set on the
//! interaction's status, so a replay or a double click loses cleanly.

use axum::Form as AxumForm;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::authorize::{current_session, login_to_return};
use super::html_response;
use crate::config::{BrokeredConnection, Client};
use crate::csrf::is_foreign_post;
use crate::html;
use crate::state::Idp;
use crate::store::{Interaction, InteractionStatus, SsoSession, secret_hash};
use crate::sts::{self, AUDIT, pages, vault};
use crate::tokens::new_secret;

/// The Connected apps page.
pub(crate) const CONNECTED_APPS: &str = "/connected-apps";
/// Interaction pages live under this path.
pub(crate) const INTERACTION_PREFIX: &str = "/oauth2/v1/sts/interaction/";
const CONSENT_PURPOSE: &str = "sts-consent";
const APPS_PURPOSE: &str = "connected-apps";

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    html_response(status, html::error(title, message))
}

/// The interaction, its agent and connection, or the page that says why not.
struct Found {
    interaction: Interaction,
    agent: std::sync::Arc<Client>,
    connection: std::sync::Arc<BrokeredConnection>,
}

async fn find(idp: &Idp, id: &str) -> Result<Found, Response> {
    let unknown = || {
        page(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This consent link is not valid. Ask the agent to try again; it will give you a new link.",
        )
    };
    let interaction = match idp.store.find_interaction(&secret_hash(id)).await {
        Ok(Some(i)) => i,
        Ok(None) => return Err(unknown()),
        Err(e) => {
            tracing::error!(error = %e, "reading an interaction failed");
            return Err(page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "idp0 cannot reach its database right now. Please try again in a moment.",
            ));
        }
    };
    let agent = idp.client(&interaction.agent).ok_or_else(unknown)?;
    let connection = agent
        .brokered_connection(&interaction.resource)
        .cloned()
        .ok_or_else(unknown)?;
    Ok(Found {
        interaction,
        agent,
        connection,
    })
}

/// Why a found interaction cannot be acted on now (as a page), checked in this order: used,
/// expired, not signed in (the login form, returning here), another person.
async fn usable_for_person(
    idp: &Idp,
    jar: &CookieJar,
    id: &str,
    found: &Found,
) -> Result<SsoSession, Response> {
    let i = &found.interaction;
    match i.status {
        InteractionStatus::Pending => {}
        InteractionStatus::Done => {
            return Err(page(
                StatusCode::GONE,
                "Already connected",
                "This consent link was already used and the app is connected. You can close this window.",
            ));
        }
        _ => {
            return Err(page(
                StatusCode::GONE,
                "Link already used",
                "This consent link was already used. Ask the agent to try again; it will give you a new link.",
            ));
        }
    }
    if i.expires_at <= idp.clock.now() {
        return Err(page(
            StatusCode::GONE,
            "Link expired",
            "This consent link expired. Ask the agent to try again; it will give you a new link.",
        ));
    }
    let Some(session) = current_session(idp, jar).await else {
        let back = format!("{INTERACTION_PREFIX}{id}");
        return Err(login_to_return(
            idp,
            jar.clone(),
            &back,
            &found.agent.client_id,
            None,
            "",
            StatusCode::OK,
        ));
    };
    if session.user_id != i.user_id {
        tracing::warn!(target: AUDIT, event = "interaction_foreign_person", user_id = %session.user_id, agent = %i.agent, resource = %i.resource, "an interaction link was opened by another person");
        return Err(page(
            StatusCode::FORBIDDEN,
            "This link is for someone else",
            "This consent link was made for another person. Nothing was changed. If you expected \
             to be asked, sign out of idp0 and open the link again as yourself.",
        ));
    }
    Ok(session)
}

fn csrf_binding(session: &SsoSession, id_hash: &str) -> String {
    format!("{}|{id_hash}", session.sid)
}

/// `GET /oauth2/v1/sts/interaction/{id}`: the consent question.
pub(super) async fn get_interaction(
    State(idp): State<Idp>,
    Path(id): Path<String>,
    jar: CookieJar,
) -> Response {
    let found = match find(&idp, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let session = match usable_for_person(&idp, &jar, &id, &found).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let person = idp
        .user(&session.user_id)
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let csrf = idp.csrf.token(
        CONSENT_PURPOSE,
        &csrf_binding(&session, &found.interaction.id_hash),
        idp.clock.now(),
    );
    let action = format!("{INTERACTION_PREFIX}{id}");
    html_response(
        StatusCode::OK,
        pages::consent(&pages::ConsentQuestion {
            agent: &found.agent.client_id,
            app: &found.connection.name,
            kind: found.connection.kind.as_str(),
            scope: &found.connection.scope,
            person: &person,
            action: &action,
            csrf: &csrf,
        }),
    )
}

/// The consent form's fields.
#[derive(Deserialize)]
pub(super) struct Decision {
    csrf: String,
    decision: String,
}

/// `POST /oauth2/v1/sts/interaction/{id}`: Approve (to the ISV) or Deny.
pub(super) async fn post_interaction(
    State(idp): State<Idp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    jar: CookieJar,
    AxumForm(form): AxumForm<Decision>,
) -> Response {
    let found = match find(&idp, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let session = match usable_for_person(&idp, &jar, &id, &found).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let i = &found.interaction;
    let binding = csrf_binding(&session, &i.id_hash);
    if is_foreign_post(&headers, idp.issuer())
        || !idp
            .csrf
            .is_valid(CONSENT_PURPOSE, &binding, &form.csrf, idp.clock.now())
    {
        return page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form expired or did not come from idp0. Open the consent link again.",
        );
    }
    let failed = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "updating an interaction failed");
        page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "idp0 cannot reach its database right now. Please try again in a moment.",
        )
    };
    if form.decision != "approve" {
        return match idp
            .store
            .update_interaction(
                &i.id_hash,
                InteractionStatus::Pending,
                InteractionStatus::Denied,
                None,
            )
            .await
        {
            Ok(true) => {
                tracing::info!(target: AUDIT, event = "consent_denied", user_id = %i.user_id, agent = %i.agent, resource = %i.resource, "consent denied at idp0");
                page(
                    StatusCode::OK,
                    "Not connected",
                    &format!(
                        "You did not let {} use {}. The agent will be told; you can close this window.",
                        found.agent.client_id, found.connection.name
                    ),
                )
            }
            Ok(false) => page(
                StatusCode::GONE,
                "Link already used",
                "This consent link was already used.",
            ),
            Err(e) => failed(e),
        };
    }
    let state = new_secret();
    let verifier = SecretString::from(new_secret());
    let sealed = match idp.sts.vault.seal(&pkce_owner(i), &verifier) {
        Ok(sealed) => sealed,
        Err(e) => {
            tracing::error!(error = %e, "sealing a PKCE verifier failed");
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Try again",
                "Something went wrong. Please try again.",
            );
        }
    };
    match idp
        .store
        .update_interaction(
            &i.id_hash,
            InteractionStatus::Pending,
            InteractionStatus::Authorizing,
            Some((&secret_hash(&state), &sealed)),
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return page(
                StatusCode::GONE,
                "Link already used",
                "This consent link was already used.",
            );
        }
        Err(e) => return failed(e),
    }
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.expose_secret().as_bytes()));
    let mut url = found.connection.authorize_url.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &found.connection.client_id)
        .append_pair("redirect_uri", &sts::callback_url(&idp))
        .append_pair("scope", &found.connection.scope)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    tracing::info!(target: AUDIT, event = "consent_approved", user_id = %i.user_id, agent = %i.agent, resource = %i.resource, "consent approved at idp0; on to the app");
    (
        [(header::CACHE_CONTROL, "no-store")],
        Redirect::to(url.as_str()),
    )
        .into_response()
}

fn pkce_owner(i: &Interaction) -> vault::Owner<'_> {
    vault::Owner {
        user_id: &i.user_id,
        agent: &i.agent,
        resource: &i.resource,
        field: "pkce",
    }
}

/// The ISV's redirect back.
#[derive(Deserialize)]
pub(super) struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /oauth2/v1/sts/callback`.
pub(super) async fn get_callback(
    State(idp): State<Idp>,
    jar: CookieJar,
    Query(params): Query<CallbackParams>,
) -> Response {
    let foreign = || {
        page(
            StatusCode::BAD_REQUEST,
            "Not expected",
            "idp0 was not waiting for this answer (it may have been used already). Nothing was \
             changed. Ask the agent to try again.",
        )
    };
    let Some(state) = params.state.as_deref().filter(|s| !s.is_empty()) else {
        return foreign();
    };
    let interaction = match idp
        .store
        .find_interaction_by_state(&secret_hash(state))
        .await
    {
        Ok(Some(i)) if i.status == InteractionStatus::Authorizing => i,
        Ok(_) => return foreign(),
        Err(e) => {
            tracing::error!(error = %e, "reading an interaction failed");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "idp0 cannot reach its database right now.",
            );
        }
    };
    let session = current_session(&idp, &jar).await;
    if session
        .as_ref()
        .is_none_or(|s| s.user_id != interaction.user_id)
    {
        tracing::warn!(target: AUDIT, event = "callback_foreign_person", agent = %interaction.agent, resource = %interaction.resource, "an ISV callback arrived in another person's browser");
        return page(
            StatusCode::FORBIDDEN,
            "This answer is for someone else",
            "This answer belongs to a consent started by another person, or you are no longer \
             signed in to idp0. Nothing was changed.",
        );
    }
    if interaction.expires_at <= idp.clock.now() {
        return page(
            StatusCode::GONE,
            "Link expired",
            "This consent took too long and expired. Ask the agent to try again.",
        );
    }
    let Some(agent) = idp.client(&interaction.agent) else {
        return foreign();
    };
    let Some(connection) = agent.brokered_connection(&interaction.resource).cloned() else {
        return foreign();
    };
    let id = &interaction.id_hash;
    let step = |from, to| idp.store.update_interaction(id, from, to, None);
    if params.error.is_some() || params.code.is_none() {
        let _ = step(InteractionStatus::Authorizing, InteractionStatus::Denied).await;
        tracing::info!(target: AUDIT, event = "consent_denied", user_id = %interaction.user_id, agent = %interaction.agent, resource = %interaction.resource, "consent denied at the app");
        return page(
            StatusCode::OK,
            "Not connected",
            &format!(
                "{} did not grant access. The agent will be told; you can close this window.",
                connection.name
            ),
        );
    }
    // The state is spent before the code is redeemed: a replay of this callback loses here.
    if !matches!(
        step(
            InteractionStatus::Authorizing,
            InteractionStatus::Exchanging
        )
        .await,
        Ok(true)
    ) {
        return foreign();
    }
    let verifier = interaction
        .pkce_verifier
        .as_deref()
        .and_then(|sealed| idp.sts.vault.open(&pkce_owner(&interaction), sealed));
    let code = params.code.unwrap_or_default();
    let redeemed = match verifier {
        Some(verifier) => {
            sts::isv::redeem_code(
                &idp.sts.http,
                &connection,
                &code,
                &sts::callback_url(&idp),
                &verifier,
            )
            .await
        }
        None => Err(sts::isv::IsvError::Unavailable("no verifier".into())),
    };
    let stored = match redeemed {
        Ok(tokens) => {
            match sts::sealed_entry(
                &idp,
                &interaction.user_id,
                &agent,
                &connection,
                &tokens,
                None,
            ) {
                Ok(entry) => idp
                    .store
                    .upsert_vault_entry(&entry)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
        Err(e) => Err(e.to_string()),
    };
    if let Err(why) = stored {
        let _ = step(InteractionStatus::Exchanging, InteractionStatus::Closed).await;
        tracing::warn!(target: AUDIT, event = "consent_failed", user_id = %interaction.user_id, agent = %interaction.agent, resource = %interaction.resource, error = %why, "connecting the app failed");
        return page(
            StatusCode::BAD_GATEWAY,
            "Could not connect",
            &format!(
                "{} could not be connected right now. Nothing was stored. Ask the agent to try \
                 again in a moment.",
                connection.name
            ),
        );
    }
    let _ = step(InteractionStatus::Exchanging, InteractionStatus::Done).await;
    tracing::info!(target: AUDIT, event = "consent_granted", user_id = %interaction.user_id, agent = %interaction.agent, resource = %interaction.resource, "consent granted; tokens in the vault");
    html_response(
        StatusCode::OK,
        pages::connected(&connection.name, &agent.client_id),
    )
}

/// `GET /oauth2/v1/sts/close.js`: closes a popup once connected (CSP `script-src 'self'`).
pub(super) async fn get_close_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        "if (window.opener) { window.close(); }\n",
    )
        .into_response()
}

/// `GET /connected-apps`.
pub(super) async fn get_connected_apps(State(idp): State<Idp>, jar: CookieJar) -> Response {
    let Some(session) = current_session(&idp, &jar).await else {
        return login_to_return(
            &idp,
            jar,
            CONNECTED_APPS,
            "Connected apps",
            None,
            "",
            StatusCode::OK,
        );
    };
    connected_apps_page(&idp, &session, "").await
}

async fn connected_apps_page(idp: &Idp, session: &SsoSession, notice: &str) -> Response {
    let entries = match idp.store.list_vault_entries(&session.user_id).await {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!(error = %e, "listing consents failed");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "idp0 cannot reach its database right now.",
            );
        }
    };
    let names: Vec<String> = entries
        .iter()
        .map(|e| {
            idp.client(&e.agent)
                .and_then(|a| a.brokered_connection(&e.resource).map(|c| c.name.clone()))
                .unwrap_or_else(|| e.resource.clone())
        })
        .collect();
    let apps: Vec<pages::ConnectedApp<'_>> = entries
        .iter()
        .zip(&names)
        .map(|(e, name)| pages::ConnectedApp {
            app: name,
            agent: &e.agent,
            resource: &e.resource,
            scope: &e.scope,
            granted: pages::utc(e.granted_at),
            last_used: e.last_used_at.map_or_else(|| "never".into(), pages::utc),
        })
        .collect();
    let person = idp
        .user(&session.user_id)
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let csrf = idp.csrf.token(APPS_PURPOSE, &session.sid, idp.clock.now());
    html_response(
        StatusCode::OK,
        pages::connected_apps(&person, &apps, &csrf, notice),
    )
}

/// The Remove form's fields.
#[derive(Deserialize)]
pub(super) struct Removal {
    csrf: String,
    agent: String,
    resource: String,
}

/// `POST /connected-apps/remove`.
pub(super) async fn post_remove_connected_app(
    State(idp): State<Idp>,
    headers: HeaderMap,
    jar: CookieJar,
    AxumForm(form): AxumForm<Removal>,
) -> Response {
    let Some(session) = current_session(&idp, &jar).await else {
        return login_to_return(
            &idp,
            jar,
            CONNECTED_APPS,
            "Connected apps",
            None,
            "",
            StatusCode::OK,
        );
    };
    if is_foreign_post(&headers, idp.issuer())
        || !idp
            .csrf
            .is_valid(APPS_PURPOSE, &session.sid, &form.csrf, idp.clock.now())
    {
        return page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form expired or did not come from idp0. Open Connected apps again.",
        );
    }
    let notice = match sts::remove_consent(&idp, &session.user_id, &form.agent, &form.resource)
        .await
    {
        Ok(None) => "Removed. The agent will have to ask again before using it.".to_owned(),
        Ok(Some(problem)) => format!(
            "Removed from idp0. {problem} You may also want to revoke it in the app's own settings."
        ),
        Err(e) => {
            tracing::error!(error = %e, "removing a consent failed");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "idp0 cannot reach its database right now. Nothing was removed.",
            );
        }
    };
    connected_apps_page(&idp, &session, &notice).await
}
