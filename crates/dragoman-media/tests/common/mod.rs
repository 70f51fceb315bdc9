//! A small sans-IO harness for the media engine: one [`MediaEngine`] and any number of client peers
//! (plain str0m `Rtc`s in RTP mode), joined by an in-memory network with a fixed one-way latency and
//! driven on a virtual clock. No sockets, no threads, no real time.
//!
//! - [`Sim::add_publisher`] negotiates a publisher transport (the client offers), and
//!   [`Sim::start_source`] makes the client send synthetic Opus or VP8 packets on a `mid`. Each
//!   payload carries a tag (source, packet index, frame index) so receivers can tell exactly which
//!   packet they got; VP8 payloads start with a descriptor whose keyframe bit the source controls.
//! - [`Sim::add_subscriber`], [`Sim::subscribe`] and [`Sim::negotiate`] set up a subscriber transport
//!   (the engine offers).
//! - [`Sim::run_for`] and [`Sim::run_until`] advance time to the next timeout, packet delivery or
//!   media tick, delivering every datagram to the engine or to the client whose address it is for.
//!
//! [`Sim::set_loss`] makes the links of a client lossy, with a seeded random sequence.
//!
//! Like a media worker's send queue, the network hands every datagram the engine sent back to it
//! once delivered or lost (`MediaEngine::recycle`), so the forwards write into reused buffers.
//!
//! Clients record what happened to them ([`Client::received`], [`Client::keyframe_requests`],
//! [`Source::sent`]); the engine's events and refused datagrams are kept on the [`Sim`].

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use dragoman_media::{
    DropReason, EngineConfig, EngineOutput, MediaEngine, MediaEvent, MediaKind, Mid, PeerId,
    SubscribeOutcome, TrackId, TrackLabel, TransportRole,
};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, Pt};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::{ExtensionValues, RtpWrite, VideoOrientation};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

/// The engine's one media address.
pub const SFU_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5000);

/// One-way latency of the in-memory network.
pub const LATENCY: Duration = Duration::from_millis(5);

/// The smallest step of the virtual clock (when a timeout is already due, time still moves).
const TICK: Duration = Duration::from_millis(1);

/// Byte 2 of every synthetic payload names its source; bytes 3..11 the packet index and 11..19 the
/// frame index (big endian). Bytes 0..2 are codec headers.
const TAG_AT: usize = 2;
const PAYLOAD_LEN: usize = 120;

/// Index of a client in [`Sim::clients`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientId(pub usize);

/// When a video source makes keyframes.
#[derive(Debug, Clone, Copy)]
pub struct KeyframePolicy {
    /// The first frame is a keyframe.
    pub first: bool,
    /// Every n-th frame is a keyframe.
    pub every: Option<u64>,
    /// The frame after a keyframe request (PLI) is a keyframe.
    pub on_request: bool,
}

/// What a source sends.
#[derive(Debug, Clone, Copy)]
pub struct SourceSpec {
    /// Extended sequence number of the first packet (keep it below 65536: str0m cannot signal a
    /// non-zero rollover counter).
    pub first_seq: u64,
    pub first_rtp_time: u32,
    /// Time between frames (audio: between packets).
    pub frame_interval: Duration,
    pub packets_per_frame: usize,
    pub keyframes: KeyframePolicy,
    /// Bytes of each packet's payload (at least the tags' length).
    pub payload_len: usize,
}

impl SourceSpec {
    /// Opus: one packet every 20 ms.
    pub fn audio() -> Self {
        SourceSpec {
            first_seq: 1000,
            first_rtp_time: 10_000,
            frame_interval: Duration::from_millis(20),
            packets_per_frame: 1,
            keyframes: KeyframePolicy {
                first: false,
                every: None,
                on_request: false,
            },
            payload_len: PAYLOAD_LEN,
        }
    }

    /// VP8 at 25 fps, two packets per frame, a keyframe first and whenever asked for one.
    pub fn video() -> Self {
        SourceSpec {
            first_seq: 20_000,
            first_rtp_time: 500_000,
            frame_interval: Duration::from_millis(40),
            packets_per_frame: 2,
            keyframes: KeyframePolicy {
                first: true,
                every: None,
                on_request: true,
            },
            payload_len: PAYLOAD_LEN,
        }
    }

    pub fn first_seq(mut self, seq: u64) -> Self {
        self.first_seq = seq;
        self
    }

    pub fn frame_interval(mut self, interval: Duration) -> Self {
        self.frame_interval = interval;
        self
    }

