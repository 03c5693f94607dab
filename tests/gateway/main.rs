//! Black-box tests of one gateway node: real application on port 0, real Socket.IO client,
//! real HTTP. One test binary, one module per area.

mod admin_progress;
mod auth;
mod console;
mod courses;
mod export;
#[path = "../export_support/mod.rs"]
mod export_support;
mod fuzz_frames;
mod helpers;
mod hostile_http;
mod hostile_sockets;
mod http_api;
mod idle_socket;
mod jwks;
mod limits;
mod notifications;
mod openapi;
mod operator;
mod presence;
mod raw;
mod recovering;
mod recovery;
mod shutdown;
mod storage_quota;
