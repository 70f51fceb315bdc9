//! The publisher side: the bot's own tracks on the publisher transport, and the paced sending of
//! the looped clips with deliberate uplink loss and keyframe restarts on request.

use std::sync::Arc;
use std::time::Duration;

use dragoman_signal::protocol::{TrackInfo, TrackKind, TrackSource};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::RTCPeerConnectionState;
use webrtc::rtp_transceiver::RtpTransceiver;

use crate::error::BotError;
use crate::keyframe::{KeyframeRequest, RequestKind};
use crate::media::{Clip, FramePacketizer};
use crate::peer::{Peer, opus_codec, vp8_codec};
use crate::report::PublishedTrackReport;
use crate::state::{PublishedTrack, SentCounts, Shared};
use crate::synthetic::{self, SyntheticMedia, SyntheticStream};

/// If sending falls this far behind the clip's clock, it skips ahead instead of bursting.
const MAX_LAG: Duration = Duration::from_millis(500);

/// What a track sends.
#[derive(Debug, Clone)]
pub(crate) enum TrackMedia {
    /// A looped clip.
    Clip(Arc<Clip>),
    /// Generated, time-stamped packets; the track's number in the run.
    Synthetic {
        media: SyntheticMedia,
        track_id: u32,
    },
}

/// One of the bot's own tracks.
pub(crate) struct LocalTrack {
    pub kind: TrackKind,
    pub source: TrackSource,
    pub ssrc: u32,
    pub track: Arc<TrackLocalStaticRTP>,
    pub transceiver: Arc<dyn RtpTransceiver>,
    pub media: TrackMedia,
    /// Index into the state's `published`.
    pub index: usize,
    pub mid: Option<String>,
    pub payload_type: Option<u8>,
}

impl std::fmt::Debug for LocalTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTrack")
            .field("kind", &self.kind)
            .field("ssrc", &self.ssrc)
            .field("mid", &self.mid)
            .finish_non_exhaustive()
    }
}

impl LocalTrack {
    /// The metadata sent with `publish`.
    pub fn info(&self, audio_channel: &str) -> Result<TrackInfo, BotError> {
        let mid = self
            .mid
            .clone()
            .ok_or_else(|| BotError::webrtc("publish", "the track has no mid after negotiation"))?;
        Ok(TrackInfo {
            mid,
            kind: self.kind,
            source: self.source,
            channel: (self.kind == TrackKind::Audio).then(|| audio_channel.to_owned()),
            layers: Vec::new(),
        })
    }
}

/// Add a send-only transceiver for a track of `kind` to the publisher connection.
pub(crate) async fn add_track(
    peer: &Peer,
    kind: TrackKind,
    media: TrackMedia,
    shared: &Shared,
) -> Result<LocalTrack, BotError> {
    let (kind, rtc_kind, source, codec, name) = match kind {
        TrackKind::Audio => (
            TrackKind::Audio,
            RtpCodecKind::Audio,
            TrackSource::Microphone,
            opus_codec(),
            "audio",
        ),
        TrackKind::Video => (
            TrackKind::Video,
            RtpCodecKind::Video,
            TrackSource::Camera,
            vp8_codec(),
            "video",
        ),
    };
    let ssrc = rand::random::<u32>();
    let media_track = MediaStreamTrack::new(
        "dragoman-bot".to_owned(),
        format!("dragoman-bot-{name}"),
        format!("dragoman-bot {name}"),
        rtc_kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            active: true,
            ..Default::default()
        }],
    );
    let track = Arc::new(TrackLocalStaticRTP::new(media_track));
    let transceiver = peer
        .pc
        .add_transceiver_from_track(
            Arc::clone(&track) as Arc<dyn TrackLocal>,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                streams: vec![],
                send_encodings: vec![],
            }),
        )
        .await
        .map_err(|e| BotError::webrtc(format!("adding the {name} transceiver"), e))?;
    let index = {
        let mut state = shared.lock();
        state.published.push(PublishedTrack {
            report: PublishedTrackReport {
                publication: None,
                kind,
                source,
                mid: None,
                ssrc,
                payload_type: None,
                packets_sent: 0,
                bytes_sent: 0,
                packets_dropped: 0,
                write_errors: 0,
                frames_sent: 0,
                keyframes_sent: 0,
                keyframes_forced: 0,
                pli_received: 0,
                fir_received: 0,
                keyframe_request_ms: Vec::new(),
                first_packet_ms: None,
                last_packet_ms: None,
            },
            keyframe_wanted: false,
            synthetic: match &media {
                TrackMedia::Synthetic { track_id, .. } => Some(SentCounts {
                    track_id: *track_id,
                    ..SentCounts::default()
                }),
                TrackMedia::Clip(_) => None,
            },
        });
        state.published.len() - 1
    };
    Ok(LocalTrack {
        kind,
        source,
        ssrc,
        track,
        transceiver,
        media,
        index,
        mid: None,
        payload_type: None,
    })
}

