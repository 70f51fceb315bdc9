//! Keyframe detection in RTP payloads (VP8, H264) and the per-layer keyframe request throttle.

use std::time::{Duration, Instant};

/// Video codecs whose keyframes the forwarder can recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    H264,
    /// Any other codec: every packet counts as a possible switch point (no keyframe gating).
    Other,
}

/// Does this RTP payload start a keyframe?
pub fn starts_keyframe(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8_starts_keyframe(payload),
        VideoCodec::H264 => h264_starts_keyframe(payload),
        VideoCodec::Other => true,
    }
}

/// VP8 (RFC 7741): the first packet of a partition 0 whose frame header has the inverse key frame bit
/// clear.
fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x0f;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut offset = 1;
    if extended {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        offset = 2;
        if x & 0x80 != 0 {
            // PictureID, 7 or 15 bits.
            let Some(&pid) = payload.get(offset) else {
                return false;
            };
            offset += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            offset += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            offset += 1; // TID / KEYIDX
        }
    }
    payload.get(offset).is_some_and(|header| header & 0x01 == 0)
}

/// H264 (RFC 6184): an IDR slice or SPS, alone, in a STAP-A, or at the start of an FU-A.
fn h264_starts_keyframe(payload: &[u8]) -> bool {
    const IDR: u8 = 5;
    const SPS: u8 = 7;
    const STAP_A: u8 = 24;
    const FU_A: u8 = 28;
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        IDR | SPS => true,
        STAP_A => {
            let mut rest = &payload[1..];
            while rest.len() > 2 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let Some(&nal) = rest.get(2) else {
                    return false;
                };
                if matches!(nal & 0x1f, IDR | SPS) {
                    return true;
                }
                rest = rest.get(2 + size..).unwrap_or(&[]);
            }
            false
        }
        FU_A => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == IDR),
        _ => false,
    }
}

/// Limits keyframe requests to a publisher's layer to one per interval, without losing any: a request
/// inside the interval is remembered and sent when the interval ends.
#[derive(Debug, Clone, Default)]
pub struct KeyframeThrottle {
    last_sent: Option<Instant>,
    deferred: bool,
}

impl KeyframeThrottle {
    /// Ask for a keyframe. Returns true when the request should go out now.
    pub fn request(&mut self, now: Instant, interval: Duration) -> bool {
        match self.last_sent {
            Some(last) if now < last + interval => {
                self.deferred = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.deferred = false;
                true
            }
        }
    }

    /// A keyframe arrived: it answers every request made before it, so a deferred one is dropped.
    pub fn keyframe_arrived(&mut self) {
        self.deferred = false;
    }

    /// When a deferred request becomes due, if one is waiting.
    pub fn deferred_due(&self, interval: Duration) -> Option<Instant> {
        match (self.deferred, self.last_sent) {
            (true, Some(last)) => Some(last + interval),
            _ => None,
        }
    }

    /// Send the deferred request if it is due. Returns true when it should go out now.
    pub fn poll_deferred(&mut self, now: Instant, interval: Duration) -> bool {
        if self.deferred_due(interval).is_some_and(|due| now >= due) {
            self.last_sent = Some(now);
            self.deferred = false;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframes() {
        // S=1, PID=0, no extension; frame header P bit 0 => keyframe.
        assert!(starts_keyframe(
            VideoCodec::Vp8,
            &[0x10, 0x00, 0x9d, 0x01, 0x2a]
        ));
        // Same, but P bit 1 => interframe.
        assert!(!starts_keyframe(VideoCodec::Vp8, &[0x10, 0x01]));
        // Not the start of a partition.
        assert!(!starts_keyframe(VideoCodec::Vp8, &[0x00, 0x00]));
        // Extended with a 15-bit picture id, TL0PICIDX and TID: header at offset 6.
        assert!(starts_keyframe(
            VideoCodec::Vp8,
            &[0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x00]
        ));
        assert!(!starts_keyframe(
            VideoCodec::Vp8,
            &[0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x01]
        ));
        // Truncated payloads are not keyframes and do not panic.
        for len in 0..6 {
            assert!(!starts_keyframe(
                VideoCodec::Vp8,
                &[0x90, 0xe0, 0x80, 0x01, 0x05, 0x20][..len]
            ));
        }
    }

    #[test]
    fn h264_keyframes() {
        assert!(starts_keyframe(VideoCodec::H264, &[0x65, 0x88]));
        assert!(starts_keyframe(VideoCodec::H264, &[0x67, 0x42]));
        assert!(!starts_keyframe(VideoCodec::H264, &[0x41, 0x9a]));
        // STAP-A with SPS inside.
        assert!(starts_keyframe(
            VideoCodec::H264,
            &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68]
        ));
        // STAP-A with only a non-IDR slice, and a truncated one.
        assert!(!starts_keyframe(
            VideoCodec::H264,
            &[0x78, 0x00, 0x02, 0x41, 0x9a]
        ));
        assert!(!starts_keyframe(VideoCodec::H264, &[0x78, 0x00]));
        // FU-A start of an IDR slice, and a middle fragment.
        assert!(starts_keyframe(VideoCodec::H264, &[0x7c, 0x85, 0x00]));
        assert!(!starts_keyframe(VideoCodec::H264, &[0x7c, 0x05, 0x00]));
        assert!(!starts_keyframe(VideoCodec::H264, &[]));
    }

    #[test]
    fn throttle_defers_instead_of_dropping() {
        let t0 = Instant::now();
        let interval = Duration::from_millis(500);
        let mut throttle = KeyframeThrottle::default();
        assert!(throttle.request(t0, interval));
        assert!(!throttle.request(t0 + Duration::from_millis(100), interval));
        assert!(!throttle.request(t0 + Duration::from_millis(200), interval));
        assert_eq!(throttle.deferred_due(interval), Some(t0 + interval));
        assert!(!throttle.poll_deferred(t0 + Duration::from_millis(499), interval));
        assert!(throttle.poll_deferred(t0 + interval, interval));
        // Only one deferred request went out for the two throttled ones.
        assert!(!throttle.poll_deferred(t0 + Duration::from_secs(2), interval));
        assert!(throttle.request(t0 + Duration::from_secs(2), interval));
    }

    #[test]
    fn a_keyframe_answers_the_deferred_request() {
        let t0 = Instant::now();
        let interval = Duration::from_millis(500);
        let mut throttle = KeyframeThrottle::default();
        assert!(throttle.request(t0, interval));
        assert!(!throttle.request(t0 + Duration::from_millis(100), interval));
        throttle.keyframe_arrived();
        assert_eq!(throttle.deferred_due(interval), None);
        assert!(!throttle.poll_deferred(t0 + interval, interval));
        // A request after the keyframe is deferred again.
        assert!(!throttle.request(t0 + Duration::from_millis(300), interval));
        assert!(throttle.poll_deferred(t0 + interval, interval));
    }
}