    pub fn packets_per_frame(mut self, packets: usize) -> Self {
        self.packets_per_frame = packets;
        self
    }

    pub fn keyframes(mut self, keyframes: KeyframePolicy) -> Self {
        self.keyframes = keyframes;
        self
    }

    pub fn payload_len(mut self, len: usize) -> Self {
        self.payload_len = len.max(PAYLOAD_LEN);
        self
    }
}

/// A packet a source wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub at: Instant,
    pub seq: u64,
    pub rtp_time: u64,
    pub index: u64,
    pub frame: u64,
    /// First packet of a keyframe.
    pub keyframe: bool,
    /// The RTP marker bit (last packet of a frame).
    pub marker: bool,
}

/// A synthetic media source on one `mid` of a publisher client.
#[derive(Debug)]
pub struct Source {
    pub id: u8,
    pub mid: Mid,
    pub kind: MediaKind,
    pub spec: SourceSpec,
    pub sent: Vec<Sent>,
    pub running: bool,
    pt: Pt,
    clock_rate: u64,
    next_at: Instant,
    next_index: u64,
    next_frame: u64,
    /// The next frame is a keyframe (asked for by a PLI, or forced by the test).
    keyframe_wanted: bool,
}

impl Source {
    fn write_frame(&mut self, rtc: &mut Rtc, now: Instant) {
        let frame = self.next_frame;
        self.next_frame += 1;
        let ticks_per_frame =
            self.spec.frame_interval.as_micros() as u64 * self.clock_rate / 1_000_000;
        let rtp_time = u64::from(self.spec.first_rtp_time) + frame * ticks_per_frame;
        let policy = self.spec.keyframes;
        let keyframe = self.kind == MediaKind::Video
            && ((frame == 0 && policy.first)
                || policy.every.is_some_and(|n| frame.is_multiple_of(n))
                || self.keyframe_wanted);
        if keyframe {
            self.keyframe_wanted = false;
        }
        let mut api = rtc.direct_api();
        let tx = api
            .stream_tx_by_mid(self.mid, None)
            .expect("the publisher has a send stream for its mid");
        for part in 0..self.spec.packets_per_frame {
            let index = self.next_index;
            self.next_index += 1;
            let seq = self.spec.first_seq + index;
            let mut payload = make_payload(self.kind, self.id, index, frame, part == 0, keyframe);
            payload.resize(self.spec.payload_len, 0);
            let last = part + 1 == self.spec.packets_per_frame;
            let mut ext_vals = ExtensionValues::default();
            if self.kind == MediaKind::Audio {
                (ext_vals.audio_level, ext_vals.voice_activity) = audio_level(index);
            } else if last {
                // As a phone's browser does: the frame's orientation on its last packet.
                ext_vals.video_orientation = Some(video_orientation(frame));
            }
            tx.write_rtp(
                RtpWrite::new(self.pt, seq.into(), rtp_time as u32, now, payload)
                    .marker(last)
                    .ext_vals(ext_vals)
                    .nackable(self.kind == MediaKind::Video),
            );
            self.sent.push(Sent {
                at: now,
                seq,
                rtp_time,
                index,
                frame,
                keyframe: keyframe && part == 0,
                marker: last,
            });
        }
    }

    /// Packets sent at or after `at`.
    pub fn sent_since(&self, at: Instant) -> impl Iterator<Item = &Sent> {
        self.sent.iter().filter(move |s| s.at >= at)
    }
}

/// The orientation (CVO) a video source marks frame `frame` with.
pub fn video_orientation(frame: u64) -> VideoOrientation {
    VideoOrientation::from((frame % 4) as u8)
}

/// The audio level (-dBov) and voice activity a source sends with its packet `index`.
pub fn audio_level(index: u64) -> (Option<i8>, Option<bool>) {
    let level = (index % 100) as i8;
    (Some(-level), Some(level < 50))
}

/// A synthetic payload: codec header bytes, then the tag. For VP8 the first byte is the payload
/// descriptor (S=1 on the first packet of a frame, partition 0) and the second the frame header,
/// whose bit 0 is the inverse keyframe flag.
fn make_payload(
    kind: MediaKind,
    source: u8,
    index: u64,
    frame: u64,
    first_of_frame: bool,
    keyframe: bool,
) -> Vec<u8> {
    let mut payload = vec![0u8; PAYLOAD_LEN];
    match kind {
        MediaKind::Audio => {
            // An Opus TOC byte (the engine never looks at it), then a byte that makes sure nobody
            // could take this for a VP8 keyframe.
            payload[0] = 0x78;
            payload[1] = 0x01;
        }
        MediaKind::Video => {
            payload[0] = if first_of_frame { 0x10 } else { 0x00 };
            payload[1] = if keyframe { 0x00 } else { 0x01 };
        }
    }
    payload[TAG_AT] = source;
    payload[TAG_AT + 1..TAG_AT + 9].copy_from_slice(&index.to_be_bytes());
    payload[TAG_AT + 9..TAG_AT + 17].copy_from_slice(&frame.to_be_bytes());
    payload
}

