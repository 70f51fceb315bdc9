//! A worker's connected sockets: one per peer it owns, connected to the peer's address on the
//! shared port, so that the kernel delivers that peer's datagrams to this worker directly. This
//! module opens them (adoption), finds them by token, and closes them when they go quiet or
//! another worker takes the peer over (the sweep). The ownership map is shared by all workers.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::sockets;

/// A connected socket with no datagram for this long is closed (its peer left or moved); should
/// the peer come back, its datagrams reach the group again and it is adopted again.
pub(super) const CONNECTED_IDLE: Duration = Duration::from_secs(15);

/// A socket connected to one peer's address, on the shared port.
#[derive(Debug)]
pub(super) struct Connected {
    pub socket: UdpSocket,
    pub remote: SocketAddr,
    last_received: Instant,
}

/// Why a peer got no connected socket (it keeps being served through the group socket).
#[derive(Debug)]
pub(super) enum AdoptError {
    /// Opening or connecting the socket failed.
    Open(io::Error),
    /// The poll would not watch it.
    Register(io::Error),
}

impl std::fmt::Display for AdoptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdoptError::Open(e) => write!(f, "cannot open a connected socket: {e}"),
            AdoptError::Register(e) => write!(f, "cannot watch a connected socket: {e}"),
        }
    }
}

/// The connected sockets of worker `index`, and the peers whose socket could not be opened.
#[derive(Debug)]
pub(super) struct ConnectedSockets {
    index: usize,
    /// The shared port as bound: connected sockets bind to it too.
    local_addr: SocketAddr,
    by_token: HashMap<Token, Connected>,
    by_remote: HashMap<SocketAddr, Token>,
    next_token: usize,
    /// Remote addresses whose connected socket could not be opened, and when: not retried before
    /// [`CONNECTED_IDLE`] has passed.
    failed: HashMap<SocketAddr, Instant>,
}

impl ConnectedSockets {
    /// Tokens are handed out from `first_token` on.
    pub fn new(index: usize, local_addr: SocketAddr, first_token: usize) -> Self {
        ConnectedSockets {
            index,
            local_addr,
            by_token: HashMap::new(),
            by_remote: HashMap::new(),
            next_token: first_token,
            failed: HashMap::new(),
        }
    }

    pub fn get(&self, token: Token) -> Option<&Connected> {
        self.by_token.get(&token)
    }

