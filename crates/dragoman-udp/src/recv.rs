//! Receiving up to [`BATCH`] datagrams from any sources with one `recvmmsg(2)` call.

use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::time::SystemTime;

use crate::BATCH;
use crate::sys;

/// Largest datagram taken whole; a longer one arrives cut and marked [`Datagram::truncated`].
/// WebRTC keeps datagrams under the path MTU (about 1200–1500 bytes).
pub const MAX_DATAGRAM: usize = 2048;

/// One received datagram.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// `None` if the kernel gave a non-IP source (not on a UDP socket).
    pub source: Option<SocketAddr>,
    pub contents: &'a [u8],
    /// Longer than [`MAX_DATAGRAM`]: `contents` is only its start.
    pub truncated: bool,
    /// When the kernel received it, if the socket stamps arrivals (see [`enable_arrival_times`]).
    pub arrived: Option<SystemTime>,
}

/// Have the kernel stamp every datagram received on `fd` with its arrival time, which
/// [`Datagram::arrived`] then gives: how long a datagram waited in the socket, and the whole
/// delay a server adds, can be measured.
pub fn enable_arrival_times(fd: BorrowedFd<'_>) -> io::Result<()> {
    sys::enable_arrival_times(fd)
}

/// Room for a message's control data: an arrival time (`CMSG_SPACE(sizeof(timespec))`, 32
/// bytes) with room to spare, aligned for `cmsghdr`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct ControlBuffer([u8; 64]);

const _: () =
    assert!(std::mem::align_of::<ControlBuffer>() >= std::mem::align_of::<libc::cmsghdr>());

/// Buffers for one `recvmmsg` call, allocated once and reused.
pub struct RecvBatch {
    buffers: Box<[[u8; MAX_DATAGRAM]; BATCH]>,
    sources: Box<[libc::sockaddr_storage; BATCH]>,
    controls: Box<[ControlBuffer; BATCH]>,
    arrivals: [Option<SystemTime>; BATCH],
    lengths: [usize; BATCH],
    flags: [libc::c_int; BATCH],
    count: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> Self {
        RecvBatch {
            buffers: Box::new([[0; MAX_DATAGRAM]; BATCH]),
            sources: Box::new(std::array::from_fn(|_| sys::empty_storage())),
            controls: Box::new([ControlBuffer([0; 64]); BATCH]),
            arrivals: [None; BATCH],
            lengths: [0; BATCH],
            flags: [0; BATCH],
            count: 0,
        }
    }

