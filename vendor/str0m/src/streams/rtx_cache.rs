use std::time::Duration;
use std::time::Instant;

use crate::io::DATAGRAM_MAX_PACKET_SIZE;
use crate::packet::Vp8Patch;
use crate::rtp_::UserExtensionValues;
use crate::rtp_::{
    ExtensionValues, MediaTime, Mid, Pt, Rid, RtpHeader, SeqNo, Ssrc, VideoOrientation,
};

use super::rtx_cache_buf::EvictingBuffer;
use super::{Payload, RtpPacket};

const RTX_CACHE_SIZE_QUANTIZER: usize = 25;
const RTX_CACHE_QUANTIZE_SLOTS: usize = DATAGRAM_MAX_PACKET_SIZE / RTX_CACHE_SIZE_QUANTIZER;

#[derive(Debug)]
pub(crate) struct RtxCache {
    // Data, new additions here probably need to be cleared in [`clear`].
    packet_by_seq_no: EvictingBuffer<CachedPacket>,

    // Technically we want [Option<SeqNo>; X] to indicate the absence of
    // a SeqNo. However We can half the storage space by using the sentinel
    // values SeqNo::MAX to indicate None
    seq_no_by_quantized_size: [SeqNo; RTX_CACHE_QUANTIZE_SLOTS],

    /// The packet last handed out (for a resend, or as spurious padding), rebuilt from its
    /// cached entry. One per cache; it holds that packet's payload until the next rebuild or
    /// `clear`.
    restored: RtpPacket,
}

impl RtxCache {
    pub fn new(max_packet_count: usize, max_packet_age: Duration) -> Self {
        Self {
            packet_by_seq_no: EvictingBuffer::new(10, max_packet_age, max_packet_count),
            seq_no_by_quantized_size: [SeqNo::MAX; RTX_CACHE_QUANTIZE_SLOTS],
            restored: RtpPacket::blank(),
        }
    }

    pub fn cache_sent_packet(&mut self, packet: RtpPacket, now: Instant) {
        assert!(packet.nackable);
        let seq_no = packet.seq_no;
        let quantized_size = packet.payload.len() / RTX_CACHE_SIZE_QUANTIZER;
        self.packet_by_seq_no
            .push(*seq_no, now, CachedPacket::from(packet));
        self.seq_no_by_quantized_size[quantized_size] = seq_no;
        self.remove_old_packets(now);
    }

    /// Cache a packet sent by `StreamTx::forward_now`, from the header it was written with
    /// (the transport extension values, set per send, are not kept: a resend sets its own).
    pub fn cache_forwarded(
        &mut self,
        seq_no: SeqNo,
        time: MediaTime,
        header: &RtpHeader,
        payload: Payload,
        now: Instant,
    ) {
        let quantized_size = payload.len() / RTX_CACHE_SIZE_QUANTIZER;
        let packet = CachedPacket::forwarded(seq_no, time, now, header, payload);
        self.packet_by_seq_no.push(*seq_no, now, packet);
        self.seq_no_by_quantized_size[quantized_size] = seq_no;
        self.remove_old_packets(now);
    }

    pub fn last_cached_seq_no(&self) -> Option<SeqNo> {
        Some(self.packet_by_seq_no.last_position()?.into())
    }

    /// The cached packet `seq_no` as it was sent. Changes to it are not kept: the next call
    /// rebuilds it from the cache.
    /// Let go of the payload of the packet last rebuilt by `get_cached_packet_by_seq_no`, once
    /// it was sent: held there until the next rebuild, a resend's payload would stay out of its
    /// publisher's payload pool for as long as no other resend comes (Dragoman's change).
    pub fn release_restored(&mut self) {
        if self.restored.payload.is_pooled() {
            self.restored.payload = Payload::default();
        }
    }

    pub fn get_cached_packet_by_seq_no(&mut self, seq_no: SeqNo) -> Option<&mut RtpPacket> {
        let cached = self.packet_by_seq_no.get(*seq_no)?;
        cached.restore_into(&mut self.restored);
        Some(&mut self.restored)
    }

