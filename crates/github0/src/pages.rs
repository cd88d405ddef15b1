//! The sandbox's HTML: one layout with a "sandbox" banner on every page, the sign-in and
//! consent pages the OAuth flow shows, an error page, and a home page listing the repositories.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use httpserve::html::escape;

use crate::Github0;

/// The label every page carries.
pub(crate) const SANDBOX_LABEL: &str = "sandbox";

pub(crate) fn router() -> Router<Github0> {
    Router::new()
        .route("/", get(get_home))
        .route("/{owner}/{repo}/pull/{number}", get(get_pull_page))
}

/// A whole page around `body` (already escaped HTML).
pub(crate) fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · github0 {SANDBOX_LABEL}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; background: #f6f8fa; color: #1f2328; margin: 0; }}
.banner {{ background: #9a6700; color: #fff; text-align: center; padding: 6px; font-weight: 600; letter-spacing: .03em; }}
main {{ max-width: 28rem; margin: 2.5rem auto; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 1.5rem; }}
h1 {{ font-size: 1.4rem; font-weight: 400; text-align: center; }}
label {{ display: block; margin: .8rem 0 .3rem; font-weight: 600; }}
input[type=text], input[type=password] {{ width: 100%; box-sizing: border-box; padding: .4rem; border: 1px solid #d0d7de; border-radius: 6px; }}
button {{ margin-top: 1rem; padding: .5rem 1rem; border-radius: 6px; border: 1px solid #1f883d; background: #1f883d; color: #fff; font-weight: 600; }}
button.secondary {{ background: #f6f8fa; color: #1f2328; border-color: #d0d7de; }}
.error {{ background: #ffebe9; border: 1px solid #ff818266; padding: .6rem; border-radius: 6px; }}
ul.scopes li {{ margin: .3rem 0; }} code {{ background: #eff1f3; padding: 0 .2rem; }}
</style></head>
<body><div class="banner" data-sandbox="true">github0 {SANDBOX_LABEL}: an offline stand-in for GitHub. Nothing here is real GitHub.</div>
<main>{body}</main></body></html>"#,
        title = escape(title),
    )
}

/// An error page with `status`.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"error\">{}</p>",
        escape(title),
        escape(message)
    );
    (status, Html(layout(title, &body))).into_response()
}

/// The sign-in form; `return_to` is the authorize URL to resume.
pub(crate) fn sign_in(csrf: &str, return_to: &str, login: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Sign in to github0</h1>{error}
<form method="post" action="/session">
<input type="hidden" name="authenticity_token" value="{csrf}">
<input type="hidden" name="return_to" value="{return_to}">
<label for="login_field">Username or email address</label>
<input type="text" id="login_field" name="login" value="{login}" autocomplete="username" autofocus required>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit" name="commit" value="Sign in">Sign in</button>
</form>
<p><small>This is a sandbox: use the demo people's usernames and passwords (the stack's <code>demo-users.txt</code>).</small></p>"#,
        csrf = escape(csrf),
        return_to = escape(return_to),
        login = escape(login),
    );
    layout("Sign in", &body)
}

/// What a scope lets the app do, in plain words.
fn describe(scope: &str) -> &'static str {
    match scope {
        "repo" => "Full control of repositories: read and write code, pull requests and comments",
        "public_repo" => "Access public repositories: comment on issues and pull requests",
        "read:user" => "Read your profile data",
        "user" => "Read and update your profile data",
        "user:email" => "Read your email addresses",
        "read:org" => "Read organisation membership",
        _ => "A scope the sandbox does not describe",
    }
}

/// The consent page: "Authorize <app>" with the scopes, for `login`.
pub(crate) fn consent(
    app_name: &str,
    login: &str,
    scopes: &[&str],
    request_id: &str,
    redirect_host: &str,
) -> String {
    let list: String = if scopes.is_empty() {
        "<li>Public information only (no scopes requested)</li>".to_owned()
    } else {
        scopes
            .iter()
            .map(|s| {
                format!(
                    "<li><code>{}</code>: {}</li>",
                    escape(s),
                    escape(describe(s))
                )
            })
            .collect()
    };
    let body = format!(
        r#"<h1>Authorize {app}</h1>
<p><strong>{app}</strong> wants to access your github0 account <strong>{login}</strong>.</p>
<ul class="scopes">{list}</ul>
<p>Authorizing will redirect to <strong>{host}</strong>.</p>
<form method="post" action="/login/oauth/authorize">
<input type="hidden" name="authorize_request" value="{request_id}">
<button type="submit" name="decision" value="allow">Authorize {app}</button>
<button type="submit" name="decision" value="deny" class="secondary">Cancel</button>
</form>"#,
        app = escape(app_name),
        login = escape(login),
        host = escape(redirect_host),
        request_id = escape(request_id),
    );
    layout(&format!("Authorize {app_name}"), &body)
}

async fn get_home() -> Html<String> {
    Html(layout(
        "Home",
        "<h1>github0</h1><p>An offline GitHub sandbox: GitHub's OAuth web flow at \
         <code>/login/oauth/authorize</code> and <code>/login/oauth/access_token</code>, \
         a REST subset under <code>/api/v3</code>, and a remote MCP endpoint at <code>/mcp</code>.</p>\
         <p>Seeded repositories: <code>acme/widgets</code>, <code>acme/gadgets</code>.</p>",
    ))
}

/// A read-only view of a pull request and its conversation (what a comment's `html_url` shows).
async fn get_pull_page(
    State(github0): State<Github0>,
    Path((owner, repo, number)): Path<(String, String, String)>,
) -> Response {
    let not_found = || {
        error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such pull request in the sandbox.",
        )
    };
    let Ok(number) = number.parse::<i64>() else {
        return not_found();
    };
    let (repo_row, pull) = match github0.get_pull(&owner, &repo, number).await {
        Ok(found) => found,
        Err(crate::service::ServiceError::NotFound) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "github0 store failed");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The sandbox could not answer just now.",
            );
        }
    };
    let comments = github0
        .list_comments(&owner, &repo, number, 100, 1)
        .await
        .map(|(_, c)| c)
        .unwrap_or_default();
    let list: String = comments
        .iter()
        .map(|c| {
            format!(
                "<li id=\"issuecomment-{}\"><strong>{}</strong> commented {}:<p>{}</p></li>",
                c.id,
                escape(&c.author.login),
                escape(&crate::api::json::timestamp(c.created_at)),
                escape(&c.body)
            )
        })
        .collect();
    let body = format!(
        "<h1>{} #{}</h1><p><code>{}/{}</code> · {} · opened by <strong>{}</strong></p><p>{}</p><h2>Conversation ({})</h2><ul>{}</ul>",
        escape(&pull.title),
        pull.number,
        escape(&repo_row.owner.login),
        escape(&repo_row.name),
        escape(&pull.state),
        escape(&pull.author.login),
        escape(&pull.body),
        comments.len(),
        list
    );
    Html(layout(&pull.title, &body)).into_response()
}
