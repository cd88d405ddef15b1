//! Checks and conversions of single values while a configuration is validated: redirect URIs,
//! scopes, grant type names, JWKS files, and the RFC 8252 loopback redirect match.

use std::path::Path;

use jsonwebtoken::jwk::JwkSet;
use protocol::Scopes;
use protocol::keys::KeyKind;
use protocol::oauth::GrantType;

use super::{ApplicationType, ConfigError, invalid};

/// `requested` is `registered` with only the port changed (or added), and both name the loopback
/// IP literal `127.0.0.1` or `[::1]` over plain `http` (RFC 8252 §7.3, §8.3: not `localhost`,
/// which a resolver may send elsewhere). Everything after the port is compared as written.
pub(super) fn is_loopback_match(registered: &str, requested: &str) -> bool {
    let Some(host) = ["http://127.0.0.1", "http://[::1]"]
        .into_iter()
        .find(|host| registered.starts_with(host))
    else {
        return false;
    };
    let rest = |uri: &str| -> Option<String> {
        let after_host = uri.strip_prefix(host)?;
        let after_port = match after_host.strip_prefix(':') {
            Some(port) => {
                let digits = port.bytes().take_while(u8::is_ascii_digit).count();
                port[..digits].parse::<u16>().ok().filter(|p| *p != 0)?;
                &port[digits..]
            }
            None => after_host,
        };
        after_port.starts_with('/').then(|| after_port.to_owned())
    };
    match (rest(registered), rest(requested)) {
        (Some(a), Some(b)) => a == b && !b.contains('#'),
        _ => false,
    }
}

pub(super) fn check_redirect_uri(
    key: &str,
    uri: &str,
    application_type: ApplicationType,
) -> Result<(), ConfigError> {
    let refuse = |why: String| Err(invalid(format!("{key}.redirect_uris"), why));
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse(format!(
            "{uri:?} must not contain spaces or control characters"
        ));
    }
    let parsed = match url::Url::parse(uri) {
        Ok(parsed) => parsed,
        Err(e) => return refuse(format!("{uri:?} is not an absolute URI: {e}")),
    };
    if parsed.fragment().is_some() {
        return refuse(format!("{uri:?} must not contain a fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse(format!("{uri:?} must not carry user information"));
    }
    // A script, data or local-file URL would turn the authorization response into code or a
    // file read; a web app is reached over http(s) only. A native app may also use a private-use
    // scheme of its own (RFC 8252 §7.1).
    let scheme = parsed.scheme();
    let is_http = matches!(scheme, "https" | "http") && parsed.host().is_some();
    let is_dangerous = matches!(scheme, "javascript" | "data" | "file" | "vbscript" | "blob");
    match application_type {
        ApplicationType::Web if !is_http => refuse(format!(
            "{uri:?} must be an https (or http) URL with a host"
        )),
        ApplicationType::Native if is_dangerous => refuse(format!(
            "{uri:?} uses the {scheme}: scheme, which a redirect must not"
        )),
        _ => Ok(()),
    }
}

pub(super) fn parse_scopes(key: &str, scopes: &[String]) -> Result<Scopes, ConfigError> {
    scopes
        .iter()
        .map(|s| {
            Scopes::parse(s)
                .ok()
                .filter(|p| p.iter().count() == 1)
                .map(|_| s.clone())
                .ok_or_else(|| invalid(key, format!("{s:?} is not a single scope token")))
        })
        .collect()
}

pub(super) fn grant_type_named(key: &str, name: &str) -> Result<GrantType, ConfigError> {
    let grant = match name {
        "jwt-bearer" | "jwt_bearer" => GrantType::JwtBearer,
        "token-exchange" | "token_exchange" => GrantType::TokenExchange,
        other => GrantType::from(other),
    };
    match grant {
        GrantType::Other(_) => Err(invalid(key, format!("unknown grant type {name:?}"))),
        grant => Ok(grant),
    }
}

pub(super) fn read_jwks(
    key: &str,
    inline: Option<JwkSet>,
    file: Option<&Path>,
    base_dir: &Path,
) -> Result<Option<JwkSet>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(
            format!("{key}.jwks"),
            "give `jwks` or `jwks_file`, not both",
        )),
        (Some(jwks), None) => Ok(Some(jwks)),
        (None, None) => Ok(None),
        (None, Some(file)) => {
            let path = base_dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                invalid(
                    format!("{key}.jwks_file"),
                    format!("{}: not JSON: {e}", path.display()),
                )
            })?;
            let jwks = if value.get("keys").is_some() {
                serde_json::from_value(value)
            } else {
                serde_json::from_value(value).map(|jwk| JwkSet { keys: vec![jwk] })
            };
            jwks.map(Some).map_err(|e| {
                invalid(
                    format!("{key}.jwks_file"),
                    format!("{}: not a JWK or JWKS: {e}", path.display()),
                )
            })
        }
    }
}

