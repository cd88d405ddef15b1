//! What the two web apps (todo0's and agent0) resolve alike: the OIDC client registration from
//! the sample's `OKTA_*` settings, and the cookie key from `SESSION_SECRET` or a key file
//! generated once in the data directory (never a built-in default).

use std::path::Path;

use anyhow::{Context, bail};
use secrecy::SecretString;
use weblogin::{OidcSettings, SessionKey};

use crate::settings::Settings;

/// The login flags every web app takes.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct LoginArgs {
    /// The identity provider: a bare domain (https) or an issuer URL. Env: OKTA_DOMAIN.
    #[arg(long)]
    pub(crate) okta_domain: Option<String>,
    /// The app's client id at the identity provider. Env: OKTA_CLIENT_ID.
    #[arg(long)]
    pub(crate) client_id: Option<String>,
    /// The app's registered callback URL (ending in /callback). Env: OKTA_REDIRECT_URI.
    #[arg(long)]
    pub(crate) redirect_uri: Option<String>,
}

/// The client registration; the client secret comes only from the environment or a file.
pub(crate) fn oidc_settings(settings: &Settings, args: &LoginArgs) -> anyhow::Result<OidcSettings> {
    // The sample's agent0 names the IdP by OKTA_DOMAIN, its todo0 app by OKTA_ISSUER.
    let domain = settings.require_any(
        args.okta_domain.as_deref(),
        "--okta-domain",
        &["OKTA_DOMAIN", "OKTA_ISSUER"],
    )?;
    let client_id = settings.require(args.client_id.as_deref(), "--client-id", "OKTA_CLIENT_ID")?;
    let client_secret = settings.get(None, "OKTA_CLIENT_SECRET").context(
        "missing OKTA_CLIENT_SECRET (in the environment or an --env-file; it is never a flag)",
    )?;
    let redirect_uri = settings.require(
        args.redirect_uri.as_deref(),
        "--redirect-uri",
        "OKTA_REDIRECT_URI",
    )?;
    let redirect = url::Url::parse(&redirect_uri).with_context(|| {
        format!(
            "OKTA_REDIRECT_URI {redirect_uri:?} is not a URL (e.g. http://localhost:3000/callback)"
        )
    })?;
    if redirect.path() != "/callback" {
        bail!(
            "OKTA_REDIRECT_URI {redirect_uri:?} must end in /callback, the route this app serves"
        );
    }
    Ok(OidcSettings {
        issuer: devstack::issuer_from_okta_domain(&domain),
        client_id,
        client_secret: SecretString::from(client_secret),
        post_logout_redirect_uri: redirect.join("/")?.to_string(),
        redirect_uri,
    })
}

/// `SESSION_SECRET`, else `<data_dir>/<key_file>` (generated once, 0600).
pub(crate) fn session_key(
    settings: &Settings,
    data_dir: &Path,
    key_file: &str,
) -> anyhow::Result<SessionKey> {
    if let Some(secret) = settings.get(None, "SESSION_SECRET") {
        return Ok(SessionKey::from_secret(&SecretString::from(secret))?);
    }
    let path = data_dir.join(key_file);
    if !path.exists() {
        idp0::fsutil::create_private_dir(data_dir)?;
        let secret = SessionKey::generate_secret();
        idp0::fsutil::write_private(&path, secrecy::ExposeSecret::expose_secret(&secret))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    SessionKey::from_secret(&SecretString::from(text)).with_context(|| {
        format!(
            "{} holds no usable key; delete it to make a new one",
            path.display()
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_session_key_is_generated_once_private_and_reused() {
        if std::env::var_os("SESSION_SECRET").is_some() {
            return; // The environment decides; nothing to generate.
        }
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load(&[], dir.path(), "none.env").unwrap();
        session_key(&settings, dir.path(), "app.key").unwrap();
        let path = dir.path().join("app.key");
        let first = std::fs::read_to_string(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        session_key(&settings, dir.path(), "app.key").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first, "reused");

        std::fs::write(&path, "too short").unwrap();
        let error = session_key(&settings, dir.path(), "app.key").unwrap_err();
        assert!(format!("{error:#}").contains("delete it to make a new one"));
    }
}
