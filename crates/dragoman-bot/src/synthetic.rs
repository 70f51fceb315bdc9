//! Synthetic media for measurement: RTP packets whose payload ends in a *stamp* (a magic marker,
//! the sending track, a per-track packet number and the send time), so a receiving bot in the same
//! process can tell forwarding latency and exactly which packets it did not get.
//!
//! The payloads are shaped well enough for an SFU: audio starts with an Opus TOC byte (20 ms CELT),
//! video carries a VP8 payload descriptor (with a 15-bit picture id) and, on the first packet of a
//! frame, a VP8 frame header whose key-frame bit says whether the frame is a keyframe. Nothing
//! decodes them; a browser would show garbage.
//!
//! All times are nanoseconds on one process-wide monotonic clock ([`clock_ns`]): every bot of one
//! load run lives in one process, so sender and receiver stamps compare directly.
//!
//! A [`Probe`] is shared by all bots of a run: it hands out track numbers and holds the
//! measurement window. A packet belongs to the window when its *send* time does; the sender counts
//! the window's packets as it stamps them and the receiver counts those it gets, so packets in
//! flight at the window's edges are neither lost nor double-counted.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use dragoman_signal::protocol::TrackKind;
use rtc::rtp;

use crate::error::BotError;
use crate::media::clip::{OPUS_CLOCK_RATE, VIDEO_CLOCK_RATE};
use crate::stats::sequence::Arrival;
use crate::stats::{Histogram, SequenceTracker};

/// The stamp's marker: the last [`STAMP_LEN`] bytes of a synthetic payload start with it.
pub const MAGIC: [u8; 8] = *b"DRGMSYN1";
/// Marker, track (u32), packet number (u32), send time (u64 ns), big-endian.
pub const STAMP_LEN: usize = 24;
/// The Opus TOC byte of every synthetic audio packet: config 31 (CELT fullband 20 ms), mono, one
/// frame.
pub const OPUS_TOC: u8 = 31 << 3;

/// Nanoseconds since the first call in this process, on the monotonic clock.
pub fn clock_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What a synthetic payload says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The sending track's number (from [`Probe::next_track_id`]).
    pub track: u32,
    /// The packet's number within its track, from 0.
    pub seq: u32,
    /// When it was handed to the sending stack, [`clock_ns`].
    pub sent_ns: u64,
}

impl Stamp {
    /// Append the stamp to `out`.
    pub fn put(&self, out: &mut BytesMut) {
        out.put_slice(&MAGIC);
        out.put_u32(self.track);
        out.put_u32(self.seq);
        out.put_u64(self.sent_ns);
    }

    /// The stamp at the end of `payload`, if it has one.
    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let start = payload.len().checked_sub(STAMP_LEN)?;
        let stamp = &payload[start..];
        if stamp[..8] != MAGIC {
            return None;
        }
        let u32_at =
            |i: usize| u32::from_be_bytes([stamp[i], stamp[i + 1], stamp[i + 2], stamp[i + 3]]);
        let mut sent = [0u8; 8];
        sent.copy_from_slice(&stamp[16..24]);
        Some(Stamp {
            track: u32_at(8),
            seq: u32_at(12),
            sent_ns: u64::from_be_bytes(sent),
        })
    }
}

/// Shared by the bots of one load run: track numbers and the measurement window.
#[derive(Debug)]
pub struct Probe {
    window_start: AtomicU64,
    window_end: AtomicU64,
    next_track: AtomicU32,
    /// The highest latency of the packets sent in each [`TIMELINE_SLOT`] of the window.
    timeline: OnceLock<Vec<AtomicU64>>,
    /// How late frames were sent against their schedule (ns), in the window.
    send_lag: std::sync::Mutex<Histogram>,
}

/// The width of one slot of the latency timeline.
pub const TIMELINE_SLOT: Duration = Duration::from_millis(100);
/// The timeline covers at most this many slots (an hour).
const MAX_SLOTS: u64 = 36_000;