/// An RTP packet a client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub at: Instant,
    /// The mid of the stream the packet arrived on.
    pub mid: Option<Mid>,
    /// The packet itself carried the mid header extension.
    pub mid_in_header: bool,
    /// The 16-bit sequence number on the wire, and str0m's extended one.
    pub seq: u16,
    pub ext_seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub pt: Pt,
    pub audio_level: Option<i8>,
    pub voice_activity: Option<bool>,
    pub video_orientation: Option<VideoOrientation>,
    /// The tag of the synthetic payload: which source, which packet, which frame.
    pub source: u8,
    pub index: u64,
    pub frame: u64,
    /// The payload starts a VP8 keyframe.
    pub keyframe: bool,
}

/// A client: a plain str0m peer at its own address, with what it sent and received.
#[derive(Debug)]
pub struct Client {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub rtc: Rtc,
    /// The engine's peer for this client's transport.
    pub peer: PeerId,
    pub role: TransportRole,
    /// Publisher: the mids it offered, in order.
    pub mids: Vec<(MediaKind, Mid)>,
    /// Subscriber: the mid each track arrives on.
    pub track_mids: Vec<(TrackId, Mid)>,
    pub connected_at: Option<Instant>,
    pub received: Vec<Received>,
    pub keyframe_requests: Vec<(Instant, Mid)>,
    pub sources: Vec<Source>,
    /// Chance that a datagram from this client to the engine (uplink) or back (downlink) is lost.
    pub uplink_loss: f64,
    pub downlink_loss: f64,
    timeout: Instant,
}

impl Client {
    /// Packets received on the mid that carries `track`.
    pub fn received_for(&self, track: TrackId) -> Vec<Received> {
        let mid = self.mid_for(track);
        self.received
            .iter()
            .filter(|r| r.mid == Some(mid))
            .cloned()
            .collect()
    }

    pub fn mid_for(&self, track: TrackId) -> Mid {
        self.track_mids
            .iter()
            .find(|(t, _)| *t == track)
            .map(|(_, m)| *m)
            .unwrap_or_else(|| panic!("{}: {track} has no mid", self.name))
    }

    /// The publisher's mid of a kind (the first one offered).
    pub fn mid_of(&self, kind: MediaKind) -> Mid {
        self.mids
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, m)| *m)
            .unwrap_or_else(|| panic!("{}: no {kind:?} mid", self.name))
    }

    pub fn source(&self, mid: Mid) -> &Source {
        self.sources
            .iter()
            .find(|s| s.mid == mid)
            .unwrap_or_else(|| panic!("{}: no source on {mid}", self.name))
    }

    fn source_mut(&mut self, mid: Mid) -> &mut Source {
        let name = self.name;
        self.sources
            .iter_mut()
            .find(|s| s.mid == mid)
            .unwrap_or_else(|| panic!("{name}: no source on {mid}"))
    }

    /// Keyframe requests received for one mid.
    pub fn keyframe_requests_for(&self, mid: Mid) -> Vec<Instant> {
        self.keyframe_requests
            .iter()
            .filter(|(_, m)| *m == mid)
            .map(|(at, _)| *at)
            .collect()
    }

    fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected => self.connected_at = Some(now),
            Event::KeyframeRequest(request) => {
                self.keyframe_requests.push((now, request.mid));
                if let Some(source) = self.sources.iter_mut().find(|s| s.mid == request.mid) {
                    source.keyframe_wanted |= source.spec.keyframes.on_request;
                }
            }
            Event::RtpPacket(packet) => {
                let mid = self
                    .rtc
                    .direct_api()
                    .stream_rx(&packet.header.ssrc)
                    .map(|s| s.mid());
                let payload = &packet.payload;
                assert!(payload.len() >= TAG_AT + 17, "{}: short payload", self.name);
                let tag = |range: std::ops::Range<usize>| {
                    u64::from_be_bytes(payload[range].try_into().expect("8 bytes"))
                };
                self.received.push(Received {
                    at: now,
                    mid,
                    mid_in_header: packet.header.ext_vals.mid.is_some(),
                    seq: packet.header.sequence_number,
                    ext_seq: *packet.seq_no,
                    timestamp: packet.header.timestamp,
                    marker: packet.header.marker,
                    pt: packet.header.payload_type,
                    audio_level: packet.header.ext_vals.audio_level,
                    voice_activity: packet.header.ext_vals.voice_activity,
                    video_orientation: packet.header.ext_vals.video_orientation,
                    source: payload[TAG_AT],
                    index: tag(TAG_AT + 1..TAG_AT + 9),
                    frame: tag(TAG_AT + 9..TAG_AT + 17),
                    keyframe: payload[0] & 0x10 != 0 && payload[1] & 0x01 == 0,
                });
            }
            _ => {}
        }
    }
}

