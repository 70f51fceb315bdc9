//! The media worker: one thread that owns the UDP socket and a [`MediaEngine`], and runs the
//! sans-IO loop (receive → engine → send, timers). Everything else talks to it by sending it jobs,
//! closures run on the worker thread with the engine in hand, so the engine needs no lock.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::thread::JoinHandle;
use std::time::Instant;

use dragoman_media::{EngineConfig, EngineOutput, MediaEngine, MediaEvent};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// Largest datagram the worker reads; bigger ones are truncated and then refused by the engine.
const MAX_DATAGRAM: usize = 2048;
/// Datagrams drained from the socket per wake-up before timers and jobs get a turn.
const RECEIVE_BATCH: usize = 64;

/// Socket-level counters, kept by the worker beside the engine's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    pub datagrams_sent: u64,
    pub bytes_sent: u64,
    pub send_errors: u64,
}

/// What a job gets: the engine and the worker's socket counters.
#[derive(Debug)]
pub struct WorkerState {
    pub engine: MediaEngine,
    pub socket: SocketStats,
    stop: bool,
}

type Job = Box<dyn FnOnce(&mut WorkerState, Instant) + Send>;

/// The worker has stopped (server shutting down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the media worker has stopped")]
pub struct WorkerGone;

/// A cheap, cloneable way to run jobs on the media worker.
#[derive(Debug, Clone)]
pub struct MediaHandle {
    jobs: mpsc::UnboundedSender<Job>,
}

impl MediaHandle {
    /// Run `f` on the worker thread with the engine and the current time; await its result.
    pub async fn run<R, F>(&self, f: F) -> Result<R, WorkerGone>
    where
        R: Send + 'static,
        F: FnOnce(&mut WorkerState, Instant) -> R + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |state, now| {
            let _ = reply.send(f(state, now));
        });
        self.jobs.send(job).map_err(|_| WorkerGone)?;
        result.await.map_err(|_| WorkerGone)
    }

    /// Ask the worker to stop after the jobs already queued.
    pub fn stop(&self) {
        let _ = self.jobs.send(Box::new(|state, _| state.stop = true));
    }
}

/// A running media worker thread.
#[derive(Debug)]
pub struct MediaWorker {
    pub handle: MediaHandle,
    pub local_addr: SocketAddr,
    thread: JoinHandle<()>,
}

impl MediaWorker {
    /// Start the worker on a bound socket. `candidate_addresses` are advertised to peers (empty:
    /// the socket's own address). Engine events go to `events`.
    pub fn start(
        socket: StdUdpSocket,
        candidate_addresses: Vec<SocketAddr>,
        keyframe_request_interval: std::time::Duration,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> std::io::Result<MediaWorker> {
        let local_addr = socket.local_addr()?;
        socket.set_nonblocking(true)?;
        let local_addresses = if candidate_addresses.is_empty() {
            vec![local_addr]
        } else {
            candidate_addresses
        };
        // str0m matches a datagram's destination against its local candidates.
        let destination = local_addresses[0];
        let config = EngineConfig {
            local_addresses,
            keyframe_request_interval,
        };
        let (jobs, queue) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("dragoman-media".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match UdpSocket::from_std(socket) {
                        Ok(socket) => run(socket, destination, config, queue, events).await,
                        Err(e) => tracing::error!(error = %e, "media socket unusable"),
                    }
                });
            })?;
        Ok(MediaWorker {
            handle: MediaHandle { jobs },
            local_addr,
            thread,
        })
    }

    /// Stop the worker and wait for its thread.
    pub fn shutdown(self) {
        self.handle.stop();
        if self.thread.join().is_err() {
            tracing::error!("media worker thread panicked");
        }
    }
}

async fn run(
    socket: UdpSocket,
    destination: SocketAddr,
    config: EngineConfig,
    mut queue: mpsc::UnboundedReceiver<Job>,
    events: mpsc::UnboundedSender<MediaEvent>,
) {
    let mut state = WorkerState {
        engine: MediaEngine::new(config, Instant::now()),
        socket: SocketStats::default(),
        stop: false,
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    tracing::info!(address = %destination, "media worker running");
    while !state.stop {
        let deadline = drain(&mut state, &socket, &events).await;
        tokio::select! {
            biased;
            job = queue.recv() => match job {
                Some(job) => job(&mut state, Instant::now()),
                None => break,
            },
            received = socket.recv_from(&mut buf) => {
                if let Ok((len, source)) = received {
                    let now = Instant::now();
                    let _ = state.engine.handle_datagram(now, source, destination, &buf[..len]);
                    // Take what else is already waiting before polling output again.
                    for _ in 1..RECEIVE_BATCH {
                        match socket.try_recv_from(&mut buf) {
                            Ok((len, source)) => {
                                let _ = state.engine.handle_datagram(now, source, destination, &buf[..len]);
                            }
                            Err(_) => break,
                        }
                    }
                    // str0m releases written packets only when time is handed to it: do it now
                    // rather than after another pass through the loop.
                    state.engine.handle_timeout(Instant::now());
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            state.engine.handle_timeout(now);
        }
    }
    tracing::info!("media worker stopped");
}

/// Send everything the engine has to send, pass on its events, and return its next deadline.
async fn drain(
    state: &mut WorkerState,
    socket: &UdpSocket,
    events: &mpsc::UnboundedSender<MediaEvent>,
) -> Instant {
    loop {
        match state.engine.poll_output() {
            EngineOutput::Transmit(transmit) => {
                let sent = match socket.try_send_to(&transmit.contents, transmit.destination) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        socket
                            .send_to(&transmit.contents, transmit.destination)
                            .await
                    }
                    other => other,
                };
                match sent {
                    Ok(len) => {
                        state.socket.datagrams_sent += 1;
                        state.socket.bytes_sent += len as u64;
                    }
                    Err(e) => {
                        state.socket.send_errors += 1;
                        tracing::debug!(to = %transmit.destination, error = %e, "send failed");
                    }
                }
            }
            EngineOutput::Event(event) => {
                let _ = events.send(event);
            }
            EngineOutput::Timeout(deadline) => return deadline,
        }
    }
}