impl Probe {
    pub fn new() -> Arc<Probe> {
        Arc::new(Probe {
            window_start: AtomicU64::new(u64::MAX),
            window_end: AtomicU64::new(u64::MAX),
            next_track: AtomicU32::new(1),
            timeline: OnceLock::new(),
            send_lag: std::sync::Mutex::new(Histogram::new()),
        })
    }

    /// Measure packets sent in `[start_ns, end_ns)`. Set it while both are still in the future,
    /// so that no packet is judged against a half-set window.
    pub fn set_window(&self, start_ns: u64, end_ns: u64) {
        let slots = end_ns
            .saturating_sub(start_ns)
            .div_ceil(TIMELINE_SLOT.as_nanos() as u64)
            .min(MAX_SLOTS);
        let _ = self
            .timeline
            .set((0..slots).map(|_| AtomicU64::new(0)).collect());
        self.window_end.store(end_ns, Ordering::SeqCst);
        self.window_start.store(start_ns, Ordering::SeqCst);
    }

    /// Note the latency of a window packet sent at `sent_ns`.
    pub fn note_latency(&self, sent_ns: u64, latency_ns: u64) {
        let Some(timeline) = self.timeline.get() else {
            return;
        };
        let offset = sent_ns.saturating_sub(self.window_start.load(Ordering::Relaxed));
        let slot = (offset / TIMELINE_SLOT.as_nanos() as u64) as usize;
        if let Some(max) = timeline.get(slot) {
            max.fetch_max(latency_ns, Ordering::Relaxed);
        }
    }

    /// A frame due at some time was sent `lag_ns` later, at `now_ns`.
    pub fn note_send_lag(&self, now_ns: u64, lag_ns: u64) {
        if self.in_window(now_ns) {
            self.send_lag
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record(lag_ns);
        }
    }

    /// How late the window's frames were sent against their schedule, in ns. A generator that
    /// falls behind catches up in bursts, which an SFU must absorb.
    pub fn send_lag(&self) -> Histogram {
        self.send_lag
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The highest latency (ns) per [`TIMELINE_SLOT`] of the window, by send time.
    pub fn latency_timeline(&self) -> Vec<u64> {
        self.timeline
            .get()
            .map(|t| t.iter().map(|m| m.load(Ordering::Relaxed)).collect())
            .unwrap_or_default()
    }

    /// The window, once set.
    pub fn window(&self) -> Option<(u64, u64)> {
        let start = self.window_start.load(Ordering::Relaxed);
        (start != u64::MAX).then(|| (start, self.window_end.load(Ordering::Relaxed)))
    }

    /// Whether a packet sent at `sent_ns` is measured.
    pub fn in_window(&self, sent_ns: u64) -> bool {
        sent_ns >= self.window_start.load(Ordering::Relaxed)
            && sent_ns < self.window_end.load(Ordering::Relaxed)
    }

    /// A number for a new track, unique in this run.
    pub fn next_track_id(&self) -> u32 {
        self.next_track.fetch_add(1, Ordering::Relaxed)
    }
}

/// What synthetic tracks send.
#[derive(Debug, Clone)]
pub struct SyntheticMedia {
    /// Audio RTP payload size (one packet per 20 ms).
    pub audio_payload_bytes: usize,
    /// Video bit rate of the RTP payloads.
    pub video_bitrate_bps: u64,
    pub video_fps: u32,
    /// Largest video RTP payload; a frame is split into equal packets no larger than this.
    pub video_max_payload_bytes: usize,
    /// A keyframe at least this often (besides the first frame and answers to PLI/FIR); `None`:
    /// only on request.
    pub keyframe_interval: Option<Duration>,
    /// The run's shared probe.
    pub probe: Arc<Probe>,
}

/// 20 ms audio packets.
pub const AUDIO_FRAME: Duration = Duration::from_millis(20);
/// Video width and height written in keyframe headers.
const VIDEO_SIZE: (u16, u16) = (1280, 720);

impl SyntheticMedia {
    /// 120-byte audio packets (48 kbit/s), 1.5 Mbit/s of 30 fps video in packets of at most
    /// 1100 bytes of payload, a keyframe every 5 s.
    pub fn new(probe: Arc<Probe>) -> Self {
        SyntheticMedia {
            audio_payload_bytes: 120,
            video_bitrate_bps: 1_500_000,
            video_fps: 30,
            video_max_payload_bytes: 1100,
            keyframe_interval: Some(Duration::from_secs(5)),
            probe,
        }
    }

