//! The media engine: every peer (one str0m `Rtc` each), every published track, every subscription,
//! and the forwarding hot path between them.
//!
//! Sans-IO: the owner feeds datagrams with [`MediaEngine::handle_datagram`] and time with
//! [`MediaEngine::handle_timeout`], and drains transmits, events and the next timeout with
//! [`MediaEngine::poll_output`]. Control operations (offers, tracks, subscriptions) are plain method
//! calls. One engine serves any number of calls; a call never spans two engines. Handing sent
//! transmits' contents back ([`MediaEngine::recycle`]) lets forwards reuse their buffers.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpPendingOffer;
use str0m::config::CryptoProvider;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Pt, Rid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::{ExtensionValues, RtpForward, RtpPacket, RtpWrite, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::client_sdp::{ClientAnswer, ClientOffer};
use crate::datagram_pool::DatagramPool;
use crate::drop_reason::{DropCounts, DropReason};
use crate::error::MediaError;
use crate::forwarder::{Decision, Forwarder, IncomingPacket, StartPolicy};
use crate::ids::{PeerId, TrackId};
use crate::keyframe::{KeyframeThrottle, VideoCodec, starts_keyframe};
use crate::rewrite::RtpPosition;
use crate::transport::{Transport, TransportBuilder};

/// How often best-layer choices are refreshed.
const LAYER_REFRESH: Duration = Duration::from_millis(250);
/// A simulcast layer with no packet for this long counts as gone.
const LAYER_TIMEOUT: Duration = Duration::from_millis(1500);

/// Longest RTP payload forwarded. str0m writes a packet into a datagram of at most 2000 bytes and
/// keys its resend cache by payload size below that, and panics past them; a publisher's datagram
/// can be longer (the sockets read up to 2048). 1800 leaves room for any forwarded header, a
/// resend's extra two bytes and the SRTP tag; browsers send at most ~1200.
pub const MAX_FORWARDED_PAYLOAD: usize = 1800;

/// What [`MediaEngine::remove_peer`] took out.
#[derive(Debug, Default)]
pub struct RemovedPeer {
    /// The tracks the peer published, now ended.
    pub ended_tracks: Vec<TrackId>,
    /// The peer's transport, disconnected. Dropping it frees its send and retransmission buffers
    /// (a tenth of a millisecond or more after a call): a server drops it off the media thread.
    pub transport: Option<Transport>,
}

/// Settings of one engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Addresses the media socket is reachable at; each becomes a host candidate of every peer.
    pub local_addresses: Vec<SocketAddr>,
    /// Keyframe requests to one publisher layer are sent at most this often (the rest are folded).
    pub keyframe_request_interval: Duration,
    /// How long a forwarded video packet is kept, at least, to answer a subscriber's NACK with a
    /// resend (str0m drops older ones when the next packet is cached). Older packets are not
    /// resent: by then the receiver's jitter buffer has moved on. (libwebrtc's
    /// sender keeps its packets for max(1 s, 3 × RTT); str0m's default is 3 s, which at 10 calls
    /// cost ~0.9 MB more per participant.)
    pub resend_window: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            local_addresses: Vec::new(),
            keyframe_request_interval: Duration::from_millis(500),
            resend_window: DEFAULT_RESEND_WINDOW,
        }
    }
}

/// [`EngineConfig::resend_window`] by default.
pub const DEFAULT_RESEND_WINDOW: Duration = Duration::from_secs(1);

/// At most this many forwarded packets kept per subscriber stream for resends, whatever the
/// window (str0m's default for video).
const RESEND_CACHE_MAX_PACKETS: usize = 1000;

/// str0m's default: queued resends are dropped while they exceed this share of what a stream
/// sends.
const RESEND_RATIO_CAP: Option<f32> = Some(0.15);

/// Which of a participant's transports a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportRole {
    /// Media flows from the client to the SFU; the client offers.
    Publisher,
    /// Media flows from the SFU to the client; the SFU offers.
    Subscriber,
}

/// Names carried in the subscriber's SDP (`a=msid:<stream> <track>`), so clients can tell tracks apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackLabel {
    pub stream: String,
    pub track: String,
}

/// Something the owner of the engine should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// ICE and DTLS are up.
    Connected { peer: PeerId },
    /// ICE lost the peer, or the peer closed DTLS.
    Disconnected { peer: PeerId },
    /// A publisher's SDP added media (on the publisher transport).
    MediaAdded {
        peer: PeerId,
        mid: Mid,
        kind: MediaKind,
    },
    /// A keyframe request (PLI) went to a publisher.
    KeyframeRequested { track: TrackId, layer: usize },
    /// The first packet of a track's layer arrived (a simulcast layer started).
    LayerStarted {
        track: TrackId,
        layer: usize,
        rid: Option<String>,
    },
}

/// The latest link figures of one peer, from RTCP receiver reports and str0m's statistics (refreshed
/// every second).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeerHealth {
    /// When the figures were taken; `None` before the first statistics.
    pub at: Option<Instant>,
    /// Share of packets from the client that were lost (0.0–1.0).
    pub ingress_loss: Option<f32>,
    /// Share of packets to the client that were lost, as its receiver reports say (0.0–1.0).
    pub egress_loss: Option<f32>,
    pub rtt: Option<Duration>,
    /// Highest interarrival jitter among the client's streams, in milliseconds (latest report).
    pub ingress_jitter_ms: Option<f64>,
    /// NACKs and PLIs the SFU sent to the client about its media (totals over its streams).
    pub ingress_nacks: u64,
    pub ingress_plis: u64,
    /// NACKs and PLIs the client sent to the SFU about the media it receives.
    pub egress_nacks: u64,
    pub egress_plis: u64,
    pub bytes_rx: u64,
    pub bytes_tx: u64,
}

/// The latest statistics of one stream received from a client.
#[derive(Debug, Clone, Copy, Default)]
struct IngressStream {
    nacks: u64,
    plis: u64,
    jitter_ms: f64,
    /// Fraction lost since the previous receiver report (sequence-number based).
    loss: Option<f32>,
    /// Packets received in total, and in the last statistics interval (the loss's weight).
    packets: u64,
    recent_packets: u64,
}

/// What a published track has been carrying, for health figures computed on timers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackActivity {
    /// Video frames completed (packets with the marker bit), all layers together.
    pub frames: u64,
    pub last_frame_at: Option<Instant>,
    /// The publisher's latest audio level (RFC 6464: 0 is loudest, 127 silence), if it sends one.
    pub audio_level: Option<i8>,
    pub last_packet_at: Option<Instant>,
}

