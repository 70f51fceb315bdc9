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
use std::time::{Duration, Instant};

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
    /// A pool's buffer (the pool keeps a reference): free for reuse once every clone is dropped.
    Pooled(Arc<Vec<u8>>),
}

impl Payload {
    /// Whether the bytes are a pool's buffer.
    pub(crate) fn is_pooled(&self) -> bool {
        matches!(self.0, Shared::Pooled(_))
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
/// Buffers are handed out in turn, oldest first. Receive order is release order (sends let go
/// at once, RTX caches after their window), so the buffer handed out longest ago is tried: free,
/// it is refilled; held, the one behind it is tried (so one buffer held apart from the rest does
/// not hold up the line), and when that is held too, a new buffer is made. So the pool grows to
/// the payloads held at once (a resend window's worth) and no further. A buffer still held
/// [`PayloadPool::FORGET_HELD_AFTER`] after it was handed out is held by something other than a
/// resend window (the RTX cache of a stream that stopped sending keeps its last packets until
/// it sends again): it is forgotten, and its holders free it as without a pool. Until then a run
/// of such buffers holds up the line and receiving allocates. At [`PayloadPool::MAX_BUFFERS`] a held buffer is
/// forgotten at once to make room. A buffer keeps its capacity (the largest payload it held,
/// ~2 KB at most as received), so after warm-up filling one allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct PayloadPool {
    /// Oldest first, each with when it was handed out.
    buffers: VecDeque<(Arc<Vec<u8>>, Instant)>,
}

impl PayloadPool {
    /// Buffers kept at most: a resend window's worth of ~2000 packets/s, above a camera's or a
    /// screen share's (~100-800 packets/s over 1 s). Buffers are not given back while the
    /// session lives, so this bounds what the pool keeps: 2048 × the largest payload (~2.5 MB
    /// of 1200-byte payloads, 4 MB at most).
    pub const MAX_BUFFERS: usize = 2048;

    /// How long a buffer may be held before the pool gives up on it: longer than a resend
    /// window (Dragoman allows up to 10 s; str0m's default is 3 s).
    pub const FORGET_HELD_AFTER: Duration = Duration::from_secs(12);

    /// A payload holding a copy of `bytes`, received at `now`.
    pub fn payload(&mut self, now: Instant, bytes: &[u8]) -> Payload {
        while let Some((oldest, handed_out)) = self.buffers.front_mut() {
            if let Some(vec) = Arc::get_mut(oldest) {
                refill(vec, bytes);
                let buffer = oldest.clone();
                self.buffers.rotate_left(1);
                if let Some(newest) = self.buffers.back_mut() {
                    newest.1 = now;
                }
                return Payload(Shared::Pooled(buffer));
            }
            let held_long = now.saturating_duration_since(*handed_out) >= Self::FORGET_HELD_AFTER;
            if held_long || self.buffers.len() >= Self::MAX_BUFFERS {
                self.buffers.pop_front();
                continue;
            }
            // One buffer held apart from the rest (a resend's, say) need not hold up the line:
            // the one behind it may be free.
            if let Some((second, _)) = self.buffers.get_mut(1)
                && let Some(vec) = Arc::get_mut(second)
            {
                refill(vec, bytes);
                let buffer = second.clone();
                if let Some((taken, _)) = self.buffers.remove(1) {
                    self.buffers.push_back((taken, now));
                }
                return Payload(Shared::Pooled(buffer));
            }
            break;
        }
        let buffer = Arc::new(bytes.to_vec());
        self.buffers.push_back((buffer.clone(), now));
        Payload(Shared::Pooled(buffer))
    }

    /// Buffers the pool holds (in use or free).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.buffers.len()
    }
}

/// Make a free buffer hold `bytes`.
fn refill(vec: &mut Vec<u8>, bytes: &[u8]) {
    vec.clear();
    // Exactly: capacity follows the largest payload, not a doubling of it.
    vec.reserve_exact(bytes.len());
    vec.extend_from_slice(bytes);
}

#[cfg(test)]
mod test {
    use super::*;

    /// One instant for every call: no buffer is ever held long, unless a test says so.
    fn now() -> Instant {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *START.get_or_init(Instant::now)
    }

    fn is_pooled_in(payload: &Payload, pool: &PayloadPool) -> bool {
        let Shared::Pooled(buffer) = &payload.0 else {
            return false;
        };
        pool.buffers.iter().any(|(b, _)| Arc::ptr_eq(b, buffer))
    }

