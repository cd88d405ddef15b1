//! Framework-free protocol types and primitives for secure-agent.
//!
//! * [`oauth`]: RFC 6749 / RFC 8693 / RFC 7523 wire types (grant types, token types, errors, scopes).
//! * [`metadata`]: RFC 8414 / OIDC Discovery / RFC 9728 metadata documents.
//! * [`claims`]: the JWT claim sets we issue and accept (ID token, ID-JAG, access token, client assertion).
//! * [`keys`]: signing keys, JWKs and RFC 7638 thumbprints.
//! * [`verify`]: strict JWT verification against a JWKS cache.
//! * [`assertion`]: `private_key_jwt` client assertions (RFC 7523 §2.2).
//! * [`bearer`]: reading the bearer token from an `Authorization` header (RFC 6750 §2.1).
//! * [`www_authenticate`]: RFC 9110 challenge building and parsing.
//! * [`step_up`]: when an MCP client steps up its scopes after `insufficient_scope`, and to what.
//! * [`github`]: GitHub's MCP tool declarations, shared by github0 and agent0.
//! * [`clock`]: injected time.
//! * [`constant_time`]: comparing secrets without leaking where they differ.
//! * [`trust`]: the certificate authorities every HTTP client trusts (`--tls`, `--ca-file`).
//!
//! No web framework lives here; HTTP is only used to fetch metadata and JWKS documents.

pub mod assertion;
pub mod bearer;
pub mod claims;
pub mod clock;
pub mod constant_time;
pub mod discovery;
pub mod github;
pub mod keys;
pub mod metadata;
pub mod oauth;
pub mod secret_serde;
pub mod step_up;
pub mod token_client;
pub mod trust;
pub mod verify;
pub mod www_authenticate;

pub use clock::{Clock, FixedClock, SystemClock, UnixTime};
pub use oauth::Scopes;
