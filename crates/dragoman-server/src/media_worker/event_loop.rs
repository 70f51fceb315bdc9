//! One media worker's loop: epoll (mio) over its sockets and its job waker; datagrams taken
//! [`BATCH`] at a time with `recvmmsg`, fed to the engine, and the engine's output sent [`BATCH`]
//! at a time with `sendmmsg`, batches spanning subscribers (datagrams of a batch to the same
//! subscriber go as one UDP GSO message).
//!
//! Per receive batch: feed every datagram, hand time to the engine once (str0m releases written
//! packets only then), drain its output into the send queue, flush. Nothing on that path allocates
//! in this module, takes a lock or crosses a thread.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dragoman_media::{DropReason, EngineOutput, MediaEngine, MediaEvent};
use dragoman_udp::{BATCH, RecvBatch, SendQueue};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use tokio::sync::mpsc;

use super::{Job, MediaHandles, SocketStats, WorkerState, WorkerTimings, sockets};

pub(super) const WAKER: Token = Token(0);
const SHARED: Token = Token(1);
/// Tokens of connected sockets start here.
const FIRST_CONNECTED: usize = 2;
/// A connected socket with no datagram for this long is closed (its peer left or moved); should
/// the peer come back, its datagrams reach the group again and it is adopted again.
const CONNECTED_IDLE: Duration = Duration::from_secs(15);
/// How often connected sockets are checked for idleness and ownership.
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// Receive errors in a row after which a socket is left until its next readiness event.
const MAX_RECEIVE_ERRORS: u32 = 4;
/// Jobs run per wake-up before media gets a turn again.
const JOBS_PER_TURN: usize = 64;

/// Everything a worker loop starts with.
pub(super) struct Setup {
    pub index: usize,
    pub poll: Poll,
    pub socket: std::net::UdpSocket,
    pub local_addr: SocketAddr,
    pub engine: MediaEngine,
    pub siblings: MediaHandles,
    pub owners: Arc<DashMap<SocketAddr, usize>>,
    pub jobs: std_mpsc::Receiver<Job>,
    pub events: mpsc::UnboundedSender<MediaEvent>,
    pub timings: WorkerTimings,
}

/// A socket connected to one peer's address, on the shared port.
struct Connected {
    socket: UdpSocket,
    remote: SocketAddr,
    last_received: Instant,
}

/// How a datagram reached this worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The worker's socket in the group: any sender.
    Shared,
    /// A socket connected to the sender.
    Connected,
}

pub(super) struct WorkerLoop {
    index: usize,
    poll: Poll,
    shared: UdpSocket,
    /// Where peers send to: the engine matches it against its local candidates.
    destination: SocketAddr,
    /// The shared port as bound, for connected sockets.
    local_addr: SocketAddr,
    connected: HashMap<Token, Connected>,
    by_remote: HashMap<SocketAddr, Token>,
    next_token: usize,
    siblings: MediaHandles,
    owners: Arc<DashMap<SocketAddr, usize>>,
    jobs: std_mpsc::Receiver<Job>,
    events: mpsc::UnboundedSender<MediaEvent>,
    timings: WorkerTimings,
    received: RecvBatch,
    outgoing: SendQueue<Vec<u8>>,
    state: WorkerState,
    next_sweep: Instant,
}

impl std::fmt::Debug for WorkerLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerLoop")
            .field("index", &self.index)
            .field("connected", &self.connected.len())
            .finish_non_exhaustive()
    }
}

impl WorkerLoop {
    pub(super) fn new(setup: Setup) -> io::Result<WorkerLoop> {
        let mut shared = UdpSocket::from_std(setup.socket);
        setup
            .poll
            .registry()
            .register(&mut shared, SHARED, Interest::READABLE)?;
        let destination = setup
            .engine
            .local_addresses()
            .first()
            .copied()
            .unwrap_or(setup.local_addr);
        Ok(WorkerLoop {
            index: setup.index,
            poll: setup.poll,
            shared,
            destination,
            local_addr: setup.local_addr,
            connected: HashMap::new(),
            by_remote: HashMap::new(),
            next_token: FIRST_CONNECTED,
            siblings: setup.siblings,
            owners: setup.owners,
            jobs: setup.jobs,
            events: setup.events,
            timings: setup.timings,
            received: RecvBatch::new(),
            outgoing: SendQueue::new(),
            state: WorkerState {
                engine: setup.engine,
                socket: SocketStats::default(),
                stop: false,
                adopted: Vec::new(),
            },
            next_sweep: Instant::now() + SWEEP_INTERVAL,
        })
    }

