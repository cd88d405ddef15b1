//! Signing keys: generation (RSA 2048, P-256, Ed25519), PKCS#8 PEM storage, public JWKs with
//! RFC 7638 thumbprint key ids, and compact JWS signing.
//!
//! Signing uses the key pair parsed once at load ([`Signer`]) rather than
//! `jsonwebtoken::encode`, whose aws-lc backend parses and validates the private key's DER
//! again for every signature: for RSA 2048 that re-parse (with its key check) cost about twice
//! the signature itself, and idp0 signs one token per grant. The compact serialization
//! (RFC 7515 §7.1: base64url header, claims and signature joined by dots) is written here; the
//! header is jsonwebtoken's own [`Header`], so its JSON is unchanged.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// Key generation or loading failed. Messages never include key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM is not a PKCS#8 / PKCS#1 private key of a supported kind.
    #[error("not a supported private key (PKCS#8 RSA, P-256 or Ed25519, or PKCS#1 RSA)")]
    UnsupportedKey,
    /// The JWK is not a public key of a supported kind.
    #[error("unsupported JWK: {0}")]
    UnsupportedJwk(&'static str),
    /// The cryptographic library refused.
    #[error("cryptographic operation failed")]
    Crypto,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    /// The claims could not be serialized.
    #[error("signing failed: the claims are not serializable: {0}")]
    Claims(#[from] serde_json::Error),
}

/// A private key parsed once, ready to sign (see the module documentation).
enum Signer {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl Signer {
    /// Parses the PEM's DER for `alg` (the algorithm jsonwebtoken recognised it as).
    fn parse(pem: &str, alg: Algorithm) -> Result<Self, KeyError> {
        let parsed = pem::parse(pem).map_err(|_| KeyError::UnsupportedKey)?;
        let der = parsed.contents();
        let signer = match alg {
            Algorithm::RS256 => Self::Rsa(
                RsaKeyPair::from_pkcs8(der)
                    .or_else(|_| RsaKeyPair::from_der(der))
                    .map_err(|_| KeyError::UnsupportedKey)?,
            ),
            Algorithm::ES256 => Self::P256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| KeyError::UnsupportedKey)?,
            ),
            Algorithm::EdDSA => Self::Ed25519(
                Ed25519KeyPair::from_pkcs8(der).map_err(|_| KeyError::UnsupportedKey)?,
            ),
            _ => return Err(KeyError::UnsupportedKey),
        };
        Ok(signer)
    }

    /// The JWS signature of `message` (ES256: the fixed-width `R || S` of RFC 7518 §3.4).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match self {
            Self::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| KeyError::Crypto)?;
                Ok(signature)
            }
            Self::P256(pair) => Ok(pair
                .sign(&rng, message)
                .map_err(|_| KeyError::Crypto)?
                .as_ref()
                .to_vec()),
            Self::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// The kinds of key we generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyKind {
    /// RSA 2048, RS256 (the interoperable default).
    #[default]
    Rsa,
    /// NIST P-256, ES256.
    P256,
    /// Ed25519, EdDSA.
    Ed25519,
}

impl FromStr for KeyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rsa" | "rs256" => Ok(Self::Rsa),
            "p256" | "p-256" | "ec" | "es256" => Ok(Self::P256),
            "ed25519" | "eddsa" => Ok(Self::Ed25519),
            other => Err(format!("unknown key kind {other:?} (rsa, p256, ed25519)")),
        }
    }
}