/// The kind of key an authorization server's `signing_alg` (at `key`) asks for: `RS256` (the
/// default, RSA 2048) or `ES256` (P-256). JOSE algorithm names are case-sensitive (RFC 7518 §3.1).
pub(super) fn signing_alg(
    key: &str,
    server: &str,
    value: Option<&str>,
) -> Result<KeyKind, ConfigError> {
    match value {
        None | Some("RS256") => Ok(KeyKind::Rsa),
        Some("ES256") => Ok(KeyKind::P256),
        Some(other) => Err(invalid(
            key,
            format!(
                "{server}: {other:?} is not a signing algorithm idp0 supports; use \"RS256\" \
                 (the default) or \"ES256\""
            ),
        )),
    }
}

#[cfg(test)]
mod signing_alg_tests {
    use protocol::keys::KeyKind;

    use super::super::{Config, ConfigError, ConfigFile};

    fn parse(top: &str, server: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "{top}\n[[authorization_servers]]\nid = \"todo0\"\n\
             audience = \"http://localhost:5002/mcp\"\nscopes = [\"mcp:connect\"]\n{server}\n\
             [[authorization_servers]]\nid = \"other\"\naudience = \"http://localhost:5004/mcp\"\n\
             scopes = [\"mcp:connect\"]\n"
        );
        let file: ConfigFile = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: "idp0.toml".into(),
            message: e.to_string(),
        })?;
        Config::from_file(file, std::path::Path::new("."))
    }

    #[test]
    fn each_server_signs_with_its_own_setting_and_rs256_is_the_default() -> Result<(), ConfigError>
    {
        let config = parse("", "")?;
        assert_eq!(config.signing_alg, KeyKind::Rsa);
        assert!(config.servers.iter().all(|s| s.signing_alg == KeyKind::Rsa));

        let config = parse("signing_alg = \"ES256\"", "signing_alg = \"ES256\"")?;
        assert_eq!(config.signing_alg, KeyKind::P256);
        let algs: Vec<_> = config
            .servers
            .iter()
            .map(|s| (s.id.as_str(), s.signing_alg))
            .collect();
        assert_eq!(algs, [("todo0", KeyKind::P256), ("other", KeyKind::Rsa)]);

        let config = parse("signing_alg = \"RS256\"", "signing_alg = \"RS256\"")?;
        assert_eq!(config.signing_alg, KeyKind::Rsa);
        Ok(())
    }

    #[test]
    fn an_unsupported_signing_alg_is_refused_naming_the_setting_and_the_server() {
        for (top, server, key, named) in [
            (
                "signing_alg = \"HS256\"",
                "",
                "signing_alg",
                "the org authorization server",
            ),
            (
                "signing_alg = \"none\"",
                "",
                "signing_alg",
                "the org authorization server",
            ),
            (
                "",
                "signing_alg = \"es256\"",
                "authorization_servers[0].signing_alg",
                "authorization server \"todo0\"",
            ),
            (
                "",
                "signing_alg = \"EdDSA\"",
                "authorization_servers[0].signing_alg",
                "authorization server \"todo0\"",
            ),
        ] {
            let error = match parse(top, server) {
                Ok(_) => panic!("{top} {server} should be refused"),
                Err(e) => e.to_string(),
            };
            assert!(error.starts_with(&format!("{key}: {named}: ")), "{error}");
            assert!(
                error.contains("\"RS256\"") && error.contains("\"ES256\""),
                "{error}"
            );
        }
    }
}