/// What [`MediaEngine::poll_output`] yields.
#[derive(Debug)]
pub enum EngineOutput {
    /// Send this datagram.
    Transmit(Transmit),
    Event(MediaEvent),
    /// Nothing more to do until this time (or the next input).
    Timeout(Instant),
}

/// The server's offer on a subscriber transport, and the track each new `mid` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberOffer {
    pub sdp: String,
    pub tracks: Vec<(Mid, TrackId)>,
}

/// What `subscribe` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeOutcome {
    /// A new `mid` is needed: create an offer with [`MediaEngine::create_offer`].
    NeedsNegotiation,
    /// The track's `mid` exists already; forwarding resumes at the next switch point.
    Resumed,
}

/// Counters of the media plane since the engine started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaStats {
    pub rtp_packets_in: u64,
    pub rtp_bytes_in: u64,
    pub rtp_packets_forwarded: u64,
    pub rtp_bytes_forwarded: u64,
    /// Forwarded packets str0m could not send at once (a stream that has had no timeout yet,
    /// resends waiting), queued for the subscriber's timeout instead: counted in
    /// `rtp_packets_forwarded` too.
    pub rtp_packets_queued: u64,
    pub datagrams_in: u64,
    pub datagram_bytes_in: u64,
    pub keyframe_requests_sent: u64,
    pub keyframe_requests_received: u64,
    pub drops: DropCounts,
}

/// Totals over several engines (one per media worker).
impl std::ops::AddAssign<&MediaStats> for MediaStats {
    fn add_assign(&mut self, other: &MediaStats) {
        self.rtp_packets_in += other.rtp_packets_in;
        self.rtp_bytes_in += other.rtp_bytes_in;
        self.rtp_packets_forwarded += other.rtp_packets_forwarded;
        self.rtp_bytes_forwarded += other.rtp_bytes_forwarded;
        self.rtp_packets_queued += other.rtp_packets_queued;
        self.datagrams_in += other.datagrams_in;
        self.datagram_bytes_in += other.datagram_bytes_in;
        self.keyframe_requests_sent += other.keyframe_requests_sent;
        self.keyframe_requests_received += other.keyframe_requests_received;
        self.drops += &other.drops;
    }
}

/// Sizes of what the engine holds, for gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineCounts {
    pub peers: usize,
    pub tracks: usize,
    pub active_subscriptions: usize,
    /// Video layers with a packet in the last 1.5 s (each simulcast layer counts).
    pub video_layers_receiving: usize,
}

/// Totals over several engines (one per media worker).
impl std::ops::AddAssign for EngineCounts {
    fn add_assign(&mut self, other: EngineCounts) {
        self.peers += other.peers;
        self.tracks += other.tracks;
        self.active_subscriptions += other.active_subscriptions;
        self.video_layers_receiving += other.video_layers_receiving;
    }
}

/// One subscription of a subscriber peer: a track, the `mid` it goes out on, and forwarding state.
#[derive(Debug)]
struct DownTrack {
    /// `None` once the track ended; the `mid` stays negotiated but silent.
    track: Option<TrackId>,
    kind: MediaKind,
    mid: Option<Mid>,
    negotiated: bool,
    forwarder: Forwarder,
    /// Publisher payload type → subscriber payload type, filled on first use.
    pt_map: Vec<(Pt, Option<Pt>)>,
}

#[derive(Debug)]
struct Peer {
    role: TransportRole,
    rtc: Rtc,
    connected: bool,
    /// Set when `rtc` may have output; cleared when `poll_output` reached its timeout.
    needs_poll: bool,
    next_timeout: Instant,
    /// Receive SSRC → (mid, rid), so packets need no per-packet stream lookup (Chrome stops sending
    /// mid/rid header extensions early).
    streams: HashMap<Ssrc, (Mid, Option<Rid>)>,
    /// Publisher: which track each `mid` feeds.
    tracks_by_mid: HashMap<Mid, TrackId>,
    /// Subscriber: subscriptions, indexed by position (stable; ended ones stay in place).
    down_tracks: Vec<DownTrack>,
    pending_offer: Option<SdpPendingOffer>,
    health: PeerHealth,
    /// When a datagram from the client last arrived.
    last_seen: Option<Instant>,
    /// Latest per-stream statistics: (nacks, plis, jitter ms) received, (nacks, plis) sent.
    ingress_streams: HashMap<(Mid, Option<Rid>), IngressStream>,
    egress_streams: HashMap<(Mid, Option<Rid>), (u64, u64)>,
}

#[derive(Debug)]
struct Layer {
    rid: Option<Rid>,
    last_packet: Option<Instant>,
    keyframes: KeyframeThrottle,
}

#[derive(Debug)]
struct Track {
    publisher: PeerId,
    mid: Mid,
    kind: MediaKind,
    label: TrackLabel,
    /// Lowest first.
    layers: Vec<Layer>,
    best_layer: usize,
    /// Publisher payload type → its codec parameters, filled on first use.
    codecs: Vec<(Pt, Option<PayloadParams>)>,
    /// (subscriber peer, index into its `down_tracks`).
    subscribers: Vec<(PeerId, usize)>,
    activity: TrackActivity,
}

/// The media plane. See the module documentation.
#[derive(Debug)]
pub struct MediaEngine {
    config: EngineConfig,
    now: Instant,
    peers: HashMap<PeerId, Peer>,
    tracks: HashMap<TrackId, Track>,
    by_source: HashMap<SocketAddr, PeerId>,
    dirty: Vec<PeerId>,
    events: VecDeque<MediaEvent>,
    /// Transmits polled early by [`MediaEngine::handle_datagram`] (see there) and the forwards
    /// sent at once (`Rtc::forward_rtp_now`), handed out first.
    transmits: VecDeque<Transmit>,
    /// Buffers the forwards write their datagrams into, handed back by [`MediaEngine::recycle`].
    datagrams: DatagramPool,
    stats: MediaStats,
    next_peer: u64,
    next_track: u64,
    next_layer_refresh: Instant,
    /// No peer's `next_timeout` is earlier than this whenever `dirty` is empty: lowered wherever
    /// one is set, made exact by the walk in [`MediaEngine::handle_timeout`] (the due peers it
    /// finds are made dirty, and their polls lower it again). Spares that walk (and the one for
    /// the next deadline), which touches every peer's cold state, on the many calls when none is
    /// due.
    peer_timeouts_from: Instant,
    /// Some layer may hold a deferred keyframe request: cleared by the walk that finds none.
    keyframes_deferred: bool,
    /// Builds every peer's transport, with one DTLS certificate for all. Generating a certificate
    /// is a key pair and a signature (milliseconds of CPU); doing it per peer would stall
    /// forwarding on every join.
    transports: TransportBuilder,
}

