//! `secure-agent login --username U --password-stdin`: idp0's login form driven over HTTP, for
//! scripts and tests. The authorization URL is opened, the form's hidden fields (the original
//! request and its anti-CSRF token, [`devstack::login_form`]) are sent back with the credentials,
//! and the redirect is followed to this command's own loopback listener — never anywhere else,
//! so the code cannot leave the machine. Only idp0's form is understood; other IdPs need the
//! browser.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

/// Logs `username` in at `authorize_url` and delivers the code to `redirect_uri`.
pub(super) async fn log_in(
    authorize_url: &str,
    username: &str,
    password: &SecretString,
    redirect_uri: &str,
) -> anyhow::Result<()> {
    let http = protocol::trust::client_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let page = http
        .get(authorize_url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("opening the login page: {}", e.without_url()))?;
    let response = if page.status().is_redirection() {
        page
    } else {
        let status = page.status();
        let page_url = page.url().to_string();
        let html = page.text().await.context("reading the login page")?;
        if status != StatusCode::OK {
            bail!("the identity provider refused the login request (HTTP {status})");
        }
        let action = devstack::login_form::form_action(&page_url, &html).context(
            "the identity provider showed no login form this command understands \
             (--username works with idp0; use the browser for other IdPs)",
        )?;
        let mut fields = devstack::login_form::hidden_fields(&html);
        fields.push(("username".into(), username.to_owned()));
        fields.push(("password".into(), password.expose_secret().to_owned()));
        http.post(action)
            .form(&fields)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("submitting the login form: {}", e.without_url()))?
    };
    let status = response.status();
    if !status.is_redirection() {
        let retry = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(|s| format!("; try again in {s} s"))
            .unwrap_or_default();
        match status {
            StatusCode::UNAUTHORIZED => {
                bail!("the identity provider did not accept the username or password")
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                bail!("the identity provider is not taking logins right now{retry}")
            }
            _ => bail!("the identity provider refused the login (HTTP {status})"),
        }
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .context("the identity provider's redirect has no Location")?;
    let location = response.url().join(location)?;
    let ours = location.as_str().starts_with(&format!("{redirect_uri}?"));
    if !ours {
        bail!(
            "the identity provider redirected to {} instead of this command's loopback address",
            location.origin().ascii_serialization()
        );
    }
    http.get(location).send().await.map_err(|e| {
        anyhow::anyhow!(
            "delivering the code to the loopback listener: {}",
            e.without_url()
        )
    })?;
    Ok(())
}
