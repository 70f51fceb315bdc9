//! Batched UDP datagram I/O for the media workers: many datagrams per system call.
//!
//! An SFU's fan-out sends one copy of a packet to each subscriber, so a batch goes to many
//! destinations: [`send_batch`] and [`SendQueue`] use `sendmmsg(2)`, one `msghdr` per datagram.
//! [`RecvBatch`] takes up to [`BATCH`] datagrams from many sources with one `recvmmsg(2)`.
//!
//! Why `libc` and not a wrapper: `quinn-udp` batches sends only by GSO (equal segments to **one**
//! destination) and has no `sendmmsg`; `nix`'s `sendmmsg` reports how many messages went out only
//! through an iterator that reads its (never written) receive-address slots. The two system calls
//! are therefore made here, in [`sys`], the crate's only `unsafe` code.
//!
//! Linux only, like the `SO_REUSEPORT` group the workers share a port with.

pub mod plan;
mod recv;
mod send;
mod sys;

pub use recv::{Datagram, MAX_DATAGRAM, RecvBatch, enable_arrival_times};
pub use send::{SendQueue, SendStats, send_batch};

/// Datagrams per system call, both ways. 32 halves the per-call overhead 5 times over, and a
/// batch's buffers still fit in the L1/L2 caches.
pub const BATCH: usize = 32;