    /// The payload size of cached packet `seq_no`, without rebuilding it.
    pub fn cached_payload_len(&self, seq_no: SeqNo) -> Option<usize> {
        Some(self.packet_by_seq_no.get(*seq_no)?.payload.len())
    }

    pub fn get_cached_packet_smaller_than(&mut self, max_size: usize) -> Option<&mut RtpPacket> {
        let quantized_size = max_size / RTX_CACHE_SIZE_QUANTIZER;

        let seq_no = self.seq_no_by_quantized_size[..quantized_size]
            .iter()
            .rev()
            .filter(|seq_no| !seq_no.is_max())
            .find(|seq_no| self.packet_by_seq_no.contains(***seq_no))?;

        self.get_cached_packet_by_seq_no(*seq_no)
    }

    fn remove_old_packets(&mut self, now: Instant) {
        self.packet_by_seq_no.maybe_evict(now);
    }

    pub(crate) fn last_packet(&self) -> Option<&[u8]> {
        let packet = self.packet_by_seq_no.last()?;
        Some(packet.payload.as_ref())
    }

    pub(crate) fn clear(&mut self) {
        self.packet_by_seq_no.clear();
        self.seq_no_by_quantized_size = [SeqNo::MAX; RTX_CACHE_QUANTIZE_SLOTS];
        self.restored = RtpPacket::blank();
    }
}

/// A sent packet as the RTX cache keeps it (Dragoman's change): what a resend needs, in at most
/// 128 bytes (checked below) instead of a ~400-byte `RtpPacket`, most of which is its header's
/// CSRC list and extension values that a sent packet rarely carries beyond mid and rid. Writing
/// the whole struct into the cache's cold slot, and dropping the one it replaced, was most of the
/// cost of caching. A packet that does carry more keeps them whole in `rare` (one allocation).
#[derive(Debug)]
struct CachedPacket {
    seq_no: SeqNo,
    time: MediaTime,
    timestamp: Instant,
    payload: Payload,
    vp8_patch: Option<Vp8Patch>,
    version: u8,
    has_padding: bool,
    has_extension: bool,
    marker: bool,
    payload_type: Pt,
    sequence_number: u16,
    rtp_timestamp: u32,
    ssrc: Ssrc,
    header_len: usize,
    mid: Option<Mid>,
    rid: Option<Rid>,
    /// CVO: browsers put it on the last packet of every video frame.
    video_orientation: Option<VideoOrientation>,
    rare: Option<Box<RareHeaderParts>>,
}

// Two cache lines at most: the point of the compact entry.
const _: () = assert!(std::mem::size_of::<CachedPacket>() <= 128);

/// The header parts a cached packet seldom has: CSRCs, and extension values besides mid, rid and
/// video orientation.
#[derive(Debug)]
struct RareHeaderParts {
    csrc_count: usize,
    csrc: [u32; 15],
    ext_vals: ExtensionValues,
}

impl From<RtpPacket> for CachedPacket {
    fn from(packet: RtpPacket) -> Self {
        let RtpPacket {
            seq_no,
            time,
            header,
            payload,
            vp8_patch,
            timestamp,
            last_sender_info: _,
            nackable: _,
        } = packet;
        let RtpHeader {
            version,
            has_padding,
            has_extension,
            csrc_count,
            marker,
            payload_type,
            sequence_number,
            timestamp: rtp_timestamp,
            ssrc,
            csrc,
            ext_vals,
            header_len,
        } = header;
        let (mid, rid, video_orientation) =
            (ext_vals.mid, ext_vals.rid, ext_vals.video_orientation);
        let rare =
            (csrc_count > 0 || csrc != [0; 15] || !only_compact_values(&ext_vals)).then(|| {
                Box::new(RareHeaderParts {
                    csrc_count,
                    csrc,
                    ext_vals,
                })
            });
        CachedPacket {
            seq_no,
            time,
            timestamp,
            payload,
            vp8_patch,
            version,
            has_padding,
            has_extension,
            marker,
            payload_type,
            sequence_number,
            rtp_timestamp,
            ssrc,
            header_len,
            mid,
            rid,
            video_orientation,
            rare,
        }
    }
}