/// A private signing key with its public JWK. `Debug` shows only the key id and algorithm.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    signer: std::sync::Arc<Signer>,
    private_pem: SecretString,
    public_jwk: Jwk,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key; its `kid` is the RFC 7638 thumbprint of the public key.
    pub fn generate(kind: KeyKind) -> Result<Self, KeyError> {
        let der: Vec<u8> = match kind {
            KeyKind::Rsa => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Crypto)?;
                let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| KeyError::Crypto)?;
                der.as_ref().to_vec()
            }
            KeyKind::P256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|pair| pair.to_pkcs8v1())
                .map_err(|_| KeyError::Crypto)?
                .as_ref()
                .to_vec(),
            KeyKind::Ed25519 => Ed25519KeyPair::generate()
                .and_then(|pair| pair.to_pkcs8v1())
                .map_err(|_| KeyError::Crypto)?
                .as_ref()
                .to_vec(),
        };
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
        Self::from_pem(&pem, None)
    }

    /// Loads a PEM private key (PKCS#8 RSA / P-256 / Ed25519, or PKCS#1 RSA). Without `kid`, the
    /// key id is the RFC 7638 thumbprint.
    pub fn from_pem(pem: &str, kid: Option<String>) -> Result<Self, KeyError> {
        let bytes = pem.as_bytes();
        let (encoding, alg) = if let Ok(key) = EncodingKey::from_rsa_pem(bytes) {
            (key, Algorithm::RS256)
        } else if let Ok(key) = EncodingKey::from_ec_pem(bytes) {
            (key, Algorithm::ES256)
        } else if let Ok(key) = EncodingKey::from_ed_pem(bytes) {
            (key, Algorithm::EdDSA)
        } else {
            return Err(KeyError::UnsupportedKey);
        };
        let mut public_jwk =
            Jwk::from_encoding_key(&encoding, alg).map_err(|_| KeyError::UnsupportedKey)?;
        let signer = std::sync::Arc::new(Signer::parse(pem, alg)?);
        let kid = match kid {
            Some(kid) => kid,
            None => thumbprint(&public_jwk)?,
        };
        public_jwk.common.key_id = Some(kid.clone());
        public_jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            kid,
            alg,
            signer,
            private_pem: SecretString::from(pem.to_owned()),
            public_jwk,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signing algorithm (pinned to the key).
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK, with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public_jwk
    }

    /// The PKCS#8 PEM, for writing to a 0600 file.
    pub fn private_pem(&self) -> &SecretString {
        &self.private_pem
    }

    /// Signs `claims` as a compact JWS with header `alg`, `kid` and `typ`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        let mut jws = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut jws);
        let signature = self.signer.sign(jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(jws)
    }
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding.
pub fn thumbprint(jwk: &Jwk) -> Result<String, KeyError> {
    jwk.thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| KeyError::UnsupportedJwk("no thumbprint for this key type"))
}

/// A JWKS document of the given keys' public halves.
pub fn jwk_set<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> JwkSet {
    JwkSet {
        keys: keys.into_iter().map(|k| k.public_jwk.clone()).collect(),
    }
}

/// The algorithm a public JWK pins: its `alg`, else the only one its type allows.
/// Symmetric (`oct`) keys are never accepted for verification.
pub fn pinned_algorithm(jwk: &Jwk) -> Result<Algorithm, KeyError> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return Err(KeyError::UnsupportedJwk("curve")),
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => {
            return Err(KeyError::UnsupportedJwk("symmetric keys are not accepted"));
        }
        _ => return Err(KeyError::UnsupportedJwk("key type")),
    };
    match jwk.common.key_algorithm {
        None => Ok(by_type),
        Some(declared) => {
            let alg = key_algorithm(declared)?;
            let same_family = jsonwebtoken::DecodingKey::from_jwk(jwk)
                .map(|key| key.family() == alg.family())
                .unwrap_or(false);
            if same_family {
                Ok(alg)
            } else {
                Err(KeyError::UnsupportedJwk("alg does not match the key type"))
            }
        }
    }
}

fn key_algorithm(declared: KeyAlgorithm) -> Result<Algorithm, KeyError> {
    match declared {
        KeyAlgorithm::HS256 | KeyAlgorithm::HS384 | KeyAlgorithm::HS512 => {
            Err(KeyError::UnsupportedJwk("HMAC algorithms are not accepted"))
        }
        other => Algorithm::from_str(&other.to_string())
            .map_err(|_| KeyError::UnsupportedJwk("alg is not a signature algorithm")),
    }
}

/// Reveals a PEM for writing to disk; kept here so callers need not import `ExposeSecret`.
pub fn expose_pem(key: &SigningKey) -> &str {
    key.private_pem.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pem_with_stable_kid() -> Result<(), KeyError> {
        for (kind, alg) in [
            (KeyKind::Rsa, Algorithm::RS256),
            (KeyKind::P256, Algorithm::ES256),
            (KeyKind::Ed25519, Algorithm::EdDSA),
        ] {
            let key = SigningKey::generate(kind)?;
            assert_eq!(key.alg(), alg);
            let reloaded = SigningKey::from_pem(expose_pem(&key), None)?;
            assert_eq!(reloaded.kid(), key.kid());
            assert_eq!(pinned_algorithm(key.public_jwk())?, alg);
            assert!(!format!("{key:?}").contains("PRIVATE"));
        }
        Ok(())
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() -> Result<(), Box<dyn std::error::Error>> {
        // RFC 7638 §3.1.
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }))?;
        assert_eq!(
            thumbprint(&jwk)?,
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        Ok(())
    }

    #[test]
    fn symmetric_jwks_are_refused() -> Result<(), serde_json::Error> {
        let jwk: Jwk = serde_json::from_value(
            serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}),
        )?;
        assert!(pinned_algorithm(&jwk).is_err());
        Ok(())
    }

    #[test]
    fn an_rsa_key_cannot_claim_an_ec_algorithm() -> Result<(), KeyError> {
        let key = SigningKey::generate(KeyKind::Rsa)?;
        let mut jwk = key.public_jwk().clone();
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        assert!(pinned_algorithm(&jwk).is_err());
        Ok(())
    }
}
