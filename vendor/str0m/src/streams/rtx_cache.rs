use std::time::Duration;
use std::time::Instant;

use crate::io::DATAGRAM_MAX_PACKET_SIZE;
use crate::packet::Vp8Patch;
use crate::rtp_::UserExtensionValues;
use crate::rtp_::{
    ExtensionValues, Frequency, MediaTime, Mid, Pt, Rid, RtpHeader, SeqNo, Ssrc, VideoOrientation,
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

    /// What the entries point into (Dragoman's change, see `CachedPacket`).
    context: EntryContext,
}

impl RtxCache {
    pub fn new(max_packet_count: usize, max_packet_age: Duration) -> Self {
        Self {
            packet_by_seq_no: EvictingBuffer::new(10, max_packet_age, max_packet_count),
            seq_no_by_quantized_size: [SeqNo::MAX; RTX_CACHE_QUANTIZE_SLOTS],
            restored: RtpPacket::blank(),
            context: EntryContext::default(),
        }
    }

    pub fn cache_sent_packet(&mut self, packet: RtpPacket, now: Instant) {
        assert!(packet.nackable);
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
        let parts = SentParts {
            seq_no,
            time,
            timestamp,
            payload,
            vp8_patch,
            header: &header,
            forwarded: false,
        };
        self.insert(parts, now);
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
        let parts = SentParts {
            seq_no,
            time,
            timestamp: now,
            payload,
            vp8_patch: None,
            header,
            forwarded: true,
        };
        self.insert(parts, now);
    }

    fn insert(&mut self, parts: SentParts<'_>, now: Instant) {
        let seq_no = parts.seq_no;
        let quantized_size = parts.payload.len() / RTX_CACHE_SIZE_QUANTIZER;
        let entry = CachedPacket::new(parts, &mut self.context);
        self.packet_by_seq_no.push(*seq_no, now, entry);
        self.seq_no_by_quantized_size[quantized_size] = seq_no;
        self.remove_old_packets(now);
    }

    pub fn last_cached_seq_no(&self) -> Option<SeqNo> {
        Some(self.packet_by_seq_no.last_position()?.into())
    }

    /// Let go of the payload of the packet last rebuilt by `get_cached_packet_by_seq_no`, once
    /// it was sent: held there until the next rebuild, a resend's payload would stay out of its
    /// publisher's payload pool for as long as no other resend comes (Dragoman's change).
    pub fn release_restored(&mut self) {
        if self.restored.payload.is_pooled() {
            self.restored.payload = Payload::default();
        }
    }

    /// The cached packet `seq_no` as it was sent. Changes to it are not kept: the next call
    /// rebuilds it from the cache.
    pub fn get_cached_packet_by_seq_no(&mut self, seq_no: SeqNo) -> Option<&mut RtpPacket> {
        let cached = self.packet_by_seq_no.get(*seq_no)?;
        cached.restore_into(seq_no, &self.context, &mut self.restored);
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
        self.context = EntryContext::default();
    }
}

/// A sent packet as the RTX cache keeps it (Dragoman's change): what a resend needs, in one
/// 64-byte cache line (checked below) instead of a ~400-byte `RtpPacket`. A cache is written once
/// per packet sent and read back only for a resend, so the cost of caching is the memory an entry
/// touches: a line for the new entry and, when it is evicted a resend window later, the same line
/// again, both long out of the CPU's caches.
///
/// What a stream's packets share (SSRC, mid, rid, the header's flag bits) is kept once per cache
/// in a small table of [`HeaderShape`]s, which the entry points into; the send time is kept as an
/// offset from the cache's first one. A packet that does not fit that form (CSRCs, extension
/// values besides mid, rid and video orientation, a VP8 patch, a sequence number other than its
/// `SeqNo`'s low bits, an earlier send time than the cache's first, or a fifth header shape) keeps
/// those parts whole in `rare` (one allocation).
#[derive(Debug)]
#[repr(align(64))]
struct CachedPacket {
    payload: Payload,
    /// `MediaTime` in parts: kept whole it would take 16 bytes with its padding.
    time_numer: u64,
    time_frequency: Frequency,
    /// The send time, in nanoseconds after the cache's `first_sent`.
    sent_after_first: u64,
    rtp_timestamp: u32,
    header_len: u16,
    payload_type: Pt,
    marker: bool,
    /// Index into the cache's shapes; unused when `rare` is set.
    shape: u8,
    /// CVO: browsers put it on the last packet of every video frame.
    video_orientation: Option<VideoOrientation>,
    rare: Option<Box<RareParts>>,
}

