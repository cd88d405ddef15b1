//! HTTPS for the local stack (`--tls`): a certificate authority generated once into the data
//! directory, a server certificate for `localhost`, `127.0.0.1` and `::1` signed by it, and the
//! rustls server configuration every service serves with.
//!
//! Layout under `<data-dir>/tls/` (directory 0700): `ca.pem` (the CA certificate: what other
//! tools are told to trust), `ca-key.pem` (0600), `localhost.pem` (the server certificate
//! followed by the CA's, a full chain) and `localhost-key.pem` (0600).
//!
//! At every start the server certificate is checked the way a client would check it — chain to
//! this CA, each name, validity — at a moment [`RENEW_BEFORE`] from now; if that fails (expired,
//! about to expire, wrong names, another CA) it is issued again. The CA is kept as long as it is
//! valid, so what a person told their browser or tools to trust stays trusted.
//!
//! The CA is name-constrained (RFC 5280 §4.2.1.10) to `localhost`, `127.0.0.0/8` and `::1`: a
//! person is told to trust it in their browser and every client of the project trusts it, so
//! whoever obtains its key must not be able to vouch for any other site.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::fsutil;

/// The folder under the data directory.
pub const TLS_DIR: &str = "tls";
/// The CA certificate, relative to [`TLS_DIR`].
pub const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
const CERT_FILE: &str = "localhost.pem";
const KEY_FILE: &str = "localhost-key.pem";

/// The names the server certificate covers.
pub const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// A server certificate's lifetime: browsers refuse longer ones (398 days at most).
pub const SERVER_CERT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// The CA's lifetime.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// A server certificate that will not verify this long from now is issued again at start.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Backdating, so that a clock a little behind still accepts a fresh certificate.
const BACKDATE: Duration = Duration::from_secs(3600);

/// What [`LocalCa::ensure`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new CA and server certificate were generated.
    Created,
    /// Both were there and valid.
    Reused,
    /// The CA was kept; the server certificate was issued again.
    RenewedCertificate,
    /// The CA was missing its key, unreadable or expired: a new one was generated (tools that
    /// trusted the old one must be told again).
    ReplacedCa,
}

/// The files of the local CA and the server certificate.
#[derive(Debug, Clone)]
pub struct LocalCa {
    /// `<data-dir>/tls/ca.pem`.
    pub ca_cert: PathBuf,
    /// The server certificate chain.
    pub cert: PathBuf,
    /// The server certificate's private key.
    pub key: PathBuf,
}

impl LocalCa {
    /// The paths under `data_dir` (nothing is read or written).
    pub fn at(data_dir: &Path) -> Self {
        let dir = data_dir.join(TLS_DIR);
        Self {
            ca_cert: dir.join(CA_CERT_FILE),
            cert: dir.join(CERT_FILE),
            key: dir.join(KEY_FILE),
        }
    }

    fn ca_key(&self) -> PathBuf {
        self.ca_cert.with_file_name(CA_KEY_FILE)
    }