/// After the answer: learn the track's mid and the payload type negotiated for its codec.
pub(crate) async fn learn_negotiated(
    track: &mut LocalTrack,
    shared: &Shared,
) -> Result<(), BotError> {
    let mid = track
        .transceiver
        .mid()
        .await
        .map_err(|e| BotError::webrtc("reading a mid", e))?;
    let wanted = match track.kind {
        TrackKind::Audio => opus_codec().mime_type,
        TrackKind::Video => vp8_codec().mime_type,
    };
    let sender = track
        .transceiver
        .sender()
        .await
        .map_err(|e| BotError::webrtc("reading a sender", e))?
        .ok_or_else(|| BotError::webrtc("publish", "a send transceiver without a sender"))?;
    let parameters = sender
        .get_parameters()
        .await
        .map_err(|e| BotError::webrtc("reading send parameters", e))?;
    let payload_type = parameters
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(&wanted))
        .map(|c| c.payload_type)
        .ok_or_else(|| {
            BotError::Protocol(format!(
                "the server's answer accepts no {wanted} for the {:?} track",
                track.kind
            ))
        })?;
    track.mid = mid.clone();
    track.payload_type = Some(payload_type);
    let mut state = shared.lock();
    if let Some(published) = state.published.get_mut(track.index) {
        published.report.mid = mid;
        published.report.payload_type = Some(payload_type);
    }
    Ok(())
}

/// Count keyframe requests from the publisher connection's RTCP tap against the bot's tracks.
pub(crate) async fn dispatch_keyframe_requests(
    shared: Arc<Shared>,
    mut requests: mpsc::UnboundedReceiver<KeyframeRequest>,
) {
    while let Some(request) = requests.recv().await {
        let now = shared.now_ms();
        let known =
            shared
                .lock()
                .keyframe_requested(request.ssrc, request.kind == RequestKind::Fir, now);
        if known {
            info!(ssrc = request.ssrc, kind = ?request.kind, "keyframe request");
        } else {
            debug!(ssrc = request.ssrc, kind = ?request.kind, "keyframe request for an unknown SSRC");
        }
    }
}

/// What a sender needs besides its track.
pub(crate) struct SendOptions {
    /// The share of packets to drop on purpose, read before every frame.
    pub uplink_loss: watch::Receiver<f64>,
    pub seed: u64,
}

/// What one frame's sending did.
#[derive(Debug, Default)]
struct FrameCounts {
    sent: u64,
    bytes: u64,
    dropped: u64,
    errors: u64,
    /// Synthetic media: packets sent with a send time in the measurement window.
    in_window: u64,
    keyframe: bool,
    forced: bool,
}

/// Take the track's pending keyframe request, if any.
fn take_keyframe_request(shared: &Shared, index: usize) -> bool {
    shared
        .lock()
        .published
        .get_mut(index)
        .is_some_and(|t| std::mem::take(&mut t.keyframe_wanted))
}

fn record_frame(shared: &Shared, index: usize, kind: TrackKind, counts: &FrameCounts) {
    let now = shared.now_ms();
    if let Some(t) = shared.lock().published.get_mut(index) {
        let r = &mut t.report;
        r.packets_sent += counts.sent;
        r.bytes_sent += counts.bytes;
        r.packets_dropped += counts.dropped;
        r.write_errors += counts.errors;
        r.frames_sent += 1;
        if kind == TrackKind::Video && counts.keyframe {
            r.keyframes_sent += 1;
        }
        if counts.forced {
            r.keyframes_forced += 1;
        }
        if counts.sent > 0 {
            r.first_packet_ms.get_or_insert(now);
            r.last_packet_ms = Some(now);
        }
        if let Some(synthetic) = &mut t.synthetic {
            synthetic.total += counts.sent;
            synthetic.in_window += counts.in_window;
        }
    }
}