// One cache line: the point of the compact entry.
const _: () = assert!(std::mem::size_of::<CachedPacket>() == 64);
const _: () = assert!(std::mem::size_of::<Option<CachedPacket>>() == 64);

/// What the packets of one stream have in common, kept once per cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeaderShape {
    ssrc: Ssrc,
    mid: Option<Mid>,
    rid: Option<Rid>,
    version: u8,
    has_padding: bool,
    has_extension: bool,
}

/// The header shapes a cache has seen, at most [`MAX_SHAPES`]: a stream's packets carry mid and
/// rid until the receiver acknowledges its SSRC, then not, so two are the usual.
#[derive(Debug, Default)]
struct HeaderShapes {
    shapes: [Option<HeaderShape>; MAX_SHAPES],
}

const MAX_SHAPES: usize = 4;

impl HeaderShapes {
    /// The index of `shape`, added when new and there is room.
    fn index_of(&mut self, shape: HeaderShape) -> Option<u8> {
        if let Some(i) = self.shapes.iter().position(|s| *s == Some(shape)) {
            return Some(i as u8);
        }
        let free = self.shapes.iter().position(Option::is_none)?;
        self.shapes[free] = Some(shape);
        Some(free as u8)
    }

    /// The shape at `index`, as `index_of` gave it.
    fn get(&self, index: u8) -> Option<HeaderShape> {
        *self.shapes.get(index as usize)?
    }
}

/// The header parts and send time of a packet that does not fit the compact entry.
#[derive(Debug)]
struct RareParts {
    shape: HeaderShape,
    timestamp: Instant,
    sequence_number: u16,
    vp8_patch: Option<Vp8Patch>,
    csrc_count: usize,
    csrc: [u32; 15],
    ext_vals: ExtensionValues,
}

/// What a cache keeps besides its entries: the shapes they point into and the time their send
/// times count from.
#[derive(Debug, Default)]
struct EntryContext {
    shapes: HeaderShapes,
    first_sent: Option<Instant>,
}

/// A packet's parts as the cache takes them.
struct SentParts<'a> {
    seq_no: SeqNo,
    time: MediaTime,
    timestamp: Instant,
    payload: Payload,
    vp8_patch: Option<Vp8Patch>,
    header: &'a RtpHeader,
    /// Sent by `StreamTx::forward_now`: the header carries the transport extension values
    /// (abs-send-time, transport-cc) of that send, which are not kept (a resend sets its own).
    forwarded: bool,
}

impl CachedPacket {
    fn new(parts: SentParts<'_>, context: &mut EntryContext) -> Self {
        let SentParts {
            seq_no,
            time,
            timestamp,
            payload,
            vp8_patch,
            header,
            forwarded,
        } = parts;
        let shape = HeaderShape {
            ssrc: header.ssrc,
            mid: header.ext_vals.mid,
            rid: header.ext_vals.rid,
            version: header.version,
            has_padding: header.has_padding,
            has_extension: header.has_extension,
        };
        let first_sent = *context.first_sent.get_or_insert(timestamp);
        let sent_after_first = timestamp
            .checked_duration_since(first_sent)
            .and_then(|d| u64::try_from(d.as_nanos()).ok());
        let rare_values = if forwarded {
            !only_compact_and_transport_values(&header.ext_vals)
        } else {
            !only_compact_values(&header.ext_vals)
        };
        let compact = !rare_values
            && header.csrc_count == 0
            && header.csrc == [0; 15]
            && vp8_patch.is_none()
            && header.sequence_number == *seq_no as u16;
        // Only a packet that fits takes a place in the shape table.
        let shape_index = (compact && sent_after_first.is_some())
            .then(|| context.shapes.index_of(shape))
            .flatten();
        let (shape_index, sent_after_first, rare) = match (shape_index, sent_after_first) {
            (Some(index), Some(after)) => (index, after, None),
            _ => {
                let mut ext_vals = header.ext_vals.clone();
                if forwarded {
                    ext_vals.abs_send_time = None;
                    ext_vals.transport_cc = None;
                }
                let rare = RareParts {
                    shape,
                    timestamp,
                    sequence_number: header.sequence_number,
                    vp8_patch,
                    csrc_count: header.csrc_count,
                    csrc: header.csrc,
                    ext_vals,
                };
                (0, 0, Some(Box::new(rare)))
            }
        };
        CachedPacket {
            payload,
            time_numer: time.numer(),
            time_frequency: time.frequency(),
            sent_after_first,
            rtp_timestamp: header.timestamp,
            // A header is at most a datagram long; a resend writes its own length anyway.
            header_len: u16::try_from(header.header_len).unwrap_or(u16::MAX),
            payload_type: header.payload_type,
            marker: header.marker,
            shape: shape_index,
            video_orientation: header.ext_vals.video_orientation,
            rare,
        }
    }

