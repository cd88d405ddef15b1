//! A small stand-in ISV (a third-party OAuth server such as GitHub) for the brokered-consent
//! tests: authorize (redirects straight back with a code, or with `error=access_denied`), token
//! (code + PKCE + client secret, refresh; switchable to 500 or to refusing refreshes GitHub-style
//! with HTTP 200 `{"error":…}`), and revocation — RFC 7009 (`POST /revoke`) and GitHub's OAuth
//! app API (`DELETE /applications/{client_id}/token` and `…/grant`) — recording what it was sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use sha2::{Digest, Sha256};

pub const ISV_CLIENT_ID: &str = "isv-client";
pub const ISV_SECRET: &str = "isv-client-secret-value";

#[derive(Default)]
pub struct IsvState {
    pub fail_token: AtomicBool,
    pub refuse_refresh: AtomicBool,
    pub deny: AtomicBool,
    pub expires_in: AtomicI64,
    pub issued: AtomicU64,
    pub refreshes: AtomicU64,
    /// How long a refresh takes (so that concurrent ones overlap).
    pub refresh_delay_ms: AtomicU64,
    /// code → (code_challenge, redirect_uri)
    codes: Mutex<HashMap<String, (String, String)>>,
    refresh_tokens: Mutex<Vec<String>>,
    pub revoked: Mutex<Vec<String>>,
    /// GitHub-style deletions: (`token` or `grant`, the access token sent).
    pub github_deleted: Mutex<Vec<(String, String)>>,
    pub authorize_params: Mutex<Vec<HashMap<String, String>>>,
}

pub struct Isv {
    pub base: String,
    pub state: Arc<IsvState>,
}

impl Isv {
    pub async fn start() -> Self {
        let state = Arc::new(IsvState::default());
        state.expires_in.store(3600, Ordering::SeqCst);
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/applications/{client_id}/{what}", delete(github_delete))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, state }
    }

    pub fn revoked(&self) -> Vec<String> {
        self.state.revoked.lock().unwrap().clone()
    }

    /// GitHub's grant URL of the app (`revocation = "github"`).
    pub fn github_grant_url(&self) -> String {
        format!("{}/applications/{ISV_CLIENT_ID}/grant", self.base)
    }

    /// The GitHub-style deletions so far: (`token` or `grant`, the access token sent).
    pub fn github_deleted(&self) -> Vec<(String, String)> {
        self.state.github_deleted.lock().unwrap().clone()
    }
}

async fn authorize(
    State(state): State<Arc<IsvState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    state.authorize_params.lock().unwrap().push(params.clone());
    let redirect = params.get("redirect_uri").cloned().unwrap_or_default();
    let mut url = url::Url::parse(&redirect).unwrap();
    let st = params.get("state").cloned().unwrap_or_default();
    if state.deny.load(Ordering::SeqCst) {
        url.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", &st);
        return Redirect::to(url.as_str()).into_response();
    }
    if params.get("client_id").map(String::as_str) != Some(ISV_CLIENT_ID)
        || params.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "bad authorize request").into_response();
    }
    let n = state.issued.fetch_add(1, Ordering::SeqCst);
    let code = format!("isv-code-{n}");
    state.codes.lock().unwrap().insert(
        code.clone(),
        (params["code_challenge"].clone(), redirect.clone()),
    );
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &st);
    Redirect::to(url.as_str()).into_response()
}

fn tokens(state: &IsvState) -> Response {
    let n = state.issued.fetch_add(1, Ordering::SeqCst);
    let refresh = format!("isv-rt-{n}-plaintext");
    state.refresh_tokens.lock().unwrap().push(refresh.clone());
    Json(serde_json::json!({
        "access_token": format!("isv-at-{n}-plaintext"),
        "token_type": "bearer",
        "scope": "repo,read:user",
        "expires_in": state.expires_in.load(Ordering::SeqCst),
        "refresh_token": refresh,
        "refresh_token_expires_in": 15_552_000,
    }))
    .into_response()
}

/// GitHub's error shape: HTTP 200 with an `error` member.
fn github_error(code: &str) -> Response {
    Json(serde_json::json!({"error": code, "error_description": "refused", "error_uri": "https://docs"}))
        .into_response()
}

async fn token(
    State(state): State<Arc<IsvState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if state.fail_token.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    if form.get("client_id").map(String::as_str) != Some(ISV_CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(ISV_SECRET)
    {
        return github_error("incorrect_client_credentials");
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((challenge, redirect)) = state.codes.lock().unwrap().remove(&code) else {
                return github_error("bad_verification_code");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()));
            if computed != challenge || form.get("redirect_uri") != Some(&redirect) {
                return github_error("bad_verification_code");
            }
            tokens(&state)
        }
        Some("refresh_token") => {
            state.refreshes.fetch_add(1, Ordering::SeqCst);
            let delay = state.refresh_delay_ms.load(Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let known = {
                let mut list = state.refresh_tokens.lock().unwrap();
                let before = list.len();
                list.retain(|t| t != &presented);
                list.len() < before
            };
            if state.refuse_refresh.load(Ordering::SeqCst) || !known {
                return github_error("bad_refresh_token");
            }
            tokens(&state)
        }
        _ => github_error("unsupported_grant_type"),
    }
}

async fn revoke(
    State(state): State<Arc<IsvState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("client_secret").map(String::as_str) != Some(ISV_SECRET) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    state
        .revoked
        .lock()
        .unwrap()
        .push(form.get("token").cloned().unwrap_or_default());
    StatusCode::OK.into_response()
}

/// GitHub's `DELETE /applications/{client_id}/token|grant`: HTTP Basic with the app's id and
/// secret, JSON `{"access_token"}`; 204, or 404 for wrong credentials as GitHub answers.
async fn github_delete(
    State(state): State<Arc<IsvState>>,
    Path((client_id, what)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ISV_CLIENT_ID}:{ISV_SECRET}"))
    );
    let authorized = headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == basic.as_bytes());
    if client_id != ISV_CLIENT_ID || !authorized || !matches!(what.as_str(), "token" | "grant") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(token) = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["access_token"].as_str().map(str::to_owned))
    else {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    };
    state.github_deleted.lock().unwrap().push((what, token));
    StatusCode::NO_CONTENT.into_response()
}