    #[test]
    fn a_released_buffer_is_reused_and_a_held_one_keeps_its_bytes() {
        let mut pool = PayloadPool::default();
        let first = pool.payload(now(), &[1, 2, 3]);
        assert_eq!(&*first, &[1, 2, 3]);
        drop(first);

        // Released: refilled, no new buffer.
        let second = pool.payload(now(), &[4, 5]);
        assert_eq!(pool.len(), 1);
        assert_eq!(&*second, &[4, 5]);

        // Held: a new buffer, and the held one keeps its bytes.
        let third = pool.payload(now(), &[6]);
        assert_eq!(pool.len(), 2);
        assert!(is_pooled_in(&third, &pool));
        assert_eq!(&*second, &[4, 5]);
        assert_eq!(&*third, &[6]);
    }

    #[test]
    fn clones_share_a_buffer_until_the_last_is_dropped() {
        let mut pool = PayloadPool::default();
        let payload = pool.payload(now(), &[1; 100]);
        let copy = payload.clone();
        drop(payload);
        let other = pool.payload(now(), &[2; 10]);
        assert_eq!(pool.len(), 2, "the clone still holds the first buffer");
        assert_eq!(&*copy, &[1; 100]);
        drop((copy, other));
        pool.payload(now(), &[3; 10]);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn a_full_pool_forgets_held_buffers_and_reuses_released_ones() {
        let mut pool = PayloadPool::default();
        let mut held: Vec<Payload> = (0..PayloadPool::MAX_BUFFERS + 10)
            .map(|i| pool.payload(now(), &[i as u8]))
            .collect();
        assert_eq!(pool.len(), PayloadPool::MAX_BUFFERS);
        assert!(held.iter().enumerate().all(|(i, p)| p[0] == i as u8));

        // Released: the pool reuses its buffers again and makes none.
        held.drain(..PayloadPool::MAX_BUFFERS);
        let size = pool.len();
        for i in 0..100 {
            held.push(pool.payload(now(), &[i]));
            assert!(pool.len() <= size);
        }
        assert!(held.iter().skip(10).all(|p| is_pooled_in(p, &pool)));
        assert!(
            held.iter()
                .skip(10)
                .enumerate()
                .all(|(i, p)| p[0] == i as u8)
        );
    }

    #[test]
    fn buffers_held_long_are_forgotten_and_the_rest_reused() {
        let mut pool = PayloadPool::default();
        let start = now();
        // A run of payloads someone keeps (an RTX cache of a stream that stopped sending).
        let pinned: Vec<Payload> = (0..10).map(|i| pool.payload(start, &[i])).collect();

        // While they are young the line waits for them: a new buffer.
        drop(pool.payload(start + Duration::from_secs(1), &[1]));
        assert_eq!(pool.len(), 11);

        // Held past the limit: forgotten, and the free buffer behind them is reused from then on.
        let later = start + PayloadPool::FORGET_HELD_AFTER;
        for i in 0..100 {
            drop(pool.payload(later, &[i; 3]));
        }
        assert_eq!(pool.len(), 1, "the pinned buffers were forgotten");
        assert!(pinned.iter().enumerate().all(|(i, p)| p[..] == [i as u8]));
    }

    #[test]
    fn one_buffer_held_apart_does_not_grow_the_pool() {
        let mut pool = PayloadPool::default();
        let kept = pool.payload(now(), &[9]);
        for i in 0..100 {
            drop(pool.payload(now(), &[i]));
        }
        assert_eq!(pool.len(), 2, "the held one and one reused behind it");
        assert_eq!(&*kept, &[9]);
    }

    #[test]
    fn a_buffer_grows_only_to_the_largest_payload_it_held() {
        let mut pool = PayloadPool::default();
        drop(pool.payload(now(), &[1; 700]));
        let bigger = pool.payload(now(), &[2; 1100]);
        let Shared::Pooled(buffer) = &bigger.0 else {
            panic!("not pooled");
        };
        assert_eq!(buffer.capacity(), 1100);
    }

    #[test]
    fn payloads_compare_and_convert_by_their_bytes() {
        let mut pool = PayloadPool::default();
        let pooled = pool.payload(now(), &[1, 2]);
        let made = Payload::from(vec![1, 2]);
        assert_eq!(pooled, made);
        assert_eq!(format!("{pooled:?}"), "[1, 2]");
        let arc: Arc<[u8]> = pooled.into();
        assert_eq!(&*arc, &[1, 2]);
    }
}