/// A publisher made by [`Sim::av_publisher`].
#[derive(Debug, Clone, Copy)]
pub struct AvPublisher {
    pub client: ClientId,
    pub audio: TrackId,
    pub video: TrackId,
    /// The publisher's own mids (what its sources send on).
    pub audio_mid: Mid,
    pub video_mid: Mid,
}

/// What [`Sim::worker_round`] (or [`Sim::receive_round_without_time`]) did.
#[derive(Debug)]
pub struct WorkerRound {
    /// Datagrams fed to the engine.
    pub fed: usize,
    /// Where the engine's RTP datagrams went (RTCP, STUN and DTLS left out).
    pub rtp_to: Vec<SocketAddr>,
    /// The engine's next deadline after the round.
    pub deadline: Instant,
}

/// A datagram on the in-memory network.
#[derive(Debug)]
struct InFlight {
    deliver_at: Instant,
    source: SocketAddr,
    destination: SocketAddr,
    contents: Vec<u8>,
}

/// The engine, its clients and the network between them, on a virtual clock.
#[derive(Debug)]
pub struct Sim {
    pub start: Instant,
    pub now: Instant,
    pub engine: MediaEngine,
    pub clients: Vec<Client>,
    /// Every event the engine emitted, with the time it was polled.
    pub media_events: Vec<(Instant, MediaEvent)>,
    /// Datagrams `handle_datagram` refused, with the reason it gave.
    pub refused: Vec<(Instant, SocketAddr, DropReason)>,
    /// Datagrams the network lost (see [`Sim::set_loss`]).
    pub lost: u64,
    engine_timeout: Instant,
    network: VecDeque<InFlight>,
    next_source_id: u8,
    /// SplitMix64 state of the network's loss decisions.
    rng: u64,
}

impl Sim {
    /// An engine with a 500 ms keyframe request interval.
    pub fn new() -> Self {
        Self::with_keyframe_interval(Duration::from_millis(500))
    }

    pub fn with_keyframe_interval(interval: Duration) -> Self {
        Self::with_config(EngineConfig {
            keyframe_request_interval: interval,
            ..EngineConfig::default()
        })
    }

    /// An engine with `config`, reachable at the simulated SFU address.
    pub fn with_config(config: EngineConfig) -> Self {
        let start = Instant::now();
        let config = EngineConfig {
            local_addresses: vec![SFU_ADDR],
            ..config
        };
        Sim {
            start,
            now: start,
            engine: MediaEngine::new(config, start),
            clients: Vec::new(),
            media_events: Vec::new(),
            refused: Vec::new(),
            lost: 0,
            engine_timeout: start,
            network: VecDeque::new(),
            next_source_id: 1,
            rng: 0x5eed_d2a6_0a11,
        }
    }

    pub fn client(&self, id: ClientId) -> &Client {
        &self.clients[id.0]
    }