impl CachedPacket {
    /// The entry of a forwarded packet: as `From<RtpPacket>` would make it from the packet
    /// `poll_packet` caches, whose header has what `header` has but the transport
    /// extension values.
    fn forwarded(
        seq_no: SeqNo,
        time: MediaTime,
        timestamp: Instant,
        header: &RtpHeader,
        payload: Payload,
    ) -> Self {
        let rare_values =
            header.csrc_count > 0 || !only_compact_and_transport_values(&header.ext_vals);
        let ext_vals = rare_values.then(|| {
            let mut values = header.ext_vals.clone();
            values.abs_send_time = None;
            values.transport_cc = None;
            values
        });
        CachedPacket {
            seq_no,
            time,
            timestamp,
            payload,
            vp8_patch: None,
            version: header.version,
            has_padding: header.has_padding,
            has_extension: header.has_extension,
            marker: header.marker,
            payload_type: header.payload_type,
            sequence_number: header.sequence_number,
            rtp_timestamp: header.timestamp,
            ssrc: header.ssrc,
            header_len: header.header_len,
            mid: header.ext_vals.mid,
            rid: header.ext_vals.rid,
            video_orientation: header.ext_vals.video_orientation,
            rare: ext_vals.map(|ext_vals| {
                Box::new(RareHeaderParts {
                    csrc_count: header.csrc_count,
                    csrc: header.csrc,
                    ext_vals,
                })
            }),
        }
    }

    /// Write the packet as it was cached into `out` (a sent packet: no sender info, nackable).
    fn restore_into(&self, out: &mut RtpPacket) {
        out.seq_no = self.seq_no;
        out.time = self.time;
        out.timestamp = self.timestamp;
        out.payload = self.payload.clone();
        out.vp8_patch = self.vp8_patch;
        out.last_sender_info = None;
        out.nackable = true;
        let (csrc_count, csrc, ext_vals) = match &self.rare {
            Some(rare) => (rare.csrc_count, rare.csrc, rare.ext_vals.clone()),
            None => (
                0,
                [0; 15],
                ExtensionValues {
                    mid: self.mid,
                    rid: self.rid,
                    video_orientation: self.video_orientation,
                    ..Default::default()
                },
            ),
        };
        out.header = RtpHeader {
            version: self.version,
            has_padding: self.has_padding,
            has_extension: self.has_extension,
            csrc_count,
            marker: self.marker,
            payload_type: self.payload_type,
            sequence_number: self.sequence_number,
            timestamp: self.rtp_timestamp,
            ssrc: self.ssrc,
            csrc,
            ext_vals,
            header_len: self.header_len,
        };
    }
}

/// Whether the extension values hold nothing but what the compact entry keeps: mid, rid and video
/// orientation.
fn only_compact_values(ext_vals: &ExtensionValues) -> bool {
    only_compact_and_transport_values(ext_vals)
        && ext_vals.abs_send_time.is_none()
        && ext_vals.transport_cc.is_none()
}

/// Whether the extension values hold nothing but what the compact entry keeps and the transport
/// values a send sets (abs-send-time, transport-cc). Every field is named, so a new one cannot be
/// forgotten here.
fn only_compact_and_transport_values(ext_vals: &ExtensionValues) -> bool {
    let ExtensionValues {
        audio_level,
        voice_activity,
        video_orientation: _,
        video_content_type,
        tx_time_offs,
        abs_send_time: _,
        abs_capture_time,
        transport_cc: _,
        play_delay_min,
        play_delay_max,
        video_timing,
        rid: _,
        rid_repair,
        mid: _,
        frame_mark,
        user_values,
    } = ext_vals;
    audio_level.is_none()
        && voice_activity.is_none()
        && video_content_type.is_none()
        && tx_time_offs.is_none()
        && abs_capture_time.is_none()
        && play_delay_min.is_none()
        && play_delay_max.is_none()
        && video_timing.is_none()
        && rid_repair.is_none()
        && frame_mark.is_none()
        && *user_values == UserExtensionValues::default()
}

