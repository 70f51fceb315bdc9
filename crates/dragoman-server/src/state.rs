//! State shared by every HTTP handler and signaling session.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dragoman_signal::token::TokenKey;
use tokio::sync::watch;

use crate::config::Config;
use crate::health::HealthHub;
use crate::history::History;
use crate::media_worker::MediaHandles;
use crate::metrics::Metrics;
use crate::registry::Registry;

#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub tokens: TokenKey,
    pub registry: Registry,
    /// The media workers; a call's media runs on the one its room names.
    pub media: MediaHandles,
    pub metrics: Arc<Metrics>,
    pub history: Arc<History>,
    pub health: HealthHub,
    /// Becomes `true` when the server starts shutting down.
    pub shutdown: watch::Receiver<bool>,
    next_connection: AtomicU64,
}

impl AppState {
    pub fn new(
        config: Config,
        media: MediaHandles,
        metrics: Arc<Metrics>,
        history: Arc<History>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let limits = dragoman_signal::call::CallLimits {
            max_participants: config.limits.max_participants_per_call,
            max_publications_per_participant: config.limits.max_publications_per_participant,
        };
        let config_threshold = config.health_degraded_score;
        AppState {
            tokens: TokenKey::new(config.secret.as_bytes()),
            registry: Registry::new(limits, config.limits.max_calls, media.len()),
            config,
            media,
            metrics,
            history,
            health: HealthHub::new(config_threshold),
            shutdown,
            next_connection: AtomicU64::new(1),
        }
    }

    pub fn next_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }
}
