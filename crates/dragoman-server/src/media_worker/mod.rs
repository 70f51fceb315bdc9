//! The media workers: threads that each own a [`MediaEngine`] and its sockets and run the sans-IO
//! loop (receive → engine → send, timers) on an epoll event loop ([`event_loop`]).
//!
//! A call lives on one worker, so the forwarding hot path never leaves its thread: no lock, no
//! channel, no await. Everything else (signaling, health, metrics) talks to a worker by sending it
//! jobs, closures run on the worker thread with the engine in hand ([`MediaHandle::run`]).
//!
//! Every worker has its own socket on the one shared UDP port (`SO_REUSEPORT`); see [`sockets`]
//! for how a datagram reaches the worker that owns its peer.

mod connected;
mod event_loop;
mod sockets;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dragoman_media::{
    EngineConfig, MediaEngine, MediaError, MediaEvent, Transport, TransportBuilder,
};
use dragoman_udp::SendStats;
use tokio::sync::{mpsc, oneshot};

use self::event_loop::WorkerLoop;

/// Socket-level counters, kept by each worker beside its engine's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// What the worker's send queue did.
    pub sent: SendStats,
    pub datagrams_received: u64,
    /// `recvmmsg` calls that returned datagrams.
    pub receive_calls: u64,
    /// Datagrams handed to another worker: ones for a peer of another worker, and copies of an
    /// unknown sender's STUN Binding request shown to every other worker (only while a new peer
    /// connects, or from strangers; see [`sockets`]).
    pub handed_over: u64,
    /// Unknown senders' Binding requests not shown to the other workers: over the per-worker
    /// budget (a stranger spraying them).
    pub handover_refused: u64,
}

impl std::ops::AddAssign for SocketStats {
    fn add_assign(&mut self, other: SocketStats) {
        self.sent += other.sent;
        self.datagrams_received += other.datagrams_received;
        self.receive_calls += other.receive_calls;
        self.handed_over += other.handed_over;
        self.handover_refused += other.handover_refused;
    }
}

/// What a job gets: the engine and the worker's socket counters.
pub struct WorkerState {
    pub engine: MediaEngine,
    pub socket: SocketStats,
    stop: bool,
    /// Remote addresses this worker's engine accepted a handed-over datagram from: the loop gives
    /// each a connected socket so their next datagrams come straight here.
    adopted: Vec<SocketAddr>,
    /// Results of the jobs run, not yet sent to their callers (see [`WorkerState::send_replies`]).
    replies: Vec<Reply>,
}

/// Sends one job's result to the task awaiting it.
type Reply = Box<dyn FnOnce() + Send>;

impl std::fmt::Debug for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerState")
            .field("engine", &self.engine)
            .field("socket", &self.socket)
            .field("replies", &self.replies.len())
            .finish_non_exhaustive()
    }
}

impl WorkerState {
    /// Send the results of the jobs run so far. The loop calls this just before it waits for
    /// sockets: sending wakes the awaiting task's thread, and on a busy or shared core the kernel
    /// may run that thread at once, ahead of the media this worker still has to read and send
    /// (measured: a 5 µs job took 250–360 µs of the worker's time when it replied at once).
    fn send_replies(&mut self) {
        for reply in self.replies.drain(..) {
            reply();
        }
    }
}

type Job = Box<dyn FnOnce(&mut WorkerState, Instant) + Send>;

/// The worker has stopped (server shutting down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the media worker has stopped")]
pub struct WorkerGone;

/// A cheap, cloneable way to run jobs on one media worker.
#[derive(Debug, Clone)]
pub struct MediaHandle {
    jobs: std_mpsc::Sender<Job>,
    waker: Arc<mio::Waker>,
    transports: TransportBuilder,
}

impl MediaHandle {
    /// Run `f` on the worker thread with the engine and the current time; await its result.
    pub async fn run<R, F>(&self, f: F) -> Result<R, WorkerGone>
    where
        R: Send + 'static,
        F: FnOnce(&mut WorkerState, Instant) -> R + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        self.post(Box::new(move |state, now| {
            let result = f(state, now);
            state.replies.push(Box::new(move || {
                let _ = reply.send(result);
            }));
        }))?;
        result.await.map_err(|_| WorkerGone)
    }

    /// Build a member's two transports (publisher, subscriber) for this worker's engine, on a
    /// blocking thread rather than on the worker: about 1 ms of CPU each, which on the worker
    /// would hold up the media of every call it serves. Give them to the engine with
    /// `add_peer_with`. (Where the worker shares its core, the build still competes for it, but as
    /// a separate thread the scheduler can interleave with the worker.)
    pub async fn build_transports(&self) -> Result<Result<[Transport; 2], MediaError>, WorkerGone> {
        let builder = self.transports.clone();
        let built = tokio::task::spawn_blocking(move || {
            let now = Instant::now();
            Ok::<_, MediaError>([builder.build(now)?, builder.build(now)?])
        })
        .await;
        match built {
            Ok(result) => Ok(result),
            Err(e) if e.is_panic() => {
                tracing::error!(error = %e, "building a transport panicked");
                Ok(Err(MediaError::TransportFailed(e.to_string())))
            }
            // Cancelled: the runtime is shutting down.
            Err(_) => Err(WorkerGone),
        }
    }

    /// Queue a job without waiting for it.
    fn post(&self, job: Job) -> Result<(), WorkerGone> {
        self.jobs.send(job).map_err(|_| WorkerGone)?;
        self.waker.wake().map_err(|_| WorkerGone)
    }

    /// Ask the worker to stop after the jobs already queued.
    pub fn stop(&self) {
        let _ = self.post(Box::new(|state, _| state.stop = true));
    }
}

