//! `GET /login/oauth/authorize`: checks the app and `redirect_uri` (GitHub's rule: the
//! registered callback URL or a path below it, same scheme, host and port), then either sends
//! the person to the sign-in page (`/login?return_to=…`), or, signed in, shows the consent page;
//! a person who already granted the app every requested scope is redirected at once, as GitHub
//! does. `POST /login/oauth/authorize` takes the decision: the pending request is bound to the
//! browser session that saw it (single use, ten minutes), so another session cannot answer it.
//! Allow → redirect with `code` and `state`; deny → `error=access_denied`.

use axum::Form;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use protocol::constant_time::is_equal;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::{CODE_LIFETIME_SECONDS, error_uri};
use crate::pages::{consent, error_page, sign_in};
use crate::store::{Account, Code, Pending};
use crate::tokens::{digest, new_code, new_opaque};
use crate::{App, Github0};

const SESSION_COOKIE: &str = "github0_session";
const LOGIN_CSRF_COOKIE: &str = "github0_login_csrf";
const SESSION_LIFETIME_SECONDS: i64 = 12 * 3600;
const PENDING_LIFETIME_SECONDS: i64 = 600;

/// The query of `GET /login/oauth/authorize` (other parameters GitHub knows, such as `login`
/// and `allow_signup`, are accepted and ignored).
#[derive(Debug, Deserialize)]
pub struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Whether `candidate` is `callback` or below it (GitHub's rule for OAuth apps).
pub fn redirect_matches(callback: &Url, candidate: &Url) -> bool {
    if callback.scheme() != candidate.scheme()
        || callback.host_str() != candidate.host_str()
        || callback.port_or_known_default() != candidate.port_or_known_default()
        || candidate.fragment().is_some()
    {
        return false;
    }
    let base = callback.path().trim_end_matches('/');
    let path = candidate.path();
    path == callback.path()
        || path == base
        || (path.starts_with(base) && path[base.len()..].starts_with('/') && !path.contains(".."))
}

/// `redirect_uri` with the answer's parameters appended.
fn answer(redirect_uri: &str, params: &[(&str, Option<&str>)]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Bad redirect URL",
            "The application's redirect URL is not valid.",
        );
    };
    {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in params {
            if let Some(value) = value {
                pairs.append_pair(name, value);
            }
        }
    }
    Redirect::to(url.as_str()).into_response()
}

/// The normalised scope list: split on spaces and commas, duplicates dropped, order kept.
pub fn scopes(scope: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope
        .unwrap_or("")
        .split([' ', ','])
        .filter(|s| !s.is_empty())
    {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

fn session_cookie(github0: &Github0, value: String, max_age: i64) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(github0.config().public_url.scheme() == "https")
        .path("/")
        .max_age(time::Duration::seconds(max_age))
        .build()
}

async fn signed_in(
    github0: &Github0,
    jar: &CookieJar,
) -> Result<Option<(Account, String)>, Response> {
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = digest(cookie.value());
    match github0.store().session_account(&hash, github0.now()).await {
        Ok(account) => Ok(account.map(|a| (a, hash))),
        Err(e) => Err(unavailable(&e)),
    }
}

fn unavailable(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "github0 store failed");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "The sandbox could not answer just now. Try again in a moment.",
    )
}

/// Issues a code for `account` and redirects with it.
async fn issue_code(
    github0: &Github0,
    account: &Account,
    pending: &Pending,
) -> Result<Response, Response> {
    let code = new_code();
    let now = github0.now();
    let record = Code {
        client_id: pending.client_id.clone(),
        account_id: account.id,
        redirect_uri: pending.redirect_uri.clone(),
        scope: pending.scope.clone(),
        code_challenge: pending.code_challenge.clone(),
        family: new_opaque(),
        expires_at: now + CODE_LIFETIME_SECONDS,
    };
    github0
        .store()
        .put_code(&digest(&code), &record)
        .await
        .map_err(|e| unavailable(&e))?;
    tracing::info!(target: "github0::audit", login = %account.login, client_id = %pending.client_id, scope = %pending.scope, "authorization code issued");
    Ok(answer(
        &pending.redirect_uri,
        &[("code", Some(&code)), ("state", pending.state.as_deref())],
    ))
}

