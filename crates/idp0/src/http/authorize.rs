//! The authorization endpoint (RFC 6749 §4.1.1 with PKCE S256, RFC 7636; OIDC Core §3.1.2) and
//! the login form it shows when there is no SSO session.
//!
//! Until the client and its exact redirect URI are known, errors are shown as a page (redirecting
//! to an unverified URI would make us an open redirector); after that, errors go back to the
//! client as `error`, `error_description`, `state` and `iss` (RFC 9207) query parameters.
//! The login form carries the original request; after a successful login the same validation
//! runs again and the code is issued directly, so there is no redirect loop and no `return_to`.
//!
//! A login post must carry an anti-CSRF token that is a MAC of its HttpOnly cookie under a server
//! key ([`crate::csrf`]) and no foreign `Origin`; then the throttle ([`crate::login_guard`]) may
//! refuse it (429 + `Retry-After`) before any password check, and the password gate may answer
//! 503 + `Retry-After` when too many checks are queued. A live SSO session never reaches this form.

use axum::Form as AxumForm;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use protocol::Scopes;
use protocol::oauth::GrantType;
use serde::Deserialize;

use super::{ClientAddr, Server, html_response};
use crate::config::Client;
use crate::csrf::is_foreign_post;
use crate::html::{self, LoginPage};
use crate::login_guard::{Account, NotStarted};
use crate::password;
use crate::server::{AuthServer, ORG_SCOPES};
use crate::state::Idp;
use crate::store::{AuthCode, Grant, SsoSession, secret_hash};
use crate::token_request::Form;
use crate::tokens::{new_id, new_secret};

/// SSO session cookie.
pub(crate) const SESSION_COOKIE: &str = "idp0_session";
const CSRF_COOKIE: &str = "idp0_csrf";
/// What the login form's anti-CSRF token is for (see [`crate::csrf`]).
const LOGIN_CSRF_PURPOSE: &str = "login";
/// Authorization codes live this long.
const CODE_LIFETIME: i64 = 120;

/// A validated authorization request.
struct AuthorizeRequest {
    client: std::sync::Arc<Client>,
    redirect_uri: String,
    scope: Scopes,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    prompt: Option<String>,
}

/// Why an authorization request failed.
enum Refusal {
    /// Show a page; never redirect (client or redirect URI not trusted).
    Page(String),
    /// Send the error back to the client.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

fn validate(idp: &Idp, server: &AuthServer, query: &str) -> Result<AuthorizeRequest, Refusal> {
    let form = Form::parse(query.as_bytes())
        .map_err(|_| Refusal::Page("A parameter is repeated in the request.".into()))?;
    let client_id = form
        .get("client_id")
        .ok_or_else(|| Refusal::Page("The request has no client_id.".into()))?;
    let client = idp
        .client(client_id)
        .ok_or_else(|| Refusal::Page("The application is not registered.".into()))?;
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| Refusal::Page("The request has no redirect_uri.".into()))?;
    if !client.is_redirect_uri(redirect_uri) {
        return Err(Refusal::Page(
            "The redirect_uri is not registered for this application.".into(),
        ));
    }
    let state = form.get("state").map(str::to_owned);
    let fail = |error: &'static str, description: &str| Refusal::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        state: state.clone(),
        error,
        description: description.to_owned(),
    };
    if form.get("response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if form.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    let code_challenge = form
        .get("code_challenge")
        .ok_or_else(|| fail("invalid_request", "PKCE is required: send code_challenge"))?;
    if form.get("code_challenge_method") != Some("S256") {
        return Err(fail(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    let challenge_ok = code_challenge.len() == 43
        && code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !challenge_ok {
        return Err(fail(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 digest",
        ));
    }
    let requested = Scopes::parse(form.get("scope").unwrap_or_default())
        .map_err(|_| fail("invalid_scope", "malformed scope"))?;
    if requested.is_empty() {
        return Err(fail("invalid_scope", "scope is required"));
    }
    let known: Scopes = server.scopes_supported().into_iter().collect();
    if !known.contains_all(&requested) {
        return Err(fail("invalid_scope", "a requested scope is not supported"));
    }
    let scope = match &server.custom {
        None => requested,
        Some(custom) => {
            let policy = custom
                .policy_for(&client.client_id, &GrantType::AuthorizationCode)
                .ok_or_else(|| {
                    fail(
                        "unauthorized_client",
                        "no policy allows this application here",
                    )
                })?;
            let org: Scopes = ORG_SCOPES.into_iter().collect();
            requested.intersection(&policy.scopes.union(&org))
        }
    };
    let prompt = form.get("prompt").map(str::to_owned);
    if prompt
        .as_deref()
        .is_some_and(|p| !matches!(p, "none" | "login" | "consent"))
    {
        return Err(fail("invalid_request", "unsupported prompt value"));
    }
    Ok(AuthorizeRequest {
        client,
        redirect_uri: redirect_uri.to_owned(),
        scope,
        state,
        nonce: form.get("nonce").map(str::to_owned),
        code_challenge: code_challenge.to_owned(),
        prompt,
    })
}

fn refusal_response(server: &AuthServer, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(message) => html_response(
            StatusCode::BAD_REQUEST,
            html::error("Cannot sign in", &message),
        ),
        Refusal::Redirect {
            redirect_uri,
            state,
            error,
            description,
        } => {
            let mut params = vec![
                ("error", error.to_owned()),
                ("error_description", description),
            ];
            params.extend(state.map(|s| ("state", s)));
            params.push(("iss", server.issuer.clone()));
            redirect_with(&redirect_uri, &params)
        }
    }
}

fn redirect_with(uri: &str, params: &[(&str, String)]) -> Response {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut()
                .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
            Redirect::to(url.as_str()).into_response()
        }
        Err(_) => html_response(
            StatusCode::BAD_REQUEST,
            html::error("Cannot sign in", "Invalid redirect URI."),
        ),
    }
}

