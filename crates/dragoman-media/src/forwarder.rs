//! The per-subscription forwarding decision: forward this packet (with these rewrites) or drop it,
//! and why. Pure and synchronous: no str0m, no I/O, so every rule is unit-testable.

use std::time::Instant;

use crate::drop_reason::DropReason;
use crate::rewrite::{RtpPosition, StreamRewriter};

/// What the forwarder needs to know of one incoming packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingPacket {
    pub position: RtpPosition,
    /// Index of the simulcast layer the packet belongs to (0 for a single-layer track).
    pub layer: usize,
    /// The packet starts a keyframe (always false for audio).
    pub keyframe: bool,
}

/// Whether forwarding needs a keyframe first (video) or can start anywhere (audio).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPolicy {
    Anywhere,
    OnKeyframe,
}

/// The decision for one packet and one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Forward(RtpPosition),
    Drop(DropReason),
}

/// Forwarding state of one subscription: paused or not, which layer, where the stream continues.
#[derive(Debug, Clone)]
pub struct Forwarder {
    policy: StartPolicy,
    paused: bool,
    /// The layer being forwarded; `None` until the first switch point.
    current_layer: Option<usize>,
    /// The layer the subscriber should receive.
    target_layer: usize,
    rewriter: StreamRewriter,
}

impl Forwarder {
    pub fn new(clock_rate: u32, policy: StartPolicy, target_layer: usize) -> Self {
        Forwarder {
            policy,
            paused: false,
            current_layer: None,
            target_layer,
            rewriter: StreamRewriter::new(clock_rate),
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Stop forwarding at once.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Forward again from the next switch point, continuing the outgoing numbering.
    pub fn resume(&mut self) {
        if self.paused {
            self.paused = false;
            self.current_layer = None;
        }
    }

    /// Choose the layer to receive; the switch happens on that layer's next keyframe.
    pub fn set_target_layer(&mut self, layer: usize) {
        self.target_layer = layer;
    }

    pub fn target_layer(&self) -> usize {
        self.target_layer
    }

    /// The layer being forwarded, if forwarding has started.
    pub fn current_layer(&self) -> Option<usize> {
        self.current_layer
    }

    /// True while the subscriber waits for a keyframe of its target layer (the publisher should be
    /// asked for one).
    pub fn wants_keyframe(&self) -> bool {
        !self.paused
            && self.policy == StartPolicy::OnKeyframe
            && self.current_layer != Some(self.target_layer)
    }

    /// Decide what to do with one packet.
    pub fn decide(&mut self, packet: &IncomingPacket, now: Instant) -> Decision {
        if self.paused {
            return Decision::Drop(DropReason::Paused);
        }
        if self.current_layer != Some(packet.layer) {
            let is_switch_point = packet.layer == self.target_layer
                && (packet.keyframe || self.policy == StartPolicy::Anywhere);
            if is_switch_point {
                self.current_layer = Some(packet.layer);
                self.rewriter.splice();
            } else if self.current_layer.is_none() && packet.layer == self.target_layer {
                return Decision::Drop(DropReason::WaitingForKeyframe);
            } else {
                return Decision::Drop(DropReason::OtherLayer);
            }
        }
        match self.rewriter.rewrite(packet.position, now) {
            Ok(out) => Decision::Forward(out),
            Err(reason) => Decision::Drop(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn packet(seq: u64, layer: usize, keyframe: bool) -> IncomingPacket {
        IncomingPacket {
            position: RtpPosition {
                seq,
                timestamp: seq * 3000,
            },
            layer,
            keyframe,
        }
    }

    fn forwarded_seq(decision: Decision) -> u64 {
        match decision {
            Decision::Forward(p) => p.seq,
            Decision::Drop(reason) => panic!("dropped: {reason:?}"),
        }
    }

    #[test]
    fn video_waits_for_a_keyframe_then_forwards() {
        let now = Instant::now();
        let mut f = Forwarder::new(90_000, StartPolicy::OnKeyframe, 0);
        assert!(f.wants_keyframe());
        assert_eq!(
            f.decide(&packet(1, 0, false), now),
            Decision::Drop(DropReason::WaitingForKeyframe)
        );
        let first = forwarded_seq(f.decide(&packet(2, 0, true), now));
        assert!(!f.wants_keyframe());
        assert_eq!(
            forwarded_seq(f.decide(&packet(3, 0, false), now)),
            first + 1
        );
    }

    #[test]
    fn audio_starts_anywhere() {
        let mut f = Forwarder::new(48_000, StartPolicy::Anywhere, 0);
        assert!(!f.wants_keyframe());
        assert!(matches!(
            f.decide(&packet(9, 0, false), Instant::now()),
            Decision::Forward(_)
        ));
    }

    #[test]
    fn pause_drops_and_resume_continues_after_a_keyframe() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(90_000, StartPolicy::OnKeyframe, 0);
        let a = forwarded_seq(f.decide(&packet(10, 0, true), t0));
        f.pause();
        assert_eq!(
            f.decide(&packet(11, 0, false), t0),
            Decision::Drop(DropReason::Paused)
        );
        assert!(!f.wants_keyframe());
        f.resume();
        assert!(f.wants_keyframe());
        let later = t0 + Duration::from_secs(2);
        assert_eq!(
            f.decide(&packet(60, 0, false), later),
            Decision::Drop(DropReason::WaitingForKeyframe)
        );
        assert_eq!(forwarded_seq(f.decide(&packet(61, 0, true), later)), a + 1);
    }

    #[test]
    fn layer_switch_happens_on_the_target_layers_keyframe() {
        let now = Instant::now();
        let mut f = Forwarder::new(90_000, StartPolicy::OnKeyframe, 2);
        assert_eq!(
            f.decide(&packet(1, 0, true), now),
            Decision::Drop(DropReason::OtherLayer)
        );
        let s = forwarded_seq(f.decide(&packet(100, 2, true), now));
        f.set_target_layer(0);
        assert!(f.wants_keyframe());
        // Keep forwarding the old layer until the new one has a keyframe.
        assert_eq!(forwarded_seq(f.decide(&packet(101, 2, false), now)), s + 1);
        assert_eq!(
            f.decide(&packet(5, 0, false), now),
            Decision::Drop(DropReason::OtherLayer)
        );
        assert_eq!(forwarded_seq(f.decide(&packet(6, 0, true), now)), s + 2);
        assert_eq!(f.current_layer(), Some(0));
        assert_eq!(
            f.decide(&packet(102, 2, false), now),
            Decision::Drop(DropReason::OtherLayer)
        );
    }
}