/// The handles of every worker, in worker order; a call is placed on one of them.
#[derive(Debug, Clone)]
pub struct MediaHandles(Arc<[MediaHandle]>);

impl MediaHandles {
    /// The handle of worker `index` (taken modulo the worker count, so any index is valid).
    pub fn worker(&self, index: usize) -> &MediaHandle {
        &self.0[index % self.0.len()]
    }

    pub fn all(&self) -> &[MediaHandle] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Run `f` on every worker, one after another; the results in worker order.
    pub async fn run_on_all<R, F>(&self, f: F) -> Result<Vec<R>, WorkerGone>
    where
        R: Send + 'static,
        F: Fn(&mut WorkerState, Instant) -> R + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let mut results = Vec::with_capacity(self.0.len());
        for handle in self.0.iter() {
            let f = f.clone();
            results.push(handle.run(move |state, now| f(state, now)).await?);
        }
        Ok(results)
    }
}

/// Settings of the worker pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Where the shared UDP port listens.
    pub bind: SocketAddr,
    /// How many workers (threads); at least 1.
    pub workers: usize,
    /// Advertised as host candidates; empty means the bound address.
    pub candidate_addresses: Vec<SocketAddr>,
    pub keyframe_request_interval: Duration,
    /// See `EngineConfig::resend_window`.
    pub resend_window: Duration,
    /// Where the workers record how long each receive batch and each job took.
    pub timings: WorkerTimings,
}

/// Histograms the workers observe directly (prometheus histograms are atomics, safe to share).
#[derive(Debug, Clone)]
pub struct WorkerTimings {
    /// From reading a batch of datagrams to having sent all they produced.
    pub batch: prometheus::Histogram,
    /// From each datagram's arrival at the socket (kernel timestamp) to having sent all its
    /// receive round produced.
    pub forward: prometheus::Histogram,
    /// One control job (a closure run between batches).
    pub job: prometheus::Histogram,
}

/// The running media workers.
#[derive(Debug)]
pub struct MediaPool {
    pub handles: MediaHandles,
    /// The shared UDP port's address, as bound.
    pub local_addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl MediaPool {
    /// Bind the shared port (one socket per worker) and start the workers. Engine events of every
    /// worker go to `events`.
    pub fn start(
        config: PoolConfig,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> std::io::Result<MediaPool> {
        let count = config.workers.max(1);
        let sockets = sockets::bind_shared(config.bind, count)?;
        let local_addr = sockets[0].local_addr()?;
        let local_addresses = if config.candidate_addresses.is_empty() {
            vec![local_addr]
        } else {
            config.candidate_addresses.clone()
        };
        let engine_config = EngineConfig {
            local_addresses,
            keyframe_request_interval: config.keyframe_request_interval,
            resend_window: config.resend_window,
        };
        // Every loop's poller and job queue exist before any thread starts, so that each worker
        // knows every other's handle (to hand over datagrams).
        let mut loops = Vec::with_capacity(count);
        let mut handles = Vec::with_capacity(count);
        for socket in sockets {
            let poll = mio::Poll::new()?;
            let waker = Arc::new(mio::Waker::new(poll.registry(), event_loop::WAKER)?);
            let (jobs, queue) = std_mpsc::channel();
            let engine = MediaEngine::new(engine_config.clone(), Instant::now());
            handles.push(MediaHandle {
                jobs,
                waker,
                transports: engine.transport_builder(),
            });
            loops.push((poll, socket, queue, engine));
        }
        let handles = MediaHandles(handles.into());
        let owners = Arc::new(DashMap::new());
        let mut threads = Vec::with_capacity(count);
        for (index, (poll, socket, queue, engine)) in loops.into_iter().enumerate() {
            let worker = WorkerLoop::new(event_loop::Setup {
                index,
                poll,
                socket,
                local_addr,
                engine,
                siblings: handles.clone(),
                owners: owners.clone(),
                jobs: queue,
                events: events.clone(),
                timings: config.timings.clone(),
            })?;
            let thread = std::thread::Builder::new()
                .name(format!("dragoman-media-{index}"))
                .spawn(move || worker.run())?;
            threads.push(thread);
        }
        tracing::info!(address = %local_addr, workers = count, "media workers running");
        Ok(MediaPool {
            handles,
            local_addr,
            threads,
        })
    }

    /// Stop every worker and wait for its thread.
    pub fn shutdown(self) {
        for handle in self.handles.all() {
            handle.stop();
        }
        for thread in self.threads {
            if thread.join().is_err() {
                tracing::error!("a media worker thread panicked");
            }
        }
    }
}

/// The worker count to use when the configuration says 0: one per core this process may run on.
pub fn default_worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
