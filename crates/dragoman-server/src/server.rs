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
use crate::media_worker::MediaWorker;
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
    worker: MediaWorker,
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
    let udp = bind_media_socket(config.media).map_err(|e| StartError::Media(config.media, e))?;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let worker = MediaWorker::start(
        udp,
        config.media_public_addresses.clone(),
        Duration::from_millis(config.keyframe_request_interval_ms),
        events_tx,
    )
    .map_err(|e| StartError::Media(config.media, e))?;
    let media_addr = worker.local_addr;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut config = config;
    config.http = http_addr;
    config.media = media_addr;
    if config.operator_api_key.is_empty() {
        config.operator_api_key = crate::random_key();
    }
    let state = Arc::new(AppState::new(
        config,
        worker.handle.clone(),
        Arc::new(Metrics::new()),
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
        worker,
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
        let worker = self.worker;
        let _ = tokio::task::spawn_blocking(move || worker.shutdown()).await;
        self.events.abort();
        self.quality.abort();
        tracing::info!("stopped");
    }
}

/// Kernel socket buffer the media socket asks for. The default (~200 KB, under 100 full datagrams)
/// overflows in bursts at around ten calls; the kernel caps the request at `net.core.rmem_max`.
const MEDIA_SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Bind the media UDP socket with large send and receive buffers.
fn bind_media_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    for (what, result) in [
        ("receive", socket.set_recv_buffer_size(MEDIA_SOCKET_BUFFER)),
        ("send", socket.set_send_buffer_size(MEDIA_SOCKET_BUFFER)),
    ] {
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not enlarge the media socket's {what} buffer");
        }
    }
    socket.bind(&addr.into())?;
    let socket: std::net::UdpSocket = socket.into();
    tracing::info!(
        receive_buffer = socket2::SockRef::from(&socket)
            .recv_buffer_size()
            .unwrap_or(0),
        "media socket bound"
    );
    Ok(socket)
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
