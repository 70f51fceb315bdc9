//! Sequence number and timestamp rewriting for one outgoing stream.
//!
//! A subscriber must see one continuous stream even though what it receives is cut from the
//! publisher's stream (pauses, re-subscriptions) or spliced from several (simulcast layer switches).
//! Values are 64-bit extended inside; only the low 16 (sequence) and 32 (timestamp) bits go on the
//! wire. After every splice ("rebase") the output continues right after the last packet sent: the
//! sequence number by one, the timestamp by the wall-clock time that passed, so players neither see a
//! gap to conceal nor a jump in time.

use std::time::{Duration, Instant};

use crate::drop_reason::DropReason;

/// Sequence number and RTP timestamp of a packet, both extended to 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPosition {
    pub seq: u64,
    pub timestamp: u64,
}

/// The last packet written, to continue from after a splice.
#[derive(Debug, Clone, Copy)]
struct LastOut {
    position: RtpPosition,
    at: Instant,
}

/// Rewrites one publisher stream (or a sequence of them) into one continuous subscriber stream.
#[derive(Debug, Clone)]
pub struct StreamRewriter {
    clock_rate: u32,
    /// Added (wrapping) to incoming values; valid when `rebase_pending` is false.
    seq_offset: u64,
    ts_offset: u64,
    /// The first output sequence number after the last rebase: anything below is a late packet from
    /// before the splice.
    base_seq: u64,
    last: Option<LastOut>,
    rebase_pending: bool,
}

impl StreamRewriter {
    /// A rewriter for a stream with the given RTP clock rate (48000 for Opus, 90000 for video).
    pub fn new(clock_rate: u32) -> Self {
        StreamRewriter {
            clock_rate,
            seq_offset: 0,
            ts_offset: 0,
            base_seq: 0,
            last: None,
            rebase_pending: true,
        }
    }

    /// The next forwarded packet starts a new splice: a resume after a pause, or a layer switch.
    pub fn splice(&mut self) {
        self.rebase_pending = true;
    }

    /// The last position written, if any.
    pub fn last_written(&self) -> Option<RtpPosition> {
        self.last.map(|l| l.position)
    }

    /// Map an incoming packet's position to the outgoing one, or say why it must be dropped.
    pub fn rewrite(
        &mut self,
        incoming: RtpPosition,
        now: Instant,
    ) -> Result<RtpPosition, DropReason> {
        if self.rebase_pending {
            self.rebase(incoming, now);
        }
        let out = RtpPosition {
            seq: incoming.seq.wrapping_add(self.seq_offset),
            timestamp: incoming.timestamp.wrapping_add(self.ts_offset),
        };
        if out.seq < self.base_seq {
            return Err(DropReason::BeforeSwitchPoint);
        }
        // Keep the highest position as "last": reordered packets within the stream still pass.
        if self.last.is_none_or(|l| out.seq > l.position.seq) {
            self.last = Some(LastOut {
                position: out,
                at: now,
            });
        }
        Ok(out)
    }

    fn rebase(&mut self, incoming: RtpPosition, now: Instant) {
        let next = match self.last {
            Some(last) => {
                let elapsed = now.saturating_duration_since(last.at);
                let ticks = ticks(elapsed, self.clock_rate).max(1);
                RtpPosition {
                    seq: last.position.seq + 1,
                    timestamp: last.position.timestamp + ticks,
                }
            }
            // The first packet keeps the publisher's low bits, below 2^15 so the SRTP rollover counter
            // starts at zero (a non-zero one would need out-of-band signalling).
            None => RtpPosition {
                seq: incoming.seq & 0x7fff,
                timestamp: incoming.timestamp & 0xffff_ffff,
            },
        };
        self.seq_offset = next.seq.wrapping_sub(incoming.seq);
        self.ts_offset = next.timestamp.wrapping_sub(incoming.timestamp);
        self.base_seq = next.seq;
        self.rebase_pending = false;
    }
}