    pub fn validate(&self) -> Result<(), BotError> {
        let smallest = STAMP_LEN + 16;
        if self.audio_payload_bytes < smallest || self.audio_payload_bytes > 1200 {
            return Err(BotError::Config(format!(
                "synthetic audio payloads must be {smallest} to 1200 bytes"
            )));
        }
        if self.video_max_payload_bytes < smallest || self.video_max_payload_bytes > 1200 {
            return Err(BotError::Config(format!(
                "synthetic video payloads must be {smallest} to 1200 bytes"
            )));
        }
        if !(1..=120).contains(&self.video_fps) {
            return Err(BotError::Config("video frame rate must be 1 to 120".into()));
        }
        if !(10_000..=50_000_000).contains(&self.video_bitrate_bps) {
            return Err(BotError::Config(
                "video bit rate must be 10 kbit/s to 50 Mbit/s".into(),
            ));
        }
        Ok(())
    }

    /// Payload bytes of one video frame.
    pub fn video_frame_bytes(&self) -> usize {
        let bytes = self.video_bitrate_bps / 8 / u64::from(self.video_fps.max(1));
        usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .max(STAMP_LEN + 16)
    }

    /// Packets per video frame and the payload size of each.
    pub fn video_packets(&self) -> (usize, usize) {
        let frame = self.video_frame_bytes();
        let max = self.video_max_payload_bytes.max(STAMP_LEN + 16);
        let packets = frame.div_ceil(max);
        (packets, frame.div_ceil(packets))
    }

    /// Packets per second a party sends (audio + video).
    pub fn packets_per_second(&self, audio: bool, video: bool) -> f64 {
        let mut pps = 0.0;
        if audio {
            pps += 1.0 / AUDIO_FRAME.as_secs_f64();
        }
        if video {
            pps += (self.video_packets().0 as f64) * f64::from(self.video_fps);
        }
        pps
    }
}

/// Generates one synthetic track's RTP packets.
#[derive(Debug)]
pub struct SyntheticStream {
    kind: TrackKind,
    ssrc: u32,
    payload_type: u8,
    track_id: u32,
    sequence_number: u16,
    timestamp: u32,
    picture_id: u16,
    next_seq: u32,
    packets_per_frame: usize,
    payload_bytes: usize,
    frame_duration: Duration,
    timestamp_step: u32,
}

impl SyntheticStream {
    pub fn new(
        kind: TrackKind,
        ssrc: u32,
        payload_type: u8,
        track_id: u32,
        media: &SyntheticMedia,
    ) -> Self {
        let (packets_per_frame, payload_bytes, frame_duration, timestamp_step) = match kind {
            TrackKind::Audio => (
                1,
                media.audio_payload_bytes,
                AUDIO_FRAME,
                OPUS_CLOCK_RATE / 50,
            ),
            TrackKind::Video => {
                let (packets, bytes) = media.video_packets();
                let fps = media.video_fps.max(1);
                (
                    packets,
                    bytes,
                    Duration::from_secs(1) / fps,
                    VIDEO_CLOCK_RATE / fps,
                )
            }
        };
        SyntheticStream {
            kind,
            ssrc,
            payload_type,
            track_id,
            sequence_number: rand::random(),
            timestamp: rand::random(),
            picture_id: rand::random::<u16>() & 0x7fff,
            next_seq: 0,
            packets_per_frame,
            payload_bytes,
            frame_duration,
            timestamp_step,
        }
    }

    pub fn track_id(&self) -> u32 {
        self.track_id
    }

