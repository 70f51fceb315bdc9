//! Starting and stopping the whole server: sockets, media worker, HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dragoman_media::MediaEvent;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::app;
use crate::media_worker::{MediaPool, PoolConfig, default_worker_count};
use crate::metrics::Metrics;
use crate::state::AppState;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen for HTTP on {0}: {1}")]
    Http(SocketAddr, std::io::Error),
    #[error("cannot bind the UDP media port {0}: {1}")]
    Media(SocketAddr, std::io::Error),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot open the history database {0}: {1}")]
    History(std::path::PathBuf, crate::history::HistoryError),
}

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    pub http_addr: SocketAddr,
    pub media_addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<()>,
    events: JoinHandle<()>,
    quality: JoinHandle<()>,
    workers: MediaPool,
}

/// Bind the sockets and start serving. `config.secret` must be set.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    config.validate()?;
    let history = crate::history::History::open(&config.history_path)
        .map_err(|e| StartError::History(config.history_path.clone(), e))?;
    let listener = TcpListener::bind(config.http)
        .await
        .map_err(|e| StartError::Http(config.http, e))?;
    let http_addr = listener
        .local_addr()
        .map_err(|e| StartError::Http(config.http, e))?;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let metrics = Arc::new(Metrics::new());
    let workers = match config.media_workers {
        0 => default_worker_count(),
        n => n,
    };
    let pool = MediaPool::start(
        PoolConfig {
            bind: config.media,
            workers,
            candidate_addresses: config.media_public_addresses.clone(),
            keyframe_request_interval: Duration::from_millis(config.keyframe_request_interval_ms),
            resend_window: Duration::from_millis(config.resend_window_ms),
            timings: metrics.worker_timings(),
        },
        events_tx,
    )
    .map_err(|e| StartError::Media(config.media, e))?;
    let media_addr = pool.local_addr;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut config = config;
    config.http = http_addr;
    config.media = media_addr;
    if config.operator_api_key.is_empty() {
        config.operator_api_key = crate::random_key();
    }
    let state = Arc::new(AppState::new(
        config,
        pool.handles.clone(),
        metrics,
        Arc::new(history),
        shutdown_rx.clone(),
    ));
    let events = tokio::spawn(log_media_events(events_rx));
    let quality = tokio::spawn(crate::health::run(state.clone()));
    let router = app(state.clone());
    let mut stop = shutdown_rx;
    let http = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    tracing::info!(http = %http_addr, media = %media_addr, "dragoman serving");
    Ok(RunningServer {
        http_addr,
        media_addr,
        state,
        shutdown,
        http,
        events,
        quality,
        workers: pool,
    })
}

impl RunningServer {
    /// Close every signaling connection (participants get a close frame), stop HTTP and the media
    /// worker, and wait for them.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        let _ = self.shutdown.send(true);
        if tokio::time::timeout(Duration::from_secs(5), self.http)
            .await
            .is_err()
        {
            tracing::warn!("HTTP connections did not close within 5 s");
        }
        let workers = self.workers;
        let _ = tokio::task::spawn_blocking(move || workers.shutdown()).await;
        self.events.abort();
        self.quality.abort();
        tracing::info!("stopped");
    }
}

async fn log_media_events(mut events: mpsc::UnboundedReceiver<MediaEvent>) {
    while let Some(event) = events.recv().await {
        match event {
            MediaEvent::Connected { peer } => tracing::debug!(%peer, "media connected"),
            MediaEvent::Disconnected { peer } => tracing::info!(%peer, "media disconnected"),
            MediaEvent::MediaAdded { peer, mid, kind } => {
                tracing::debug!(%peer, %mid, ?kind, "media added")
            }
            MediaEvent::KeyframeRequested { track, layer } => {
                tracing::debug!(%track, layer, "keyframe requested")
            }
            MediaEvent::LayerStarted { track, layer, rid } => {
                tracing::info!(%track, layer, rid = rid.as_deref().unwrap_or("-"), "video layer receiving")
            }
        }
    }
}