/// Send the track's media in a loop, paced by the frames' durations, until `stop` turns true.
/// Waits for the transport to connect first.
pub(crate) async fn run_sender(
    shared: Arc<Shared>,
    track: LocalTrack,
    options: SendOptions,
    mut connected: watch::Receiver<RTCPeerConnectionState>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(payload_type) = track.payload_type else {
        warn!(kind = ?track.kind, "not sending: no payload type was negotiated");
        return;
    };
    tokio::select! {
        up = connected.wait_for(|s| *s == RTCPeerConnectionState::Connected) => {
            if up.is_err() {
                return;
            }
        }
        _ = stop.wait_for(|s| *s) => return,
    }
    info!(kind = ?track.kind, ssrc = track.ssrc, mid = ?track.mid, "sending");
    match track.media.clone() {
        TrackMedia::Clip(clip) => {
            send_clip(&shared, &track, &clip, payload_type, options, stop).await;
        }
        TrackMedia::Synthetic { media, track_id } => {
            let stream =
                SyntheticStream::new(track.kind, track.ssrc, payload_type, track_id, &media);
            send_synthetic(&shared, &track, &media, stream, options, stop).await;
        }
    }
    debug!(kind = ?track.kind, "sender stopped");
}

/// Wait for the next frame's time (skipping ahead when far behind); false when stopped.
async fn pace(deadline: &mut Instant, step: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    *deadline += step;
    let lag = Instant::now().saturating_duration_since(*deadline);
    if lag > MAX_LAG {
        *deadline = Instant::now();
    }
    tokio::select! {
        _ = tokio::time::sleep_until(*deadline) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

async fn send_clip(
    shared: &Shared,
    track: &LocalTrack,
    clip: &Clip,
    payload_type: u8,
    options: SendOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut packetizer = FramePacketizer::for_clip(clip, track.ssrc, payload_type);
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut next = 0usize;
    let mut deadline = Instant::now();
    loop {
        let wanted = take_keyframe_request(shared, track.index);
        let mut counts = FrameCounts::default();
        if wanted && clip.kind == TrackKind::Video && !clip.frames[next].keyframe {
            next = clip.keyframe_at_or_before(next);
            counts.forced = true;
        }
        let frame = &clip.frames[next];
        counts.keyframe = frame.keyframe;
        let packets = match packetizer.packetize(frame) {
            Ok(packets) => packets,
            Err(e) => {
                warn!("stopping the {:?} sender: {e}", track.kind);
                return;
            }
        };
        let uplink_loss = *options.uplink_loss.borrow();
        for packet in packets {
            if uplink_loss > 0.0 && rng.random::<f64>() < uplink_loss {
                counts.dropped += 1;
                continue;
            }
            let len = packet.payload.len() as u64;
            match track.track.write_rtp(packet).await {
                Ok(()) => {
                    counts.sent += 1;
                    counts.bytes += len;
                }
                Err(e) => {
                    counts.errors += 1;
                    debug!(kind = ?track.kind, "write_rtp: {e}");
                }
            }
        }
        record_frame(shared, track.index, clip.kind, &counts);
        next = (next + 1) % clip.frames.len();
        if !pace(&mut deadline, clip.frame_duration(frame), &mut stop).await {
            break;
        }
    }
}

async fn send_synthetic(
    shared: &Shared,
    track: &LocalTrack,
    media: &SyntheticMedia,
    mut stream: SyntheticStream,
    options: SendOptions,
    mut stop: watch::Receiver<bool>,
) {
    let video = track.kind == TrackKind::Video;
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut deadline = Instant::now();
    let mut last_keyframe: Option<Instant> = None;
    loop {
        let lag = Instant::now().saturating_duration_since(deadline);
        media.probe.note_send_lag(
            synthetic::clock_ns(),
            u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX),
        );
        let wanted = take_keyframe_request(shared, track.index);
        let due = match (last_keyframe, media.keyframe_interval) {
            (None, _) => true,
            (Some(at), Some(interval)) => at.elapsed() >= interval,
            (Some(_), None) => false,
        };
        let mut counts = FrameCounts {
            keyframe: video && (wanted || due),
            forced: video && wanted,
            ..FrameCounts::default()
        };
        if counts.keyframe {
            last_keyframe = Some(Instant::now());
        }
        let uplink_loss = *options.uplink_loss.borrow();
        for index in 0..stream.packets_per_frame() {
            let sent_ns = synthetic::clock_ns();
            let packet = stream.packet(index, counts.keyframe, sent_ns);
            if uplink_loss > 0.0 && rng.random::<f64>() < uplink_loss {
                counts.dropped += 1;
                continue;
            }
            let len = packet.payload.len() as u64;
            match track.track.write_rtp(packet).await {
                Ok(()) => {
                    counts.sent += 1;
                    counts.bytes += len;
                    if media.probe.in_window(sent_ns) {
                        counts.in_window += 1;
                    }
                }
                Err(e) => {
                    counts.errors += 1;
                    debug!(kind = ?track.kind, "write_rtp: {e}");
                }
            }
        }
        stream.end_frame();
        record_frame(shared, track.index, track.kind, &counts);
        if !pace(&mut deadline, stream.frame_duration(), &mut stop).await {
            break;
        }
    }
}
