//! Turns clip frames into RTP packets with webrtc-rs's packetizer and payloaders.
//!
//! The bot packetizes itself (rather than letting `TrackLocalStaticSample` do it) so it can count
//! every packet and drop some on purpose while still consuming their sequence numbers.

use std::time::Instant;

use dragoman_signal::protocol::TrackKind;
use rtc::rtp;
use rtc::rtp::codec::opus::OpusPayloader;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::{Packetizer, Payloader};
use rtc::rtp::sequence::new_random_sequencer;

use crate::error::BotError;
use crate::media::clip::{Clip, Frame};

/// RTP packet size limit, header included, as webrtc-rs uses for its own tracks.
pub const RTP_MTU: usize = 1200;

/// Packetizes one track's frames: one SSRC, one payload type, a random first sequence number and
/// timestamp, the timestamp advancing by each frame's duration.
pub struct FramePacketizer {
    inner: Box<dyn Packetizer>,
}

impl std::fmt::Debug for FramePacketizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramePacketizer").finish_non_exhaustive()
    }
}

impl FramePacketizer {
    pub fn new(kind: TrackKind, ssrc: u32, payload_type: u8, clock_rate: u32) -> Self {
        let payloader: Box<dyn Payloader> = match kind {
            TrackKind::Audio => Box::<OpusPayloader>::default(),
            TrackKind::Video => {
                let mut vp8 = Vp8Payloader::default();
                vp8.enable_picture_id = true;
                Box::new(vp8)
            }
        };
        let inner = rtp::packetizer::new_packetizer(
            Instant::now(),
            RTP_MTU,
            payload_type,
            ssrc,
            payloader,
            Box::new(new_random_sequencer()),
            clock_rate,
        );
        FramePacketizer {
            inner: Box::new(inner),
        }
    }

    /// A packetizer for `clip`'s kind and clock rate.
    pub fn for_clip(clip: &Clip, ssrc: u32, payload_type: u8) -> Self {
        FramePacketizer::new(clip.kind, ssrc, payload_type, clip.clock_rate)
    }

    /// The RTP packets of one frame, in order, the last one with the marker bit.
    pub fn packetize(&mut self, frame: &Frame) -> Result<Vec<rtp::Packet>, BotError> {
        self.inner
            .packetize(Instant::now(), &frame.data, frame.samples)
            .map_err(|e| BotError::Media(format!("packetizing a frame: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::vp8::payload_starts_keyframe;

    #[test]
    fn packetizes_vp8_frames_within_the_mtu() {
        let clip = Clip::vp8().unwrap();
        let mut packetizer = FramePacketizer::for_clip(&clip, 0x1234, 96);
        let mut previous: Option<rtp::Packet> = None;
        let mut keyframe_starts = 0;
        for (i, frame) in clip.frames.iter().enumerate() {
            let packets = packetizer.packetize(frame).unwrap();
            assert!(!packets.is_empty());
            let first = &packets[0];
            assert_eq!(
                payload_starts_keyframe(&first.payload),
                frame.keyframe,
                "frame {i}"
            );
            if frame.keyframe {
                keyframe_starts += 1;
                assert!(packets.len() > 1, "a keyframe does not fit one packet");
            }
            for (j, packet) in packets.iter().enumerate() {
                assert_eq!(packet.header.ssrc, 0x1234);
                assert_eq!(packet.header.payload_type, 96);
                assert_eq!(packet.header.timestamp, first.header.timestamp);
                assert_eq!(packet.header.marker, j == packets.len() - 1);
                assert!(packet.payload.len() + 12 <= RTP_MTU);
                if j > 0 {
                    assert!(!payload_starts_keyframe(&packet.payload));
                }
            }
            if let Some(prev) = &previous {
                assert_eq!(
                    first.header.sequence_number,
                    prev.header.sequence_number.wrapping_add(1)
                );
                assert_eq!(
                    first.header.timestamp,
                    prev.header.timestamp.wrapping_add(6000)
                );
            }
            previous = packets.last().cloned();
        }
        assert_eq!(keyframe_starts, 3);
    }

    #[test]
    fn packetizes_one_opus_packet_per_frame() {
        let clip = Clip::opus().unwrap();
        let mut packetizer = FramePacketizer::for_clip(&clip, 7, 111);
        let mut timestamps = Vec::new();
        for frame in clip.frames.iter().take(10) {
            let packets = packetizer.packetize(frame).unwrap();
            assert_eq!(packets.len(), 1);
            assert_eq!(packets[0].payload, frame.data);
            assert!(packets[0].header.marker);
            timestamps.push(packets[0].header.timestamp);
        }
        for pair in timestamps.windows(2) {
            assert_eq!(pair[1].wrapping_sub(pair[0]), 960);
        }
    }
}
