//! The pages of brokered consent: the consent question, the outcome pages and Connected apps.
//! Every interpolated value is escaped; no page ever shows a token, code, state or secret.

use httpserve::html::escape;

use crate::html::page;

/// What the consent page asks about.
pub struct ConsentQuestion<'a> {
    /// The agent asking (its name or client id).
    pub agent: &'a str,
    /// The app's display name.
    pub app: &'a str,
    /// `application` or `mcp_server`.
    pub kind: &'a str,
    /// Scopes, space-separated.
    pub scope: &'a str,
    /// The person signed in.
    pub person: &'a str,
    /// Form action (the interaction page itself).
    pub action: &'a str,
    /// Anti-CSRF token.
    pub csrf: &'a str,
}

/// "Let <agent> use <app> for you?", with Approve and Deny.
pub fn consent(q: &ConsentQuestion<'_>) -> String {
    let scopes: String = q
        .scope
        .split_whitespace()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let what = if q.kind == "mcp_server" {
        "MCP server"
    } else {
        "app"
    };
    page(
        "Connect an app — idp0",
        &format!(
            "<h1>Let {agent} use {app} for you?</h1>\
             <p>You are signed in as <strong>{person}</strong>. The agent <strong>{agent}</strong> \
             wants to reach the {what} <strong>{app}</strong> on your behalf, with these \
             permissions:</p><ul>{scopes}</ul>\
             <p>If you approve, you will sign in at {app} and allow it there. idp0 keeps the \
             resulting access in its vault; the agent never sees your {app} password. You can \
             remove this later on the <a href=\"/connected-apps\">Connected apps</a> page.</p>\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button> \
             <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
            agent = escape(q.agent),
            app = escape(q.app),
            person = escape(q.person),
            action = escape(q.action),
            csrf = escape(q.csrf),
        ),
    )
}

/// After the tokens are in the vault. `close.js` closes the window when it is a popup (the
/// page's CSP allows only idp0's own script).
pub fn connected(app: &str, agent: &str) -> String {
    page(
        "Connected — idp0",
        &format!(
            "<h1>Connected — you can close this window</h1><p><strong>{app}</strong> is \
             connected. The agent <strong>{agent}</strong> can now use it for you; go back to \
             it and it carries on.</p>\
             <script src=\"/oauth2/v1/sts/close.js\"></script>",
            app = escape(app),
            agent = escape(agent),
        ),
    )
}

/// One consent on the Connected apps page.
pub struct ConnectedApp<'a> {
    /// App name.
    pub app: &'a str,
    /// Agent.
    pub agent: &'a str,
    /// Resource indicator (the form's key).
    pub resource: &'a str,
    /// Scopes.
    pub scope: &'a str,
    /// When consented (UTC text).
    pub granted: String,
    /// When last used (UTC text), or "never".
    pub last_used: String,
}

/// The person's consents with a Remove button each.
pub fn connected_apps(person: &str, apps: &[ConnectedApp<'_>], csrf: &str, notice: &str) -> String {
    let rows: String = apps
        .iter()
        .map(|a| {
            format!(
                "<tr><td><strong>{app}</strong><br><small>{resource}</small></td><td>{agent}</td>\
                 <td><code>{scope}</code></td><td>{granted}</td><td>{last_used}</td><td>\
                 <form method=\"post\" action=\"/connected-apps/remove\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <input type=\"hidden\" name=\"agent\" value=\"{agent}\">\
                 <input type=\"hidden\" name=\"resource\" value=\"{resource}\">\
                 <button type=\"submit\">Remove</button></form></td></tr>",
                app = escape(a.app),
                resource = escape(a.resource),
                agent = escape(a.agent),
                scope = escape(a.scope),
                granted = escape(&a.granted),
                last_used = escape(&a.last_used),
                csrf = escape(csrf),
            )
        })
        .collect();
    let table = if apps.is_empty() {
        "<p>No app is connected. When an agent asks to use an app for you, it appears here.</p>"
            .to_owned()
    } else {
        format!(
            "<table><tr><th>App</th><th>Agent</th><th>Permissions</th><th>Connected</th>\
             <th>Last used</th><th></th></tr>{rows}</table>"
        )
    };
    let notice = if notice.is_empty() {
        String::new()
    } else {
        format!("<p role=\"status\">{}</p>", escape(notice))
    };
    page(
        "Connected apps — idp0",
        &format!(
            "<h1>Connected apps</h1><p>Signed in as <strong>{}</strong>. These apps can be \
             used by agents on your behalf. Removing one deletes idp0's copy of the access and \
             asks the app to revoke it.</p>{notice}{table}",
            escape(person)
        ),
    )
}

/// `2026-12-05 22:10 UTC` for a Unix time.
pub fn utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_800_000_000), "2027-01-15 08:00 UTC");
    }

    #[test]
    fn pages_escape_what_they_show() {
        let html = consent(&ConsentQuestion {
            agent: "<script>",
            app: "\"App\"",
            kind: "application",
            scope: "repo <b>",
            person: "alice",
            action: "/x",
            csrf: "t",
        });
        assert!(!html.contains("<script>") && !html.contains("<b>"));
    }
}