impl MediaEngine {
    pub fn new(config: EngineConfig, now: Instant) -> Self {
        str0m::crypto::from_feature_flags().install_process_default();
        let dtls_cert = CryptoProvider::get_default()
            .and_then(|provider| provider.dtls_provider.generate_certificate());
        let transports = TransportBuilder::new(dtls_cert, config.local_addresses.clone());
        MediaEngine {
            config,
            now,
            peers: HashMap::new(),
            tracks: HashMap::new(),
            by_source: HashMap::new(),
            dirty: Vec::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            datagrams: DatagramPool::default(),
            stats: MediaStats::default(),
            next_peer: 1,
            next_track: 1,
            next_layer_refresh: now,
            peer_timeouts_from: now,
            keyframes_deferred: false,
            transports,
        }
    }

    /// The addresses peers reach this engine at (its host candidates).
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.config.local_addresses
    }

    pub fn stats(&self) -> &MediaStats {
        &self.stats
    }

    pub fn counts(&self) -> EngineCounts {
        EngineCounts {
            peers: self.peers.len(),
            tracks: self.tracks.len(),
            active_subscriptions: self
                .peers
                .values()
                .flat_map(|p| &p.down_tracks)
                .filter(|d| d.track.is_some() && !d.forwarder.is_paused())
                .count(),
            video_layers_receiving: self.video_layers_receiving(),
        }
    }

    /// Is the peer's ICE and DTLS up?
    pub fn is_connected(&self, peer: PeerId) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.connected)
    }

    /// The tracks a publisher transport feeds, with their kind and activity.
    pub fn published_tracks(&self, publisher: PeerId) -> Vec<(TrackId, MediaKind, TrackActivity)> {
        self.tracks
            .iter()
            .filter(|(_, t)| t.publisher == publisher)
            .map(|(id, t)| (*id, t.kind, t.activity))
            .collect()
    }

    /// When the last datagram from the peer's client arrived (`None`: never).
    pub fn last_seen(&self, peer: PeerId) -> Option<Instant> {
        self.peers.get(&peer).and_then(|p| p.last_seen)
    }

    /// The latest link figures of a peer.
    pub fn peer_health(&self, peer: PeerId) -> Option<PeerHealth> {
        self.peers.get(&peer).map(|p| p.health)
    }

    /// Layers of published video that had a packet within the last 1.5 s, over all tracks.
    pub fn video_layers_receiving(&self) -> usize {
        self.tracks
            .values()
            .filter(|t| t.kind == MediaKind::Video)
            .flat_map(|t| &t.layers)
            .filter(|l| {
                l.last_packet
                    .is_some_and(|at| self.now.saturating_duration_since(at) < LAYER_TIMEOUT)
            })
            .count()
    }

    /// Create a transport here, on the engine's thread (about 1 ms of CPU: servers build it
    /// elsewhere and call [`MediaEngine::add_peer_with`]). Its host candidates are the engine's
    /// local addresses.
    pub fn add_peer(&mut self, role: TransportRole, now: Instant) -> Result<PeerId, MediaError> {
        let transport = self.transports.build(now)?;
        Ok(self.add_peer_with(role, transport))
    }

    /// Builds transports for this engine on any thread (see [`TransportBuilder`]).
    pub fn transport_builder(&self) -> TransportBuilder {
        self.transports.clone()
    }

    /// Add a peer on a transport built by this engine's [`MediaEngine::transport_builder`].
    pub fn add_peer_with(&mut self, role: TransportRole, transport: Transport) -> PeerId {
        let rtc = transport.rtc;
        let id = PeerId(self.next_peer);
        self.next_peer += 1;
        self.peers.insert(
            id,
            Peer {
                role,
                rtc,
                connected: false,
                needs_poll: false,
                next_timeout: self.now,
                streams: HashMap::new(),
                tracks_by_mid: HashMap::new(),
                down_tracks: Vec::new(),
                pending_offer: None,
                health: PeerHealth::default(),
                last_seen: None,
                ingress_streams: HashMap::new(),
                egress_streams: HashMap::new(),
            },
        );
        self.peer_timeouts_from = self.peer_timeouts_from.min(self.now);
        self.mark_dirty(id);
        id
    }

    /// Remove a transport with everything it published and every subscription it held. Returns the
    /// tracks that ended with it, and the transport itself.
    pub fn remove_peer(&mut self, peer: PeerId) -> RemovedPeer {
        let Some(mut gone) = self.peers.remove(&peer) else {
            return RemovedPeer::default();
        };
        gone.rtc.disconnect();
        let ended: Vec<TrackId> = gone.tracks_by_mid.values().copied().collect();
        for track in &ended {
            self.remove_track(*track);
        }
        for down in &gone.down_tracks {
            if let Some(track) = down.track.and_then(|t| self.tracks.get_mut(&t)) {
                track.subscribers.retain(|(p, _)| *p != peer);
            }
        }
        self.by_source.retain(|_, p| *p != peer);
        self.dirty.retain(|p| *p != peer);
        RemovedPeer {
            ended_tracks: ended,
            transport: Some(Transport { rtc: gone.rtc }),
        }
    }

    /// Answer a client's offer on its publisher transport.
    pub fn accept_offer(&mut self, peer: PeerId, sdp: &str) -> Result<String, MediaError> {
        self.peer_mut(peer)?;
        self.accept_parsed_offer(peer, ClientOffer::parse(sdp)?)
    }

    /// [`MediaEngine::accept_offer`] with the offer parsed ahead (see [`ClientOffer`]).
    pub fn accept_parsed_offer(
        &mut self,
        peer: PeerId,
        offer: ClientOffer,
    ) -> Result<String, MediaError> {
        let p = self.peer_mut(peer)?;
        if p.role != TransportRole::Publisher {
            return Err(MediaError::WrongTransport {
                expected: "publisher",
            });
        }
        let answer = p
            .rtc
            .sdp_api()
            .accept_offer(offer.0)
            .map_err(|e| MediaError::SdpRejected(e.to_string()))?;
        self.mark_dirty(peer);
        Ok(answer.to_sdp_string())
    }

    /// Add a trickled ICE candidate of the client (`candidate:…` line, with or without `a=`).
    pub fn add_remote_candidate(
        &mut self,
        peer: PeerId,
        candidate: &str,
    ) -> Result<(), MediaError> {
        let line = candidate.trim().trim_start_matches("a=");
        if line.is_empty() {
            // End of candidates: nothing to do for an ICE-lite server.
            return Ok(());
        }
        let candidate = Candidate::from_sdp_string(line)
            .map_err(|e| MediaError::BadCandidate(e.to_string()))?;
        self.peer_mut(peer)?.rtc.add_remote_candidate(candidate);
        self.mark_dirty(peer);
        Ok(())
    }

    /// Turn a negotiated receiving `mid` of a publisher transport into a track others can subscribe to.
    /// `layers` are the simulcast rids, lowest first (empty for one layer).
    pub fn add_track(
        &mut self,
        publisher: PeerId,
        mid: &str,
        kind: MediaKind,
        layers: &[String],
        label: TrackLabel,
    ) -> Result<TrackId, MediaError> {
        let next_track = self.next_track;
        let p = self.peer_mut(publisher)?;
        if p.role != TransportRole::Publisher {
            return Err(MediaError::WrongTransport {
                expected: "publisher",
            });
        }
        let mid = Mid::from(mid);
        let media = p
            .rtc
            .media(mid)
            .ok_or_else(|| MediaError::UnknownMid(mid.to_string()))?;
        if media.kind() != kind {
            return Err(MediaError::KindMismatch {
                mid: mid.to_string(),
                expected: kind_name(kind),
                actual: kind_name(media.kind()),
            });
        }
        if !media.direction().is_receiving() {
            return Err(MediaError::NotReceiving(mid.to_string()));
        }
        if p.tracks_by_mid.contains_key(&mid) {
            return Err(MediaError::AlreadyPublished(mid.to_string()));
        }
        let id = TrackId(next_track);
        p.tracks_by_mid.insert(mid, id);
        self.next_track += 1;
        let layers = if layers.is_empty() {
            vec![None]
        } else {
            layers.iter().map(|r| Some(Rid::from(r.as_str()))).collect()
        };
        self.tracks.insert(
            id,
            Track {
                publisher,
                mid,
                kind,
                label,
                best_layer: layers.len() - 1,
                layers: layers
                    .into_iter()
                    .map(|rid| Layer {
                        rid,
                        last_packet: None,
                        keyframes: KeyframeThrottle::default(),
                    })
                    .collect(),
                codecs: Vec::new(),
                subscribers: Vec::new(),
                activity: TrackActivity::default(),
            },
        );
        Ok(id)
    }

    /// End a track: its subscribers' `mid`s fall silent.
    pub fn remove_track(&mut self, track: TrackId) {
        let Some(gone) = self.tracks.remove(&track) else {
            return;
        };
        if let Some(publisher) = self.peers.get_mut(&gone.publisher) {
            publisher.tracks_by_mid.remove(&gone.mid);
        }
        let resend_window = self.config.resend_window;
        for (subscriber, index) in gone.subscribers {
            let Some(peer) = self.peers.get_mut(&subscriber) else {
                continue;
            };
            if let Some(down) = peer.down_tracks.get_mut(index) {
                down.track = None;
                empty_resend_cache(&mut peer.rtc, down, resend_window);
            }
        }
    }

    /// Start or resume sending a track to a subscriber transport.
    pub fn subscribe(
        &mut self,
        subscriber: PeerId,
        track_id: TrackId,
        now: Instant,
    ) -> Result<SubscribeOutcome, MediaError> {
        self.advance(now);
        let track = self
            .tracks
            .get_mut(&track_id)
            .ok_or(MediaError::UnknownTrack(track_id))?;
        let peer = self
            .peers
            .get_mut(&subscriber)
            .ok_or(MediaError::UnknownPeer(subscriber))?;
        if peer.role != TransportRole::Subscriber {
            return Err(MediaError::WrongTransport {
                expected: "subscriber",
            });
        }
        if let Some(down) = peer
            .down_tracks
            .iter_mut()
            .find(|d| d.track == Some(track_id))
        {
            down.forwarder.resume();
            let layer = down.forwarder.target_layer();
            let ready = down.negotiated && peer.connected && down.forwarder.wants_keyframe();
            if ready {
                self.request_keyframe(track_id, layer);
            }
            return Ok(SubscribeOutcome::Resumed);
        }
        let (clock_rate, policy) = match track.kind {
            MediaKind::Audio => (48_000, StartPolicy::Anywhere),
            MediaKind::Video => (90_000, StartPolicy::OnKeyframe),
        };
        peer.down_tracks.push(DownTrack {
            track: Some(track_id),
            kind: track.kind,
            mid: None,
            negotiated: false,
            forwarder: Forwarder::new(clock_rate, policy, track.best_layer),
            pt_map: Vec::new(),
        });
        track
            .subscribers
            .push((subscriber, peer.down_tracks.len() - 1));
        Ok(SubscribeOutcome::NeedsNegotiation)
    }

    /// Stop sending a track to a subscriber at once. The `mid` stays, so a later `subscribe` resumes
    /// without renegotiation.
    pub fn unsubscribe(&mut self, subscriber: PeerId, track: TrackId) -> Result<(), MediaError> {
        let resend_window = self.config.resend_window;
        let peer = self.peer_mut(subscriber)?;
        let down = peer
            .down_tracks
            .iter_mut()
            .find(|d| d.track == Some(track))
            .ok_or(MediaError::UnknownTrack(track))?;
        down.forwarder.pause();
        empty_resend_cache(&mut peer.rtc, down, resend_window);
        Ok(())
    }

    /// Create an offer adding a `mid` for every subscription that has none yet. `None` when nothing
    /// needs negotiating.
    pub fn create_offer(
        &mut self,
        subscriber: PeerId,
    ) -> Result<Option<SubscriberOffer>, MediaError> {
        let Self { peers, tracks, .. } = self;
        let peer = peers
            .get_mut(&subscriber)
            .ok_or(MediaError::UnknownPeer(subscriber))?;
        if peer.role != TransportRole::Subscriber {
            return Err(MediaError::WrongTransport {
                expected: "subscriber",
            });
        }
        if peer.pending_offer.is_some() {
            return Err(MediaError::OfferPending);
        }
        let mut api = peer.rtc.sdp_api();
        let mut added = Vec::new();
        for down in peer.down_tracks.iter_mut().filter(|d| d.mid.is_none()) {
            let Some(track_id) = down.track else { continue };
            let Some(track) = tracks.get(&track_id) else {
                continue;
            };
            let mid = api.add_media(
                down.kind,
                Direction::SendOnly,
                Some(track.label.stream.clone()),
                Some(track.label.track.clone()),
                None,
            );
            down.mid = Some(mid);
            added.push((mid, track_id));
        }
        let Some((offer, pending)) = api.apply() else {
            return Ok(None);
        };
        peer.pending_offer = Some(pending);
        self.mark_dirty(subscriber);
        Ok(Some(SubscriberOffer {
            sdp: offer.to_sdp_string(),
            tracks: added,
        }))
    }

    /// Withdraw an outstanding subscriber offer that the client may never have seen (its signaling
    /// dropped). The tracks it carried go into the next offer. Returns whether any subscription
    /// needs an offer now.
    pub fn abandon_offer(&mut self, subscriber: PeerId) -> Result<bool, MediaError> {
        let peer = self.peer_mut(subscriber)?;
        if peer.pending_offer.take().is_some() {
            for down in peer.down_tracks.iter_mut().filter(|d| !d.negotiated) {
                down.mid = None;
            }
        }
        Ok(peer
            .down_tracks
            .iter()
            .any(|d| d.mid.is_none() && d.track.is_some()))
    }

    /// Apply the client's answer to the outstanding subscriber offer.
    pub fn accept_answer(&mut self, subscriber: PeerId, sdp: &str) -> Result<(), MediaError> {
        self.peer_mut(subscriber)?;
        self.accept_parsed_answer(subscriber, ClientAnswer::parse(sdp)?)
    }

    /// [`MediaEngine::accept_answer`] with the answer parsed ahead (see [`ClientAnswer`]).
    pub fn accept_parsed_answer(
        &mut self,
        subscriber: PeerId,
        answer: ClientAnswer,
    ) -> Result<(), MediaError> {
        let resend_window = self.config.resend_window;
        let peer = self.peer_mut(subscriber)?;
        if peer.role != TransportRole::Subscriber {
            return Err(MediaError::WrongTransport {
                expected: "subscriber",
            });
        }
        let answer = answer.0;
        let pending = peer
            .pending_offer
            .take()
            .ok_or(MediaError::NoOfferPending)?;
        let result = peer.rtc.sdp_api().accept_answer(pending, answer);
        if let Err(e) = result {
            // The offered mids are lost with the failed negotiation; offer them again next time.
            for down in peer.down_tracks.iter_mut().filter(|d| !d.negotiated) {
                down.mid = None;
            }
            return Err(MediaError::SdpRejected(e.to_string()));
        }
        for down in peer.down_tracks.iter_mut().filter(|d| d.mid.is_some()) {
            // A new video send stream: set its resend cache once (setting it again empties it).
            // Audio is not written nackable, so its cache stays empty.
            if !down.negotiated
                && down.kind == MediaKind::Video
                && let Some(mid) = down.mid
            {
                match peer.rtc.direct_api().stream_tx_by_mid(mid, None) {
                    Some(tx) => {
                        tx.set_rtx_cache(RESEND_CACHE_MAX_PACKETS, resend_window, RESEND_RATIO_CAP)
                    }
                    None => tracing::warn!(%mid, "no send stream after the answer"),
                }
            }
            down.negotiated = true;
        }
        self.mark_dirty(subscriber);
        Ok(())
    }

    /// Feed one received datagram. A batch may be fed before draining [`MediaEngine::poll_output`].
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> Result<(), DropReason> {
        self.advance(now);
        self.stats.datagrams_in += 1;
        self.stats.datagram_bytes_in += contents.len() as u64;
        let Ok(contents) = contents.try_into() else {
            self.stats.drops.add(DropReason::Malformed);
            return Err(DropReason::Malformed);
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        let cached = self
            .by_source
            .get(&source)
            .copied()
            .filter(|id| self.peers.get(id).is_some_and(|p| p.rtc.accepts(&input)));
        let found = cached.or_else(|| {
            self.peers
                .iter()
                .find(|(_, p)| p.rtc.accepts(&input))
                .map(|(id, _)| *id)
        });
        let Some(peer_id) = found else {
            self.stats.drops.add(DropReason::UnknownSource);
            return Err(DropReason::UnknownSource);
        };
        if cached.is_none() {
            self.by_source.insert(source, peer_id);
        }
        // str0m holds only one received RTP packet until it is polled: a second datagram fed before
        // `poll_output` would overwrite the first. When the owner feeds a batch without polling in
        // between, drain this peer first (its transmits wait in `self.transmits`).
        self.drain_peer(peer_id);
        self.mark_dirty(peer_id);
        let Some(peer) = self.peers.get_mut(&peer_id) else {
            return Err(DropReason::UnknownSource);
        };
        peer.last_seen = Some(now);
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(peer = %peer_id, error = %e, "datagram refused");
            self.stats.drops.add(DropReason::Malformed);
            return Err(DropReason::Malformed);
        }
        Ok(())
    }

    /// Advance time: run every peer whose timer is due, deferred keyframe requests, layer choices.
    ///
    /// Received packets not yet forwarded are forwarded first: a receive round's packets go out
    /// in the `poll_output` right after it. (A forward is sent at once; the few that str0m must
    /// queue, to a stream that has had no timeout yet, are released by the time handed out here.)
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        while let Some(&peer_id) = self.dirty.last() {
            if let Some(transmit) = self.poll_peer(peer_id) {
                self.transmits.push_back(transmit);
            }
        }
        // Forwards above were timed with the engine's clock, which an earlier `now` cannot undo.
        let now = self.now;
        // Walk the peers in place (no list of due ones), and only when one is due: this runs
        // after nearly every packet. The due ones are polled next, which sets their timeouts.
        if now >= self.peer_timeouts_from {
            let mut earliest = now + LAYER_REFRESH;
            for (id, peer) in &mut self.peers {
                if peer.next_timeout > now {
                    earliest = earliest.min(peer.next_timeout);
                    continue;
                }
                if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                    tracing::warn!(peer = %id, error = %e, "timeout handling failed");
                }
                if !peer.needs_poll {
                    peer.needs_poll = true;
                    self.dirty.push(*id);
                }
            }
            self.peer_timeouts_from = earliest;
        }
        self.send_deferred_keyframe_requests();
        if now >= self.next_layer_refresh {
            self.next_layer_refresh = now + LAYER_REFRESH;
            self.refresh_best_layers();
        }
    }

    /// Drain: datagrams to send, events, and finally the time of the next needed `handle_timeout`.
    /// Give each transmit's contents back with [`MediaEngine::recycle`] once sent.
    pub fn poll_output(&mut self) -> EngineOutput {
        loop {
            if let Some(transmit) = self.transmits.pop_front() {
                return EngineOutput::Transmit(transmit);
            }
            if let Some(event) = self.events.pop_front() {
                return EngineOutput::Event(event);
            }
            let Some(&peer_id) = self.dirty.last() else {
                return EngineOutput::Timeout(self.next_timeout());
            };
            if let Some(transmit) = self.poll_peer(peer_id) {
                return EngineOutput::Transmit(transmit);
            }
        }
    }

    /// Hand back a transmit's contents once sent: the next forwards write into the buffer
    /// instead of allocating one. Optional; buffers too small to reuse, or beyond a bound, are
    /// freed.
    pub fn recycle(&mut self, datagram: Vec<u8>) {
        self.datagrams.give_back(datagram);
    }

    /// Poll a peer's `Rtc` until its timeout, keeping its transmits for `poll_output`.
    fn drain_peer(&mut self, peer_id: PeerId) {
        while self.peers.get(&peer_id).is_some_and(|p| p.needs_poll) {
            if let Some(transmit) = self.poll_peer(peer_id) {
                self.transmits.push_back(transmit);
            }
        }
    }

    /// Poll a peer's `Rtc` once. Events are handled here; a transmit is returned. When the peer
    /// reached its timeout (or is gone, or failed) it is no longer dirty.
    fn poll_peer(&mut self, peer_id: PeerId) -> Option<Transmit> {
        let Some(peer) = self.peers.get_mut(&peer_id) else {
            self.dirty.retain(|p| *p != peer_id);
            return None;
        };
        match peer.rtc.poll_output() {
            Ok(Output::Transmit(transmit)) => return Some(transmit),
            Ok(Output::Timeout(at)) => {
                peer.next_timeout = at;
                self.peer_timeouts_from = self.peer_timeouts_from.min(at);
                peer.needs_poll = false;
                self.dirty.retain(|p| *p != peer_id);
            }
            Ok(Output::Event(event)) => self.on_rtc_event(peer_id, event),
            Err(e) => {
                tracing::warn!(peer = %peer_id, error = %e, "peer failed");
                // Nothing more is forwarded to it (each forward would make it due again).
                peer.connected = false;
                peer.needs_poll = false;
                peer.next_timeout = self.now + Duration::from_secs(3600);
                self.dirty.retain(|p| *p != peer_id);
                self.events
                    .push_back(MediaEvent::Disconnected { peer: peer_id });
            }
        }
        None
    }

    fn next_timeout(&self) -> Instant {
        debug_assert!(
            self.peers
                .values()
                .all(|p| p.next_timeout >= self.peer_timeouts_from),
            "a peer's timeout was set without lowering peer_timeouts_from"
        );
        let interval = self.config.keyframe_request_interval;
        debug_assert!(
            self.keyframes_deferred
                || self
                    .tracks
                    .values()
                    .flat_map(|t| &t.layers)
                    .all(|l| l.keyframes.deferred_due(interval).is_none()),
            "a keyframe request was deferred without setting keyframes_deferred"
        );
        let earliest = self.peer_timeouts_from.min(self.next_layer_refresh);
        if !self.keyframes_deferred {
            return earliest;
        }
        self.tracks
            .values()
            .flat_map(|t| &t.layers)
            .filter_map(|l| l.keyframes.deferred_due(interval))
            .fold(earliest, Instant::min)
    }

    fn on_rtc_event(&mut self, peer_id: PeerId, event: Event) {
        match event {
            Event::Connected => {
                if let Some(peer) = self.peers.get_mut(&peer_id) {
                    peer.connected = true;
                }
                self.events
                    .push_back(MediaEvent::Connected { peer: peer_id });
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) | Event::Closed => {
                if let Some(peer) = self.peers.get_mut(&peer_id) {
                    peer.connected = false;
                }
                self.events
                    .push_back(MediaEvent::Disconnected { peer: peer_id });
            }
            Event::MediaAdded(added) => self.events.push_back(MediaEvent::MediaAdded {
                peer: peer_id,
                mid: added.mid,
                kind: added.kind,
            }),
            Event::RtpPacket(packet) => self.forward(peer_id, packet),
            Event::KeyframeRequest(request) => {
                self.on_subscriber_keyframe_request(peer_id, request.mid)
            }
            Event::PeerStats(stats) => {
                if let Some(peer) = self.peers.get_mut(&peer_id) {
                    let h = &mut peer.health;
                    h.at = Some(stats.timestamp);
                    // Prefer the streams' receiver-report loss (set below) over TWCC's.
                    if peer.ingress_streams.values().all(|v| v.loss.is_none()) {
                        h.ingress_loss = stats.ingress_loss_fraction;
                    }
                    h.egress_loss = stats.egress_loss_fraction;
                    h.rtt = stats.rtt.or(h.rtt);
                    h.bytes_rx = stats.peer_bytes_rx;
                    h.bytes_tx = stats.peer_bytes_tx;
                }
            }
            Event::MediaIngressStats(stats) => {
                if let Some(peer) = self.peers.get_mut(&peer_id) {
                    let ticks_per_ms = match peer.rtc.media(stats.mid).map(|m| m.kind()) {
                        Some(MediaKind::Video) => 90.0,
                        _ => 48.0,
                    };
                    let jitter_ms = f64::from(stats.jitter) / ticks_per_ms;
                    let before = peer
                        .ingress_streams
                        .get(&(stats.mid, stats.rid))
                        .map_or(0, |s| s.packets);
                    let stream = IngressStream {
                        nacks: stats.nacks,
                        plis: stats.plis,
                        jitter_ms,
                        loss: stats.loss,
                        packets: stats.packets,
                        recent_packets: stats.packets.saturating_sub(before),
                    };
                    peer.ingress_streams.insert((stats.mid, stats.rid), stream);
                    let streams = &peer.ingress_streams;
                    let h = &mut peer.health;
                    h.ingress_nacks = streams.values().map(|v| v.nacks).sum();
                    h.ingress_plis = streams.values().map(|v| v.plis).sum();
                    h.ingress_jitter_ms = streams.values().map(|v| v.jitter_ms).reduce(f64::max);
                    // The receiver reports' sequence-based loss, averaged over the client's streams
                    // by how many packets each carried lately (a quiet stream's one lost packet
                    // should not read as the link losing half). TWCC's loss (in PeerStats) needs the
                    // client to negotiate transport-cc.
                    let (weighted, weight) = streams
                        .values()
                        .filter_map(|v| {
                            v.loss
                                .map(|l| (f64::from(l), v.recent_packets.max(1) as f64))
                        })
                        .fold((0.0, 0.0), |(sum, total), (loss, w)| {
                            (sum + loss * w, total + w)
                        });
                    if weight > 0.0 {
                        h.ingress_loss = Some((weighted / weight) as f32);
                    }
                    if stats.rtt.is_some() {
                        h.rtt = stats.rtt;
                    }
                }
            }
            Event::MediaEgressStats(stats) => {
                if let Some(peer) = self.peers.get_mut(&peer_id) {
                    peer.egress_streams
                        .insert((stats.mid, stats.rid), (stats.nacks, stats.plis));
                    let h = &mut peer.health;
                    h.egress_nacks = peer.egress_streams.values().map(|v| v.0).sum();
                    h.egress_plis = peer.egress_streams.values().map(|v| v.1).sum();
                    if stats.rtt.is_some() {
                        h.rtt = stats.rtt;
                    }
                }
            }
            _ => {}
        }
    }

    /// The hot path: one packet from a publisher to every subscriber of its track.
    fn forward(&mut self, publisher: PeerId, packet: RtpPacket) {
        self.stats.rtp_packets_in += 1;
        self.stats.rtp_bytes_in += packet.payload.len() as u64;
        let now = self.now;
        let Self {
            peers,
            tracks,
            stats,
            transmits,
            datagrams,
            peer_timeouts_from,
            ..
        } = self;
        if packet.payload.len() > MAX_FORWARDED_PAYLOAD {
            stats.drops.add(DropReason::Oversize);
            return;
        }
        let Some(source) = peers.get_mut(&publisher) else {
            return;
        };
        let Some((mid, rid)) = lookup_stream(source, packet.header.ssrc) else {
            stats.drops.add(DropReason::UnknownStream);
            return;
        };
        let Some(track_id) = source.tracks_by_mid.get(&mid).copied() else {
            stats.drops.add(DropReason::Unpublished);
            return;
        };
        let Some(track) = tracks.get_mut(&track_id) else {
            stats.drops.add(DropReason::Unpublished);
            return;
        };
        let pt = packet.header.payload_type;
        let Some(params) = codec_params(track, &source.rtc, pt) else {
            stats.drops.add(DropReason::UnknownPayloadType);
            return;
        };
        let layer = layer_index(track, rid);
        if track.layers[layer].last_packet.replace(now).is_none() && track.kind == MediaKind::Video
        {
            self.events.push_back(MediaEvent::LayerStarted {
                track: track_id,
                layer,
                rid: track.layers[layer].rid.map(|r| r.to_string()),
            });
        }
        track.activity.last_packet_at = Some(now);
        match track.kind {
            MediaKind::Video if packet.header.marker && layer == track.best_layer => {
                track.activity.frames += 1;
                track.activity.last_frame_at = Some(now);
            }
            MediaKind::Audio => {
                if let Some(level) = packet.header.ext_vals.audio_level {
                    track.activity.audio_level = Some(level);
                }
            }
            MediaKind::Video => {}
        }
        let keyframe = match track.kind {
            MediaKind::Audio => false,
            MediaKind::Video => starts_keyframe(video_codec(params.spec().codec), &packet.payload),
        };
        if keyframe {
            track.layers[layer].keyframes.keyframe_arrived();
        }
        let incoming = IncomingPacket {
            position: RtpPosition {
                seq: *packet.seq_no,
                timestamp: packet.time.numer(),
            },
            layer,
            keyframe,
        };
        // Audio carries its level on, video its orientation (CVO: a phone's rotation, without
        // which the subscriber shows the picture on its side); str0m adds mid and the transport
        // extensions.
        let (audio_level, voice_activity, video_orientation) = match track.kind {
            MediaKind::Audio => (
                packet.header.ext_vals.audio_level,
                packet.header.ext_vals.voice_activity,
                None,
            ),
            MediaKind::Video => (None, None, packet.header.ext_vals.video_orientation),
        };
        let mut wanted_layer = None;
        for &(subscriber, index) in &track.subscribers {
            let Some(peer) = peers.get_mut(&subscriber) else {
                continue;
            };
            let Some(down) = peer.down_tracks.get_mut(index) else {
                continue;
            };
            let (Some(out_mid), true, true) = (down.mid, down.negotiated, peer.connected) else {
                stats.drops.add(DropReason::NotNegotiated);
                continue;
            };
            let Some(out_pt) = subscriber_pt(down, &peer.rtc, out_mid, pt, &params) else {
                stats.drops.add(DropReason::CodecMismatch);
                continue;
            };
            let out = match down.forwarder.decide(&incoming, now) {
                Decision::Forward(out) => out,
                Decision::Drop(reason) => {
                    stats.drops.add(reason);
                    if down.forwarder.wants_keyframe() {
                        wanted_layer = Some(down.forwarder.target_layer());
                    }
                    continue;
                }
            };
            let fwd = RtpForward {
                pt: out_pt,
                seq_no: out.seq.into(),
                time: out.timestamp as u32,
                wallclock: packet.timestamp,
                marker: packet.header.marker,
                nackable: track.kind == MediaKind::Video,
                audio_level,
                voice_activity,
                video_orientation,
                payload: &packet.payload,
            };
            // Sent at once, without the subscriber's timeout round: the steady state.
            let mut datagram = datagrams.take();
            let direct = peer
                .rtc
                .forward_rtp_now(now, out_mid, &fwd, &mut datagram, |t| {
                    transmits.push_back(t)
                });
            // Left empty when taken for the transmit (then not kept), whole when unused.
            datagrams.give_back(datagram);
            if direct.is_err() {
                // Not yet possible (the stream has had no timeout yet, say): queue it in str0m,
                // which releases a written packet only when it is handed time. So the subscriber
                // is due now: the next `handle_timeout` hands it time, and then it is polled.
                let mut api = peer.rtc.direct_api();
                let Some(tx) = api.stream_tx_by_mid(out_mid, None) else {
                    stats.drops.add(DropReason::NotNegotiated);
                    continue;
                };
                tx.write_rtp(queued_write(&fwd));
                peer.next_timeout = now;
                *peer_timeouts_from = (*peer_timeouts_from).min(now);
                stats.rtp_packets_queued += 1;
            }
            stats.rtp_packets_forwarded += 1;
            stats.rtp_bytes_forwarded += packet.payload.len() as u64;
        }
        if let Some(layer) = wanted_layer {
            self.request_keyframe(track_id, layer);
        }
    }

    fn on_subscriber_keyframe_request(&mut self, subscriber: PeerId, mid: Mid) {
        self.stats.keyframe_requests_received += 1;
        let Some(peer) = self.peers.get(&subscriber) else {
            return;
        };
        let Some(down) = peer.down_tracks.iter().find(|d| d.mid == Some(mid)) else {
            return;
        };
        if let (Some(track), false) = (down.track, down.forwarder.is_paused()) {
            let layer = down
                .forwarder
                .current_layer()
                .unwrap_or(down.forwarder.target_layer());
            self.request_keyframe(track, layer);
        }
    }

    /// Ask a publisher for a keyframe on one layer, throttled.
    fn request_keyframe(&mut self, track_id: TrackId, layer: usize) {
        let interval = self.config.keyframe_request_interval;
        let now = self.now;
        let Some(track) = self.tracks.get_mut(&track_id) else {
            return;
        };
        let Some(l) = track.layers.get_mut(layer) else {
            return;
        };
        if l.keyframes.request(now, interval) {
            self.send_keyframe_request(track_id, layer);
        } else {
            self.keyframes_deferred = true;
        }
    }

    fn send_deferred_keyframe_requests(&mut self) {
        if !self.keyframes_deferred {
            return;
        }
        let interval = self.config.keyframe_request_interval;
        let now = self.now;
        let mut due = Vec::new();
        let mut still_deferred = false;
        for (id, track) in &mut self.tracks {
            for (index, layer) in track.layers.iter_mut().enumerate() {
                if layer.keyframes.poll_deferred(now, interval) {
                    due.push((*id, index));
                }
                still_deferred |= layer.keyframes.deferred_due(interval).is_some();
            }
        }
        self.keyframes_deferred = still_deferred;
        for (track, layer) in due {
            self.send_keyframe_request(track, layer);
        }
    }

    fn send_keyframe_request(&mut self, track_id: TrackId, layer: usize) {
        let Some(track) = self.tracks.get(&track_id) else {
            return;
        };
        if track.kind != MediaKind::Video {
            return;
        }
        let (publisher, mid) = (track.publisher, track.mid);
        let rid = track.layers.get(layer).and_then(|l| l.rid);
        let Some(peer) = self.peers.get_mut(&publisher) else {
            return;
        };
        let mut api = peer.rtc.direct_api();
        // Before a layer's first packet its receive stream does not exist yet: ask any layer present.
        let stream = match api.stream_rx_by_mid(mid, rid) {
            Some(stream) => Some(stream),
            None => api.stream_rx_by_mid(mid, None),
        };
        if let Some(stream) = stream {
            stream.request_keyframe(KeyframeRequestKind::Pli);
            self.stats.keyframe_requests_sent += 1;
            self.events.push_back(MediaEvent::KeyframeRequested {
                track: track_id,
                layer,
            });
        }
        self.mark_dirty(publisher);
    }

    /// Pick for each track the highest layer that is arriving, and point its subscribers at it.
    fn refresh_best_layers(&mut self) {
        let now = self.now;
        let Self { peers, tracks, .. } = self;
        for track in tracks.values_mut().filter(|t| t.layers.len() > 1) {
            let best = track
                .layers
                .iter()
                .rposition(|l| {
                    l.last_packet
                        .is_some_and(|at| now.duration_since(at) < LAYER_TIMEOUT)
                })
                .unwrap_or(track.best_layer);
            if best == track.best_layer {
                continue;
            }
            track.best_layer = best;
            for (subscriber, index) in &track.subscribers {
                if let Some(down) = peers
                    .get_mut(subscriber)
                    .and_then(|p| p.down_tracks.get_mut(*index))
                {
                    down.forwarder.set_target_layer(best);
                }
            }
        }
    }

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    fn mark_dirty(&mut self, peer_id: PeerId) {
        if let Some(peer) = self.peers.get_mut(&peer_id)
            && !peer.needs_poll
        {
            peer.needs_poll = true;
            self.dirty.push(peer_id);
        }
    }

    fn peer_mut(&mut self, peer: PeerId) -> Result<&mut Peer, MediaError> {
        self.peers
            .get_mut(&peer)
            .ok_or(MediaError::UnknownPeer(peer))
    }
}

