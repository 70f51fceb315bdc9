//! One media worker's loop: epoll (mio) over its sockets and its job waker. Datagrams are taken
//! [`dragoman_udp::BATCH`] at a time with `recvmmsg` from each ready socket, round by round; each
//! round is fed to the engine, time is handed to the engine once (it forwards what is left of the
//! round and runs the timers due), and its output goes out with `sendmmsg`, 32 datagrams per
//! call, batches spanning subscribers and sockets (datagrams of a batch to the same subscriber go
//! as one UDP GSO message).
//!
//! In the steady state nothing on that path allocates in this module or crosses a thread. With
//! several workers, a datagram on the group socket costs one read of the shared owner map (a
//! `DashMap`); a peer's datagrams arrive on its connected socket, which needs none.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant, SystemTime};

use dashmap::DashMap;
use dragoman_media::{DropReason, EngineOutput, MediaEngine, MediaEvent};
use dragoman_udp::{RecvBatch, SendQueue, enable_arrival_times};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use tokio::sync::mpsc;

use super::connected::ConnectedSockets;
use super::{Job, MediaHandles, SocketStats, WorkerState, WorkerTimings};
use crate::rate_limit::RateLimiter;

pub(super) const WAKER: Token = Token(0);
const SHARED: Token = Token(1);
/// Tokens of connected sockets start here.
const FIRST_CONNECTED: usize = 2;
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

