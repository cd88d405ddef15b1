//! The few HTML pages idp0 serves: the login form (fields `username` and `password`), the logout
//! confirmation, error and signed-out pages. Every interpolated value is escaped
//! ([`httpserve::html::escape`], the workspace's one HTML escape).

use httpserve::html::escape;

/// `Content-Security-Policy` of every page: no scripts at all, no framing.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// The CSP of the brokered-consent callback page: as [`CSP`], plus idp0's own scripts (its
/// `close.js`, which closes a popup).
pub const CSP_SELF_SCRIPT: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
     frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#1d2330}\
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box;font-size:1rem}\
button{margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem}.error{color:#a3001b}.dev{background:#fff6d6;border:1px solid #e0c060;padding:.6rem;margin:1rem 0;font-size:.9rem}\
code{font-size:.95rem}@media(prefers-color-scheme:dark){body{background:#14171c;color:#e6e6e6}.dev{background:#3a3210;border-color:#8a7420}}";

pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

/// What the login page shows.
pub struct LoginPage<'a> {
    /// The application asking.
    pub client_name: &'a str,
    /// The authorization request to resume, as a query string.
    pub authorize_query: &'a str,
    /// The authorization server id (`""` for org).
    pub server: &'a str,
    /// Anti-CSRF token (also in a cookie).
    pub csrf: &'a str,
    /// A message after a failed attempt.
    pub error: Option<&'a str>,
    /// The username to pre-fill.
    pub username: &'a str,
    /// Demo credentials (development configuration only).
    pub demo_credentials: &'a [(String, String)],
    /// An idp0 page to return to after signing in (instead of an authorization request), or "".
    pub return_to: &'a str,
}

/// The login form.
pub fn login(p: &LoginPage<'_>) -> String {
    let error = p
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let demo = if p.demo_credentials.is_empty() {
        String::new()
    } else {
        let rows: String = p
            .demo_credentials
            .iter()
            .map(|(u, pw)| {
                format!(
                    "<li><code>{}</code> / <code>{}</code></li>",
                    escape(u),
                    escape(pw)
                )
            })
            .collect();
        format!(
            "<div class=\"dev\"><strong>Development configuration</strong> — generated demo users \
             (never use this configuration in production):<ul>{rows}</ul></div>"
        )
    };
    page(
        "Sign in — idp0",
        &format!(
            "<h1>Sign in</h1><p>to continue to <strong>{client}</strong></p>{error}{demo}\
             <form method=\"post\" action=\"/login\">\
             <input type=\"hidden\" name=\"authorize_query\" value=\"{query}\">\
             <input type=\"hidden\" name=\"server\" value=\"{server}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"return_to\" value=\"{return_to}\">\
             <label for=\"username\">Username</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus value=\"{username}\">\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <button type=\"submit\">Sign in</button></form>",
            client = escape(p.client_name),
            query = escape(p.authorize_query),
            server = escape(p.server),
            csrf = escape(p.csrf),
            username = escape(p.username),
            return_to = escape(p.return_to),
        ),
    )
}

/// An error shown to the person (when redirecting back would be unsafe).
pub fn error(title: &str, message: &str) -> String {
    page(
        title,
        &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(message)),
    )
}

/// The logout confirmation (RP-Initiated Logout 1.0 §6): a POST form back to the logout
/// endpoint with the anti-CSRF token and the already validated redirect.
pub fn confirm_logout(action: &str, hidden: &[(&str, &str)]) -> String {
    let fields: String = hidden
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect();
    page(
        "Sign out? — idp0",
        &format!(
            "<h1>Sign out of idp0?</h1><p>An application asked to end your idp0 session. \
             Sign out only if you meant to.</p>\
             <form method=\"post\" action=\"{action}\">{fields}\
             <button type=\"submit\">Sign out</button></form>",
            action = escape(action),
        ),
    )
}

/// After logout without a registered redirect.
pub fn signed_out() -> String {
    page(
        "Signed out",
        "<h1>Signed out</h1><p>You have been signed out of idp0.</p>",
    )
}

/// The landing page.
pub fn home(issuer: &str, servers: &[(String, String)]) -> String {
    let items: String = servers
        .iter()
        .map(|(id, iss)| {
            format!(
                "<li>{} — <a href=\"{iss}/.well-known/oauth-authorization-server\">{iss}</a></li>",
                escape(id),
                iss = escape(iss)
            )
        })
        .collect();
    page(
        "idp0",
        &format!(
            "<h1>idp0</h1><p>Embedded identity provider. Org authorization server: \
             <a href=\"{iss}/.well-known/openid-configuration\">{iss}</a></p>\
             <p><a href=\"/connected-apps\">Connected apps</a>: the third-party apps you let agents use.</p><p>Custom authorization servers:</p><ul>{items}</ul>",
            iss = escape(issuer)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_page_escapes_everything_interpolated() {
        let html = login(&LoginPage {
            client_name: "<script>x</script>",
            authorize_query: "a=\"b\"&c",
            server: "",
            csrf: "t",
            error: Some("<b>"),
            username: "\"><img>",
            demo_credentials: &[],
            return_to: "",
        });
        assert!(!html.contains("<script>x"));
        assert!(!html.contains("\"><img>"));
        assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
    }
}
