//! What the `oneshot` tests share: an `AppState` over real media workers on 127.0.0.1 (two, so
//! the pool is exercised), without any TCP port.

use std::sync::Arc;
use std::time::Duration;

use dragoman_server::Config;
use dragoman_server::history::History;
use dragoman_server::media_worker::{MediaPool, PoolConfig};
use dragoman_server::metrics::Metrics;
use dragoman_server::state::AppState;

/// The state for `config` and `history`, and the media workers behind it (shut them down at the
/// end of the test).
pub fn state_with(config: Config, history: History) -> (Arc<AppState>, MediaPool) {
    let (events, _) = tokio::sync::mpsc::unbounded_channel();
    let metrics = Arc::new(Metrics::new());
    let workers = MediaPool::start(
        PoolConfig {
            bind: "127.0.0.1:0".parse().expect("a literal address"),
            workers: 2,
            candidate_addresses: vec![],
            keyframe_request_interval: Duration::from_millis(500),
            resend_window: dragoman_media::DEFAULT_RESEND_WINDOW,
            timings: metrics.worker_timings(),
        },
        events,
    )
    .expect("media workers start on 127.0.0.1");
    let (_, shutdown) = tokio::sync::watch::channel(false);
    let state = AppState::new(
        config,
        workers.handles.clone(),
        metrics,
        Arc::new(history),
        shutdown,
    );
    (Arc::new(state), workers)
}
