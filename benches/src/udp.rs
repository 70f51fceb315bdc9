//! Real sends on loopback: a sink socket that is never a bottleneck, and a sender that hands the
//! kernel up to [`BATCH`] datagrams per `sendmmsg(2)` call.
//!
//! The `sendmmsg` call is the media workers' own (`dragoman-udp`), so the floor and the fan-out
//! send exactly as the server does.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;

use dragoman_udp::send_batch;
use socket2::SockAddr;

use nix::sys::socket::{setsockopt, sockopt};

/// Datagrams per `sendmmsg` call: the media workers' batch.
pub use dragoman_udp::BATCH;

/// A bound UDP socket on 127.0.0.1 that only receives, drained between measurements.
#[derive(Debug)]
pub struct UdpSink {
    socket: UdpSocket,
    addr: SocketAddrV4,
    buf: Vec<u8>,
    received: u64,
}

impl UdpSink {
    /// Bind on 127.0.0.1 with as large a receive buffer as the system allows (`net.core.rmem_max`),
    /// so that a measured batch fits in it and the kernel delivers (not drops) every datagram.
    pub fn new() -> io::Result<Self> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        socket.set_nonblocking(true)?;
        let wanted = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(4 << 20)
            .min(64 << 20);
        setsockopt(&socket, sockopt::RcvBuf, &wanted).map_err(io::Error::from)?;
        let SocketAddr::V4(addr) = socket.local_addr()? else {
            return Err(io::Error::other("bound an IPv4 address, got IPv6"));
        };
        Ok(UdpSink {
            socket,
            addr,
            buf: vec![0; 2048],
            received: 0,
        })
    }

    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// Receive everything queued. Returns how many datagrams that was.
    pub fn drain(&mut self) -> u64 {
        let mut n = 0;
        while self.socket.recv(&mut self.buf).is_ok() {
            n += 1;
        }
        self.received += n;
        n
    }

    /// Datagrams received so far.
    pub fn received(&self) -> u64 {
        self.received
    }
}

/// A UDP socket on 127.0.0.1 that sends batches with `sendmmsg` (the media workers' own
/// [`dragoman_udp::send_batch`]), all to one destination (the sink: where the datagrams go does not
/// change the cost of the call on loopback).
#[derive(Debug)]
pub struct MmsgSender {
    socket: UdpSocket,
    destination: SocketAddr,
    sent: u64,
    calls: u64,
}

impl MmsgSender {
    pub fn new(destination: SocketAddrV4) -> io::Result<Self> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        Ok(MmsgSender {
            socket,
            destination: destination.into(),
            sent: 0,
            calls: 0,
        })
    }

    /// Send every datagram, [`BATCH`] per system call. Allocates nothing.
    pub fn send(&mut self, datagrams: &[&[u8]]) -> io::Result<()> {
        for chunk in datagrams.chunks(BATCH) {
            // The address is converted per datagram, as a media worker's send queue does.
            let batch: [(&[u8], SockAddr); BATCH] = std::array::from_fn(|i| {
                (
                    chunk.get(i).copied().unwrap_or(&[]),
                    SockAddr::from(self.destination),
                )
            });
            let mut done = 0;
            while done < chunk.len() {
                done += send_batch(self.socket.as_fd(), &batch[done..chunk.len()])?;
                self.calls += 1;
            }
            self.sent += chunk.len() as u64;
        }
        Ok(())
    }

    /// Datagrams sent so far, and `sendmmsg` calls made.
    pub fn sent(&self) -> (u64, u64) {
        (self.sent, self.calls)
    }
}