#[cfg(test)]
mod test {
    use crate::rtp_::MediaTime;
    use crate::rtp_::RtpHeader;

    use super::*;

    fn after(now: Instant, millis: u64) -> Instant {
        now + Duration::from_millis(millis)
    }

    fn packet(now: Instant, seq_no: u64, millis: u64) -> RtpPacket {
        RtpPacket {
            header: RtpHeader::default(),
            seq_no: seq_no.into(),
            time: MediaTime::from_90khz(0),
            payload: millis.to_be_bytes().into(),
            vp8_patch: None,
            timestamp: after(now, millis),
            last_sender_info: None,
            nackable: true,
        }
    }

    #[test]
    fn rtx_cache_0_sized() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(0, Duration::from_secs(3));
        rtx_cache.cache_sent_packet(packet(now, 1, 10), after(now, 10));
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_by_seq_no(1.into())
        );
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_smaller_than(1000)
        );
    }

    #[test]
    fn rtx_cache_0_duration() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(10, Duration::from_secs(0));
        rtx_cache.cache_sent_packet(packet(now, 1, 10), after(now, 10));
        assert_eq!(None, rtx_cache.get_cached_packet_by_seq_no(1.into()));
        assert_eq!(None, rtx_cache.get_cached_packet_smaller_than(1000));
    }

    #[test]
    fn rtx_cache_1_sized() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(1, Duration::from_secs(3));
        rtx_cache.cache_sent_packet(packet(now, 1, 10), after(now, 10));
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_by_seq_no(1.into())
        );
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_smaller_than(1000)
        );
        assert_eq!(
            Some(&mut packet(now, 1, 10)),
            rtx_cache.get_cached_packet_smaller_than(25)
        );
        assert_eq!(None, rtx_cache.get_cached_packet_smaller_than(24));
        rtx_cache.cache_sent_packet(packet(now, 2, 20), after(now, 20));
        assert_eq!(
            Some(&mut packet(now, 2, 20)),
            rtx_cache.get_cached_packet_by_seq_no(2.into())
        );
    }

    #[test]
    fn rtx_cache_100_sized_backwards() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(100, Duration::from_secs(3));

        for i in 1..=200 {
            let seq_no = 201 - i;
            let pkt = packet(now, seq_no, (201 - i) * 10);
            let now = after(now, i * 10);
            rtx_cache.cache_sent_packet(pkt, now);
        }

        assert_eq!(
            Some(&mut packet(now, 200, 2000)),
            rtx_cache.get_cached_packet_by_seq_no(200.into())
        );
        assert_eq!(None, rtx_cache.get_cached_packet_by_seq_no(100.into()));
        assert_eq!(None, rtx_cache.get_cached_packet_by_seq_no(101.into()));
    }

    #[test]
    fn rtx_cache_eviction() {
        let now = Instant::now();
        // Cache can take all entries
        let mut rtx_cache = RtxCache::new(400, Duration::from_secs(1));
        for i in 1..=200 {
            let seq_no = i;
            let pkt = packet(now, seq_no, i * 10);
            let now = after(now, i * 10);
            rtx_cache.cache_sent_packet(pkt, now);
        }

        assert_eq!(None, rtx_cache.get_cached_packet_by_seq_no(99.into()));

        assert_eq!(
            Some(&mut packet(now, 100, 1000)),
            rtx_cache.get_cached_packet_by_seq_no(100.into())
        );
        assert_eq!(
            Some(&mut packet(now, 200, 2000)),
            rtx_cache.get_cached_packet_by_seq_no(200.into())
        );
    }
}