pub(crate) async fn get_authorize(
    State(github0): State<Github0>,
    jar: CookieJar,
    RawQuery(raw): RawQuery,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    let Some(app) = query.client_id.as_deref().and_then(|id| github0.app(id)) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Application not found",
            "No application with this client_id is registered in the sandbox.",
        );
    };
    let redirect_uri = match resolve_redirect(app, query.redirect_uri.as_deref()) {
        Ok(uri) => uri,
        Err(()) => {
            let registered = app.callback_urls[0].as_str();
            return answer(
                registered,
                &[
                    ("error", Some("redirect_uri_mismatch")),
                    (
                        "error_description",
                        Some(
                            "The redirect_uri MUST match the registered callback URL for this application.",
                        ),
                    ),
                    ("error_uri", Some(error_uri("redirect_uri_mismatch"))),
                    ("state", query.state.as_deref()),
                ],
            );
        }
    };
    let challenge = match (
        &query.code_challenge,
        query.code_challenge_method.as_deref(),
    ) {
        (None, None) => None,
        (Some(challenge), Some("S256") | None)
            if challenge.len() == 43
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(challenge.clone())
        }
        _ => {
            return answer(
                &redirect_uri,
                &[
                    ("error", Some("invalid_request")),
                    (
                        "error_description",
                        Some(
                            "code_challenge must be a 43-character S256 challenge and code_challenge_method must be S256.",
                        ),
                    ),
                    ("state", query.state.as_deref()),
                ],
            );
        }
    };
    let pending = Pending {
        client_id: app.client_id.clone(),
        redirect_uri,
        scope: scopes(query.scope.as_deref()).join(" "),
        state: query.state.clone(),
        code_challenge: challenge,
    };
    let (account, session_hash) = match signed_in(&github0, &jar).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            let return_to = format!("/login/oauth/authorize?{}", raw.unwrap_or_default());
            let mut login = Url::parse("http://sandbox/login").expect("a fixed URL parses");
            login
                .query_pairs_mut()
                .append_pair("client_id", &app.client_id)
                .append_pair("return_to", &return_to);
            let target = format!("/login?{}", login.query().unwrap_or_default());
            return Redirect::to(&target).into_response();
        }
        Err(response) => return response,
    };
    // Already granted every requested scope: no consent page, as GitHub.
    match github0.store().grant(account.id, &app.client_id).await {
        Ok(Some(granted)) => {
            let granted = scopes(Some(&granted));
            if pending
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .all(|s| granted.iter().any(|g| g == s))
            {
                return issue_code(&github0, &account, &pending)
                    .await
                    .unwrap_or_else(|r| r);
            }
        }
        Ok(None) => {}
        Err(e) => return unavailable(&e),
    }
    let request_id = new_opaque();
    let expires_at = github0.now() + PENDING_LIFETIME_SECONDS;
    if let Err(e) = github0
        .store()
        .put_pending(&digest(&request_id), &session_hash, &pending, expires_at)
        .await
    {
        return unavailable(&e);
    }
    let host = Url::parse(&pending.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let requested: Vec<&str> = pending.scope.split(' ').filter(|s| !s.is_empty()).collect();
    Html(consent(
        &app.name,
        &account.login,
        &requested,
        &request_id,
        &host,
    ))
    .into_response()
}

fn resolve_redirect(app: &App, redirect_uri: Option<&str>) -> Result<String, ()> {
    match redirect_uri {
        None => Ok(app.callback_urls[0].to_string()),
        Some(text) => {
            let candidate = Url::parse(text).map_err(|_| ())?;
            if app
                .callback_urls
                .iter()
                .any(|cb| redirect_matches(cb, &candidate))
            {
                Ok(text.to_owned())
            } else {
                Err(())
            }
        }
    }
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    authorize_request: String,
    decision: String,
}

pub(crate) async fn post_authorize(
    State(github0): State<Github0>,
    jar: CookieJar,
    Form(form): Form<DecisionForm>,
) -> Response {
    let (account, session_hash) = match signed_in(&github0, &jar).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return error_page(
                StatusCode::FORBIDDEN,
                "Sign in first",
                "Your sandbox session ended. Start again from the application.",
            );
        }
        Err(response) => return response,
    };
    let pending = match github0
        .store()
        .take_pending(
            &digest(&form.authorize_request),
            &session_hash,
            github0.now(),
        )
        .await
    {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This request is no longer valid",
                "This authorization request expired, was already answered, or belongs to another session. Start again from the application.",
            );
        }
        Err(e) => return unavailable(&e),
    };
    if form.decision != "allow" {
        tracing::info!(target: "github0::audit", login = %account.login, client_id = %pending.client_id, "authorization denied");
        return answer(
            &pending.redirect_uri,
            &[
                ("error", Some("access_denied")),
                (
                    "error_description",
                    Some("The user has denied your application access."),
                ),
                ("error_uri", Some(error_uri("access_denied"))),
                ("state", pending.state.as_deref()),
            ],
        );
    }
    let mut granted = match github0.store().grant(account.id, &pending.client_id).await {
        Ok(granted) => scopes(granted.as_deref()),
        Err(e) => return unavailable(&e),
    };
    for s in pending.scope.split(' ').filter(|s| !s.is_empty()) {
        if !granted.iter().any(|g| g == s) {
            granted.push(s.to_owned());
        }
    }
    if let Err(e) = github0
        .store()
        .put_grant(
            account.id,
            &pending.client_id,
            &granted.join(" "),
            github0.now(),
        )
        .await
    {
        return unavailable(&e);
    }
    issue_code(&github0, &account, &pending)
        .await
        .unwrap_or_else(|r| r)
}

