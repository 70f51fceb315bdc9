//! The Dragoman server: configuration, the HTTP and WebSocket signaling surface, and the media worker
//! that owns the UDP socket. It wires the control plane (`dragoman-signal`) to the media plane
//! (`dragoman-media`) and is the only crate with sockets and threads.

pub mod config;
pub mod health;
pub mod history;
pub mod http;
pub mod media_worker;
pub mod metrics;
pub mod openapi;
pub mod operator;
pub mod rate_limit;
pub mod registry;
pub mod server;
pub mod session;
pub mod state;
pub mod web;

pub use config::Config;
pub use http::app;
pub use server::{RunningServer, StartError, start};

/// A random hex key (secrets, API keys) for development runs that were given none.
pub fn random_key() -> String {
    rand::random::<[u8; 24]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
