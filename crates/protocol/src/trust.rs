//! Which certificate authorities every HTTP client in the project trusts: the system's (or
//! `SSL_CERT_FILE`'s, which rustls-platform-verifier reads on Linux) plus the ones added here —
//! the local CA of `--tls` and `--ca-file`.
//!
//! The set is process-wide on purpose: clients are built in many places (discovery, token
//! endpoints, JWKS, MCP, introspection, the LLM), and a CA that one of them forgot to trust is a
//! failure that shows only over https. The command line adds the CAs once, before any service or
//! client starts; every client is built from [`client_builder`]. Adding only widens trust to
//! certificates the operator named, and nothing can remove trust in the system's roots.

use std::path::Path;
use std::sync::RwLock;

static EXTRA_ROOTS: RwLock<Vec<reqwest::Certificate>> = RwLock::new(Vec::new());
/// The PEM files already added with their contents, so trusting one twice adds nothing.
static ADDED: std::sync::Mutex<Vec<(std::path::PathBuf, Vec<u8>)>> =
    std::sync::Mutex::new(Vec::new());

/// Reading a CA file failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file could not be read.
    #[error("cannot read the CA file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no PEM certificate.
    #[error("{path} holds no PEM certificate")]
    NotPem {
        /// The file.
        path: String,
    },
}

/// Trusts every certificate in the PEM file at `path`, in every client built from now on.
/// Returns how many were added (0 when this file, unchanged, was added before).
pub fn trust_pem_file(path: &Path) -> Result<usize, TrustError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| TrustError::Read {
        path: shown.clone(),
        source,
    })?;
    let key = (
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()),
        pem.clone(),
    );
    let mut added_files = ADDED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if added_files.contains(&key) {
        return Ok(0);
    }
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|certs| !certs.is_empty())
        .ok_or(TrustError::NotPem { path: shown })?;
    let added = certs.len();
    EXTRA_ROOTS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(certs);
    added_files.push(key);
    Ok(added)
}

/// A reqwest client builder that trusts the system's roots and the CAs added with
/// [`trust_pem_file`]. Every HTTP client in the project starts here.
pub fn client_builder() -> reqwest::ClientBuilder {
    let extra = EXTRA_ROOTS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let builder = reqwest::Client::builder();
    if extra.is_empty() {
        builder
    } else {
        builder.tls_certs_merge(extra)
    }
}
