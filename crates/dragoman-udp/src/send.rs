//! Sending datagrams to many destinations, up to [`BATCH`] per `sendmmsg(2)` call.

use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use socket2::SockAddr;

use crate::BATCH;
use crate::plan::Plan;
use crate::sys;

/// How long a full send buffer is waited for before the rest of a batch is dropped. Loopback and
/// LAN drain a 4 MB buffer in well under this; a buffer still full after it means a stalled
/// kernel path, and late media is worthless anyway.
const MAX_SEND_WAIT: Duration = Duration::from_millis(5);

/// Send up to [`BATCH`] datagrams, each to its own destination, with one system call and one
/// message per datagram (no GSO). Returns how many the kernel took, from the first; an error
/// means the first one was not sent.
pub fn send_batch<D: AsRef<[u8]>>(
    fd: BorrowedFd<'_>,
    datagrams: &[(D, SockAddr)],
) -> io::Result<usize> {
    send_messages(fd, datagrams, &Plan::new(datagrams, false), 0)
}

/// What a [`SendQueue`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    pub datagrams: u64,
    pub bytes: u64,
    /// `sendmmsg` calls made.
    pub calls: u64,
    /// Messages sent: one per datagram, or one per GSO batch of datagrams.
    pub messages: u64,
    /// Messages that carried several datagrams to one destination (UDP GSO).
    pub segmented_messages: u64,
    /// Datagrams the kernel refused (e.g. no route): each is skipped, the rest still go.
    pub errors: u64,
    /// Datagrams dropped because the send buffer stayed full.
    pub dropped_full: u64,
}

/// Totals over several queues (one per media worker).
impl std::ops::AddAssign for SendStats {
    fn add_assign(&mut self, other: SendStats) {
        self.datagrams += other.datagrams;
        self.bytes += other.bytes;
        self.calls += other.calls;
        self.messages += other.messages;
        self.segmented_messages += other.segmented_messages;
        self.errors += other.errors;
        self.dropped_full += other.dropped_full;
    }
}

/// A control message carrying a GSO segment size, laid out as `CMSG_SPACE(sizeof(u16))`: the
/// header, then the data at `CMSG_DATA` (the header's size is already aligned on Linux).
#[repr(C)]
#[derive(Clone, Copy)]
struct SegmentControl {
    header: libc::cmsghdr,
    segment: u16,
}

/// `CMSG_LEN(sizeof(u16))`: the header and the data, without trailing padding.
const SEGMENT_CMSG_LEN: usize = size_of::<libc::cmsghdr>() + size_of::<u16>();

// The layout the kernel expects: the data right after the header, the whole as long as
// `CMSG_SPACE(sizeof(u16))` (the length rounded up to the header's alignment).
const _: () = {
    assert!(std::mem::offset_of!(SegmentControl, segment) == size_of::<libc::cmsghdr>());
    assert!(
        size_of::<SegmentControl>()
            == SEGMENT_CMSG_LEN.next_multiple_of(std::mem::align_of::<libc::cmsghdr>())
    );
};

/// Sent datagrams a queue keeps for [`SendQueue::take_sent`] at most; later ones are freed.
pub(crate) const MAX_KEPT_SENT: usize = 1024;

/// Datagrams waiting to go out on one socket. [`SendQueue::push`] sends a full batch at once;
/// [`SendQueue::flush`] sends the rest. Datagrams of one batch to the same destination go out as
/// one UDP GSO message when the kernel allows it (see [`crate::plan`]). Its buffer is allocated
/// once: pushing and flushing allocate nothing.
///
/// A queue made [`SendQueue::keeping_sent`] keeps what it has sent (or given up on) until
/// [`SendQueue::take_sent`], so that their buffers can be written again instead of allocated.
#[derive(Debug)]
pub struct SendQueue<D> {
    pending: Vec<(D, SockAddr)>,
    gso: bool,
    /// `Some` when sent datagrams are kept for reuse.
    sent: Option<Vec<D>>,
    stats: SendStats,
    last_error: Option<io::Error>,
}

impl<D: AsRef<[u8]>> Default for SendQueue<D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D: AsRef<[u8]>> SendQueue<D> {
    /// A queue that joins datagrams to one destination with UDP GSO (falling back to one message
    /// per datagram, for good, the first time the kernel refuses a segmented message).
    pub fn new() -> Self {
        SendQueue {
            pending: Vec::with_capacity(BATCH),
            gso: true,
            sent: None,
            stats: SendStats::default(),
            last_error: None,
        }
    }

    /// A queue that sends one message per datagram (plain `sendmmsg`).
    pub fn without_gso() -> Self {
        SendQueue {
            gso: false,
            ..Self::new()
        }
    }

