//! Why the forwarding path did not forward a packet: one typed reason for every early return.

/// Why a packet was not forwarded to a subscriber (or not forwarded at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The packet's SSRC belongs to no known receive stream of the publisher.
    UnknownStream,
    /// The publisher sends on a `mid` that is not (or no longer) published.
    Unpublished,
    /// The payload type is not negotiated for the publisher's media.
    UnknownPayloadType,
    /// The subscriber has paused (unsubscribed) this track.
    Paused,
    /// The subscriber's transport has not finished offer/answer for this track yet.
    NotNegotiated,
    /// The subscriber did not negotiate a codec that matches the publisher's.
    CodecMismatch,
    /// Video waits for a keyframe before it starts or resumes.
    WaitingForKeyframe,
    /// A packet of a simulcast layer the subscriber is not receiving.
    OtherLayer,
    /// A late packet from before the last switch point; forwarding it would go backwards.
    BeforeSwitchPoint,
    /// A datagram from an address no peer accepts.
    UnknownSource,
    /// A datagram that is neither STUN, DTLS nor SRTP, or that the peer's stack refused.
    Malformed,
    /// A payload too long to forward within str0m's largest datagram once the subscriber's
    /// header and the SRTP tag are added (no browser sends one; see `MAX_FORWARDED_PAYLOAD`).
    Oversize,
}

impl DropReason {
    /// Every reason, for metrics that pre-register one series per reason.
    pub const ALL: [DropReason; 12] = [
        DropReason::UnknownStream,
        DropReason::Unpublished,
        DropReason::UnknownPayloadType,
        DropReason::Paused,
        DropReason::NotNegotiated,
        DropReason::CodecMismatch,
        DropReason::WaitingForKeyframe,
        DropReason::OtherLayer,
        DropReason::BeforeSwitchPoint,
        DropReason::UnknownSource,
        DropReason::Malformed,
        DropReason::Oversize,
    ];

    /// A stable snake_case name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownStream => "unknown_stream",
            DropReason::Unpublished => "unpublished",
            DropReason::UnknownPayloadType => "unknown_payload_type",
            DropReason::Paused => "paused",
            DropReason::NotNegotiated => "not_negotiated",
            DropReason::CodecMismatch => "codec_mismatch",
            DropReason::WaitingForKeyframe => "waiting_for_keyframe",
            DropReason::OtherLayer => "other_layer",
            DropReason::BeforeSwitchPoint => "before_switch_point",
            DropReason::UnknownSource => "unknown_source",
            DropReason::Malformed => "malformed",
            DropReason::Oversize => "oversize",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Count of dropped packets per reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropCounts([u64; DropReason::ALL.len()]);

impl DropCounts {
    pub fn add(&mut self, reason: DropReason) {
        self.0[reason.index()] += 1;
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason.index()]
    }

    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }
}

/// Totals over several engines.
impl std::ops::AddAssign<&DropCounts> for DropCounts {
    fn add_assign(&mut self, other: &DropCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0.iter()) {
            *mine += theirs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_in_index_order() {
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
        let mut counts = DropCounts::default();
        counts.add(DropReason::Paused);
        counts.add(DropReason::Paused);
        assert_eq!(counts.get(DropReason::Paused), 2);
        assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), 2);
    }
}