    /// Write the packet `seq_no` as it was cached into `out` (a sent packet: no sender info,
    /// nackable).
    fn restore_into(&self, seq_no: SeqNo, context: &EntryContext, out: &mut RtpPacket) {
        out.seq_no = seq_no;
        out.time = MediaTime::new(self.time_numer, self.time_frequency);
        out.payload = self.payload.clone();
        out.last_sender_info = None;
        out.nackable = true;
        let (shape, timestamp, sequence_number, csrc_count, csrc, ext_vals) = match &self.rare {
            Some(rare) => {
                out.vp8_patch = rare.vp8_patch;
                (
                    rare.shape,
                    rare.timestamp,
                    rare.sequence_number,
                    rare.csrc_count,
                    rare.csrc,
                    rare.ext_vals.clone(),
                )
            }
            None => {
                out.vp8_patch = None;
                // Both set when the entry was made, and reset only with the entries (`clear`).
                let shape = context
                    .shapes
                    .get(self.shape)
                    .expect("an entry's shape is kept");
                let first_sent = context.first_sent.expect("set by the first entry");
                let ext_vals = ExtensionValues {
                    mid: shape.mid,
                    rid: shape.rid,
                    video_orientation: self.video_orientation,
                    ..Default::default()
                };
                (
                    shape,
                    first_sent + Duration::from_nanos(self.sent_after_first),
                    *seq_no as u16,
                    0,
                    [0; 15],
                    ext_vals,
                )
            }
        };
        out.timestamp = timestamp;
        out.header = RtpHeader {
            version: shape.version,
            has_padding: shape.has_padding,
            has_extension: shape.has_extension,
            csrc_count,
            marker: self.marker,
            payload_type: self.payload_type,
            sequence_number,
            timestamp: self.rtp_timestamp,
            ssrc: shape.ssrc,
            csrc,
            ext_vals,
            header_len: self.header_len as usize,
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

    /// A sent packet of the given shape: `variant` picks the header parts that differ.
    fn shaped_packet(now: Instant, seq_no: u64, variant: u64) -> RtpPacket {
        let mut packet = packet(now, seq_no, seq_no * 10);
        packet.header.sequence_number = seq_no as u16;
        packet.header.timestamp = 90_000 + seq_no as u32 * 3000;
        packet.header.marker = seq_no % 3 == 0;
        packet.header.payload_type = 96.into();
        packet.header.header_len = 24;
        // Audio's clock too: `MediaTime` compares by value across clocks, so tests check it apart.
        packet.time = if variant % 3 == 1 {
            MediaTime::new(500_000 + seq_no * 960, Frequency::FORTY_EIGHT_KHZ)
        } else {
            MediaTime::from_90khz(1_000_000 + seq_no * 3000)
        };
        packet.header.ext_vals.video_orientation =
            (seq_no % 2 == 0).then_some(VideoOrientation::Deg90);
        // The usual change: mid and rid until the receiver acknowledges the SSRC, then neither.
        if variant % 2 == 0 {
            packet.header.ext_vals.mid = Some("v0".into());
            packet.header.ext_vals.rid = Some("h".into());
        }
        // More shapes than a cache keeps apart: the rest are kept whole.
        packet.header.ssrc = (1000 + (variant % 7) as u32).into();
        match variant % 5 {
            1 => packet.header.ext_vals.audio_level = Some(-30),
            2 => {
                packet.header.csrc_count = 1;
                packet.header.csrc[0] = 77;
            }
            3 => packet.header.sequence_number = 9,
            _ => {}
        }
        packet
    }

    #[test]
    fn every_cached_packet_comes_back_as_it_was_sent() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(400, Duration::from_secs(10));
        // Packets stamped out of time order too: the first send time is not the earliest.
        let stamped = |seq_no: u64| {
            let mut packet = shaped_packet(now, seq_no, seq_no / 4);
            packet.timestamp = after(now, 100 + (seq_no * 7) % 50);
            packet
        };
        for seq_no in 1..=60 {
            rtx_cache.cache_sent_packet(stamped(seq_no), after(now, 200 + seq_no));
        }
        for seq_no in 1..=60 {
            let mut expected = stamped(seq_no);
            expected.nackable = true;
            let restored = rtx_cache
                .get_cached_packet_by_seq_no(seq_no.into())
                .expect("cached");
            assert_eq!(restored.time.frequency(), expected.time.frequency());
            assert_eq!(&mut expected, restored, "seq_no {seq_no}");
        }
        assert!(
            rtx_cache.context.shapes.shapes.iter().all(Option::is_some),
            "more shapes than the table keeps were seen"
        );
    }

    #[test]
    fn a_forwarded_packet_comes_back_without_its_transport_values() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(400, Duration::from_secs(10));
        for (seq_no, variant) in [(1, 0), (2, 1), (3, 2), (4, 5)] {
            let mut sent = shaped_packet(now, seq_no, variant);
            sent.header.ext_vals.abs_send_time = Some(after(now, 5));
            sent.header.ext_vals.transport_cc = Some(7);
            let at = after(now, seq_no * 20);
            rtx_cache.cache_forwarded(
                sent.seq_no,
                sent.time,
                &sent.header,
                sent.payload.clone(),
                at,
            );
            let mut expected = sent;
            expected.header.ext_vals.abs_send_time = None;
            expected.header.ext_vals.transport_cc = None;
            expected.timestamp = at;
            expected.nackable = true;
            let restored = rtx_cache
                .get_cached_packet_by_seq_no(seq_no.into())
                .expect("cached");
            assert_eq!(&mut expected, restored, "seq_no {seq_no}");
        }
    }

