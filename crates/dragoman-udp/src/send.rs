//! Sending datagrams to many destinations, up to [`BATCH`] per `sendmmsg(2)` call.

use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use socket2::SockAddr;

use crate::BATCH;
use crate::sys;

/// How long a full send buffer is waited for before the rest of a batch is dropped. Loopback and
/// LAN drain a 4 MB buffer in well under this; a buffer still full after it means a stalled
/// kernel path, and late media is worthless anyway.
const MAX_SEND_WAIT: Duration = Duration::from_millis(5);

/// Send up to [`BATCH`] datagrams, each to its own destination, with one system call. Returns how
/// many the kernel took, from the first; an error means the first one was not sent.
pub fn send_batch<D: AsRef<[u8]>>(
    fd: BorrowedFd<'_>,
    datagrams: &[(D, SockAddr)],
) -> io::Result<usize> {
    let n = datagrams.len().min(BATCH);
    let mut iovs: [libc::iovec; BATCH] = std::array::from_fn(|i| {
        let data = datagrams.get(i).map_or(&[][..], |(d, _)| d.as_ref());
        libc::iovec {
            // The kernel only reads through `iov_base` on a send.
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        }
    });
    let mut messages: [libc::mmsghdr; BATCH] = std::array::from_fn(|i| {
        let (name, namelen) = datagrams
            .get(i)
            .map_or((std::ptr::null_mut(), 0), |(_, to)| {
                (to.as_ptr().cast_mut().cast(), to.len())
            });
        libc::mmsghdr {
            msg_hdr: libc::msghdr {
                msg_name: name,
                msg_namelen: namelen,
                msg_iov: std::ptr::null_mut(),
                msg_iovlen: 1,
                msg_control: std::ptr::null_mut(),
                msg_controllen: 0,
                msg_flags: 0,
            },
            msg_len: 0,
        }
    });
    for (message, iov) in messages.iter_mut().zip(iovs.iter_mut()) {
        message.msg_hdr.msg_iov = iov;
    }
    sys::sendmmsg(fd, &mut messages[..n])
}

/// What a [`SendQueue`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    pub datagrams: u64,
    pub bytes: u64,
    /// `sendmmsg` calls made.
    pub calls: u64,
    /// Datagrams the kernel refused (e.g. no route): each is skipped, the rest still go.
    pub errors: u64,
    /// Datagrams dropped because the send buffer stayed full.
    pub dropped_full: u64,
}

/// Datagrams waiting to go out on one socket. [`SendQueue::push`] sends a full batch at once;
/// [`SendQueue::flush`] sends the rest. Its buffer is allocated once: pushing allocates nothing.
#[derive(Debug)]
pub struct SendQueue<D> {
    pending: Vec<(D, SockAddr)>,
    stats: SendStats,
    last_error: Option<io::Error>,
}

impl<D: AsRef<[u8]>> Default for SendQueue<D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D: AsRef<[u8]>> SendQueue<D> {
    pub fn new() -> Self {
        SendQueue {
            pending: Vec::with_capacity(BATCH),
            stats: SendStats::default(),
            last_error: None,
        }
    }

    /// Queue a datagram; when a batch is full, send it on `fd`.
    pub fn push(&mut self, fd: BorrowedFd<'_>, datagram: D, to: SocketAddr) {
        self.pending.push((datagram, SockAddr::from(to)));
        if self.pending.len() >= BATCH {
            self.flush(fd);
        }
    }

    /// Datagrams queued and not sent yet.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Send everything queued. A datagram the kernel refuses is counted and skipped; when the send
    /// buffer stays full for [`MAX_SEND_WAIT`], the rest is counted and dropped.
    pub fn flush(&mut self, fd: BorrowedFd<'_>) {
        let mut start = 0;
        while start < self.pending.len() {
            match send_batch(fd, &self.pending[start..]) {
                Ok(sent) => {
                    self.stats.calls += 1;
                    for (datagram, _) in &self.pending[start..start + sent] {
                        self.stats.datagrams += 1;
                        self.stats.bytes += datagram.as_ref().len() as u64;
                    }
                    start += sent;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !sys::wait_writable(fd, MAX_SEND_WAIT).unwrap_or(false) {
                        self.stats.dropped_full += (self.pending.len() - start) as u64;
                        self.last_error = Some(e);
                        break;
                    }
                }
                Err(e) => {
                    self.stats.errors += 1;
                    self.last_error = Some(e);
                    start += 1;
                }
            }
        }
        self.pending.clear();
    }

    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// The last error a send met, taken (for a log line).
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.last_error.take()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    use super::*;
    use crate::RecvBatch;

    #[test]
    fn a_queue_reaches_many_destinations_in_order() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sinks: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut queue = SendQueue::new();
        for i in 0..100u32 {
            let sink = &sinks[i as usize % sinks.len()];
            queue.push(
                sender.as_fd(),
                i.to_be_bytes().to_vec(),
                sink.local_addr().unwrap(),
            );
        }
        assert_eq!(queue.len(), 100 % BATCH, "full batches go at once");
        queue.flush(sender.as_fd());
        assert!(queue.is_empty());
        let stats = queue.stats();
        assert_eq!((stats.datagrams, stats.bytes), (100, 400));
        assert_eq!(stats.calls, 4, "100 datagrams in batches of 32");

        for (k, sink) in sinks.iter().enumerate() {
            let mut batch = RecvBatch::new();
            let mut got = Vec::new();
            while let Ok(n) = batch.recv(sink.as_fd()) {
                assert!(n > 0);
                for datagram in batch.iter() {
                    assert_eq!(datagram.source, Some(sender.local_addr().unwrap()));
                    assert!(!datagram.truncated);
                    got.push(u32::from_be_bytes(datagram.contents.try_into().unwrap()));
                }
            }
            let expected: Vec<u32> = (0..100).filter(|i| *i as usize % 3 == k).collect();
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn a_refused_datagram_is_skipped_and_the_rest_still_go() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut queue = SendQueue::new();
        // An IPv6 destination on an IPv4 socket: the kernel refuses that one message.
        queue.push(sender.as_fd(), vec![1u8], "[::1]:9".parse().unwrap());
        queue.push(sender.as_fd(), vec![2u8], sink.local_addr().unwrap());
        queue.flush(sender.as_fd());
        assert_eq!(queue.stats().errors, 1);
        assert_eq!(queue.stats().datagrams, 1);
        assert!(queue.take_error().is_some());
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(sink.as_fd()).unwrap(), 1);
        assert_eq!(batch.iter().next().unwrap().contents, &[2u8]);
    }
}