/// The live SSO session behind the cookie, if any.
pub(super) async fn current_session(idp: &Idp, jar: &CookieJar) -> Option<SsoSession> {
    let cookie = jar.get(SESSION_COOKIE)?;
    let session = idp
        .store
        .find_session(&secret_hash(cookie.value()))
        .await
        .ok()??;
    (session.expires_at > idp.clock.now() && idp.user(&session.user_id).is_some())
        .then_some(session)
}

/// `GET …/v1/authorize`.
pub(super) async fn get_authorize(
    State(idp): State<Idp>,
    Server(server): Server,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    authorize(idp, server, jar, query.unwrap_or_default()).await
}

/// `POST …/v1/authorize` (OIDC Core §3.1.2.1 allows form posts).
pub(super) async fn post_authorize(
    State(idp): State<Idp>,
    Server(server): Server,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Response {
    authorize(
        idp,
        server,
        jar,
        String::from_utf8_lossy(&body).into_owned(),
    )
    .await
}

async fn authorize(
    idp: Idp,
    server: std::sync::Arc<AuthServer>,
    jar: CookieJar,
    query: String,
) -> Response {
    let request = match validate(&idp, &server, &query) {
        Ok(request) => request,
        Err(refusal) => return refusal_response(&server, refusal),
    };
    let session = current_session(&idp, &jar).await;
    match (session, request.prompt.as_deref()) {
        (Some(session), p) if p != Some("login") => {
            issue_code(&idp, &server, &request, &session).await
        }
        (None, Some("none")) => refusal_response(
            &server,
            Refusal::Redirect {
                redirect_uri: request.redirect_uri.clone(),
                state: request.state.clone(),
                error: "login_required",
                description: "the user is not signed in".into(),
            },
        ),
        _ => login_page(
            &idp,
            &server,
            jar,
            &query,
            &request.client.client_id,
            None,
            "",
            StatusCode::OK,
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn login_page(
    idp: &Idp,
    server: &AuthServer,
    jar: CookieJar,
    query: &str,
    client_name: &str,
    error: Option<&str>,
    username: &str,
    status: StatusCode,
) -> Response {
    login_form(
        idp,
        server,
        jar,
        query,
        "",
        client_name,
        error,
        username,
        status,
    )
}

/// The login form for an idp0 page (`return_to`, see [`is_return_path`]) rather than an
/// authorization request: after signing in the person is sent back there.
pub(super) fn login_to_return(
    idp: &Idp,
    jar: CookieJar,
    return_to: &str,
    shown_as: &str,
    error: Option<&str>,
    username: &str,
    status: StatusCode,
) -> Response {
    login_form(
        idp, &idp.org, jar, "", return_to, shown_as, error, username, status,
    )
}

#[allow(clippy::too_many_arguments)]
fn login_form(
    idp: &Idp,
    server: &AuthServer,
    jar: CookieJar,
    query: &str,
    return_to: &str,
    client_name: &str,
    error: Option<&str>,
    username: &str,
    status: StatusCode,
) -> Response {
    let cookie_value = new_secret();
    let csrf = idp
        .csrf
        .token(LOGIN_CSRF_PURPOSE, &cookie_value, idp.clock.now());
    let demo: &[(String, String)] = if idp.directory().config.development {
        &idp.demo_credentials
    } else {
        &[]
    };
    let page = html::login(&LoginPage {
        client_name,
        authorize_query: query,
        server: server.store_id(),
        csrf: &csrf,
        error,
        username,
        demo_credentials: demo,
        return_to,
    });
    let cookie = Cookie::build((CSRF_COOKIE, cookie_value))
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(idp.secure_cookies)
        .build();
    (jar.add(cookie), html_response(status, page)).into_response()
}

async fn issue_code(
    idp: &Idp,
    server: &AuthServer,
    request: &AuthorizeRequest,
    session: &SsoSession,
) -> Response {
    // Okta's app assignments: an app created through the management API admits only the users
    // assigned to it (Okta answers this error and description).
    if !request.client.is_assigned(&session.user_id) {
        return refusal_response(
            server,
            Refusal::Redirect {
                redirect_uri: request.redirect_uri.clone(),
                state: request.state.clone(),
                error: "access_denied",
                description: "User is not assigned to the client application.".into(),
            },
        );
    }
    let code = new_secret();
    let now = idp.clock.now();
    let record = AuthCode {
        grant: Grant {
            server: server.store_id().to_owned(),
            client_id: request.client.client_id.clone(),
            user_id: session.user_id.clone(),
            scope: request.scope.to_string(),
            nonce: request.nonce.clone(),
            auth_time: session.auth_time,
            sid: Some(session.sid.clone()),
            family: new_id(),
        },
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        expires_at: now + CODE_LIFETIME,
        used: false,
    };
    if let Err(e) = idp.store.create_code(&secret_hash(&code), &record).await {
        tracing::error!(error = %e, "could not store an authorization code");
        return refusal_response(
            server,
            Refusal::Redirect {
                redirect_uri: request.redirect_uri.clone(),
                state: request.state.clone(),
                error: "server_error",
                description: "temporary failure".into(),
            },
        );
    }
    tracing::info!(client_id = %request.client.client_id, "issued authorization code");
    let mut params = vec![("code", code)];
    params.extend(request.state.clone().map(|s| ("state", s)));
    params.push(("iss", server.issuer.clone()));
    redirect_with(&request.redirect_uri, &params)
}

/// The login form's fields.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    username: String,
    password: secrecy::SecretString,
    authorize_query: String,
    #[serde(default)]
    server: String,
    csrf: String,
    /// An idp0 page to return to instead of an authorization request (brokered consent's
    /// interaction page, Connected apps); checked by [`is_return_path`].
    #[serde(default)]
    return_to: String,
}

/// Whether `path` is one of the idp0 pages a login may return to: Connected apps, or an
/// interaction page (`/oauth2/v1/sts/interaction/<opaque id>`). Nothing else, so the form
/// cannot be made an open redirector.
pub(super) fn is_return_path(path: &str) -> bool {
    path == super::sts::CONNECTED_APPS
        || path
            .strip_prefix(super::sts::INTERACTION_PREFIX)
            .is_some_and(|id| {
                !id.is_empty()
                    && id.len() <= 64
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
}

/// `POST /login` for an idp0 page: the same CSRF, throttle and password checks, a new SSO
/// session, then back to the page.
async fn login_and_return(
    idp: Idp,
    address: Option<std::net::IpAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    form: LoginForm,
) -> Response {
    if !is_return_path(&form.return_to) {
        return html_response(
            StatusCode::BAD_REQUEST,
            html::error("Cannot sign in", "The sign-in form was changed."),
        );
    }
    let page = |jar: CookieJar, message: &str, status: StatusCode| {
        login_to_return(
            &idp,
            jar,
            &form.return_to,
            "idp0",
            Some(message),
            &form.username,
            status,
        )
    };
    let now = idp.clock.now();
    let csrf_ok = !is_foreign_post(&headers, idp.issuer())
        && jar.get(CSRF_COOKIE).is_some_and(|c| {
            idp.csrf
                .is_valid(LOGIN_CSRF_PURPOSE, c.value(), &form.csrf, now)
        });
    if !csrf_ok {
        return page(
            jar,
            "Your sign-in form expired. Please try again.",
            StatusCode::FORBIDDEN,
        );
    }
    let user = match check_credentials(&idp, &form, address, now).await {
        Ok(user) => user,
        Err(LoginRefusal::Throttled(seconds)) => {
            let message = format!(
                "Too many failed sign-in attempts. Please try again in {}.",
                in_words(seconds)
            );
            let response = page(jar, &message, StatusCode::TOO_MANY_REQUESTS);
            return with_retry_after(response, seconds);
        }
        Err(LoginRefusal::Busy(seconds)) => {
            let message = "Sign-in is busy right now. Please try again in a moment.";
            let response = page(jar, message, StatusCode::SERVICE_UNAVAILABLE);
            return with_retry_after(response, seconds);
        }
        Err(LoginRefusal::Invalid) => {
            return page(
                jar,
                "Invalid username or password.",
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(LoginRefusal::Unavailable(e)) => {
            tracing::error!(error = %e, "could not read or count failed logins");
            let message = "Sign-in is unavailable right now. Please try again shortly.";
            let response = page(jar, message, StatusCode::SERVICE_UNAVAILABLE);
            return with_retry_after(response, 5);
        }
    };
    match start_session(&idp, jar, &user.id).await {
        Ok((jar, _)) => {
            tracing::info!("login succeeded (idp0 page)");
            (
                jar,
                [(header::CACHE_CONTROL, "no-store")],
                Redirect::to(&form.return_to),
            )
                .into_response()
        }
        Err(response) => response,
    }
}

/// Starts an SSO session for `user_id`: stores it, replaces any previous session cookie
/// (session fixation) and drops the login form's CSRF cookie.
async fn start_session(
    idp: &Idp,
    jar: CookieJar,
    user_id: &str,
) -> Result<(CookieJar, SsoSession), Response> {
    let now = idp.clock.now();
    let cookie_value = new_secret();
    let session = SsoSession {
        sid: new_id(),
        user_id: user_id.to_owned(),
        auth_time: now,
        expires_at: now + idp.directory().config.session_lifetime,
    };
    if let Err(e) = idp
        .store
        .create_session(&secret_hash(&cookie_value), &session)
        .await
    {
        tracing::error!(error = %e, "could not store an SSO session");
        return Err(html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            html::error("Cannot sign in", "Please try again shortly."),
        ));
    }
    // Replace any previous session cookie (session fixation) and drop the CSRF cookie.
    if let Some(old) = jar.get(SESSION_COOKIE) {
        let _ = idp.store.delete_session(&secret_hash(old.value())).await;
    }
    let cookie = Cookie::build((SESSION_COOKIE, cookie_value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(idp.secure_cookies)
        .build();
    let jar = jar
        .add(cookie)
        .remove(Cookie::build(CSRF_COOKIE).path("/login"));
    Ok((jar, session))
}

/// `POST /login`: checks the password, starts an SSO session, and completes the authorization.
pub(super) async fn post_login(
    State(idp): State<Idp>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    AxumForm(form): AxumForm<LoginForm>,
) -> Response {
    if !form.return_to.is_empty() {
        return login_and_return(idp, address, headers, jar, form).await;
    }
    let server = match idp.server((!form.server.is_empty()).then_some(form.server.as_str())) {
        Some(server) => server,
        None => {
            return html_response(
                StatusCode::BAD_REQUEST,
                html::error("Cannot sign in", "Unknown authorization server."),
            );
        }
    };
    let request = match validate(&idp, &server, &form.authorize_query) {
        Ok(request) => request,
        Err(refusal) => return refusal_response(&server, refusal),
    };
    let page = |jar: CookieJar, message: &str, status: StatusCode| {
        login_page(
            &idp,
            &server,
            jar,
            &form.authorize_query,
            &request.client.client_id,
            Some(message),
            &form.username,
            status,
        )
    };
    let now = idp.clock.now();
    let csrf_ok = !is_foreign_post(&headers, idp.issuer())
        && jar.get(CSRF_COOKIE).is_some_and(|c| {
            idp.csrf
                .is_valid(LOGIN_CSRF_PURPOSE, c.value(), &form.csrf, now)
        });
    if !csrf_ok {
        let message = "Your sign-in form expired. Please try again.";
        return page(jar, message, StatusCode::FORBIDDEN);
    }
    let user = match check_credentials(&idp, &form, address, now).await {
        Ok(user) => user,
        Err(LoginRefusal::Throttled(seconds)) => {
            let message = format!(
                "Too many failed sign-in attempts. Please try again in {}.",
                in_words(seconds)
            );
            let response = page(jar, &message, StatusCode::TOO_MANY_REQUESTS);
            return with_retry_after(response, seconds);
        }
        Err(LoginRefusal::Busy(seconds)) => {
            tracing::warn!(client_id = %request.client.client_id, "password checks are saturated");
            let message = "Sign-in is busy right now. Please try again in a moment.";
            let response = page(jar, message, StatusCode::SERVICE_UNAVAILABLE);
            return with_retry_after(response, seconds);
        }
        Err(LoginRefusal::Invalid) => {
            tracing::info!(client_id = %request.client.client_id, "login failed");
            let message = "Invalid username or password.";
            return page(jar, message, StatusCode::UNAUTHORIZED);
        }
        Err(LoginRefusal::Unavailable(e)) => {
            tracing::error!(error = %e, "could not read or count failed logins");
            let message = "Sign-in is unavailable right now. Please try again shortly.";
            let response = page(jar, message, StatusCode::SERVICE_UNAVAILABLE);
            return with_retry_after(response, 5);
        }
    };
    let (jar, session) = match start_session(&idp, jar, &user.id).await {
        Ok(started) => started,
        Err(response) => return response,
    };
    tracing::info!(client_id = %request.client.client_id, "login succeeded");
    let response = issue_code(&idp, &server, &request, &session).await;
    (jar, [(header::CACHE_CONTROL, "no-store")], response).into_response()
}

/// Why a login's credentials were not accepted.
enum LoginRefusal {
    /// Too many recent failures for the account or address: retry after this many seconds.
    Throttled(i64),
    /// Every password-check slot stayed taken for the whole wait: retry after this many seconds.
    Busy(i64),
    /// Unknown user or wrong password (indistinguishable on purpose).
    Invalid,
    /// The shared failure counts could not be read or written: fail closed.
    Unavailable(crate::store::StoreError),
}

/// The throttle, then the bounded Argon2id check; knows nothing of HTTP.
async fn check_credentials(
    idp: &Idp,
    form: &LoginForm,
    address: Option<std::net::IpAddr>,
    now: protocol::UnixTime,
) -> Result<std::sync::Arc<crate::config::User>, LoginRefusal> {
    let user = idp
        .directory()
        .config
        .users
        .get(form.username.trim())
        .cloned();
    let account = Account::named(user.as_ref().map(|u| u.id.as_str()), &form.username);
    let attempt = match idp.login_throttle.begin(account, address, now).await {
        Ok(attempt) => attempt,
        Err(NotStarted::Throttled(t)) => return Err(LoginRefusal::Throttled(t.retry_after)),
        Err(NotStarted::Store(e)) => return Err(LoginRefusal::Unavailable(e)),
    };
    // Unknown users cost the same Argon2id check, so timing does not reveal who exists.
    let phc = match &user {
        Some(user) => user.password_hash.as_str(),
        None => password::DUMMY_HASH.as_str(),
    };
    let verified = match idp.password_gate.verify(&form.password, phc).await {
        Ok(verified) => verified,
        Err(busy) => {
            if let Err(e) = idp.login_throttle.abandoned(attempt).await {
                return Err(LoginRefusal::Unavailable(e));
            }
            return Err(LoginRefusal::Busy(
                i64::try_from(busy.retry_after).unwrap_or(1),
            ));
        }
    };
    match user.filter(|_| verified) {
        Some(user) => {
            idp.login_throttle
                .succeeded(attempt)
                .await
                .map_err(LoginRefusal::Unavailable)?;
            Ok(user)
        }
        None => {
            idp.login_throttle.failed(&attempt);
            Err(LoginRefusal::Invalid)
        }
    }
}

/// Adds `Retry-After` (RFC 9110 §10.2.3) in seconds.
fn with_retry_after(mut response: Response, seconds: i64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// "1 second", "40 seconds", "5 minutes": for the person reading the page.
fn in_words(seconds: i64) -> String {
    match seconds.max(1) {
        1 => "1 second".into(),
        s if s < 90 => format!("{s} seconds"),
        s => format!("{} minutes", (s + 59) / 60),
    }
}