pub(super) struct WorkerLoop {
    index: usize,
    poll: Poll,
    shared: UdpSocket,
    /// Where peers send to: the engine matches it against its local candidates.
    destination: SocketAddr,
    connected: ConnectedSockets,
    siblings: MediaHandles,
    owners: Arc<DashMap<SocketAddr, usize>>,
    jobs: std_mpsc::Receiver<Job>,
    events: mpsc::UnboundedSender<MediaEvent>,
    timings: WorkerTimings,
    received: RecvBatch,
    /// Kernel arrival times of the datagrams read in the current receive round.
    round_arrivals: Vec<SystemTime>,
    outgoing: SendQueue<Vec<u8>>,
    state: WorkerState,
    next_sweep: Instant,
    /// Bounds the unknown Binding requests shown to the other workers.
    broadcasts: RateLimiter,
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
        if let Err(e) = enable_arrival_times(setup.socket.as_fd()) {
            tracing::warn!(error = %e, "no arrival times on the group socket: dragoman_media_forward_seconds misses its datagrams");
        }
        let mut shared = UdpSocket::from_std(setup.socket);
        setup
            .poll
            .registry()
            .register(&mut shared, SHARED, Interest::READABLE)?;
        let destination = engine_destination(&setup.engine, setup.local_addr);
        Ok(WorkerLoop {
            index: setup.index,
            poll: setup.poll,
            shared,
            destination,
            connected: ConnectedSockets::new(setup.index, setup.local_addr, FIRST_CONNECTED),
            siblings: setup.siblings,
            owners: setup.owners,
            jobs: setup.jobs,
            events: setup.events,
            timings: setup.timings,
            received: RecvBatch::new(),
            round_arrivals: Vec::with_capacity(4 * dragoman_udp::BATCH),
            // Sent datagrams go back to the engine, whose forwards write into them again.
            outgoing: SendQueue::new().keeping_sent(),
            state: WorkerState {
                engine: setup.engine,
                socket: SocketStats::default(),
                stop: false,
                adopted: Vec::new(),
                replies: Vec::new(),
            },
            next_sweep: Instant::now() + SWEEP_INTERVAL,
            broadcasts: RateLimiter::new(BROADCASTS_PER_SECOND, Instant::now()),
        })
    }

    fn is_pool(&self) -> bool {
        self.siblings.len() > 1
    }

    /// Run until asked to stop.
    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut ready: Vec<Token> = Vec::with_capacity(256);
        let mut deadline = self.drain();
        while !self.state.stop {
            self.state.send_replies();
            let wait = deadline
                .min(self.next_sweep)
                .saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(worker = self.index, error = %e, "media worker cannot poll");
                break;
            }
            ready.clear();
            ready.extend(events.iter().map(|e| e.token()).filter(|t| *t != WAKER));
            self.receive(&mut ready);
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
        self.state.send_replies();
        tracing::info!(worker = self.index, "media worker stopped");
    }

    /// Read the ready sockets round by round, a batch from each per round, until each would block
    /// (epoll here is edge-triggered). Each round's datagrams are fed to the engine, time is handed
    /// to it once, and what they produced goes out in one flush, batches spanning sockets.
    fn receive(&mut self, ready: &mut Vec<Token>) {
        while !ready.is_empty() {
            let now = Instant::now();
            let mut read = 0;
            let mut k = 0;
            while k < ready.len() {
                match self.receive_batch(ready[k], now) {
                    Some(n) => {
                        read += n;
                        k += 1;
                    }
                    None => {
                        ready.swap_remove(k);
                    }
                }
            }
            if read > 0 {
                self.state.engine.handle_timeout(now);
                self.drain();
                self.timings.batch.observe(now.elapsed().as_secs_f64());
                let sent = SystemTime::now();
                for arrived in self.round_arrivals.drain(..) {
                    // A real-time clock stepped back makes no sample rather than a false 0.
                    if let Ok(waited) = sent.duration_since(arrived) {
                        self.timings.forward.observe(waited.as_secs_f64());
                    }
                }
            }
        }
    }

    /// Read one batch from a socket and feed it. `None` when the socket has nothing more now.
    fn receive_batch(&mut self, token: Token, now: Instant) -> Option<usize> {
        let mut errors = 0;
        let (count, remote) = loop {
            let (result, remote) = match token {
                SHARED => (self.received.recv(self.shared.as_fd()), None),
                token => {
                    let c = self.connected.get(token)?;
                    (self.received.recv(c.socket.as_fd()), Some(c.remote))
                }
            };
            match result {
                Ok(n) => break (n, remote),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // E.g. ECONNREFUSED on a connected socket after an ICMP error: reported once,
                    // then the datagrams queued behind it are read.
                    tracing::debug!(worker = self.index, error = %e, "receive failed");
                    errors += 1;
                    if errors > MAX_RECEIVE_ERRORS {
                        return None;
                    }
                }
            }
        };
        self.connected.mark_received(token, now);
        self.state.socket.receive_calls += 1;
        self.state.socket.datagrams_received += count as u64;
        for i in 0..count {
            self.take(now, i, remote);
        }
        Some(count)
    }

    /// Feed datagram `i` of the current batch to the engine, or to the worker that owns its peer.
    /// `connected_to`: the peer of the connected socket it came from (`None`: the group socket).
    fn take(&mut self, now: Instant, i: usize, connected_to: Option<SocketAddr>) {
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
        // A connected socket only vouches for its own peer (it is briefly a plain group member
        // between its bind and its connect).
        let direct = connected_to == Some(source);
        if pool && !direct {
            let owner = self.owners.get(&source).map(|o| *o);
            if let Some(owner) = owner.filter(|o| *o != self.index) {
                let contents = datagram.contents.to_vec();
                self.hand_over(owner, source, contents);
                return;
            }
        }
        // Timed from here on: handed to this worker's engine (not dropped, not handed over).
        if let Some(arrived) = datagram.arrived {
            self.round_arrivals.push(arrived);
        }
        match self
            .state
            .engine
            .handle_datagram(now, source, self.destination, datagram.contents)
        {
            Ok(()) => {
                if pool && !direct && !self.connected.has_socket_for(source) {
                    self.state.adopted.push(source);
                }
            }
            Err(DropReason::UnknownSource) if pool && is_binding_request(datagram.contents) => {
                if !self.broadcasts.allow(now) {
                    self.state.socket.handover_refused += 1;
                    return;
                }
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
        let destination = self.destination;
        let job: Job = Box::new(move |state, now| {
            let accepted = state
                .engine
                .handle_datagram(now, source, destination, &contents)
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
        let now = Instant::now();
        for remote in adopted {
            match self
                .connected
                .adopt(self.poll.registry(), &self.owners, remote, now)
            {
                Ok(Some(_)) => tracing::debug!(worker = self.index, %remote, "peer adopted"),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(worker = self.index, %remote, error = %e, "the peer's datagrams keep coming through the group")
                }
            }
        }
    }

    /// Close connected sockets that went quiet or whose peer another worker now owns.
    fn sweep(&mut self, now: Instant) {
        self.next_sweep = now + SWEEP_INTERVAL;
        for remote in self
            .connected
            .sweep(self.poll.registry(), &self.owners, now)
        {
            tracing::debug!(worker = self.index, %remote, "connected socket closed");
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
        for datagram in self.outgoing.take_sent() {
            self.state.engine.recycle(datagram);
        }
        self.state.socket.sent = self.outgoing.stats();
        if let Some(e) = self.outgoing.take_error() {
            tracing::debug!(worker = self.index, error = %e, "send failed");
        }
        deadline
    }
}

/// The destination address the engine expects on received datagrams: its first host candidate
/// (str0m matches it against them), or the socket's own address when it has none.
fn engine_destination(engine: &MediaEngine, bound: SocketAddr) -> SocketAddr {
    engine.local_addresses().first().copied().unwrap_or(bound)
}

/// A STUN Binding request (RFC 8489: type 0x0001, the magic cookie, a 20-byte header at least):
/// the only datagram that can open a new ICE session, so the only one worth showing the other
/// workers.
fn is_binding_request(contents: &[u8]) -> bool {
    contents.len() >= 20 && contents[..2] == [0x00, 0x01] && contents[4..8] == STUN_MAGIC_COOKIE
}

const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

/// How many unknown senders' Binding requests a worker shows the other workers per second (and
/// in one burst): joins bring a few each; a stranger spraying them cannot multiply work across
/// the workers without limit.
const BROADCASTS_PER_SECOND: u32 = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_binding_requests_are_shown_to_other_workers() {
        let mut request = vec![0x00, 0x01, 0x00, 0x00];
        request.extend_from_slice(&STUN_MAGIC_COOKIE);
        request.extend_from_slice(&[7; 12]);
        assert!(is_binding_request(&request));
        assert!(!is_binding_request(&request[..19]), "short");
        let mut response = request.clone();
        response[..2].copy_from_slice(&[0x01, 0x01]);
        assert!(!is_binding_request(&response), "a response");
        let mut no_cookie = request.clone();
        no_cookie[4] = 0;
        assert!(!is_binding_request(&no_cookie), "no magic cookie");
        assert!(!is_binding_request(&[0]), "one byte");
    }
}
