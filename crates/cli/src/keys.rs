//! `secure-agent keys generate`: a private key (PKCS#8 PEM, mode 0600) and its public JWK whose
//! `kid` is the RFC 7638 thumbprint.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use protocol::keys::{KeyKind, SigningKey, expose_pem};

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a key pair: <out> (private, 0600) and <out>.jwk.json (public).
    Generate {
        /// rsa (RS256, default), p256 (ES256) or ed25519 (EdDSA).
        #[arg(long, default_value = "rsa")]
        kind: KeyKind,
        /// Private key file to write.
        #[arg(long, default_value = "agent.pem")]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

pub(crate) fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { kind, out, force } => {
            let public = PathBuf::from(format!("{}.jwk.json", out.display()));
            for path in [&out, &public] {
                anyhow::ensure!(
                    force || !path.exists(),
                    "{} exists; pass --force to overwrite",
                    path.display()
                );
            }
            let key = SigningKey::generate(kind)?;
            idp0::fsutil::write_private(&out, expose_pem(&key))
                .with_context(|| format!("writing {}", out.display()))?;
            let jwk = serde_json::to_string_pretty(key.public_jwk())?;
            std::fs::write(&public, format!("{jwk}\n"))
                .with_context(|| format!("writing {}", public.display()))?;
            println!("private key: {} (mode 0600)", out.display());
            println!("public JWK:  {}", public.display());
            println!("kid:         {}", key.kid());
            println!("alg:         {:?}", key.alg());
            println!("{jwk}");
            Ok(())
        }
    }
}
