//! RTP payloads shared without copying, and the pool received payloads come from (Dragoman's
//! change).
//!
//! A received packet's payload is shared by everything that sends it on (in an SFU, every
//! subscriber's copy and every RTX cache entry) until the last of them lets go. Allocating it
//! per packet was the one heap allocation left on Dragoman's forwarding path: in RTP mode the
//! payload now comes from a [`PayloadPool`] of buffers that are reused once nobody holds them.

use std::collections::VecDeque;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// An RTP payload (no header), cheap to clone: clones share the bytes.
///
/// Made from an `Arc<[u8]>`, a `Vec<u8>` or a slice; reads as `&[u8]`. Received packets in RTP
/// mode carry one from the session's pool.
#[derive(Clone)]
pub struct Payload(Shared);

#[derive(Clone)]
enum Shared {
    /// Made by the application, or received in frame mode.
    Bytes(Arc<[u8]>),
    /// A pool's buffer: back in the pool when the last clone is dropped.
    Pooled(Arc<Vec<u8>>),
}

impl Payload {
    /// The payload as an `Arc<[u8]>`: the same allocation for a payload made from one, a copy
    /// for a pooled one.
    pub fn to_arc(&self) -> Arc<[u8]> {
        match &self.0 {
            Shared::Bytes(bytes) => bytes.clone(),
            Shared::Pooled(buffer) => Arc::from(buffer.as_slice()),
        }
    }
}

impl Deref for Payload {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Shared::Bytes(bytes) => bytes,
            Shared::Pooled(buffer) => buffer,
        }
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Default for Payload {
    fn default() -> Self {
        Payload(Shared::Bytes(Arc::default()))
    }
}

impl From<Arc<[u8]>> for Payload {
    fn from(bytes: Arc<[u8]>) -> Self {
        Payload(Shared::Bytes(bytes))
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Payload(Shared::Bytes(bytes.into()))
    }
}

impl From<&[u8]> for Payload {
    fn from(bytes: &[u8]) -> Self {
        Payload(Shared::Bytes(bytes.into()))
    }
}

impl<const N: usize> From<[u8; N]> for Payload {
    fn from(bytes: [u8; N]) -> Self {
        Payload(Shared::Bytes(Arc::new(bytes)))
    }
}

impl From<Payload> for Arc<[u8]> {
    fn from(payload: Payload) -> Self {
        match payload.0 {
            Shared::Bytes(bytes) => bytes,
            Shared::Pooled(buffer) => Arc::from(buffer.as_slice()),
        }
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Payload {}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As `Arc<[u8]>` prints.
        fmt::Debug::fmt(&**self, f)
    }
}

/// Buffers for received payloads, reused once no packet, send or RTX cache holds them.
///
/// Buffers are handed out in turn. Receive order is roughly release order (sends let go at
/// once, RTX caches after their window), so the buffer handed out longest ago is the one to
/// try: when something still holds it, it goes to the back and the next is tried once; when
/// that is held too, a new buffer is made. So the pool grows to the payloads held at once (a
/// resend window's worth) and no further, and a buffer held for long (the RTX cache of a stream
/// that stopped sending keeps its last packets) only makes one new one. A full pool forgets a
/// held buffer instead of keeping it (its holders free it as without a pool), so it never holds
/// more than [`PayloadPool::MAX_BUFFERS`]. A buffer keeps its capacity, so after warm-up filling
/// one allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct PayloadPool {
    buffers: VecDeque<Arc<Vec<u8>>>,
}

impl PayloadPool {
    /// Buffers kept at most: a second of ~2000 packets/s, well above a resend window's worth of
    /// a camera or screen share (~100-800 packets/s). Beyond, payloads are allocated as without
    /// a pool. Buffers are not given back while the session lives, so this bounds what a burst
    /// leaves behind (~2.5 MB of 1200-byte payloads).
    pub const MAX_BUFFERS: usize = 2048;

    /// A payload holding a copy of `bytes`.
    pub fn payload(&mut self, bytes: &[u8]) -> Payload {
        for _ in 0..2 {
            let Some(mut buffer) = self.buffers.pop_front() else {
                break;
            };
            if let Some(vec) = Arc::get_mut(&mut buffer) {
                vec.clear();
                vec.extend_from_slice(bytes);
                self.buffers.push_back(buffer.clone());
                return Payload(Shared::Pooled(buffer));
            }
            // Still held: it waits at the back, or a full pool forgets it (making room for the
            // new buffer below; a pool that only forgot would grow no more but never reuse).
            if self.buffers.len() + 1 < Self::MAX_BUFFERS {
                self.buffers.push_back(buffer);
            }
        }
        let buffer = Arc::new(bytes.to_vec());
        self.buffers.push_back(buffer.clone());
        Payload(Shared::Pooled(buffer))
    }

    /// Buffers the pool holds (in use or free).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.buffers.len()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_released_buffer_is_reused_and_a_held_one_is_not() {
        let mut pool = PayloadPool::default();
        let first = pool.payload(&[1, 2, 3]);
        let second = pool.payload(&[4, 5]);
        assert_eq!(pool.len(), 2);
        assert_eq!(&*first, &[1, 2, 3]);

        // Both held: a third buffer.
        let third = pool.payload(&[6]);
        assert_eq!(pool.len(), 3);
        drop(first);

        // The first is free now, and is refilled.
        let fourth = pool.payload(&[7, 8, 9, 10]);
        assert_eq!(pool.len(), 3);
        assert_eq!(&*fourth, &[7, 8, 9, 10]);
        assert_eq!(&*second, &[4, 5], "a held payload keeps its bytes");
        assert_eq!(&*third, &[6]);
    }

    #[test]
    fn clones_share_a_buffer_until_the_last_is_dropped() {
        let mut pool = PayloadPool::default();
        let payload = pool.payload(&[1; 100]);
        let copy = payload.clone();
        drop(payload);
        let other = pool.payload(&[2; 10]);
        assert_eq!(pool.len(), 2, "the clone still holds the first buffer");
        assert_eq!(&*copy, &[1; 100]);
        drop((copy, other));
        pool.payload(&[3; 10]);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn a_full_pool_forgets_held_buffers_and_reuses_released_ones() {
        let mut pool = PayloadPool::default();
        let mut held: Vec<Payload> = (0..PayloadPool::MAX_BUFFERS + 10)
            .map(|i| pool.payload(&[i as u8]))
            .collect();
        assert_eq!(pool.len(), PayloadPool::MAX_BUFFERS);
        assert!(held.iter().enumerate().all(|(i, p)| p[0] == i as u8));

        // Released: the pool, still at its bound, reuses buffers again (no new one is kept).
        held.drain(..PayloadPool::MAX_BUFFERS);
        for i in 0..100 {
            held.push(pool.payload(&[i]));
        }
        assert_eq!(pool.len(), PayloadPool::MAX_BUFFERS);
        assert!(
            held.iter()
                .skip(10)
                .enumerate()
                .all(|(i, p)| p[0] == i as u8)
        );
    }

    #[test]
    fn payloads_compare_and_convert_by_their_bytes() {
        let mut pool = PayloadPool::default();
        let pooled = pool.payload(&[1, 2]);
        let made = Payload::from(vec![1, 2]);
        assert_eq!(pooled, made);
        assert_eq!(format!("{pooled:?}"), "[1, 2]");
        let arc: Arc<[u8]> = pooled.into();
        assert_eq!(&*arc, &[1, 2]);
    }
}