    #[test]
    fn a_cleared_cache_takes_new_shapes_and_send_times() {
        let now = Instant::now();
        let mut rtx_cache = RtxCache::new(400, Duration::from_secs(10));
        // Fill the shape table, and set the first send time late.
        for seq_no in 1..=20 {
            let mut packet = shaped_packet(now, seq_no, seq_no);
            packet.timestamp = after(now, 5000);
            rtx_cache.cache_sent_packet(packet, after(now, 100 + seq_no));
        }
        rtx_cache.clear();
        for seq_no in 21..=40 {
            let mut packet = shaped_packet(now, seq_no, seq_no + 7);
            packet.timestamp = after(now, seq_no);
            rtx_cache.cache_sent_packet(packet, after(now, 200 + seq_no));
        }
        for seq_no in 1..=20 {
            assert!(
                rtx_cache
                    .get_cached_packet_by_seq_no(seq_no.into())
                    .is_none()
            );
        }
        for seq_no in 21..=40 {
            let mut expected = shaped_packet(now, seq_no, seq_no + 7);
            expected.timestamp = after(now, seq_no);
            expected.nackable = true;
            let restored = rtx_cache
                .get_cached_packet_by_seq_no(seq_no.into())
                .expect("cached");
            assert_eq!(restored.time.frequency(), expected.time.frequency());
            assert_eq!(&mut expected, restored, "seq_no {seq_no}");
        }
        // After a clear the table and the first send time start afresh: a packet of a shape not
        // seen before, sent before the last first send time, is compact again.
        rtx_cache.clear();
        let mut packet = shaped_packet(now, 50, 0);
        packet.timestamp = after(now, 1);
        rtx_cache.cache_sent_packet(packet, after(now, 300));
        let entry = rtx_cache.packet_by_seq_no.get(50).expect("cached");
        assert!(entry.rare.is_none(), "kept in the compact form");
    }
}