    fn is_pool(&self) -> bool {
        self.siblings.len() > 1
    }

    /// Run until asked to stop (or every handle is gone).
    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut deadline = self.drain();
        while !self.state.stop {
            let wait = deadline
                .min(self.next_sweep)
                .saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(worker = self.index, error = %e, "media worker cannot poll");
                break;
            }
            for event in events.iter() {
                if event.token() != WAKER {
                    self.receive(event.token());
                }
            }
            if !self.run_jobs() {
                break;
            }
            self.adopt_new_peers();
            let now = Instant::now();
            if now >= self.next_sweep {
                self.sweep(now);
            }
            if now >= deadline {
                self.state.engine.handle_timeout(now);
            }
            deadline = self.drain();
        }
        tracing::info!(worker = self.index, "media worker stopped");
    }

    /// Take everything waiting on one socket, a batch at a time, each batch forwarded at once.
    fn receive(&mut self, token: Token) {
        let mut errors = 0;
        loop {
            let result = match token {
                SHARED => self.received.recv(self.shared.as_fd()),
                token => match self.connected.get(&token) {
                    Some(c) => self.received.recv(c.socket.as_fd()),
                    None => return,
                },
            };
            let count = match result {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // E.g. ECONNREFUSED on a connected socket after an ICMP error: reported once,
                    // then the datagrams queued behind it are read.
                    tracing::debug!(worker = self.index, error = %e, "receive failed");
                    errors += 1;
                    if errors > MAX_RECEIVE_ERRORS {
                        return;
                    }
                    continue;
                }
            };
            let now = Instant::now();
            let via = if token == SHARED {
                Via::Shared
            } else {
                if let Some(c) = self.connected.get_mut(&token) {
                    c.last_received = now;
                }
                Via::Connected
            };
            self.state.socket.receive_calls += 1;
            self.state.socket.datagrams_received += count as u64;
            for i in 0..count {
                self.take(now, i, via);
            }
            self.state.engine.handle_timeout(now);
            self.drain();
            self.timings.batch.observe(now.elapsed().as_secs_f64());
            if count < BATCH {
                // Epoll reports every new arrival again; the next read would find nothing.
                return;
            }
        }
    }

    /// Feed datagram `i` of the current batch to the engine, or to the worker that owns its peer.
    fn take(&mut self, now: Instant, i: usize, via: Via) {
        let Some(datagram) = self.received.get(i) else {
            return;
        };
        let Some(source) = datagram.source else {
            return;
        };
        if datagram.truncated {
            tracing::debug!(worker = self.index, %source, "datagram too long, dropped");
            return;
        }
        let pool = self.is_pool();
        if pool && via == Via::Shared {
            let owner = self.owners.get(&source).map(|o| *o);
            if let Some(owner) = owner.filter(|o| *o != self.index) {
                let contents = datagram.contents.to_vec();
                self.hand_over(owner, source, contents);
                return;
            }
        }
        match self
            .state
            .engine
            .handle_datagram(now, source, self.destination, datagram.contents)
        {
            Ok(()) => {
                if pool && via == Via::Shared && !self.by_remote.contains_key(&source) {
                    self.state.adopted.push(source);
                }
            }
            Err(DropReason::UnknownSource) if pool && is_stun(datagram.contents) => {
                let contents = datagram.contents.to_vec();
                for owner in 0..self.siblings.len() {
                    if owner != self.index {
                        self.hand_over(owner, source, contents.clone());
                    }
                }
            }
            Err(_) => {}
        }
    }

    /// Give a datagram to worker `owner` (a job on its queue).
    fn hand_over(&mut self, owner: usize, source: SocketAddr, contents: Vec<u8>) {
        self.state.socket.handed_over += 1;
        let job: Job = Box::new(move |state, now| {
            let accepted = state
                .engine
                .handle_datagram(now, source, state.engine_destination(), &contents)
                .is_ok();
            if accepted {
                state.adopted.push(source);
            }
        });
        let _ = self.siblings.worker(owner).post(job);
    }

    /// Run queued jobs. Returns false when every handle is gone.
    fn run_jobs(&mut self) -> bool {
        for _ in 0..JOBS_PER_TURN {
            match self.jobs.try_recv() {
                Ok(job) => {
                    let started = Instant::now();
                    job(&mut self.state, started);
                    self.timings.job.observe(started.elapsed().as_secs_f64());
                }
                Err(std_mpsc::TryRecvError::Empty) => return true,
                Err(std_mpsc::TryRecvError::Disconnected) => return false,
            }
        }
        // More are waiting: make sure the next poll returns at once.
        let _ = self.siblings.worker(self.index).waker.wake();
        true
    }

    /// Claim the peers this worker's engine accepted through the group or from a sibling: record
    /// the ownership and open a connected socket so their datagrams come straight here.
    fn adopt_new_peers(&mut self) {
        let adopted = std::mem::take(&mut self.state.adopted);
        for remote in adopted {
            self.owners.insert(remote, self.index);
            if self.by_remote.contains_key(&remote) {
                continue;
            }
            let mut socket = match sockets::connect(self.local_addr, remote) {
                Ok(s) => UdpSocket::from_std(s),
                Err(e) => {
                    tracing::warn!(worker = self.index, %remote, error = %e, "cannot open a connected socket");
                    continue;
                }
            };
            let token = Token(self.next_token);
            self.next_token += 1;
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut socket, token, Interest::READABLE)
            {
                tracing::warn!(worker = self.index, error = %e, "cannot watch a connected socket");
                continue;
            }
            tracing::debug!(worker = self.index, %remote, "peer adopted");
            self.by_remote.insert(remote, token);
            self.connected.insert(
                token,
                Connected {
                    socket,
                    remote,
                    last_received: Instant::now(),
                },
            );
        }
    }

    /// Close connected sockets that went quiet or whose peer another worker now owns.
    fn sweep(&mut self, now: Instant) {
        self.next_sweep = now + SWEEP_INTERVAL;
        let index = self.index;
        let stale: Vec<Token> = self
            .connected
            .iter()
            .filter(|(_, c)| {
                now.saturating_duration_since(c.last_received) > CONNECTED_IDLE
                    || self.owners.get(&c.remote).is_none_or(|o| *o != index)
            })
            .map(|(t, _)| *t)
            .collect();
        for token in stale {
            if let Some(mut c) = self.connected.remove(&token) {
                let _ = self.poll.registry().deregister(&mut c.socket);
                self.by_remote.remove(&c.remote);
                self.owners.remove_if(&c.remote, |_, o| *o == index);
                tracing::debug!(worker = index, remote = %c.remote, "connected socket closed");
            }
        }
    }

    /// Send everything the engine has to send, pass on its events, and return its next deadline.
    fn drain(&mut self) -> Instant {
        let fd = self.shared.as_fd();
        let deadline = loop {
            match self.state.engine.poll_output() {
                EngineOutput::Transmit(transmit) => {
                    self.outgoing
                        .push(fd, transmit.contents.into(), transmit.destination);
                }
                EngineOutput::Event(event) => {
                    let _ = self.events.send(event);
                }
                EngineOutput::Timeout(deadline) => break deadline,
            }
        };
        self.outgoing.flush(fd);
        let sent = self.outgoing.stats();
        let socket = &mut self.state.socket;
        socket.datagrams_sent = sent.datagrams;
        socket.bytes_sent = sent.bytes;
        socket.send_calls = sent.calls;
        socket.segmented_messages = sent.segmented_messages;
        socket.send_errors = sent.errors + sent.dropped_full;
        if let Some(e) = self.outgoing.take_error() {
            tracing::debug!(worker = self.index, error = %e, "send failed");
        }
        deadline
    }
}

impl WorkerState {
    /// The destination address the engine expects on received datagrams.
    fn engine_destination(&self) -> SocketAddr {
        self.engine
            .local_addresses()
            .first()
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

/// STUN messages start with two zero bits (RFC 7983); only they can open a new ICE session.
fn is_stun(contents: &[u8]) -> bool {
    contents.first().is_some_and(|b| *b < 2)
}
