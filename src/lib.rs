//! lms-realtime: a Socket.IO v4 gateway for multi-tenant Learning Management Systems.
//!
//! The binary (`main.rs`) only reads configuration and calls [`app::Application`]; tests
//! and embedders build the same application. The contract is `shared/PROTOCOL.md`.

pub mod app;
pub mod auth;
pub mod client_ip;
pub mod cluster;
pub mod config;
pub mod console;
pub mod emit;
pub mod error;
pub mod event_list;
pub mod export;
pub mod fair;
pub mod http;
pub mod ids;
pub mod jwks;
pub mod metrics;
pub mod operator;
pub mod presence;
pub mod recent_refusals;
pub mod recovery;
pub mod refusal_log;
pub mod releases;
pub mod role;
pub mod rooms;
pub mod server;
pub mod server_events;
pub mod service;
pub mod socket;
pub mod store;
pub mod telemetry;
pub mod tenant_buckets;
pub mod traces;
pub mod types;
pub mod typescript;

pub use app::{Application, ShutdownHandle};
pub use config::Config;
pub use service::Gateway;
