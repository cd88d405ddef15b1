//! `--tls`, `--tls-cert`/`--tls-key` and `--ca-file`: HTTPS for the services, and the certificate
//! authorities every client of this process trusts (`protocol::trust`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use httpserve::tls::{LocalCa, Outcome};
use protocol::Clock;

/// How a service serves: plain HTTP (the default: browsers trust `http://localhost`), or HTTPS
/// with the data directory's local CA or a given certificate.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct ServeTls {
    /// Serve HTTPS with a certificate for localhost from a local CA kept in the data directory
    /// (`<data-dir>/tls/ca.pem`; generated on first use). Env: SECURE_AGENT_TLS=1.
    #[arg(long, env = "SECURE_AGENT_TLS", value_parser = clap::builder::FalseyValueParser::new())]
    pub(crate) tls: bool,
    /// Serve HTTPS with this PEM certificate chain instead (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
}

impl ServeTls {
    /// Whether the service speaks HTTPS.
    pub(crate) fn enabled(&self) -> bool {
        self.tls || self.tls_cert.is_some()
    }

    /// `https` or `http`.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.enabled() { "https" } else { "http" }
    }

    /// The same choice as arguments, for `up` to hand each service.
    pub(crate) fn to_args(&self) -> Vec<String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => vec![
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
            ],
            _ if self.tls => vec!["--tls".into()],
            _ => vec![],
        }
    }

    /// Makes sure the local CA and certificate exist (with `--tls`), says what was done, and
    /// returns the CA file (None with a given certificate or without TLS).
    pub(crate) fn prepare(&self, data_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
        if !self.tls || self.tls_cert.is_some() {
            return Ok(None);
        }
        let now = u64::try_from(protocol::SystemClock.now()).unwrap_or(0);
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(now);
        let (ca, outcome) = LocalCa::ensure(data_dir, now)
            .context("preparing the local certificate authority for --tls")?;
        match outcome {
            Outcome::Reused => {}
            Outcome::Created => println!(
                "generated a local certificate authority for https: {}",
                ca.ca_cert.display()
            ),
            Outcome::RenewedCertificate => {
                println!("renewed the https certificate for localhost (same local CA)")
            }
            Outcome::ReplacedCa => println!(
                "the local certificate authority had expired or was unreadable: generated a new \
                 one ({}); tools that trusted the old one must be told again",
                ca.ca_cert.display()
            ),
        }
        // This process's own clients (agent0 → idp0, todo0 → idp0) trust it from now on.
        trust(&ca.ca_cert)?;
        Ok(Some(ca.ca_cert))
    }

    /// `tcp`, served as this setting says.
    pub(crate) fn listener(
        &self,
        data_dir: &Path,
        tcp: tokio::net::TcpListener,
    ) -> anyhow::Result<httpserve::Listener> {
        let listener = httpserve::Listener::from(tcp);
        let (cert, key) = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            _ if self.tls => {
                self.prepare(data_dir)?;
                let ca = LocalCa::at(data_dir);
                (ca.cert, ca.key)
            }
            _ => return Ok(listener),
        };
        Ok(listener.with_tls(httpserve::tls::server_config(&cert, &key)?))
    }
}

/// Refuses a served-over-https service whose public URL says `http://`: every redirect would
/// leave the browser on a port that speaks TLS. (The other way round is a TLS-terminating proxy
/// in front of a plain-http service, which is fine.)
pub(crate) fn check_public_url(
    tls: &ServeTls,
    public: &url::Url,
    setting: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !(tls.enabled() && public.scheme() == "http"),
        "this service serves https (--tls) but {setting} is {public}: use https:// there (the \
         env files written by `secure-agent idp --tls` or `up --tls` already do)"
    );
    Ok(())
}

/// Trusts the certificates in `path` in every HTTP client this process builds from now on.
pub(crate) fn trust(path: &Path) -> anyhow::Result<()> {
    protocol::trust::trust_pem_file(path)?;
    Ok(())
}