    /// Keep the datagrams once sent (up to [`MAX_KEPT_SENT`]) for [`SendQueue::take_sent`].
    pub fn keeping_sent(self) -> Self {
        SendQueue {
            sent: Some(Vec::with_capacity(MAX_KEPT_SENT)),
            ..self
        }
    }

    /// The datagrams sent (or dropped) since the last call, when the queue keeps them.
    pub fn take_sent(&mut self) -> impl Iterator<Item = D> + '_ {
        self.sent.iter_mut().flat_map(|sent| sent.drain(..))
    }

    /// Whether segmented (GSO) messages are in use.
    pub fn uses_gso(&self) -> bool {
        self.gso
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

    /// Send everything queued. A message the kernel refuses is counted and skipped; when the send
    /// buffer stays full for [`MAX_SEND_WAIT`], the rest is counted and dropped.
    pub fn flush(&mut self, fd: BorrowedFd<'_>) {
        let mut plan = Plan::new(&self.pending, self.gso);
        let mut next = 0;
        while next < plan.len {
            match send_messages(fd, &self.pending, &plan, next) {
                Ok(sent) => {
                    self.stats.calls += 1;
                    self.stats.messages += sent as u64;
                    for m in next..next + sent {
                        for &i in plan.datagrams(m) {
                            self.stats.datagrams += 1;
                            self.stats.bytes += self.pending[i].0.as_ref().len() as u64;
                        }
                        if plan.messages[m].count > 1 {
                            self.stats.segmented_messages += 1;
                        }
                    }
                    next += sent;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !sys::wait_writable(fd, MAX_SEND_WAIT).unwrap_or(false) {
                        let rest: usize = (next..plan.len).map(|m| plan.messages[m].count).sum();
                        self.stats.dropped_full += rest as u64;
                        self.last_error = Some(e);
                        break;
                    }
                }
                Err(e) if plan.messages[next].count > 1 && refuses_segmentation(&e) => {
                    // EIO: the device cannot segment (no checksum offload): stop joining on this
                    // socket for good. Anything else (EINVAL: segments plus headers over the
                    // route's MTU, say) concerns this message only. Either way, what was refused
                    // goes again one datagram per message.
                    if e.raw_os_error() == Some(libc::EIO) {
                        self.gso = false;
                        plan = plan.unjoined_from(next);
                    } else {
                        plan = plan.unjoin_message(next);
                    }
                    self.last_error = Some(e);
                    next = 0;
                }
                Err(e) => {
                    self.stats.errors += plan.messages[next].count as u64;
                    self.last_error = Some(e);
                    next += 1;
                }
            }
        }
        match &mut self.sent {
            Some(sent) => {
                let room = MAX_KEPT_SENT - sent.len();
                // Draining empties `pending` whatever is taken.
                sent.extend(self.pending.drain(..).map(|(d, _)| d).take(room));
            }
            None => self.pending.clear(),
        }
    }

    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// The last error a send met, taken (for a log line).
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.last_error.take()
    }
}

/// Errors with which the kernel refuses a segmented message it cannot send as such.
fn refuses_segmentation(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
    )
}