    fn new_client(&mut self, name: &'static str, role: TransportRole) -> ClientId {
        let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 6000 + self.clients.len() as u16);
        let mut rtc = RtcConfig::new().set_rtp_mode(true).build(self.now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("host candidate"))
            .expect("candidate accepted");
        let peer = self.engine.add_peer(role, self.now).expect("add_peer");
        self.clients.push(Client {
            name,
            addr,
            rtc,
            peer,
            role,
            mids: Vec::new(),
            track_mids: Vec::new(),
            connected_at: None,
            received: Vec::new(),
            keyframe_requests: Vec::new(),
            sources: Vec::new(),
            uplink_loss: 0.0,
            downlink_loss: 0.0,
            timeout: self.now,
        });
        ClientId(self.clients.len() - 1)
    }

    /// A publisher client that offers one send-only `mid` per kind; the engine answers.
    pub fn add_publisher(&mut self, name: &'static str, kinds: &[MediaKind]) -> ClientId {
        let id = self.new_client(name, TransportRole::Publisher);
        let client = &mut self.clients[id.0];
        let mut api = client.rtc.sdp_api();
        let mids: Vec<(MediaKind, Mid)> = kinds
            .iter()
            .map(|kind| {
                (
                    *kind,
                    api.add_media(*kind, Direction::SendOnly, None, None, None),
                )
            })
            .collect();
        let (offer, pending) = api.apply().expect("the publisher has changes to offer");
        let answer = self
            .engine
            .accept_offer(client.peer, &offer.to_sdp_string())
            .expect("engine accepts the publisher's offer");
        let answer = SdpAnswer::from_sdp_string(&answer).expect("the engine's answer parses");
        client
            .rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("publisher accepts the answer");
        client.mids = mids;
        id
    }

    /// Publish the publisher's first `mid` of `kind` as a single-layer track.
    pub fn publish(&mut self, publisher: ClientId, kind: MediaKind) -> TrackId {
        let client = &self.clients[publisher.0];
        let mid = client.mid_of(kind);
        let label = TrackLabel {
            stream: format!("{}-stream", client.name),
            track: format!("{}-{mid}", client.name),
        };
        self.engine
            .add_track(client.peer, &mid.to_string(), kind, &[], label)
            .expect("add_track")
    }

    /// Start sending synthetic media on the publisher's first `mid` of `kind`. Returns that mid.
    pub fn start_source(&mut self, publisher: ClientId, kind: MediaKind, spec: SourceSpec) -> Mid {
        let id = self.next_source_id;
        self.next_source_id += 1;
        let now = self.now;
        let client = &mut self.clients[publisher.0];
        let mid = client.mid_of(kind);
        let codec = match kind {
            MediaKind::Audio => Codec::Opus,
            MediaKind::Video => Codec::Vp8,
        };
        let params = client
            .rtc
            .codec_config()
            .find(|p| p.spec().codec == codec)
            .copied()
            .expect("the client has the codec");
        client.sources.push(Source {
            id,
            mid,
            kind,
            spec,
            sent: Vec::new(),
            running: true,
            pt: params.pt(),
            clock_rate: u64::from(params.spec().clock_rate.get()),
            next_at: now,
            next_index: 0,
            next_frame: 0,
            keyframe_wanted: false,
        });
        mid
    }

    /// Stop or restart a source (it continues its numbering and timeline when restarted).
    pub fn set_source_running(&mut self, publisher: ClientId, mid: Mid, running: bool) {
        let now = self.now;
        let source = self.clients[publisher.0].source_mut(mid);
        source.running = running;
        if running {
            source.next_at = source.next_at.max(now);
        }
    }

    /// Change when the source makes keyframes from now on.
    pub fn set_keyframe_policy(&mut self, publisher: ClientId, mid: Mid, policy: KeyframePolicy) {
        let source = self.clients[publisher.0].source_mut(mid);
        source.spec.keyframes = policy;
        source.keyframe_wanted = false;
    }

    /// Make the source's next frame a keyframe.
    pub fn force_keyframe(&mut self, publisher: ClientId, mid: Mid) {
        self.clients[publisher.0].source_mut(mid).keyframe_wanted = true;
    }

    /// A connected publisher with an audio and a video track, both published, sources running.
    pub fn av_publisher(
        &mut self,
        name: &'static str,
        audio: SourceSpec,
        video: SourceSpec,
    ) -> AvPublisher {
        let client = self.add_publisher(name, &[MediaKind::Audio, MediaKind::Video]);
        self.connect(client);
        let audio_track = self.publish(client, MediaKind::Audio);
        let video_track = self.publish(client, MediaKind::Video);
        let audio_mid = self.start_source(client, MediaKind::Audio, audio);
        let video_mid = self.start_source(client, MediaKind::Video, video);
        AvPublisher {
            client,
            audio: audio_track,
            video: video_track,
            audio_mid,
            video_mid,
        }
    }

    /// A subscriber that subscribed to `tracks`, negotiated and connected.
    pub fn connected_subscriber(&mut self, name: &'static str, tracks: &[TrackId]) -> ClientId {
        let client = self.add_subscriber(name);
        let outcomes = self.subscribe(client, tracks);
        assert!(
            outcomes
                .iter()
                .all(|o| *o == SubscribeOutcome::NeedsNegotiation)
        );
        self.negotiate(client);
        self.connect(client);
        client
    }

    /// A subscriber client (its transport is negotiated by [`Sim::negotiate`]).
    pub fn add_subscriber(&mut self, name: &'static str) -> ClientId {
        self.new_client(name, TransportRole::Subscriber)
    }

    /// `engine.subscribe` for each track, at the current time.
    pub fn subscribe(&mut self, subscriber: ClientId, tracks: &[TrackId]) -> Vec<SubscribeOutcome> {
        let peer = self.clients[subscriber.0].peer;
        tracks
            .iter()
            .map(|t| {
                self.engine
                    .subscribe(peer, *t, self.now)
                    .expect("subscribe")
            })
            .collect()
    }

    pub fn unsubscribe(&mut self, subscriber: ClientId, track: TrackId) {
        let peer = self.clients[subscriber.0].peer;
        self.engine.unsubscribe(peer, track).expect("unsubscribe");
    }

    /// The engine's offer for the subscriber, accepted by the client. Returns the client's answer
    /// (not yet given to the engine: see [`Sim::deliver_answer`]), or `None` when there was nothing to
    /// negotiate.
    pub fn offer_to(&mut self, subscriber: ClientId) -> Option<String> {
        let client = &mut self.clients[subscriber.0];
        let offer = self
            .engine
            .create_offer(client.peer)
            .expect("create_offer")?;
        client
            .track_mids
            .extend(offer.tracks.iter().map(|(m, t)| (*t, *m)));
        let sdp = SdpOffer::from_sdp_string(&offer.sdp).expect("the engine's offer parses");
        let answer = client
            .rtc
            .sdp_api()
            .accept_offer(sdp)
            .expect("subscriber accepts the offer");
        Some(answer.to_sdp_string())
    }

    pub fn deliver_answer(&mut self, subscriber: ClientId, answer: &str) {
        let peer = self.clients[subscriber.0].peer;
        self.engine
            .accept_answer(peer, answer)
            .expect("engine accepts the answer");
    }

    /// Full offer/answer round on the subscriber transport.
    pub fn negotiate(&mut self, subscriber: ClientId) {
        let answer = self.offer_to(subscriber).expect("something to negotiate");
        self.deliver_answer(subscriber, &answer);
    }

    /// Run until both the client and its engine peer report the connection up (at most 5 s).
    pub fn connect(&mut self, client: ClientId) {
        let peer = self.clients[client.0].peer;
        let name = self.clients[client.0].name;
        self.run_until(
            Duration::from_secs(5),
            &format!("{name} connected"),
            |sim| sim.clients[client.0].connected_at.is_some() && sim.engine.is_connected(peer),
        );
    }

    /// Remove a client's engine peer; the client itself stays on the network and keeps running.
    pub fn remove_peer(&mut self, client: ClientId) -> Vec<TrackId> {
        let peer = self.clients[client.0].peer;
        self.engine.remove_peer(peer).ended_tracks
    }

    /// Is a datagram from a client to the engine on the network?
    pub fn engine_bound_in_flight(&self) -> bool {
        self.network.iter().any(|p| p.destination == SFU_ADDR)
    }

    /// Is an RTP datagram from `client` to the engine on the network?
    pub fn engine_bound_rtp_from(&self, client: ClientId) -> bool {
        let from = self.clients[client.0].addr;
        self.network
            .iter()
            .any(|p| p.destination == SFU_ADDR && p.source == from && is_rtp(&p.contents))
    }

    /// One receive round as a server's media worker runs it: the clock moves to the next datagram
    /// due at the engine, every datagram due for it then is fed in one batch, time is handed to
    /// the engine once, and the engine is drained (its transmits go on the network). Returns how
    /// many datagrams were fed, the destinations of the RTP datagrams the engine sent, and its
    /// next deadline. The batch is not subject to [`Sim::set_loss`].
    pub fn worker_round(&mut self) -> WorkerRound {
        self.receive_round(true)
    }

    /// [`Sim::worker_round`] without handing the engine time: what the engine sends from the
    /// datagrams alone.
    pub fn receive_round_without_time(&mut self) -> WorkerRound {
        self.receive_round(false)
    }

    fn receive_round(&mut self, hand_time: bool) -> WorkerRound {
        let due = self
            .network
            .iter()
            .filter(|p| p.destination == SFU_ADDR)
            .map(|p| p.deliver_at)
            .min()
            .expect("a datagram on its way to the engine");
        self.now = self.now.max(due);
        let now = self.now;
        let (batch, rest): (Vec<_>, Vec<_>) = self
            .network
            .drain(..)
            .partition(|p| p.destination == SFU_ADDR && p.deliver_at <= now);
        self.network.extend(rest);
        for packet in &batch {
            self.feed_engine(packet);
        }
        if hand_time {
            self.engine.handle_timeout(now);
        }
        let mut rtp_to = Vec::new();
        let deadline = loop {
            match self.engine.poll_output() {
                EngineOutput::Transmit(t) => {
                    if is_rtp(&t.contents) {
                        rtp_to.push(t.destination);
                    }
                    self.send_from_engine(t);
                }
                EngineOutput::Event(e) => self.media_events.push((now, e)),
                EngineOutput::Timeout(at) => break at,
            }
        };
        self.engine_timeout = deadline;
        WorkerRound {
            fed: batch.len(),
            rtp_to,
            deadline,
        }
    }

    /// Send a raw datagram to the engine at once, as if from `source`.
    pub fn inject(&mut self, source: SocketAddr, contents: &[u8]) -> Result<(), DropReason> {
        self.engine
            .handle_datagram(self.now, source, SFU_ADDR, contents)
    }

    /// When the engine reported `KeyframeRequested` for a track.
    pub fn keyframe_requested_events(&self, track: TrackId) -> Vec<Instant> {
        self.media_events
            .iter()
            .filter(
                |(_, e)| matches!(e, MediaEvent::KeyframeRequested { track: t, .. } if *t == track),
            )
            .map(|(at, _)| *at)
            .collect()
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.engine.stats().drops.get(reason)
    }

    /// Advance the virtual clock by `duration`, processing everything due on the way.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.step(end);
        }
        self.settle();
    }

    /// Advance until `done` holds; panic (naming `what`) if it does not within `limit`.
    pub fn run_until(&mut self, limit: Duration, what: &str, mut done: impl FnMut(&Sim) -> bool) {
        let end = self.now + limit;
        self.settle();
        while !done(self) {
            assert!(self.now < end, "not {what} within {limit:?}");
            self.step(end);
        }
    }

    /// Move to the next instant anything is due (never past `end`), and process it.
    fn step(&mut self, end: Instant) {
        self.settle();
        let next = self.next_wakeup().max(self.now + TICK).min(end);
        self.advance_to(next);
        self.settle();
    }

    fn next_wakeup(&self) -> Instant {
        let clients = self.clients.iter().map(|c| c.timeout);
        let sources = self
            .clients
            .iter()
            .flat_map(|c| &c.sources)
            .filter(|s| s.running)
            .map(|s| s.next_at);
        let network = self.network.front().map(|p| p.deliver_at);
        clients
            .chain(sources)
            .chain(network)
            .chain(std::iter::once(self.engine_timeout))
            .min()
            .expect("the engine always has a timeout")
    }

    fn advance_to(&mut self, now: Instant) {
        self.now = now;
        for client in &mut self.clients {
            let Client { rtc, sources, .. } = client;
            for source in sources.iter_mut().filter(|s| s.running) {
                while source.next_at <= now {
                    let at = source.next_at;
                    source.write_frame(rtc, at);
                    source.next_at += source.spec.frame_interval;
                }
            }
            rtc.handle_input(Input::Timeout(now))
                .expect("client handles its timeout");
        }
        self.engine.handle_timeout(now);
    }

    /// Poll everyone and deliver every datagram that is due, until nothing moves.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            loop {
                match self.engine.poll_output() {
                    EngineOutput::Transmit(t) => self.send_from_engine(t),
                    EngineOutput::Event(e) => self.media_events.push((self.now, e)),
                    EngineOutput::Timeout(at) => {
                        self.engine_timeout = at;
                        break;
                    }
                }
            }
            for index in 0..self.clients.len() {
                self.drain_client(index);
            }
            // Due datagrams go to the engine as one batch, with no polling in between (as the
            // server's receive loop does); a client is drained after each one (str0m keeps only one
            // received RTP packet until polled).
            while self
                .network
                .front()
                .is_some_and(|p| p.deliver_at <= self.now)
            {
                let packet = self.network.pop_front().expect("front exists");
                self.deliver(packet);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    /// Lose datagrams between a client and the engine at random, with these chances (0 to 1), from
    /// now on. The random sequence is seeded: a run is the same every time.
    pub fn set_loss(&mut self, client: ClientId, uplink: f64, downlink: f64) {
        let client = &mut self.clients[client.0];
        client.uplink_loss = uplink;
        client.downlink_loss = downlink;
    }

    /// Should the network lose this datagram?
    fn lose(&mut self, packet: &InFlight) -> bool {
        let chance = if packet.destination == SFU_ADDR {
            self.clients
                .iter()
                .find(|c| c.addr == packet.source)
                .map(|c| c.uplink_loss)
        } else {
            self.clients
                .iter()
                .find(|c| c.addr == packet.destination)
                .map(|c| c.downlink_loss)
        };
        let chance = chance.unwrap_or(0.0);
        chance > 0.0 && self.random() < chance
    }

    /// A uniform number in [0, 1) (SplitMix64).
    fn random(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Hand a datagram to the engine now; a refusal is recorded in [`Sim::refused`].
    fn feed_engine(&mut self, packet: &InFlight) {
        if let Err(reason) = self.engine.handle_datagram(
            self.now,
            packet.source,
            packet.destination,
            &packet.contents,
        ) {
            self.refused.push((self.now, packet.source, reason));
        }
    }

    /// Put one of the engine's transmits on the network.
    fn send_from_engine(&mut self, t: Transmit) {
        self.network.push_back(InFlight {
            deliver_at: self.now + LATENCY,
            source: t.source,
            destination: t.destination,
            contents: t.contents.into(),
        });
    }

    fn deliver(&mut self, packet: InFlight) {
        let now = self.now;
        if self.lose(&packet) {
            self.lost += 1;
            self.recycle(packet);
            return;
        }
        if packet.destination == SFU_ADDR {
            self.feed_engine(&packet);
            return;
        }
        let Some(index) = self
            .clients
            .iter()
            .position(|c| c.addr == packet.destination)
        else {
            return;
        };
        let contents = packet
            .contents
            .as_slice()
            .try_into()
            .expect("a valid datagram");
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: packet.source,
                destination: packet.destination,
                contents,
            },
        );
        self.clients[index]
            .rtc
            .handle_input(input)
            .expect("client handles the datagram");
        self.recycle(packet);
        self.drain_client(index);
    }

    /// Hand a datagram the engine sent back to it, once delivered or lost.
    fn recycle(&mut self, packet: InFlight) {
        if packet.source == SFU_ADDR {
            self.engine.recycle(packet.contents);
        }
    }

    /// Poll a client until its timeout: transmits go on the network, events into its records.
    fn drain_client(&mut self, index: usize) {
        let client = &mut self.clients[index];
        loop {
            match client.rtc.poll_output().expect("client poll_output") {
                Output::Transmit(t) => self.network.push_back(InFlight {
                    deliver_at: self.now + LATENCY,
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.to_vec(),
                }),
                Output::Event(e) => client.on_event(self.now, e),
                Output::Timeout(at) => {
                    client.timeout = at;
                    break;
                }
            }
        }
    }

    /// Ask the publisher (from a subscriber client) for a keyframe of `track`, as a receiver would
    /// after loss: a PLI on the subscriber's receive stream.
    pub fn send_pli(&mut self, subscriber: ClientId, track: TrackId) {
        let client = &mut self.clients[subscriber.0];
        let mid = client.mid_for(track);
        client
            .rtc
            .direct_api()
            .stream_rx_by_mid(mid, None)
            .expect("the subscriber receives this mid")
            .request_keyframe(KeyframeRequestKind::Pli);
    }
}