/// Called once at start, before any client is built: trusts `--ca-file` and, when the data
/// directory has one, the local CA of `--tls` — so `secure-agent login`, `mcp`, `token` and
/// every service reach an `up --tls` stack with no flag.
pub(crate) fn trust_at_start(
    ca_file: Option<&Path>,
    data_dir: Option<&Path>,
) -> anyhow::Result<()> {
    if let Some(file) = ca_file {
        trust(file).context("--ca-file")?;
    }
    if let Some(dir) = data_dir {
        let local = LocalCa::at(dir).ca_cert;
        // An unreadable local CA must not stop every command: `--tls` replaces it at its next
        // start, and until then https to this stack fails with a certificate error that says so.
        if local.exists()
            && let Err(e) = trust(&local)
        {
            tracing::warn!(error = %format!("{e:#}"), "not trusting the data directory's local CA");
        }
    }
    Ok(())
}

/// The lines that make other programs trust the local CA, and how to trust it in a browser.
pub(crate) fn trust_hint(ca: &Path) -> String {
    let ca = std::fs::canonicalize(ca).unwrap_or_else(|_| ca.to_owned());
    let ca = ca.display();
    format!(
        "  https: certificates from the local CA {ca}\n    \
         other tools: export NODE_EXTRA_CA_CERTS={ca} REQUESTS_CA_BUNDLE={ca} SSL_CERT_FILE={ca}\n    \
         browsers: import {ca} as a trusted authority (Chromium: Settings › Privacy and security › \
         Security › Manage certificates › Authorities; Firefox: Settings › Certificates › View \
         Certificates › Authorities › Import)"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn local() -> ServeTls {
        ServeTls {
            tls: true,
            ..ServeTls::default()
        }
    }

    #[test]
    fn up_hands_each_service_the_same_choice() {
        assert!(ServeTls::default().to_args().is_empty());
        assert_eq!(local().to_args(), ["--tls"]);
        let own = ServeTls {
            tls: false,
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
        };
        assert_eq!(own.to_args(), ["--tls-cert", "c.pem", "--tls-key", "k.pem"]);
        assert_eq!(own.scheme(), "https");
        assert_eq!(ServeTls::default().scheme(), "http");
    }

    #[test]
    fn an_https_service_refuses_an_http_public_url_but_a_proxy_setup_is_fine() {
        let http = url::Url::parse("http://localhost:3000/").unwrap();
        let https = url::Url::parse("https://agent.example.com/").unwrap();
        let error = check_public_url(&local(), &http, "OKTA_REDIRECT_URI")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("OKTA_REDIRECT_URI") && error.contains("https://"),
            "{error}"
        );
        check_public_url(&local(), &https, "OKTA_REDIRECT_URI").unwrap();
        // Plain http behind a TLS-terminating proxy with the public https URL.
        check_public_url(&ServeTls::default(), &https, "OKTA_REDIRECT_URI").unwrap();
    }

    #[test]
    fn an_unreadable_local_ca_is_skipped_so_tls_can_replace_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tls")).unwrap();
        std::fs::write(dir.path().join("tls/ca.pem"), "damaged").unwrap();
        trust_at_start(None, Some(dir.path())).unwrap();
        let ca = local().prepare(dir.path()).unwrap().unwrap();
        assert!(
            std::fs::read_to_string(ca)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
    }

    #[test]
    fn a_ca_file_that_is_not_pem_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(&bad, "hello").unwrap();
        let error = trust_at_start(Some(&bad), None).unwrap_err();
        assert!(format!("{error:#}").contains("--ca-file"), "{error:#}");
        let missing = trust_at_start(Some(&dir.path().join("nope.pem")), None).unwrap_err();
        assert!(format!("{missing:#}").contains("nope.pem"), "{missing:#}");
    }
}
