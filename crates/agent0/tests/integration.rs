//! agent0's integration tests: one binary (STYLE §11), real servers on 127.0.0.1:0.
#![allow(clippy::unwrap_used, unreachable_pub)]

#[path = "integration/brokered.rs"]
mod brokered;
#[path = "integration/brokered_bad_input.rs"]
mod brokered_bad_input;
#[path = "integration/brokered_stand_in.rs"]
mod brokered_stand_in;
#[path = "integration/browser.rs"]
mod browser;
#[path = "integration/browser_conveniences.rs"]
mod browser_conveniences;
#[path = "integration/browser_new_user.rs"]
mod browser_new_user;
#[path = "integration/confirmations.rs"]
mod confirmations;
#[path = "integration/confirmations_across_replicas.rs"]
mod confirmations_across_replicas;
#[path = "integration/connections.rs"]
mod connections;
#[path = "integration/fake_llm.rs"]
mod fake_llm;
#[path = "integration/faults.rs"]
mod faults;
#[path = "integration/harness.rs"]
mod harness;
#[path = "integration/history.rs"]
mod history;
#[path = "integration/in_band.rs"]
mod in_band;
#[path = "integration/journeys.rs"]
mod journeys;
#[path = "integration/llm_anthropic.rs"]
mod llm_anthropic;
#[path = "integration/llm_openai.rs"]
mod llm_openai;
#[path = "integration/login.rs"]
mod login;
#[path = "integration/logs.rs"]
mod logs;
#[path = "integration/mcp_retries.rs"]
mod mcp_retries;
#[path = "integration/mcp_sessions.rs"]
mod mcp_sessions;
#[path = "integration/mcp_stateless.rs"]
mod mcp_stateless;
#[path = "integration/outages.rs"]
mod outages;
#[path = "integration/postgres.rs"]
mod postgres;
#[path = "integration/replicas.rs"]
mod replicas;
#[path = "integration/restarts.rs"]
mod restarts;
#[path = "integration/sessions.rs"]
mod sessions;
#[path = "integration/token_broker.rs"]
mod token_broker;