    pub fn packets_per_frame(&self) -> usize {
        self.packets_per_frame
    }

    pub fn frame_duration(&self) -> Duration {
        self.frame_duration
    }

    /// Packet `index` of the current frame, stamped `now_ns`. Consumes a sequence
    /// number (and a stamp number) whether or not it is then sent.
    pub fn packet(&mut self, index: usize, keyframe: bool, now_ns: u64) -> rtp::Packet {
        let mut payload = BytesMut::with_capacity(self.payload_bytes);
        match self.kind {
            TrackKind::Audio => payload.put_u8(OPUS_TOC),
            TrackKind::Video => {
                let start = index == 0;
                // X=1, S on the first packet, partition 0; I=1; 15-bit picture id (M=1).
                payload.put_u8(if start { 0x90 } else { 0x80 });
                payload.put_u8(0x80);
                payload.put_u16(0x8000 | self.picture_id);
                if start {
                    if keyframe {
                        // Frame tag (key frame, version 0, shown), start code, 1280x720.
                        payload.put_slice(&[0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a]);
                        payload.put_u16_le(VIDEO_SIZE.0);
                        payload.put_u16_le(VIDEO_SIZE.1);
                    } else {
                        // Frame tag: inter frame, version 0, shown.
                        payload.put_slice(&[0x11, 0x00, 0x00]);
                    }
                }
            }
        }
        let filler = self.payload_bytes.saturating_sub(payload.len() + STAMP_LEN);
        payload.put_bytes(0, filler);
        Stamp {
            track: self.track_id,
            seq: self.next_seq,
            sent_ns: now_ns,
        }
        .put(&mut payload);
        self.next_seq = self.next_seq.wrapping_add(1);
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                marker: index + 1 == self.packets_per_frame,
                payload_type: self.payload_type,
                sequence_number: self.sequence_number,
                timestamp: self.timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: payload.freeze(),
        };
        self.sequence_number = self.sequence_number.wrapping_add(1);
        packet
    }

    /// Move on to the next frame (timestamp and picture id).
    pub fn end_frame(&mut self) {
        self.timestamp = self.timestamp.wrapping_add(self.timestamp_step);
        self.picture_id = (self.picture_id + 1) & 0x7fff;
    }
}

/// What one bot received of one synthetic track.
#[derive(Debug)]
struct SourceReceive {
    kind: Option<TrackKind>,
    /// Stamp numbers of the window's packets (distinct and duplicates).
    window: SequenceTracker,
    in_window: u64,
    total: u64,
}

/// A bot's receive-side measurement of synthetic media.
#[derive(Debug)]
pub(crate) struct SyntheticReceive {
    probe: Arc<Probe>,
    sources: std::collections::HashMap<u32, SourceReceive>,
    /// In-order first arrivals: audio, video.
    latency: [Histogram; 2],
    /// Arrivals behind a higher packet number of the same track (retransmissions, reordering).
    late: Histogram,
    unstamped: u64,
}

impl SyntheticReceive {
    pub fn new(probe: Arc<Probe>) -> Self {
        SyntheticReceive {
            probe,
            sources: std::collections::HashMap::new(),
            latency: [Histogram::new(), Histogram::new()],
            late: Histogram::new(),
            unstamped: 0,
        }
    }

    /// Account for one received payload at `now_ns`.
    pub fn on_payload(&mut self, kind: Option<TrackKind>, payload: &Bytes, now_ns: u64) {
        let Some(stamp) = Stamp::read(payload) else {
            self.unstamped += 1;
            return;
        };
        let source = self
            .sources
            .entry(stamp.track)
            .or_insert_with(|| SourceReceive {
                kind,
                window: SequenceTracker::new(),
                in_window: 0,
                total: 0,
            });
        source.total += 1;
        if source.kind.is_none() {
            source.kind = kind;
        }
        if self.probe.in_window(stamp.sent_ns) {
            source.in_window += 1;
            let latency = now_ns.saturating_sub(stamp.sent_ns);
            // Within one window a track's stamp numbers are contiguous; 16 bits extend fine.
            match source.window.record(stamp.seq as u16) {
                Arrival::Advanced { .. } => {
                    let slot = usize::from(source.kind == Some(TrackKind::Video));
                    self.latency[slot].record(latency);
                    self.probe.note_latency(stamp.sent_ns, latency);
                }
                Arrival::Late => self.late.record(latency),
                Arrival::Duplicate => {}
            }
        }
    }

