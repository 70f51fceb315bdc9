//! RTP sequence-number accounting for one received stream: gaps, duplicates and reordering.
//!
//! Sequence numbers are extended to 64 bits (RFC 3550 A.1 style: each 16-bit value is taken as the
//! one nearest to the highest seen), so wraparound at 65535 is neither a gap nor a reorder.

use serde::{Deserialize, Serialize};

/// How many sequence numbers behind the highest one are remembered for duplicate detection.
const WINDOW: u64 = 4096;

/// Counts for one stream (or the sum over several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceCounts {
    /// Distinct sequence numbers received.
    pub unique: u64,
    /// Sequence numbers between the lowest and the highest received that never arrived.
    pub missing: u64,
    /// Packets whose sequence number had already arrived.
    pub duplicates: u64,
    /// Packets that arrived after a higher sequence number (late, but not duplicates).
    pub out_of_order: u64,
}

impl std::ops::Add for SequenceCounts {
    type Output = SequenceCounts;

    fn add(self, other: SequenceCounts) -> SequenceCounts {
        SequenceCounts {
            unique: self.unique + other.unique,
            missing: self.missing + other.missing,
            duplicates: self.duplicates + other.duplicates,
            out_of_order: self.out_of_order + other.out_of_order,
        }
    }
}

/// What one packet was, as far as sequence numbers tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Higher than anything before; `skipped` numbers were jumped over.
    Advanced { skipped: u64 },
    /// Lower than the highest, and new.
    Late,
    /// Seen before.
    Duplicate,
}

/// Tracks one stream's sequence numbers.
#[derive(Debug, Clone)]
pub struct SequenceTracker {
    /// Highest extended sequence number (offset by 2^16 so early reordering never goes negative).
    highest: Option<u64>,
    lowest: u64,
    unique: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Bit `n % WINDOW` is set when extended number `n` (within WINDOW of `highest`) arrived.
    seen: Vec<u64>,
}

impl Default for SequenceTracker {
    fn default() -> Self {
        SequenceTracker::new()
    }
}

impl SequenceTracker {
    pub fn new() -> Self {
        SequenceTracker {
            highest: None,
            lowest: 0,
            unique: 0,
            duplicates: 0,
            out_of_order: 0,
            seen: vec![0; (WINDOW / 64) as usize],
        }
    }