/// Start a down-track's resend cache afresh, when it stops sending (unsubscribed, or its track
/// ended). The cache drops old entries only when a new one comes in, so it would keep its last
/// packets (a resend window's worth of payloads, and the publisher's pooled buffers with them)
/// for as long as the stream stays silent.
fn empty_resend_cache(rtc: &mut Rtc, down: &DownTrack, resend_window: Duration) {
    // Audio is not written nackable, so its cache stays empty.
    if down.kind == MediaKind::Video
        && down.negotiated
        && let Some(mid) = down.mid
        && let Some(tx) = rtc.direct_api().stream_tx_by_mid(mid, None)
    {
        tx.set_rtx_cache(RESEND_CACHE_MAX_PACKETS, resend_window, RESEND_RATIO_CAP);
    }
}

/// The queued form of a forward str0m cannot send at once.
fn queued_write(fwd: &RtpForward<'_>) -> RtpWrite {
    RtpWrite::new(
        fwd.pt,
        fwd.seq_no,
        fwd.time,
        fwd.wallclock,
        fwd.payload.clone(),
    )
    .marker(fwd.marker)
    .nackable(fwd.nackable)
    .ext_vals(ExtensionValues {
        audio_level: fwd.audio_level,
        voice_activity: fwd.voice_activity,
        video_orientation: fwd.video_orientation,
        ..ExtensionValues::default()
    })
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

fn video_codec(codec: Codec) -> VideoCodec {
    match codec {
        Codec::Vp8 => VideoCodec::Vp8,
        Codec::H264 => VideoCodec::H264,
        _ => VideoCodec::Other,
    }
}

/// The (mid, rid) of a receive SSRC, cached after the first lookup.
fn lookup_stream(peer: &mut Peer, ssrc: Ssrc) -> Option<(Mid, Option<Rid>)> {
    if let Some(found) = peer.streams.get(&ssrc) {
        return Some(*found);
    }
    let mut api = peer.rtc.direct_api();
    let stream = api.stream_rx(&ssrc)?;
    let found = (stream.mid(), stream.rid());
    peer.streams.insert(ssrc, found);
    Some(found)
}

/// The codec parameters of a publisher's payload type, cached per track.
fn codec_params(track: &mut Track, rtc: &Rtc, pt: Pt) -> Option<PayloadParams> {
    if let Some((_, params)) = track.codecs.iter().find(|(p, _)| *p == pt) {
        return *params;
    }
    let params = rtc.codec_config().find(|p| p.pt() == pt).copied();
    track.codecs.push((pt, params));
    params
}

/// The subscriber's payload type for the publisher's codec, cached per subscription.
fn subscriber_pt(
    down: &mut DownTrack,
    rtc: &Rtc,
    mid: Mid,
    publisher_pt: Pt,
    params: &PayloadParams,
) -> Option<Pt> {
    if let Some((_, out)) = down.pt_map.iter().find(|(p, _)| *p == publisher_pt) {
        return *out;
    }
    let negotiated = rtc
        .media(mid)
        .map(|m| m.remote_pts().to_vec())
        .unwrap_or_default();
    let out = rtc
        .codec_config()
        .match_params(*params)
        .map(|p| p.pt())
        .filter(|pt| negotiated.contains(pt));
    down.pt_map.push((publisher_pt, out));
    out
}

/// The layer index of a rid, adding layers the publication did not declare.
fn layer_index(track: &mut Track, rid: Option<Rid>) -> usize {
    if let Some(index) = track.layers.iter().position(|l| l.rid == rid) {
        return index;
    }
    if rid.is_none() {
        // A single-layer stream on a track declared with rids: treat it as the lowest layer.
        return 0;
    }
    track.layers.push(Layer {
        rid,
        last_packet: None,
        keyframes: KeyframeThrottle::default(),
    });
    track.layers.len() - 1
}