    /// Take what is waiting on `fd`, up to [`BATCH`] datagrams, without blocking. Returns how many
    /// (`WouldBlock` when there are none); [`RecvBatch::iter`] gives them.
    pub fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.count = 0;
        let mut iovs: [libc::iovec; BATCH] = std::array::from_fn(|_| libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        });
        for (iov, buffer) in iovs.iter_mut().zip(self.buffers.iter_mut()) {
            iov.iov_base = buffer.as_mut_ptr().cast();
            iov.iov_len = buffer.len();
        }
        let mut messages: [libc::mmsghdr; BATCH] = std::array::from_fn(|_| libc::mmsghdr {
            msg_hdr: libc::msghdr {
                msg_name: std::ptr::null_mut(),
                msg_namelen: size_of::<libc::sockaddr_storage>() as libc::socklen_t,
                msg_iov: std::ptr::null_mut(),
                msg_iovlen: 1,
                msg_control: std::ptr::null_mut(),
                msg_controllen: 0,
                msg_flags: 0,
            },
            msg_len: 0,
        });
        for (((message, iov), source), control) in messages
            .iter_mut()
            .zip(iovs.iter_mut())
            .zip(self.sources.iter_mut())
            .zip(self.controls.iter_mut())
        {
            message.msg_hdr.msg_iov = iov;
            message.msg_hdr.msg_name = std::ptr::from_mut(source).cast();
            message.msg_hdr.msg_control = control.0.as_mut_ptr().cast();
            message.msg_hdr.msg_controllen = control.0.len() as _;
        }
        // SAFETY: each message's `msg_name` points at its own element of `self.sources` with
        // `msg_namelen` its size, its `msg_control` at its own element of `self.controls` with
        // `msg_controllen` its size, and its `msg_iov` at one element of `iovs`, which points at
        // its own buffer of `self.buffers` with `iov_len` its size; `self` is exclusively borrowed
        // and `iovs` lives in this frame, both for the whole call.
        #[allow(unsafe_code)]
        let n = unsafe { sys::recvmmsg(fd, &mut messages)? };
        for (i, message) in messages.iter().take(n).enumerate() {
            self.lengths[i] = (message.msg_len as usize).min(MAX_DATAGRAM);
            self.flags[i] = message.msg_hdr.msg_flags;
            // SAFETY: the kernel set `msg_controllen` to the bytes it wrote into this message's
            // control buffer (aligned for `cmsghdr`), which stays borrowed here.
            #[allow(unsafe_code)]
            let arrived = unsafe { sys::arrival_time(&message.msg_hdr) };
            self.arrivals[i] = arrived;
        }
        self.count = n;
        Ok(n)
    }

    /// How many datagrams the last [`RecvBatch::recv`] took.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Datagram `i` of the last [`RecvBatch::recv`].
    pub fn get(&self, i: usize) -> Option<Datagram<'_>> {
        (i < self.count).then(|| Datagram {
            source: sys::to_socket_addr(&self.sources[i]),
            contents: &self.buffers[i][..self.lengths[i]],
            truncated: self.flags[i] & libc::MSG_TRUNC != 0,
            arrived: self.arrivals[i],
        })
    }

    /// The datagrams of the last [`RecvBatch::recv`].
    pub fn iter(&self) -> impl Iterator<Item = Datagram<'_>> {
        (0..self.count).filter_map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn nothing_waiting_is_would_block() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = RecvBatch::new();
        let e = batch.recv(socket.as_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(batch.iter().count(), 0);
    }

    #[test]
    fn a_batch_takes_at_most_its_size_and_marks_long_datagrams() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("[::ffff:127.0.0.1]:0")
            .or_else(|_| UdpSocket::bind("127.0.0.1:0"))
            .unwrap();
        let to = receiver.local_addr().unwrap();
        sender.send_to(&[7u8; MAX_DATAGRAM + 100], to).unwrap();
        for i in 0..BATCH + 5 {
            sender.send_to(&[i as u8; 10], to).unwrap();
        }
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(receiver.as_fd()).unwrap(), BATCH);
        let first = batch.iter().next().unwrap();
        assert!(first.truncated);
        assert_eq!(first.contents.len(), MAX_DATAGRAM);
        assert_eq!(
            first.source.unwrap().port(),
            sender.local_addr().unwrap().port()
        );
        assert_eq!(batch.recv(receiver.as_fd()).unwrap(), 6);
        let last = batch.iter().last().unwrap();
        assert_eq!(last.contents, &[(BATCH + 4) as u8; 10]);
        assert!(!last.truncated);
    }

    #[test]
    fn arrival_times_are_given_once_asked_for() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let mut batch = RecvBatch::new();
        sender.send_to(b"unstamped", to).unwrap();
        batch.recv(receiver.as_fd()).unwrap();
        assert_eq!(batch.get(0).unwrap().arrived, None);

        enable_arrival_times(receiver.as_fd()).unwrap();
        let before = SystemTime::now();
        sender.send_to(b"one", to).unwrap();
        sender.send_to(b"two", to).unwrap();
        let after = SystemTime::now();
        assert_eq!(batch.recv(receiver.as_fd()).unwrap(), 2);
        for d in batch.iter() {
            let arrived = d.arrived.expect("stamped");
            // The kernel's clock is the same real-time clock, read between the two reads here
            // (allowing for its coarser tick).
            assert!(arrived + std::time::Duration::from_millis(10) >= before);
            assert!(arrived <= after + std::time::Duration::from_millis(10));
        }
    }

    /// What the media workers rely on for their connected sockets: an ICMP error (here: port
    /// unreachable) comes out of one `recv` as an error, once, and the datagrams queued on the
    /// socket are still read after it.
    #[test]
    fn a_socket_error_is_reported_once_and_queued_datagrams_still_arrive() {
        // One try: a port nobody listens on is probed (the kernel answers port unreachable), then
        // taken again and sends one datagram. `None` when the try proves nothing: another test
        // grabbed the freed port, or the kernel had not yet handled the unreachable when the port
        // was taken again (so the probe reached the new socket and there was no error).
        let attempt = || {
            let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
            let peer_addr = closed.local_addr().unwrap();
            drop(closed);
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_nonblocking(true).unwrap();
            socket.connect(peer_addr).unwrap();
            socket.send(b"probe").unwrap();
            let peer = UdpSocket::bind(peer_addr).ok()?;
            peer.send_to(b"after", socket.local_addr().unwrap())
                .unwrap();
            let mut batch = RecvBatch::new();
            let mut errors = Vec::new();
            let mut received = Vec::new();
            for _ in 0..4 {
                match batch.recv(socket.as_fd()) {
                    Ok(_) => received.extend(batch.iter().map(|d| d.contents.to_vec())),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => errors.push(e.kind()),
                }
            }
            (!errors.is_empty()).then_some((errors, received))
        };
        let (errors, received) = (0..10)
            .find_map(|_| attempt())
            .expect("no port-unreachable error in 10 tries");
        assert_eq!(errors, vec![io::ErrorKind::ConnectionRefused]);
        assert_eq!(received, vec![b"after".to_vec()]);
    }
}