fn ticks(elapsed: Duration, clock_rate: u32) -> u64 {
    (elapsed.as_micros() * u128::from(clock_rate) / 1_000_000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(seq: u64, timestamp: u64) -> RtpPosition {
        RtpPosition { seq, timestamp }
    }

    /// Feed `count` packets 20 ms apart (960 ticks at 48 kHz) starting at `first`.
    fn feed(
        rw: &mut StreamRewriter,
        first: RtpPosition,
        count: u64,
        start: Instant,
    ) -> Vec<RtpPosition> {
        (0..count)
            .map(|i| {
                let at = start + Duration::from_millis(20 * i);
                rw.rewrite(pos(first.seq + i, first.timestamp + 960 * i), at)
                    .unwrap()
            })
            .collect()
    }

    fn assert_continuous(out: &[RtpPosition]) {
        for pair in out.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1, "{pair:?}");
            assert!(pair[1].timestamp > pair[0].timestamp, "{pair:?}");
        }
    }

    #[test]
    fn first_packet_starts_below_the_first_rollover() {
        let mut rw = StreamRewriter::new(48_000);
        let out = rw.rewrite(pos(0x1_2345_f000, 7), Instant::now()).unwrap();
        assert!(out.seq < 0x8000);
        assert_eq!(out.seq, 0x7000);
    }

    #[test]
    fn pause_and_resume_continue_sequence_and_time() {
        let t0 = Instant::now();
        let mut rw = StreamRewriter::new(48_000);
        let mut out = feed(&mut rw, pos(100, 10_000), 50, t0);
        let before = *out.last().unwrap();

        // Paused for 3 s: the publisher moved on by 150 packets meanwhile.
        rw.splice();
        let resume_at = t0 + Duration::from_millis(20 * 49) + Duration::from_secs(3);
        let resumed = feed(&mut rw, pos(300, 10_000 + 960 * 200), 50, resume_at);
        assert_eq!(resumed[0].seq, before.seq + 1);
        // The timestamp advanced by the wall-clock pause, not by the publisher's jump.
        assert_eq!(resumed[0].timestamp - before.timestamp, 3 * 48_000);
        out.extend(resumed);
        assert_continuous(&out);
    }

    #[test]
    fn output_crosses_the_16_bit_wraparound_continuously() {
        let t0 = Instant::now();
        let mut rw = StreamRewriter::new(90_000);
        // Input starts at 0x7ff0 so output starts at 0x7ff0 too; run across 65535 on the output.
        let first = feed(&mut rw, pos(0x7ff0, 0), 10, t0);
        assert_eq!(first[0].seq, 0x7ff0);
        rw.splice();
        // Resume from an input that itself wraps (extended values keep growing).
        let mut all = first;
        all.extend(feed(
            &mut rw,
            pos(0xfff0, 0xffff_ff00),
            40_000,
            t0 + Duration::from_secs(1),
        ));
        assert_continuous(&all);
        let last = all.last().unwrap().seq;
        assert!(last > 0xffff, "output went past 16 bits: {last:#x}");
        let wire: Vec<u16> = all.iter().map(|p| p.seq as u16).collect();
        assert!(wire.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    }

    #[test]
    fn late_packets_from_before_a_splice_are_dropped() {
        let t0 = Instant::now();
        let mut rw = StreamRewriter::new(90_000);
        feed(&mut rw, pos(1_000, 0), 10, t0);
        rw.splice();
        rw.rewrite(pos(5_000, 90_000), t0 + Duration::from_secs(1))
            .unwrap();
        assert_eq!(
            rw.rewrite(pos(4_999, 89_000), t0 + Duration::from_secs(1)),
            Err(DropReason::BeforeSwitchPoint)
        );
        // Reordering after the splice point passes.
        rw.rewrite(pos(5_002, 90_000), t0 + Duration::from_secs(1))
            .unwrap();
        let reordered = rw
            .rewrite(pos(5_001, 90_000), t0 + Duration::from_secs(1))
            .unwrap();
        assert_eq!(rw.last_written().unwrap().seq, reordered.seq + 1);
    }

    #[test]
    fn immediate_resume_still_moves_time_forward() {
        let t0 = Instant::now();
        let mut rw = StreamRewriter::new(48_000);
        let a = rw.rewrite(pos(10, 500), t0).unwrap();
        rw.splice();
        let b = rw.rewrite(pos(90, 100), t0).unwrap();
        assert_eq!(b.seq, a.seq + 1);
        assert!(b.timestamp > a.timestamp);
    }
}
