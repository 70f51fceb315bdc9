//! Real sends on loopback: a sink socket that is never a bottleneck, and a sender that hands the
//! kernel up to [`BATCH`] datagrams per `sendmmsg(2)` call.
//!
//! Why `libc::sendmmsg` and not a crate wrapper: an SFU's fan-out sends one datagram to each
//! subscriber, i.e. to many destinations. `quinn-udp` batches only by GSO (many equal segments to
//! one destination) and has no `sendmmsg`; `nix::sys::socket::sendmmsg` is safe to call, but the
//! only way to learn how many messages it sent is to iterate its results, which reads the
//! (never-written, uninitialised) receive-address slots of its `MultiHeaders` on the send path. So
//! the one system call is made here directly, in one small `unsafe` block whose pointers all
//! borrow from the same stack frame.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{setsockopt, sockopt};

/// Datagrams per `sendmmsg` call.
pub const BATCH: usize = 32;

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

/// A UDP socket on 127.0.0.1 that sends batches with `sendmmsg`, all to one destination (the sink:
/// where the datagrams go does not change the cost of the call on loopback).
#[derive(Debug)]
pub struct MmsgSender {
    socket: UdpSocket,
    destination: libc::sockaddr_in,
    sent: u64,
    calls: u64,
}

impl MmsgSender {
    pub fn new(destination: SocketAddrV4) -> io::Result<Self> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let destination = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: destination.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*destination.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        Ok(MmsgSender {
            socket,
            destination,
            sent: 0,
            calls: 0,
        })
    }

    /// Send every datagram, [`BATCH`] per system call. Allocates nothing.
    pub fn send(&mut self, datagrams: &[&[u8]]) -> io::Result<()> {
        for chunk in datagrams.chunks(BATCH) {
            let mut done = 0;
            while done < chunk.len() {
                done += self.send_batch(&chunk[done..])?;
            }
        }
        Ok(())
    }

    /// One `sendmmsg` call with at most [`BATCH`] datagrams. Returns how many the kernel took.
    fn send_batch(&mut self, datagrams: &[&[u8]]) -> io::Result<usize> {
        let n = datagrams.len().min(BATCH);
        let mut iovs: [libc::iovec; BATCH] = std::array::from_fn(|i| {
            let data = datagrams.get(i).copied().unwrap_or(&[]);
            libc::iovec {
                // The kernel only reads through `iov_base` for a send.
                iov_base: data.as_ptr().cast_mut().cast(),
                iov_len: data.len(),
            }
        });
        let name: *mut libc::sockaddr_in = &mut self.destination;
        let mut messages: [libc::mmsghdr; BATCH] = std::array::from_fn(|i| libc::mmsghdr {
            msg_hdr: libc::msghdr {
                msg_name: name.cast(),
                msg_namelen: size_of::<libc::sockaddr_in>() as libc::socklen_t,
                msg_iov: &mut iovs[i],
                msg_iovlen: 1,
                msg_control: std::ptr::null_mut(),
                msg_controllen: 0,
                msg_flags: 0,
            },
            msg_len: 0,
        });
        let sent = sendmmsg(&self.socket, &mut messages[..n])?;
        self.sent += sent as u64;
        self.calls += 1;
        Ok(sent)
    }

    /// Datagrams sent so far, and `sendmmsg` calls made.
    pub fn sent(&self) -> (u64, u64) {
        (self.sent, self.calls)
    }
}

// The one system call. `sendmmsg` reads `messages[..]`, each `msghdr`'s name and iovec, and the
// bytes the iovecs point at; it writes only each `msg_len`.
#[allow(unsafe_code)]
fn sendmmsg(socket: &UdpSocket, messages: &mut [libc::mmsghdr]) -> io::Result<usize> {
    if messages.is_empty() {
        return Ok(0);
    }
    // SAFETY: `messages` is a live, exclusive slice of initialised `mmsghdr`s and its length is
    // passed with it. Every pointer inside (the destination address, the iovecs and the datagram
    // bytes) borrows from the caller's frame, which outlives this call, and each length matches
    // its buffer. The file descriptor is open for as long as `socket` is borrowed.
    let n = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            messages.as_mut_ptr(),
            messages.len() as libc::c_uint,
            0,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
