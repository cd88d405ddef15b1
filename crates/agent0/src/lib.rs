//! agent0: the agent web app (ARCHITECTURE §1, §5.1, §5.3, §7). A person logs in with OpenID
//! Connect and chats with an agent; the agent calls MCP tools on their behalf with Cross-App
//! Access tokens (ID token → ID-JAG → MCP access token), stepping up on `insufficient_scope`.

pub mod agent;
pub mod approvals;
pub mod config;
pub mod confirm;
pub mod connections;
pub mod conversations;
pub mod failure;
pub mod github;
pub mod http;
pub mod llm;
pub mod mcp;
pub mod session;
pub mod shared;
mod single_flight;
pub mod tokens;

pub use http::{AgentConfig, AppState, router};
