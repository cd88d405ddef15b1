//! Serde helpers for [`secrecy::SecretString`] fields of wire types: a token response must put
//! the secret on the wire, but nothing else (`Debug`, logs) may see it.

use secrecy::{ExposeSecret, SecretString};
use serde::Serializer;

/// Serialises a secret as its plain string. Use only on wire types.
pub fn serialize<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

/// Serialises an optional secret as its plain string.
pub fn serialize_opt<S: Serializer>(
    secret: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_str(secret.expose_secret()),
        None => s.serialize_none(),
    }
}