/// One `sendmmsg` call with the messages of `plan` from `first` on. Returns how many messages the
/// kernel took, from `first`; an error means message `first` was not sent.
fn send_messages<D: AsRef<[u8]>>(
    fd: BorrowedFd<'_>,
    datagrams: &[(D, SockAddr)],
    plan: &Plan,
    first: usize,
) -> io::Result<usize> {
    let mut iovs: [libc::iovec; BATCH] = std::array::from_fn(|_| libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    });
    for (iov, &i) in iovs.iter_mut().zip(plan.order.iter()).take(
        plan.messages[..plan.len]
            .iter()
            .map(|m| m.count)
            .sum::<usize>(),
    ) {
        let data = datagrams[i].0.as_ref();
        // The kernel only reads through `iov_base` on a send.
        iov.iov_base = data.as_ptr().cast_mut().cast();
        iov.iov_len = data.len();
    }
    let mut controls: [SegmentControl; BATCH] = std::array::from_fn(|m| SegmentControl {
        header: libc::cmsghdr {
            cmsg_len: SEGMENT_CMSG_LEN as _,
            cmsg_level: libc::SOL_UDP,
            cmsg_type: libc::UDP_SEGMENT,
        },
        segment: plan.messages[m].segment.min(u16::MAX as usize) as u16,
    });
    let mut messages: [libc::mmsghdr; BATCH] = std::array::from_fn(|_| libc::mmsghdr {
        msg_hdr: libc::msghdr {
            msg_name: std::ptr::null_mut(),
            msg_namelen: 0,
            msg_iov: std::ptr::null_mut(),
            msg_iovlen: 0,
            msg_control: std::ptr::null_mut(),
            msg_controllen: 0,
            msg_flags: 0,
        },
        msg_len: 0,
    });
    let count = plan.len - first;
    for (k, message) in messages.iter_mut().take(count).enumerate() {
        let m = first + k;
        let plan_message = plan.messages[m];
        let to = &datagrams[plan.order[plan_message.first]].1;
        message.msg_hdr.msg_name = to.as_ptr().cast_mut().cast();
        message.msg_hdr.msg_namelen = to.len();
        // A pointer into the whole array: the kernel reads `count` iovecs from here.
        message.msg_hdr.msg_iov = iovs.as_mut_ptr().wrapping_add(plan_message.first);
        message.msg_hdr.msg_iovlen = plan_message.count as _;
        if plan_message.count > 1 {
            message.msg_hdr.msg_control = std::ptr::from_mut(&mut controls[m]).cast();
            message.msg_hdr.msg_controllen = size_of::<SegmentControl>() as _;
        }
    }
    // SAFETY: every pointer in `messages[..count]` points into this frame: `msg_name` at an
    // address in `datagrams`, `msg_iov` at `plan_message.count` consecutive elements of `iovs`
    // (the plan's ranges lie within `iovs`), each iovec at a datagram in
    // `datagrams`, `msg_control` at an element of `controls`; all outlive the call.
    #[allow(unsafe_code)]
    unsafe {
        sys::sendmmsg(fd, &mut messages[..count])
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
    fn a_queue_keeping_sent_datagrams_hands_them_back_once() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = sink.local_addr().unwrap();
        let mut plain = SendQueue::new();
        plain.push(sender.as_fd(), vec![1u8], to);
        plain.flush(sender.as_fd());
        assert_eq!(plain.take_sent().count(), 0, "a plain queue keeps nothing");

        let mut keeping = SendQueue::new().keeping_sent();
        for i in 0..40u8 {
            keeping.push(sender.as_fd(), vec![i; 8], to);
        }
        assert_eq!(
            keeping.take_sent().count(),
            BATCH,
            "the full batch went at once"
        );
        keeping.flush(sender.as_fd());
        let rest: Vec<Vec<u8>> = keeping.take_sent().collect();
        assert_eq!(rest.len(), 40 - BATCH);
        assert_eq!(rest[0], vec![BATCH as u8; 8], "in the order sent");
        assert_eq!(keeping.take_sent().count(), 0, "handed back once");

        for _ in 0..(MAX_KEPT_SENT / BATCH + 2) {
            for i in 0..BATCH {
                keeping.push(sender.as_fd(), vec![i as u8], to);
            }
        }
        assert_eq!(keeping.take_sent().count(), MAX_KEPT_SENT, "bounded");
        assert_eq!(keeping.stats().errors + keeping.stats().dropped_full, 0);
    }

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
        // Each full batch holds 10 or 11 datagrams per sink, joined into one GSO message per sink;
        // the last batch (96..99) has two for the first sink.
        assert_eq!(stats.segmented_messages, 3 * 3 + 1);
        assert_eq!(stats.messages, 3 * 3 + 3, "one message per sink and batch");
        assert!(queue.uses_gso());

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
    fn without_gso_every_datagram_is_its_own_message() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut queue = SendQueue::without_gso();
        for i in 0..10u8 {
            queue.push(sender.as_fd(), vec![i; 100], sink.local_addr().unwrap());
        }
        queue.flush(sender.as_fd());
        assert_eq!(queue.stats().segmented_messages, 0);
        assert_eq!(queue.stats().datagrams, 10);
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(sink.as_fd()).unwrap(), 10);
    }

    #[test]
    fn joined_datagrams_arrive_as_the_datagrams_they_were() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut queue = SendQueue::new();
        let to = sink.local_addr().unwrap();
        // A frame: four full packets and a short last one, all to one subscriber.
        for i in 0..4u8 {
            queue.push(sender.as_fd(), vec![i; 1200], to);
        }
        queue.push(sender.as_fd(), vec![9u8; 300], to);
        queue.flush(sender.as_fd());
        assert_eq!(queue.stats().segmented_messages, 1);
        assert_eq!(queue.stats().calls, 1);
        let mut batch = RecvBatch::new();
        assert_eq!(batch.recv(sink.as_fd()).unwrap(), 5);
        let got: Vec<(usize, u8)> = batch
            .iter()
            .map(|d| (d.contents.len(), d.contents[0]))
            .collect();
        assert_eq!(
            got,
            vec![(1200, 0), (1200, 1), (1200, 2), (1200, 3), (300, 9)]
        );
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