    pub fn has_socket_for(&self, remote: SocketAddr) -> bool {
        self.by_remote.contains_key(&remote)
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// A datagram came in on `token`'s socket: it is not idle.
    pub fn mark_received(&mut self, token: Token, now: Instant) {
        if let Some(c) = self.by_token.get_mut(&token) {
            c.last_received = now;
        }
    }

    /// Claim `remote` for this worker and open its connected socket unless it has one, or opening
    /// one failed less than [`CONNECTED_IDLE`] ago. Returns the new socket's token.
    pub fn adopt(
        &mut self,
        registry: &Registry,
        owners: &DashMap<SocketAddr, usize>,
        remote: SocketAddr,
        now: Instant,
    ) -> Result<Option<Token>, AdoptError> {
        owners.insert(remote, self.index);
        if self.by_remote.contains_key(&remote) || self.failed.contains_key(&remote) {
            return Ok(None);
        }
        let mut socket = match sockets::connect(self.local_addr, remote) {
            Ok(s) => {
                if let Err(e) = dragoman_udp::enable_arrival_times(s.as_fd()) {
                    // The socket still works; only the delay metric misses its datagrams.
                    tracing::debug!(%remote, error = %e, "no arrival times on a connected socket");
                }
                UdpSocket::from_std(s)
            }
            Err(e) => {
                self.failed.insert(remote, now);
                return Err(AdoptError::Open(e));
            }
        };
        let token = Token(self.next_token);
        if let Err(e) = registry.register(&mut socket, token, Interest::READABLE) {
            self.failed.insert(remote, now);
            return Err(AdoptError::Register(e));
        }
        self.next_token += 1;
        self.by_remote.insert(remote, token);
        self.by_token.insert(
            token,
            Connected {
                socket,
                remote,
                last_received: now,
            },
        );
        Ok(Some(token))
    }

    /// Close the sockets that went quiet for [`CONNECTED_IDLE`] or whose peer another worker now
    /// owns, releasing this worker's claims on them; forget failed adoptions older than
    /// [`CONNECTED_IDLE`] (and their claims, so the peer is adopted again if still here).
    /// Returns the remote addresses whose socket was closed.
    pub fn sweep(
        &mut self,
        registry: &Registry,
        owners: &DashMap<SocketAddr, usize>,
        now: Instant,
    ) -> Vec<SocketAddr> {
        let index = self.index;
        self.failed.retain(|remote, at| {
            let keep = now.saturating_duration_since(*at) <= CONNECTED_IDLE;
            if !keep {
                owners.remove_if(remote, |_, o| *o == index);
            }
            keep
        });
        let stale: Vec<Token> = self
            .by_token
            .iter()
            .filter(|(_, c)| {
                now.saturating_duration_since(c.last_received) > CONNECTED_IDLE
                    || owners.get(&c.remote).is_none_or(|o| *o != index)
            })
            .map(|(t, _)| *t)
            .collect();
        let mut closed = Vec::with_capacity(stale.len());
        for token in stale {
            if let Some(mut c) = self.by_token.remove(&token) {
                let _ = registry.deregister(&mut c.socket);
                self.by_remote.remove(&c.remote);
                owners.remove_if(&c.remote, |_, o| *o == index);
                closed.push(c.remote);
            }
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    const FIRST: usize = 2;

    struct Fixture {
        poll: Poll,
        owners: DashMap<SocketAddr, usize>,
        /// Keep the shared port bound, as the workers' group sockets do.
        _group: Vec<std::net::UdpSocket>,
        sockets: ConnectedSockets,
        peer: std::net::UdpSocket,
    }

    /// Worker 0 of two, their group sockets on a loopback port, and one peer on another.
    fn fixture() -> Fixture {
        let group = sockets::bind_shared("127.0.0.1:0".parse().unwrap(), 2).unwrap();
        let local = group[0].local_addr().unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        Fixture {
            poll: Poll::new().unwrap(),
            owners: DashMap::new(),
            _group: group,
            sockets: ConnectedSockets::new(0, local, FIRST),
            peer,
        }
    }

    impl Fixture {
        fn remote(&self) -> SocketAddr {
            self.peer.local_addr().unwrap()
        }
        fn adopt(&mut self, now: Instant) -> Result<Option<Token>, AdoptError> {
            let remote = self.remote();
            self.sockets
                .adopt(self.poll.registry(), &self.owners, remote, now)
        }
        fn sweep(&mut self, now: Instant) -> Vec<SocketAddr> {
            self.sockets.sweep(self.poll.registry(), &self.owners, now)
        }
    }

    #[test]
    fn an_adopted_peer_is_claimed_and_its_datagrams_arrive_on_its_own_socket() {
        let mut f = fixture();
        let now = Instant::now();
        let token = f.adopt(now).unwrap().expect("a new socket");
        assert_eq!(token, Token(FIRST));
        assert_eq!(f.owners.get(&f.remote()).map(|o| *o), Some(0));
        assert!(f.sockets.has_socket_for(f.remote()));
        assert_eq!(f.adopt(now).unwrap(), None, "adopting again opens nothing");
        assert_eq!(f.sockets.len(), 1);

        let local = f.sockets.local_addr;
        f.peer.send_to(b"media", local).unwrap();
        let mut events = Events::with_capacity(4);
        f.poll
            .poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(
            events.iter().any(|e| e.token() == token),
            "the connected socket is the one woken"
        );
        let mut buf = [0; 16];
        let n = f.sockets.get(token).unwrap().socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"media");
    }

    #[test]
    fn a_socket_idle_too_long_is_closed_and_its_claim_released() {
        let mut f = fixture();
        let start = Instant::now();
        let token = f.adopt(start).unwrap().unwrap();
        let remote = f.remote();

        // Datagrams keep it open past the idle time counted from adoption.
        f.sockets.mark_received(token, start + CONNECTED_IDLE);
        assert!(
            f.sweep(start + CONNECTED_IDLE + Duration::from_secs(1))
                .is_empty()
        );
        assert!(f.sockets.get(token).is_some());

        let quiet = start + 2 * CONNECTED_IDLE + Duration::from_secs(1);
        assert_eq!(f.sweep(quiet), vec![remote]);
        assert!(f.sockets.get(token).is_none());
        assert!(!f.sockets.has_socket_for(remote));
        assert!(f.owners.get(&remote).is_none(), "the claim is released");

        // The peer comes back: adopted again, on a new token.
        let again = f.adopt(quiet).unwrap().unwrap();
        assert_ne!(again, token);
        assert_eq!(f.owners.get(&remote).map(|o| *o), Some(0));
    }

    #[test]
    fn a_peer_another_worker_took_over_is_closed_without_touching_its_claim() {
        let mut f = fixture();
        let now = Instant::now();
        let token = f.adopt(now).unwrap().unwrap();
        let remote = f.remote();
        f.owners.insert(remote, 1);
        assert_eq!(f.sweep(now), vec![remote]);
        assert!(f.sockets.get(token).is_none());
        assert_eq!(
            f.owners.get(&remote).map(|o| *o),
            Some(1),
            "worker 1 keeps the peer"
        );

        // A claim that vanished (the other worker released it) closes the socket too.
        let token = f.adopt(now).unwrap().unwrap();
        f.owners.remove(&remote);
        assert_eq!(f.sweep(now), vec![remote]);
        assert!(f.sockets.get(token).is_none());
    }

    #[test]
    fn a_failed_adoption_is_not_retried_until_the_idle_time_has_passed() {
        let mut f = fixture();
        let now = Instant::now();
        // An IPv4 socket cannot be connected to an IPv6 address: opening the socket fails.
        let unreachable: SocketAddr = "[::1]:9".parse().unwrap();
        let registry = f.poll.registry();
        let err = f
            .sockets
            .adopt(registry, &f.owners, unreachable, now)
            .unwrap_err();
        assert!(matches!(err, AdoptError::Open(_)), "{err}");
        assert_eq!(
            f.owners.get(&unreachable).map(|o| *o),
            Some(0),
            "still served by this worker through the group"
        );
        assert_eq!(
            f.sockets
                .adopt(registry, &f.owners, unreachable, now)
                .unwrap(),
            None,
            "not retried at once"
        );

        assert!(f.sweep(now + CONNECTED_IDLE).is_empty());
        assert_eq!(f.owners.get(&unreachable).map(|o| *o), Some(0));
        f.sweep(now + CONNECTED_IDLE + Duration::from_secs(1));
        assert!(
            f.owners.get(&unreachable).is_none(),
            "forgotten, claim and all"
        );
        let registry = f.poll.registry();
        assert!(
            f.sockets
                .adopt(registry, &f.owners, unreachable, now + CONNECTED_IDLE * 2)
                .is_err(),
            "tried again"
        );
    }
}