    fn bit(&self, ext: u64) -> bool {
        let i = ext % WINDOW;
        self.seen[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, ext: u64, on: bool) {
        let i = ext % WINDOW;
        let word = &mut self.seen[(i / 64) as usize];
        if on {
            *word |= 1 << (i % 64);
        } else {
            *word &= !(1 << (i % 64));
        }
    }

    /// The 64-bit extension of `seq` nearest to the highest one seen.
    pub fn extend(&self, seq: u16) -> u64 {
        match self.highest {
            None => (1 << 16) + u64::from(seq),
            Some(highest) => {
                let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
                // `highest` starts at 2^16 and only grows, so a step back of at most 2^15 stays
                // positive.
                highest.saturating_add_signed(delta)
            }
        }
    }

    /// Account for one packet.
    pub fn record(&mut self, seq: u16) -> Arrival {
        let ext = self.extend(seq);
        let Some(highest) = self.highest else {
            self.highest = Some(ext);
            self.lowest = ext;
            self.unique = 1;
            self.set(ext, true);
            return Arrival::Advanced { skipped: 0 };
        };
        if ext > highest {
            let step = ext - highest;
            if step >= WINDOW {
                self.seen.iter_mut().for_each(|w| *w = 0);
            } else {
                for n in highest + 1..ext {
                    self.set(n, false);
                }
            }
            self.set(ext, true);
            self.highest = Some(ext);
            self.unique += 1;
            return Arrival::Advanced { skipped: step - 1 };
        }
        if ext == highest || (highest - ext < WINDOW && self.bit(ext)) {
            self.duplicates += 1;
            return Arrival::Duplicate;
        }
        // Late and new (or too old to tell; counted as new, the likelier case).
        if highest - ext < WINDOW {
            self.set(ext, true);
        }
        self.lowest = self.lowest.min(ext);
        self.unique += 1;
        self.out_of_order += 1;
        Arrival::Late
    }

    /// The highest sequence number seen, extended (for tests and diagnostics).
    pub fn highest_extended(&self) -> Option<u64> {
        self.highest.map(|h| h - (1 << 16))
    }

    pub fn counts(&self) -> SequenceCounts {
        let expected = match self.highest {
            Some(highest) => highest - self.lowest + 1,
            None => 0,
        };
        SequenceCounts {
            unique: self.unique,
            missing: expected.saturating_sub(self.unique),
            duplicates: self.duplicates,
            out_of_order: self.out_of_order,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(seqs: impl IntoIterator<Item = u16>) -> SequenceTracker {
        let mut t = SequenceTracker::new();
        for s in seqs {
            t.record(s);
        }
        t
    }

    #[test]
    fn in_order_across_the_wrap_has_no_gaps() {
        let t = track((65530..=65535).chain(0..=5));
        assert_eq!(
            t.counts(),
            SequenceCounts {
                unique: 12,
                missing: 0,
                duplicates: 0,
                out_of_order: 0
            }
        );
        assert_eq!(t.highest_extended(), Some(65536 + 5));
    }

    #[test]
    fn counts_missing_numbers_across_the_wrap() {
        // 65535 → 2 skips 0 and 1
        let t = track([65534, 65535, 2, 3]);
        assert_eq!(t.counts().missing, 2);
        assert_eq!(t.counts().unique, 4);
    }

    #[test]
    fn late_packets_fill_gaps_and_count_as_out_of_order() {
        let mut t = track([65535, 1]);
        assert_eq!(t.counts().missing, 1);
        assert_eq!(t.record(0), Arrival::Late);
        assert_eq!(t.counts().missing, 0);
        assert_eq!(t.counts().out_of_order, 1);
        // a packet older than the first one extends the range downwards
        assert_eq!(t.record(65534), Arrival::Late);
        assert_eq!(t.counts().missing, 0);
        assert_eq!(t.counts().unique, 4);
    }

    #[test]
    fn duplicates_are_counted_once_and_never_as_gaps() {
        let mut t = track([1, 2, 2, 3]);
        assert_eq!(t.record(1), Arrival::Duplicate);
        assert_eq!(
            t.counts(),
            SequenceCounts {
                unique: 3,
                missing: 0,
                duplicates: 2,
                out_of_order: 0
            }
        );
        // duplicate of a late packet
        let mut t = track([10, 12, 11]);
        assert_eq!(t.record(11), Arrival::Duplicate);
        assert_eq!(t.counts().duplicates, 1);
        assert_eq!(t.counts().out_of_order, 1);
    }

    #[test]
    fn many_wraps_extend_to_64_bits() {
        let mut t = SequenceTracker::new();
        let start: u16 = 40_000;
        let total: u64 = 3 * 65_536 + 100;
        let mut seq = start;
        for i in 0..total {
            // drop every 1000th packet
            if i % 1000 != 999 {
                t.record(seq);
            }
            seq = seq.wrapping_add(1);
        }
        let counts = t.counts();
        assert_eq!(counts.missing, total / 1000);
        assert_eq!(counts.unique, total - total / 1000);
        assert_eq!(counts.duplicates, 0);
        assert_eq!(t.highest_extended(), Some(u64::from(start) + total - 1));
    }

    #[test]
    fn duplicates_right_after_a_wrap_are_detected() {
        let mut t = track([65534, 65535, 0, 1]);
        assert_eq!(t.record(65535), Arrival::Duplicate);
        assert_eq!(t.record(0), Arrival::Duplicate);
        assert_eq!(t.counts().duplicates, 2);
        assert_eq!(t.counts().missing, 0);
    }

    #[test]
    fn a_big_jump_counts_the_skipped_numbers() {
        let mut t = track([100]);
        assert_eq!(t.record(5100), Arrival::Advanced { skipped: 4999 });
        assert_eq!(t.counts().missing, 4999);
        // the window was cleared: the old number is late, not a duplicate
        assert_eq!(t.record(101), Arrival::Late);
        assert_eq!(t.counts().missing, 4998);
    }

    #[test]
    fn counts_add_up() {
        let a = track([1, 3]).counts();
        let b = track([1, 1]).counts();
        let sum = a + b;
        assert_eq!(sum.unique, 3);
        assert_eq!(sum.missing, 1);
        assert_eq!(sum.duplicates, 1);
    }
}
