//! Buffers for forwarded datagrams, written again once sent instead of allocated per packet.
//!
//! A forward writes each subscriber's protected copy into a buffer of its own, which leaves the
//! engine as a transmit's contents. The sender hands the buffer back once the datagram is out
//! ([`crate::MediaEngine::recycle`]), so in the steady state a forward allocates nothing.

/// Capacity of a new buffer: an Ethernet MTU's worth, more than any RTP packet a browser sends
/// plus the SRTP tag. A longer datagram grows its buffer.
pub(crate) const DATAGRAM_CAPACITY: usize = 1500;

/// Capacity of a buffer kept at most: a grown one (str0m takes datagrams up to 2000 bytes) is
/// kept up to this, larger ones are freed, so the pool's memory stays bounded.
const MAX_KEPT_CAPACITY: usize = 2 * DATAGRAM_CAPACITY;

/// Buffers kept at most (at most ~3 MB): more than a loop turn's forwards at the rates a worker
/// carries. A busier turn frees the excess and allocates again, as without a pool.
const MAX_SPARE: usize = 1024;

/// Spare datagram buffers (see the module documentation).
#[derive(Debug, Default)]
pub struct DatagramPool {
    spare: Vec<Vec<u8>>,
}

impl DatagramPool {
    /// A buffer to write a datagram into: a spare one, or a new one.
    pub fn take(&mut self) -> Vec<u8> {
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(DATAGRAM_CAPACITY))
    }

    /// Keep `buffer` for a later datagram. Buffers too small to hold any datagram without
    /// growing (a taken one left empty, a short control packet's) or oddly large are freed
    /// instead, as are buffers beyond the pool's bound.
    pub fn give_back(&mut self, buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if (DATAGRAM_CAPACITY..=MAX_KEPT_CAPACITY).contains(&capacity)
            && self.spare.len() < MAX_SPARE
        {
            self.spare.push(buffer);
        }
    }

    /// Buffers kept now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.spare.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.spare.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_and_small_ones_are_not_kept() {
        let mut pool = DatagramPool::default();
        let mut first = pool.take();
        assert!(first.capacity() >= DATAGRAM_CAPACITY);
        first.extend_from_slice(&[7; 1200]);
        let address = first.as_ptr();
        pool.give_back(first);
        pool.give_back(Vec::new());
        pool.give_back(vec![0; 100]);
        pool.give_back(Vec::with_capacity(MAX_KEPT_CAPACITY + 1));
        assert_eq!(pool.len(), 1, "only the datagram-sized buffer is kept");
        let again = pool.take();
        assert_eq!(again.as_ptr(), address, "the same buffer, not a new one");
        assert!(pool.is_empty());
    }

    #[test]
    fn the_pool_is_bounded() {
        let mut pool = DatagramPool::default();
        for _ in 0..MAX_SPARE + 10 {
            pool.give_back(Vec::with_capacity(DATAGRAM_CAPACITY));
        }
        assert_eq!(pool.len(), MAX_SPARE);
    }
}
