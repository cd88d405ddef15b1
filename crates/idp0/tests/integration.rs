//! idp0's integration tests: one binary (STYLE §11), real servers on 127.0.0.1:0.
#![allow(clippy::unwrap_used, unreachable_pub)]

#[path = "integration/brokered.rs"]
mod brokered;
#[path = "integration/brokered_bad_input.rs"]
mod brokered_bad_input;
#[path = "integration/brokered_isv.rs"]
mod brokered_isv;
#[path = "integration/flow.rs"]
mod flow;
#[path = "integration/interop.rs"]
mod interop;
#[path = "integration/lifecycle.rs"]
mod lifecycle;
#[path = "integration/login_protection.rs"]
mod login_protection;
#[path = "integration/login_protection_replicas.rs"]
mod login_protection_replicas;
#[path = "integration/management.rs"]
mod management;
#[path = "integration/management_client.rs"]
mod management_client;
#[path = "integration/management_shapes.rs"]
mod management_shapes;
#[path = "integration/negative.rs"]
mod negative;
#[path = "integration/postgres_restart.rs"]
mod postgres_restart;
#[path = "integration/session_end.rs"]
mod session_end;
#[path = "integration/shared_database.rs"]
mod shared_database;
#[path = "integration/snapshots.rs"]
mod snapshots;