    /// What arrived per source; latency of in-order arrivals (audio, video) and of late ones;
    /// packets without a stamp.
    pub fn snapshot(&self) -> (Vec<ReceivedSource>, [Histogram; 3], u64) {
        let mut sources: Vec<ReceivedSource> = self
            .sources
            .iter()
            .map(|(&track_id, s)| {
                let counts = s.window.counts();
                ReceivedSource {
                    track_id,
                    kind: s.kind,
                    unique_in_window: counts.unique,
                    duplicates_in_window: counts.duplicates,
                    packets_in_window: s.in_window,
                    packets_total: s.total,
                }
            })
            .collect();
        sources.sort_by_key(|s| s.track_id);
        let [audio, video] = self.latency.clone();
        (sources, [audio, video, self.late.clone()], self.unstamped)
    }
}

/// One of the bot's own synthetic tracks, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentTrack {
    pub track_id: u32,
    pub kind: TrackKind,
    pub publication: Option<String>,
    /// Packets handed to the transport with a send time in the window.
    pub packets_in_window: u64,
    pub packets_total: u64,
}

/// One synthetic track of others, as received by this bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSource {
    pub track_id: u32,
    pub kind: Option<TrackKind>,
    /// Distinct packets sent in the window and received.
    pub unique_in_window: u64,
    pub duplicates_in_window: u64,
    pub packets_in_window: u64,
    pub packets_total: u64,
}

/// A bot's synthetic-media measurement: what it sent and received in the window, and the
/// forwarding latency (send stamp to receipt, in ns) of what it received.
#[derive(Debug, Clone)]
pub struct SyntheticStats {
    pub sent: Vec<SentTrack>,
    pub received: Vec<ReceivedSource>,
    /// Packets that arrived in order (the first transmission), by kind.
    pub latency_audio: Histogram,
    pub latency_video: Histogram,
    /// Packets that arrived after a higher-numbered one of their track: retransmissions that
    /// repaired a loss, or reordering. Duplicates are in neither.
    pub latency_late: Histogram,
    /// Received packets without a stamp (not from a synthetic sender).
    pub unstamped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::vp8::payload_starts_keyframe;

    fn media() -> SyntheticMedia {
        SyntheticMedia::new(Probe::new())
    }

    #[test]
    fn stamps_round_trip_and_need_the_marker() {
        let stamp = Stamp {
            track: 7,
            seq: 0xdead_beef,
            sent_ns: 123_456_789_012,
        };
        let mut buf = BytesMut::new();
        buf.put_slice(b"prefix");
        stamp.put(&mut buf);
        assert_eq!(Stamp::read(&buf), Some(stamp));
        assert_eq!(Stamp::read(&buf[1..]), Some(stamp));
        assert_eq!(Stamp::read(&buf[..buf.len() - 1]), None);
        assert_eq!(Stamp::read(b"short"), None);
    }

    #[test]
    fn video_is_about_the_asked_bit_rate_in_small_packets() {
        let m = media();
        let (packets, bytes) = m.video_packets();
        assert_eq!((packets, bytes), (6, 1042));
        let bps = (packets * bytes * 8) as f64 * f64::from(m.video_fps);
        assert!((1_490_000.0..1_510_000.0).contains(&bps), "{bps}");
        assert_eq!(m.packets_per_second(true, true), 50.0 + 180.0);
    }