/// Whether a datagram is (S)RTP: RTP and RTCP start with 128..=191 (version 2; STUN and DTLS do
/// not, RFC 7983); RTCP packet types are 192..=223 in the second byte (RFC 5761). SRTP leaves
/// both bytes in the clear.
fn is_rtp(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(128..=191))
        && datagram.get(1).is_some_and(|b| !(192..=223).contains(b))
}

/// Assert that packets form one continuous stream: each sequence number one more than the previous
/// (on the wire, wrapping at 16 bits, and extended), RTP timestamps never going back and moving on
/// with each new frame.
pub fn assert_continuous(what: &str, packets: &[Received]) {
    for pair in packets.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(
            b.seq,
            a.seq.wrapping_add(1),
            "{what}: sequence gap between {a:?} and {b:?}"
        );
        assert_eq!(
            b.ext_seq,
            a.ext_seq + 1,
            "{what}: extended sequence gap between {a:?} and {b:?}"
        );
        let advance = b.timestamp.wrapping_sub(a.timestamp);
        assert!(
            advance < 1 << 31,
            "{what}: timestamp went back between {a:?} and {b:?}"
        );
        if b.frame != a.frame || b.source != a.source {
            assert!(
                advance > 0,
                "{what}: a new frame with the same timestamp: {a:?} {b:?}"
            );
        }
    }
}