    /// Makes sure a usable CA and server certificate exist under `data_dir` at `now`.
    pub fn ensure(data_dir: &Path, now: SystemTime) -> anyhow::Result<(Self, Outcome)> {
        let ca = Self::at(data_dir);
        let dir = data_dir.join(TLS_DIR);
        fsutil::create_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Services started one by one may get here at the same moment: one at a time, so no two
        // CAs and no half-written certificate and key.
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))
            .with_context(|| format!("locking {}", dir.display()))?;
        lock.lock()
            .with_context(|| format!("locking {}", dir.display()))?;
        let had_ca = ca.ca_cert.exists();
        // A CA is kept while it outlives any certificate it would issue now (trust anchors'
        // own validity is not checked by webpki, so it is checked here).
        let ca_usable = had_ca
            && ca
                .ca_valid_until()
                .is_ok_and(|end| end > now + SERVER_CERT_LIFETIME + RENEW_BEFORE);
        if ca_usable
            && ca.server_cert_verifies(now + RENEW_BEFORE).is_ok()
            && server_config(&ca.cert, &ca.key).is_ok()
        {
            return Ok((ca, Outcome::Reused));
        }
        if ca_usable && ca.issue_server_cert(now).is_ok() && ca.server_cert_verifies(now).is_ok() {
            return Ok((ca, Outcome::RenewedCertificate));
        }
        ca.create_ca(now)?;
        ca.issue_server_cert(now)?;
        ca.server_cert_verifies(now)
            .context("the certificate just issued does not verify")?;
        Ok((
            ca,
            if had_ca {
                Outcome::ReplacedCa
            } else {
                Outcome::Created
            },
        ))
    }

    fn create_ca(&self, now: SystemTime) -> anyhow::Result<()> {
        let key = KeyPair::generate().context("generating the CA key")?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "secure-agent");
        name.push(
            DnType::CommonName,
            format!(
                "secure-agent local development CA (created {})",
                time::OffsetDateTime::from(now).date()
            ),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![
                GeneralSubtree::DnsName("localhost".into()),
                GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([127, 0, 0, 0], 8)),
                GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(
                    std::net::Ipv6Addr::LOCALHOST.octets(),
                    128,
                )),
            ],
            excluded_subtrees: vec![],
        });
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + CA_LIFETIME).into();
        let cert = params.self_signed(&key).context("signing the CA")?;
        fsutil::write_private(&self.ca_key(), &key.serialize_pem())
            .with_context(|| format!("writing {}", self.ca_key().display()))?;
        write_public(&self.ca_cert, &cert.pem())?;
        Ok(())
    }

    fn issue_server_cert(&self, now: SystemTime) -> anyhow::Result<()> {
        let ca_key_pem = std::fs::read_to_string(self.ca_key())
            .with_context(|| format!("reading {}", self.ca_key().display()))?;
        let ca_pem = std::fs::read_to_string(&self.ca_cert)
            .with_context(|| format!("reading {}", self.ca_cert.display()))?;
        let ca_key = KeyPair::from_pem(&ca_key_pem).context("reading the CA key")?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("reading the CA")?;
        let key = KeyPair::generate().context("generating the server key")?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + SERVER_CERT_LIFETIME).into();
        let cert = params
            .signed_by(&key, &issuer)
            .context("signing the server certificate")?;
        fsutil::write_private(&self.key, &key.serialize_pem())
            .with_context(|| format!("writing {}", self.key.display()))?;
        write_public(&self.cert, &format!("{}{ca_pem}", cert.pem()))?;
        Ok(())
    }

    /// The end of the CA certificate's validity.
    fn ca_valid_until(&self) -> anyhow::Result<SystemTime> {
        let der = read_certs(&self.ca_cert)?.remove(0);
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| anyhow::anyhow!("{} is not a certificate: {e}", self.ca_cert.display()))?;
        let end = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
        anyhow::ensure!(self.ca_key().exists(), "the CA key is missing");
        anyhow::ensure!(
            matches!(cert.name_constraints(), Ok(Some(_))),
            "the CA is not limited to this machine's names"
        );
        Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(end))
    }

    /// Checks the server certificate as a client trusting only this CA would, for every name in
    /// [`SERVER_NAMES`], at `at`.
    fn server_cert_verifies(&self, at: SystemTime) -> anyhow::Result<()> {
        let roots = read_certs(&self.ca_cert)?;
        let chain = read_certs(&self.cert)?;
        let (leaf, intermediates) = chain.split_first().context("no server certificate")?;
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store.add(root)?;
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(store),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .build()?;
        let at = UnixTime::since_unix_epoch(at.duration_since(SystemTime::UNIX_EPOCH)?);
        for name in SERVER_NAMES {
            rustls::client::danger::ServerCertVerifier::verify_server_cert(
                verifier.as_ref(),
                leaf,
                // The chain's tail is the CA itself: a trust anchor, not an intermediate.
                &intermediates[..intermediates.len().saturating_sub(1)],
                &ServerName::try_from(name)?,
                &[],
                at,
            )?;
        }
        Ok(())
    }
}

fn write_public(path: &Path, contents: &str) -> anyhow::Result<()> {
    fsutil::write_atomically(
        path,
        &path.with_extension("tmp"),
        contents.as_bytes(),
        0o644,
    )
    .with_context(|| format!("writing {}", path.display()))
}

/// Every certificate in a PEM file.
pub fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}