/// `GET /login` query.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

/// Only a path back into the authorize endpoint (no open redirect).
fn safe_return_to(return_to: Option<&str>) -> String {
    match return_to {
        Some(r) if r.starts_with("/login/oauth/authorize?") || r == "/login/oauth/authorize" => {
            r.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub(crate) async fn get_login(Query(query): Query<LoginQuery>, jar: CookieJar) -> Response {
    let csrf = new_opaque();
    let cookie = Cookie::build((LOGIN_CSRF_COOKIE, csrf.clone()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .build();
    let page = sign_in(&csrf, &safe_return_to(query.return_to.as_deref()), "", None);
    (jar.add(cookie), Html(page)).into_response()
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct SessionForm {
    login: String,
    password: SecretString,
    authenticity_token: String,
    return_to: Option<String>,
}

pub(crate) async fn post_session(
    State(github0): State<Github0>,
    jar: CookieJar,
    Form(form): Form<SessionForm>,
) -> Response {
    let return_to = safe_return_to(form.return_to.as_deref());
    let csrf_ok = jar
        .get(LOGIN_CSRF_COOKIE)
        .is_some_and(|c| is_equal(c.value(), &form.authenticity_token));
    if !csrf_ok {
        return error_page(
            StatusCode::FORBIDDEN,
            "Sign-in form expired",
            "The sign-in form expired. Go back to the application and start again.",
        );
    }
    let account = match github0.store().account_by_login(form.login.trim()).await {
        Ok(account) => account.filter(|a| a.password_hash.is_some()),
        Err(e) => return unavailable(&e),
    };
    let phc = account.as_ref().and_then(|a| a.password_hash.clone());
    let verified = match github0.passwords().verify(form.password, phc).await {
        Ok(verified) => verified,
        Err(_) => {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "Too many sign-ins at once. Try again in a moment.",
            );
        }
    };
    let Some(account) = account.filter(|_| verified) else {
        tracing::info!(target: "github0::audit", "sign-in refused");
        let page = sign_in(
            &form.authenticity_token,
            &return_to,
            &form.login,
            Some("Incorrect username or password."),
        );
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    };
    if let Err(e) = github0.store().purge(github0.now()).await {
        tracing::warn!(error = %e, "purging expired sandbox state failed");
    }
    let session = new_opaque();
    let expires_at = github0.now() + SESSION_LIFETIME_SECONDS;
    if let Err(e) = github0
        .store()
        .create_session(&digest(&session), account.id, expires_at)
        .await
    {
        return unavailable(&e);
    }
    tracing::info!(target: "github0::audit", login = %account.login, "signed in");
    let jar = jar
        .remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/"))
        .add(session_cookie(&github0, session, SESSION_LIFETIME_SECONDS));
    (jar, Redirect::to(&return_to)).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_githubs_rule() {
        let cb = Url::parse("http://localhost:9400/oauth2/v1/sts/callback").unwrap();
        for (uri, ok) in [
            ("http://localhost:9400/oauth2/v1/sts/callback", true),
            ("http://localhost:9400/oauth2/v1/sts/callback?x=1", true),
            ("http://localhost:9400/oauth2/v1/sts/callback/sub", true),
            ("http://localhost:9400/oauth2/v1/sts/callbackx", false),
            ("http://localhost:9400/oauth2/v1/sts", false),
            ("http://localhost:9401/oauth2/v1/sts/callback", false),
            ("https://localhost:9400/oauth2/v1/sts/callback", false),
            ("http://evil.example/oauth2/v1/sts/callback", false),
            ("http://localhost:9400/oauth2/v1/sts/callback#frag", false),
        ] {
            assert_eq!(
                redirect_matches(&cb, &Url::parse(uri).unwrap()),
                ok,
                "{uri}"
            );
        }
    }

    #[test]
    fn scopes_split_on_spaces_and_commas() {
        assert_eq!(scopes(Some("repo, read:user repo")), ["repo", "read:user"]);
        assert!(scopes(None).is_empty());
    }
}
