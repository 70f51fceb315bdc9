//! The media sockets, and how a datagram finds the worker that owns its peer.
//!
//! All workers share one UDP port. Each has an unconnected socket on it, in one `SO_REUSEPORT`
//! group; the kernel spreads datagrams over those by a hash of the sender's address, which knows
//! nothing of calls. So a new peer's first datagrams (its ICE checks) may land on any worker:
//!
//! 1. A worker whose engine does not know the sender hands a STUN datagram to every other worker
//!    (a job carrying a copy). The one whose engine accepts it records itself as the sender's
//!    owner in a shared map, and
//! 2. opens a socket **connected** to the sender on the same port. For a datagram from that
//!    address the kernel prefers a connected socket over the group (a better match of the
//!    4-tuple), so from then on the peer's packets arrive on its owner's thread directly.
//! 3. Meanwhile, a datagram that still lands on another worker is handed to the owner the map
//!    names.
//!
//! Only the connection phase crosses threads; steady-state media never does. Sends always go out
//! of the worker's unconnected socket (same port, any destination), so one `sendmmsg` batch spans
//! subscribers. With one worker there is no group and no connected socket.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Kernel buffer asked for each shared socket. The default (~200 KB, under 100 full datagrams)
/// overflows in bursts at around ten calls; the kernel caps the request at `net.core.rmem_max`.
const SHARED_SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// Receive buffer of a connected socket: one peer's uplink (a few Mbit/s) in bursts.
const CONNECTED_SOCKET_BUFFER: usize = 1024 * 1024;

/// Bind `count` sockets to `addr` (the first one decides the port when it is 0), in one
/// `SO_REUSEPORT` group when there are several.
pub fn bind_shared(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::UdpSocket>> {
    let mut sockets: Vec<std::net::UdpSocket> = Vec::with_capacity(count);
    let mut bound = addr;
    for _ in 0..count.max(1) {
        let socket = new_socket(bound, SHARED_SOCKET_BUFFER, count > 1)?;
        socket.bind(&bound.into())?;
        let socket: std::net::UdpSocket = socket.into();
        bound = socket.local_addr()?;
        sockets.push(socket);
    }
    tracing::info!(
        address = %bound,
        sockets = sockets.len(),
        receive_buffer = socket2::SockRef::from(&sockets[0])
            .recv_buffer_size()
            .unwrap_or(0),
        "media port bound"
    );
    Ok(sockets)
}

/// A socket on the shared port connected to one remote address: the kernel delivers that
/// address's datagrams to it rather than to the group.
pub fn connect(local: SocketAddr, remote: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = new_socket(local, CONNECTED_SOCKET_BUFFER, true)?;
    socket.bind(&local.into())?;
    socket.connect(&remote.into())?;
    Ok(socket.into())
}

fn new_socket(addr: SocketAddr, buffer: usize, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    for (what, result) in [
        ("receive", socket.set_recv_buffer_size(buffer)),
        ("send", socket.set_send_buffer_size(buffer)),
    ] {
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not enlarge a media socket's {what} buffer");
        }
    }
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn recv(socket: &std::net::UdpSocket) -> Option<Vec<u8>> {
        socket.set_nonblocking(false).ok()?;
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .ok()?;
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf).ok()?;
        Some(buf[..n].to_vec())
    }

    /// The kernel behaviour the worker steering rests on: a connected socket in the group gets its
    /// peer's datagrams, whichever group socket the hash would have picked.
    #[test]
    fn a_connected_socket_takes_its_peers_datagrams_from_the_group() -> io::Result<()> {
        let group = bind_shared("127.0.0.1:0".parse().map_err(io::Error::other)?, 2)?;
        let port = group[0].local_addr()?;
        assert_eq!(group[1].local_addr()?, port, "one shared port");
        let peers: Vec<std::net::UdpSocket> = (0..8)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0"))
            .collect::<io::Result<_>>()?;
        let connected: Vec<std::net::UdpSocket> = peers
            .iter()
            .map(|p| connect(port, p.local_addr()?))
            .collect::<io::Result<_>>()?;
        for (i, peer) in peers.iter().enumerate() {
            peer.send_to(&[i as u8], port)?;
        }
        for (i, socket) in connected.iter().enumerate() {
            assert_eq!(recv(socket), Some(vec![i as u8]), "peer {i}");
        }
        // A stranger still reaches the group.
        let stranger = std::net::UdpSocket::bind("127.0.0.1:0")?;
        stranger.send_to(b"new", port)?;
        let reached = group.iter().filter_map(recv).collect::<Vec<_>>();
        assert_eq!(reached, vec![b"new".to_vec()]);
        Ok(())
    }
}