/// A rustls server configuration (HTTP/1.1 over TLS 1.2/1.3) from a PEM certificate chain and
/// its PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = read_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("the certificate and key do not belong together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
// Certificates are checked by real TLS clients against the real time.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn a_new_ca_is_private_and_its_certificate_has_the_local_names_for_at_most_a_year() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let (ca, outcome) = LocalCa::ensure(dir.path(), now).unwrap();
        assert_eq!(outcome, Outcome::Created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&ca.ca_key()), 0o600);
            assert_eq!(mode(&ca.key), 0o600);
            assert_eq!(mode(&dir.path().join(TLS_DIR)), 0o700);
        }
        ca.server_cert_verifies(now).unwrap();
        // Valid for a year from now, not a day more.
        ca.server_cert_verifies(now + SERVER_CERT_LIFETIME - DAY)
            .unwrap();
        assert!(
            ca.server_cert_verifies(now + SERVER_CERT_LIFETIME + DAY)
                .is_err()
        );
        // The names, read from the certificate itself.
        let chain = read_certs(&ca.cert).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
        let sans = parsed.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = sans
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "DNSName(localhost)",
                "IPAddress(7f:00:00:01)",
                "IPAddress(00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01)"
            ]
        );
        server_config(&ca.cert, &ca.key).unwrap();
    }

    #[test]
    fn a_restart_reuses_both_and_an_expiring_certificate_is_renewed_under_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let (ca, _) = LocalCa::ensure(dir.path(), now).unwrap();
        let ca_pem = std::fs::read(&ca.ca_cert).unwrap();
        let cert_pem = std::fs::read(&ca.cert).unwrap();
        let (_, outcome) = LocalCa::ensure(dir.path(), now + DAY).unwrap();
        assert_eq!(outcome, Outcome::Reused);
        assert_eq!(std::fs::read(&ca.cert).unwrap(), cert_pem);
        // Eleven months later: inside the renewal window.
        let later = now + SERVER_CERT_LIFETIME - 10 * DAY;
        let (_, outcome) = LocalCa::ensure(dir.path(), later).unwrap();
        assert_eq!(outcome, Outcome::RenewedCertificate);
        assert_ne!(std::fs::read(&ca.cert).unwrap(), cert_pem);
        assert_eq!(
            std::fs::read(&ca.ca_cert).unwrap(),
            ca_pem,
            "the CA is kept"
        );
        ca.server_cert_verifies(later + 300 * DAY).unwrap();
    }

    #[test]
    fn an_expired_certificate_is_renewed_and_an_expired_ca_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let past = SystemTime::now() - 2 * SERVER_CERT_LIFETIME;
        let (ca, _) = LocalCa::ensure(dir.path(), past).unwrap();
        let ca_pem = std::fs::read(&ca.ca_cert).unwrap();
        let now = SystemTime::now();
        assert!(ca.server_cert_verifies(now).is_err(), "expired");
        let (_, outcome) = LocalCa::ensure(dir.path(), now).unwrap();
        assert_eq!(outcome, Outcome::RenewedCertificate);
        assert_eq!(std::fs::read(&ca.ca_cert).unwrap(), ca_pem);
        ca.server_cert_verifies(now).unwrap();
        // Once the CA would not outlive a new certificate, the CA is replaced.
        let far = past + CA_LIFETIME - SERVER_CERT_LIFETIME;
        let (_, outcome) = LocalCa::ensure(dir.path(), far).unwrap();
        assert_eq!(outcome, Outcome::ReplacedCa);
        assert_ne!(std::fs::read(&ca.ca_cert).unwrap(), ca_pem);
        ca.server_cert_verifies(far).unwrap();
    }

    #[test]
    fn the_ca_cannot_vouch_for_any_other_name_and_a_mismatched_key_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let (ca, _) = LocalCa::ensure(dir.path(), now).unwrap();
        // A certificate for another site, signed with the CA's own key, is refused by a client
        // that trusts the CA.
        let ca_key = KeyPair::from_pem(&std::fs::read_to_string(ca.ca_key()).unwrap()).unwrap();
        let issuer =
            Issuer::from_ca_cert_pem(&std::fs::read_to_string(&ca.ca_cert).unwrap(), ca_key)
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["api.anthropic.com".into()]).unwrap();
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + DAY).into();
        let forged = params.signed_by(&key, &issuer).unwrap();
        let mut store = rustls::RootCertStore::empty();
        store
            .add(read_certs(&ca.ca_cert).unwrap().remove(0))
            .unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(store),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .build()
        .unwrap();
        let at = UnixTime::since_unix_epoch(now.duration_since(SystemTime::UNIX_EPOCH).unwrap());
        let refused = rustls::client::danger::ServerCertVerifier::verify_server_cert(
            verifier.as_ref(),
            forged.der(),
            &[],
            &ServerName::try_from("api.anthropic.com").unwrap(),
            &[],
            at,
        );
        let refused = format!("{:?}", refused.unwrap_err());
        assert!(refused.contains("NameConstraintViolation"), "{refused}");
        // A server key that does not belong to the certificate (a crash between the two
        // writes) is not reused.
        std::fs::write(&ca.key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let (_, outcome) = LocalCa::ensure(dir.path(), now).unwrap();
        assert_eq!(outcome, Outcome::RenewedCertificate);
        server_config(&ca.cert, &ca.key).unwrap();
    }

    #[test]
    fn a_certificate_that_is_not_pem_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        let error = server_config(&cert, &dir.path().join("key.pem"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("cert.pem"), "{error}");
    }
}