    #[test]
    fn video_frames_are_vp8_shaped() {
        let m = media();
        let mut s = SyntheticStream::new(TrackKind::Video, 5, 96, 3, &m);
        let key: Vec<rtp::Packet> = (0..s.packets_per_frame())
            .map(|i| s.packet(i, true, 1000 + i as u64))
            .collect();
        s.end_frame();
        let inter: Vec<rtp::Packet> = (0..s.packets_per_frame())
            .map(|i| s.packet(i, false, 2000))
            .collect();
        assert!(payload_starts_keyframe(&key[0].payload));
        assert!(!payload_starts_keyframe(&key[1].payload));
        assert!(!payload_starts_keyframe(&inter[0].payload));
        assert_eq!(
            inter[0].payload[0] & 0x10,
            0x10,
            "S bit on a frame's first packet"
        );
        assert!(key.last().is_some_and(|p| p.header.marker));
        assert!(!key[0].header.marker);
        assert_eq!(
            inter[0].header.sequence_number,
            key[5].header.sequence_number.wrapping_add(1)
        );
        assert_eq!(
            inter[0].header.timestamp,
            key[0].header.timestamp.wrapping_add(3000)
        );
        let stamp = Stamp::read(&inter[0].payload).unwrap();
        assert_eq!((stamp.track, stamp.seq, stamp.sent_ns), (3, 6, 2000));
        assert!(key.iter().all(|p| p.payload.len() == 1042));
    }

    #[test]
    fn audio_is_opus_shaped() {
        let m = media();
        let mut s = SyntheticStream::new(TrackKind::Audio, 5, 111, 4, &m);
        let p = s.packet(0, false, 9);
        assert_eq!(p.payload[0], OPUS_TOC);
        assert_eq!(crate::media::opus::packet_samples(&p.payload), Some(960));
        assert_eq!(p.payload.len(), 120);
        assert!(p.header.marker);
    }

    #[test]
    fn receivers_count_window_packets_once() {
        let probe = Probe::new();
        let mut m = media();
        m.probe = Arc::clone(&probe);
        let mut s = SyntheticStream::new(TrackKind::Audio, 5, 111, 4, &m);
        let mut rx = SyntheticReceive::new(Arc::clone(&probe));
        probe.set_window(100, 200);
        for (i, t) in [50, 100, 150, 150, 199, 200].into_iter().enumerate() {
            let p = s.packet(0, false, t);
            rx.on_payload(Some(TrackKind::Audio), &p.payload, t + 40);
            if i == 2 {
                // a retransmission of the same packet
                rx.on_payload(Some(TrackKind::Audio), &p.payload, t + 90);
            }
        }
        rx.on_payload(None, &Bytes::from_static(b"no stamp"), 0);
        let (sources, latency, unstamped) = rx.snapshot();
        assert_eq!(unstamped, 1);
        assert_eq!(sources.len(), 1);
        let s = &sources[0];
        assert_eq!((s.unique_in_window, s.duplicates_in_window), (4, 1));
        assert_eq!(s.packets_total, 7);
        // The duplicate has no latency of its own.
        assert_eq!(latency[0].count(), 4);
        assert_eq!(latency[0].max(), 40);
        assert_eq!(latency[2].count(), 0);

        // A packet that overtook another: the late one counts apart.
        let mut rx = SyntheticReceive::new(Arc::clone(&probe));
        let mut v = SyntheticStream::new(TrackKind::Video, 1, 96, 9, &m);
        let (a, b) = (v.packet(1, false, 120), v.packet(2, false, 121));
        rx.on_payload(Some(TrackKind::Video), &b.payload, 130);
        rx.on_payload(Some(TrackKind::Video), &a.payload, 1120);
        let (sources, latency, _) = rx.snapshot();
        assert_eq!(sources[0].unique_in_window, 2);
        assert_eq!((latency[1].count(), latency[2].count()), (1, 1));
        assert_eq!(latency[2].max(), 1000);
        // One 100 ms slot for the 100-ns window, holding the highest in-order latency.
        assert_eq!(probe.latency_timeline(), vec![40]);
    }
}
