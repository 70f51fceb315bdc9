//! A [`MediaEngine`] with one publisher and N subscribers, all plain str0m peers in RTP mode on an
//! in-memory network and a virtual clock (the same arrangement as `dragoman-media`'s test harness,
//! cut down to what a benchmark needs), and the measured operation: fresh publisher packets fed to
//! the engine one by one with `handle_datagram`, the engine drained with `poll_output` after each
//! and `handle_timeout` called when its deadline has come, and the sent datagrams' buffers handed
//! back to the engine (`MediaEngine::recycle`), as the server's media worker does.
//!
//! ## Fresh packets
//!
//! SRTP replay protection rejects a packet seen before, so every measured packet is a new one. The
//! publisher client writes and encrypts a chunk of packets (consecutive sequence numbers, one
//! `interval` apart in virtual time) *before* the timer starts; the timed part is only the engine
//! taking them in and fanning them out, including the engine's own timer work that comes due
//! meanwhile. Between chunks, untimed, the clients' clocks move on: they run their timers (RTCP
//! reports, ICE consent) and every datagram other than the forwarded media (RTCP, STUN) is
//! delivered both ways. So the engine is measured in a live, steady state: connections alive, RTX
//! caches full, receiver reports flowing.
//!
//! ## Where the forwarded packets go
//!
//! To an [`Egress`]: [`Discard`] sends them nowhere (the media plane alone, no socket),
//! [`Loopback`] sends them with `sendmmsg` to a UDP sink on 127.0.0.1. Either hands their buffers
//! back for reuse, as a worker's send queue does. The engine's datagrams to the publisher (receiver
//! reports, TWCC feedback) always go back to the publisher through the in-memory network.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dragoman_media::{
    EngineConfig, EngineOutput, MediaEngine, MediaKind, Mid, PeerId, TrackId, TrackLabel,
    TransportRole,
};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Pt};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::{ExtensionValues, RtpWrite};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

use crate::alloc;
use crate::clock::Stopwatch;
use crate::profile::{self, Profile};
use std::os::fd::AsFd;

use dragoman_udp::SendQueue;

use crate::udp::UdpSink;

/// What the memory held may grow by over the warm-up's steady part. Video (1000 packets a second)
/// holds it exactly flat after 4 s; state kept per packet grows it by ~300 KB per subscriber over
/// those 2 s (the send history str0m once kept unpruned on the direct send: 885 KB with 3).
const MAX_STEADY_GROWTH: i64 = 64 * 1024;

/// Audio (50 packets a second) is not checked: str0m's bounded per-packet registers are still
/// filling after 4 s (with 3 subscribers, 288 KB more after both 6 s and 20 s), which would hide a
/// slow leak in the noise.
const MIN_PACKETS_FOR_STEADY_CHECK: u64 = 1000;

/// The engine's one media address.
pub const SFU_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5000);

/// Output packets per measured chunk, at most (so a chunk's datagrams fit in the sink's buffer).
const OUTPUTS_PER_CHUNK: usize = 1024;
/// Incoming packets per measured chunk, at most.
const INCOMING_PER_CHUNK: usize = 64;
/// `handle_timeout` calls per incoming packet, at most (a deadline still due after this many is
/// left to the untimed work between chunks).
const MAX_TIMEOUT_ROUNDS: usize = 4;

/// What one fixture forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    pub profile: Profile,
    pub kind: MediaKind,
    /// RTP payload bytes of every packet.
    pub payload_len: usize,
    pub subscribers: usize,
}

impl Setup {
    /// VP8 video, 1200-byte payloads, one packet per millisecond (about 10 Mbit/s).
    pub fn video(profile: Profile, subscribers: usize) -> Self {
        Setup {
            profile,
            kind: MediaKind::Video,
            payload_len: 1200,
            subscribers,
        }
    }

    /// Opus audio, 100-byte payloads, one packet per 20 ms.
    pub fn audio(profile: Profile, subscribers: usize) -> Self {
        Setup {
            profile,
            kind: MediaKind::Audio,
            payload_len: 100,
            subscribers,
        }
    }

    fn interval(&self) -> Duration {
        match self.kind {
            MediaKind::Audio => Duration::from_millis(20),
            MediaKind::Video => Duration::from_millis(1),
        }
    }

    /// Video packets per frame (the last has the marker bit).
    const PACKETS_PER_FRAME: u64 = 8;

    fn ticks_per_frame(&self) -> u32 {
        match self.kind {
            // 20 ms at 48 kHz.
            MediaKind::Audio => 960,
            // 8 ms at 90 kHz.
            MediaKind::Video => 720,
        }
    }

    fn incoming_per_chunk(&self) -> usize {
        (OUTPUTS_PER_CHUNK / self.subscribers.max(1)).clamp(1, INCOMING_PER_CHUNK)
    }
}

/// Where forwarded packets go.
pub trait Egress {
    /// A transmit from the engine to a subscriber (timed).
    fn transmit(&mut self, transmit: Transmit);
    /// The end of a chunk: send anything held back (timed).
    fn flush(&mut self) {}
    /// Between chunks (untimed).
    fn idle(&mut self) {}
    /// Hand the contents of the transmits sent so far to `recycle` (timed), as a worker hands
    /// its send queue's to the engine after each drain.
    fn give_back(&mut self, _recycle: &mut dyn FnMut(Vec<u8>)) {}
}

/// Sends nowhere: the media plane alone. Each transmit's contents are handed back as if sent.
#[derive(Debug, Default)]
pub struct Discard {
    sent: Vec<Vec<u8>>,
}

impl Egress for Discard {
    fn transmit(&mut self, transmit: Transmit) {
        self.sent
            .push(std::hint::black_box(transmit).contents.into());
    }

    fn give_back(&mut self, recycle: &mut dyn FnMut(Vec<u8>)) {
        self.sent.drain(..).for_each(recycle);
    }
}

/// Sends every transmit through the media workers' own send queue ([`SendQueue`]:
/// [`dragoman_udp::BATCH`] per `sendmmsg`, batching across subscribers and incoming packets), each
/// subscriber's datagrams to a sink socket of its own on 127.0.0.1, so that datagrams are joined
/// into GSO messages exactly when a worker's would be. The sinks are drained between chunks.
#[derive(Debug)]
pub struct Loopback {
    socket: std::net::UdpSocket,
    queue: SendQueue<Vec<u8>>,
    /// Subscriber address → its sink.
    sinks: HashMap<SocketAddr, UdpSink>,
}

impl Loopback {
    /// `gso`: whether the queue may join datagrams to one subscriber (UDP GSO), as a worker's does.
    pub fn new(gso: bool) -> io::Result<Self> {
        let socket = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
        Ok(Loopback {
            socket,
            queue: if gso {
                SendQueue::new()
            } else {
                SendQueue::without_gso()
            }
            .keeping_sent(),
            sinks: HashMap::new(),
        })
    }

    /// (datagrams sent, `sendmmsg` calls, segmented (GSO) messages, datagrams the sinks received).
    pub fn counts(&mut self) -> (u64, u64, u64, u64) {
        self.idle();
        let stats = self.queue.stats();
        assert_eq!(stats.errors + stats.dropped_full, 0, "every send succeeded");
        let received = self.sinks.values().map(UdpSink::received).sum();
        (
            stats.datagrams,
            stats.calls,
            stats.segmented_messages,
            received,
        )
    }
}

impl Egress for Loopback {
    fn transmit(&mut self, transmit: Transmit) {
        // A subscriber's first transmit opens its sink (once per subscriber, in the warm-up).
        let sink = match self.sinks.entry(transmit.destination) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(UdpSink::new().expect("a sink socket"))
            }
        };
        let to = sink.addr().into();
        self.queue
            .push(self.socket.as_fd(), transmit.contents.into(), to);
    }

    fn flush(&mut self) {
        self.queue.flush(self.socket.as_fd());
    }

    fn idle(&mut self) {
        for sink in self.sinks.values_mut() {
            sink.drain();
        }
    }

    fn give_back(&mut self, recycle: &mut dyn FnMut(Vec<u8>)) {
        self.queue.take_sent().for_each(recycle);
    }
}

/// Collects transmits (for the warm-up, where subscribers do receive the media).
#[derive(Debug, Default)]
struct Collect(Vec<Transmit>);

impl Egress for Collect {
    fn transmit(&mut self, transmit: Transmit) {
        self.0.push(transmit);
    }
}

/// What a measurement saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measured {
    /// This thread's CPU time in the measured part only (see [`crate::clock`]).
    pub cpu: Duration,
    /// Wall-clock time in the measured part only.
    pub wall: Duration,
    /// Publisher packets fed.
    pub incoming: u64,
    /// RTP packets the engine forwarded (written to a subscriber's send stream).
    pub outputs: u64,
    /// Datagrams the engine handed to the egress (the outputs, and a few RTCP reports).
    pub transmits: u64,
    /// Heap allocations during the measured part.
    pub allocations: u64,
}

impl Measured {
    pub fn add(&mut self, other: Measured) {
        self.cpu += other.cpu;
        self.wall += other.wall;
        self.incoming += other.incoming;
        self.outputs += other.outputs;
        self.transmits += other.transmits;
        self.allocations += other.allocations;
    }
}

#[derive(Debug)]
struct Client {
    addr: SocketAddr,
    rtc: Rtc,
    peer: PeerId,
    timeout: Instant,
    connected: bool,
    rtp_received: u64,
}

impl Client {
    fn handle(&mut self, event: Event) {
        match event {
            Event::Connected => self.connected = true,
            Event::RtpPacket(_) => self.rtp_received += 1,
            _ => {}
        }
    }
}

/// The engine, its clients and the network between them. See the module documentation.
#[derive(Debug)]
pub struct Fixture {
    setup: Setup,
    /// Every peer has run its timers up to here.
    now: Instant,
    /// Time of the last packet the publisher wrote.
    clock: Instant,
    engine: MediaEngine,
    engine_timeout: Instant,
    publisher: Client,
    subscribers: Vec<Client>,
    network: VecDeque<Transmit>,
    track: TrackId,
    mid: Mid,
    pt: Pt,
    next_seq: u64,
    packets_written: u64,
    keyframe: Arc<[u8]>,
    delta: Arc<[u8]>,
    /// Publisher datagrams for the engine, with their arrival times; the first `pending_len` are
    /// live (the buffers are reused from chunk to chunk).
    pending: Vec<(Instant, Vec<u8>)>,
    pending_len: usize,
}

impl Fixture {
    /// Set up and connect everyone on `setup.profile`, then forward 4 s of media to every
    /// subscriber (delivered, so they send receiver reports) to reach the steady state.
    pub fn new(setup: Setup) -> Result<Fixture, String> {
        profile::install();
        profile::force(setup.profile);
        let keyed_before = profile::installed(setup.profile);
        let start = Instant::now();
        let config = EngineConfig {
            local_addresses: vec![SFU_ADDR],
            ..EngineConfig::default()
        };
        let mut engine = MediaEngine::new(config, start);

        // The publisher offers one send-only mid; the engine answers.
        let mut publisher = new_client(&mut engine, 0, TransportRole::Publisher, start)?;
        let mut api = publisher.rtc.sdp_api();
        let mid = api.add_media(setup.kind, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().ok_or("publisher has nothing to offer")?;
        let answer = engine
            .accept_offer(publisher.peer, &offer.to_sdp_string())
            .map_err(|e| format!("engine refused the publisher's offer: {e}"))?;
        let answer = SdpAnswer::from_sdp_string(&answer).map_err(|e| e.to_string())?;
        publisher
            .rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| e.to_string())?;
        let track = engine
            .add_track(
                publisher.peer,
                &mid.to_string(),
                setup.kind,
                &[],
                TrackLabel {
                    stream: "publisher".into(),
                    track: "publisher-track".into(),
                },
            )
            .map_err(|e| e.to_string())?;
        let codec = match setup.kind {
            MediaKind::Audio => Codec::Opus,
            MediaKind::Video => Codec::Vp8,
        };
        let pt = publisher
            .rtc
            .codec_config()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
            .ok_or("publisher lacks the codec")?;

        // Subscribers: the engine offers, each client answers.
        let mut subscribers = Vec::with_capacity(setup.subscribers);
        for i in 0..setup.subscribers {
            let mut client = new_client(&mut engine, 1 + i, TransportRole::Subscriber, start)?;
            engine
                .subscribe(client.peer, track, start)
                .map_err(|e| e.to_string())?;
            let offer = engine
                .create_offer(client.peer)
                .map_err(|e| e.to_string())?
                .ok_or("nothing to offer to a subscriber")?;
            let offer = SdpOffer::from_sdp_string(&offer.sdp).map_err(|e| e.to_string())?;
            let answer = client
                .rtc
                .sdp_api()
                .accept_offer(offer)
                .map_err(|e| e.to_string())?;
            engine
                .accept_answer(client.peer, &answer.to_sdp_string())
                .map_err(|e| e.to_string())?;
            subscribers.push(client);
        }

        let (keyframe, delta) = payloads(setup);
        let mut fixture = Fixture {
            setup,
            now: start,
            clock: start,
            engine,
            engine_timeout: start,
            publisher,
            subscribers,
            network: VecDeque::new(),
            track,
            mid,
            pt,
            next_seq: 1000,
            packets_written: 0,
            keyframe,
            delta,
            pending: Vec::new(),
            pending_len: 0,
        };
        fixture.run_until_connected(Duration::from_secs(10))?;
        let keyed = profile::installed(setup.profile) - keyed_before;
        let expected = 2 * (1 + setup.subscribers as u64);
        if keyed != expected {
            return Err(format!(
                "{keyed} of {expected} DTLS ends installed {} keys",
                setup.profile.name()
            ));
        }

        // Warm up with delivery to the subscribers: 4 s of media, then 2 s more over which the
        // memory held must stay flat (see `MAX_STEADY_GROWTH`).
        let mut collect = Collect::default();
        fixture.deliver_for(Duration::from_secs(4), &mut collect);
        let live_before = alloc::live_bytes();
        let steady = Duration::from_secs(2);
        let steady_packets = fixture.deliver_for(steady, &mut collect);
        let grown = alloc::live_bytes() - live_before;
        if alloc::is_installed()
            && steady_packets >= MIN_PACKETS_FOR_STEADY_CHECK
            && grown > MAX_STEADY_GROWTH
        {
            return Err(format!(
                "memory grew by {grown} bytes over {steady:?} of steady forwarding ({steady_packets} \
                 packets to {} subscribers): something keeps per-packet state",
                setup.subscribers
            ));
        }
        let stats = fixture.engine.stats();
        let expected = stats.rtp_packets_in * setup.subscribers as u64;
        if stats.rtp_packets_forwarded != expected {
            return Err(format!(
                "warm-up forwarded {} of {expected} packets (drops: {:?})",
                stats.rtp_packets_forwarded, stats.drops
            ));
        }
        // Each subscriber decrypted every packet (forwards into reused buffers included).
        if let Some((i, s)) = fixture
            .subscribers
            .iter()
            .enumerate()
            .find(|(_, s)| s.rtp_received != stats.rtp_packets_in)
        {
            return Err(format!(
                "subscriber {i} received {} of the warm-up's {} packets",
                s.rtp_received, stats.rtp_packets_in
            ));
        }
        Ok(fixture)
    }

    pub fn setup(&self) -> Setup {
        self.setup
    }

    /// Forward `duration` of the publisher's packets, delivering every datagram. Returns how
    /// many incoming packets that was.
    fn deliver_for(&mut self, duration: Duration, collect: &mut Collect) -> u64 {
        let packets = (duration.as_micros() / self.setup.interval().as_micros()) as u64;
        let mut written = 0;
        while written < packets {
            let n = self.setup.incoming_per_chunk() as u64;
            self.prepare(n as usize);
            self.feed(collect);
            self.network.extend(collect.0.drain(..));
            self.tick(self.clock);
            written += n;
        }
        written
    }

    pub fn track(&self) -> TrackId {
        self.track
    }

    /// Forward `incoming` fresh publisher packets in chunks, timing (and counting the allocations
    /// of) only the engine's `handle_datagram`, `poll_output` and `handle_timeout`, and the egress.
    /// See the module documentation.
    pub fn measure(&mut self, incoming: u64, egress: &mut impl Egress) -> Measured {
        let mut total = Measured::default();
        let mut remaining = incoming;
        while remaining > 0 {
            let n = remaining.min(self.setup.incoming_per_chunk() as u64);
            self.prepare(n as usize);
            let forwarded = self.engine.stats().rtp_packets_forwarded;
            let allocations = alloc::allocations();
            let stopwatch = Stopwatch::start();
            let transmits = self.feed(egress);
            egress.flush();
            let (cpu, wall) = stopwatch.stop();
            total.add(Measured {
                cpu,
                wall,
                incoming: n,
                outputs: self.engine.stats().rtp_packets_forwarded - forwarded,
                transmits,
                allocations: alloc::allocations() - allocations,
            });
            egress.idle();
            self.between_chunks();
            remaining -= n;
        }
        total
    }

    /// Untimed: the publisher writes and encrypts `count` packets, one interval apart from the
    /// last; their datagrams (and anything else the publisher sends meanwhile) wait for [`feed`].
    ///
    /// [`feed`]: Fixture::feed
    pub fn prepare(&mut self, count: usize) {
        self.pending_len = 0;
        let interval = self.setup.interval();
        for _ in 0..count {
            let at = self.clock + interval;
            self.clock = at;
            let index = self.packets_written;
            self.packets_written += 1;
            let (payload, marker, rtp_time, ext_vals) = self.next_packet(index);
            let seq = self.next_seq;
            self.next_seq += 1;
            let rtc = &mut self.publisher.rtc;
            let mut api = rtc.direct_api();
            let tx = api
                .stream_tx_by_mid(self.mid, None)
                .expect("the publisher has a send stream");
            tx.write_rtp(
                RtpWrite::new(self.pt, seq.into(), rtp_time, at, payload)
                    .marker(marker)
                    .ext_vals(ext_vals)
                    .nackable(self.setup.kind == MediaKind::Video),
            );
            // str0m releases written packets when time moves (`handle_input`), not on the write.
            self.publisher
                .rtc
                .handle_input(Input::Timeout(at))
                .expect("publisher handles its timeout");
            loop {
                match self.publisher.rtc.poll_output().expect("publisher output") {
                    Output::Transmit(t) if t.destination == SFU_ADDR => {
                        if self.pending.len() == self.pending_len {
                            self.pending.push((at, Vec::with_capacity(1500)));
                        }
                        let (time, buf) = &mut self.pending[self.pending_len];
                        *time = at;
                        buf.clear();
                        buf.extend_from_slice(&t.contents);
                        self.pending_len += 1;
                    }
                    Output::Transmit(_) => {}
                    Output::Event(e) => self.publisher.handle(e),
                    Output::Timeout(t) => {
                        self.publisher.timeout = t;
                        break;
                    }
                }
            }
        }
    }

    /// The measured operation: each pending datagram into the engine at its time, then the engine
    /// drained. Transmits to subscribers go to `egress`; those to the publisher to the network.
    pub fn feed(&mut self, egress: &mut impl Egress) -> u64 {
        let publisher = self.publisher.addr;
        let mut transmits = 0;
        for (at, datagram) in &self.pending[..self.pending_len] {
            // A refusal is counted in the engine's statistics, and shows up as a missing output.
            let _ = self
                .engine
                .handle_datagram(*at, publisher, SFU_ADDR, datagram);
            // As the server's media worker does: drain; when the deadline has come (a forward
            // that str0m could not send at once is released only when time is handed to it), run
            // the timers and drain again; hand the sent datagrams' buffers back.
            for round in 0..MAX_TIMEOUT_ROUNDS {
                if round > 0 {
                    self.engine.handle_timeout(*at);
                }
                loop {
                    match self.engine.poll_output() {
                        EngineOutput::Transmit(t) if t.destination == publisher => {
                            self.network.push_back(t);
                        }
                        EngineOutput::Transmit(t) => {
                            transmits += 1;
                            egress.transmit(t);
                        }
                        EngineOutput::Event(_) => {}
                        EngineOutput::Timeout(deadline) => {
                            self.engine_timeout = deadline;
                            break;
                        }
                    }
                }
                if self.engine_timeout > *at {
                    break;
                }
            }
            egress.give_back(&mut |datagram| self.engine.recycle(datagram));
        }
        self.pending_len = 0;
        transmits
    }

    /// Untimed: move every peer's clock to the last packet's time, run the timers and deliver
    /// everything.
    pub fn between_chunks(&mut self) {
        self.tick(self.clock);
    }

    fn next_packet(&self, index: u64) -> (Arc<[u8]>, bool, u32, ExtensionValues) {
        let mut ext_vals = ExtensionValues::default();
        match self.setup.kind {
            MediaKind::Audio => {
                ext_vals.audio_level = Some(-30);
                ext_vals.voice_activity = Some(true);
                let rtp_time = 10_000 + index as u32 * self.setup.ticks_per_frame();
                (self.delta.clone(), false, rtp_time, ext_vals)
            }
            MediaKind::Video => {
                let frame = index / Setup::PACKETS_PER_FRAME;
                let part = index % Setup::PACKETS_PER_FRAME;
                let rtp_time = 500_000 + frame as u32 * self.setup.ticks_per_frame();
                let payload = if index == 0 {
                    self.keyframe.clone()
                } else {
                    self.delta.clone()
                };
                let marker = part + 1 == Setup::PACKETS_PER_FRAME;
                (payload, marker, rtp_time, ext_vals)
            }
        }
    }

    /// Advance every peer to `to`, run what is due, deliver everything.
    fn tick(&mut self, to: Instant) {
        self.now = self.now.max(to);
        let now = self.now;
        for client in std::iter::once(&mut self.publisher).chain(&mut self.subscribers) {
            if client.timeout <= now {
                client
                    .rtc
                    .handle_input(Input::Timeout(now))
                    .expect("client handles its timeout");
            }
        }
        if self.engine_timeout <= now {
            self.engine.handle_timeout(now);
        }
        self.pump();
    }

    /// Poll everyone and deliver every datagram, until nothing moves.
    fn pump(&mut self) {
        let now = self.now;
        loop {
            loop {
                match self.engine.poll_output() {
                    EngineOutput::Transmit(t) => self.network.push_back(t),
                    EngineOutput::Event(_) => {}
                    EngineOutput::Timeout(at) => {
                        self.engine_timeout = at;
                        break;
                    }
                }
            }
            for client in std::iter::once(&mut self.publisher).chain(&mut self.subscribers) {
                drain_client(client, &mut self.network);
            }
            if self.network.is_empty() {
                break;
            }
            while let Some(t) = self.network.pop_front() {
                if t.destination == SFU_ADDR {
                    let _ = self
                        .engine
                        .handle_datagram(now, t.source, SFU_ADDR, &t.contents);
                    continue;
                }
                let client = if t.destination == self.publisher.addr {
                    Some(&mut self.publisher)
                } else {
                    self.subscribers
                        .iter_mut()
                        .find(|c| c.addr == t.destination)
                };
                let Some(client) = client else { continue };
                let Ok(contents) = (&t.contents[..]).try_into() else {
                    continue;
                };
                let input = Input::Receive(
                    now,
                    Receive {
                        proto: Protocol::Udp,
                        source: t.source,
                        destination: t.destination,
                        contents,
                    },
                );
                client
                    .rtc
                    .handle_input(input)
                    .expect("client handles a datagram");
                drain_client(client, &mut self.network);
                // The engine's datagrams go back to it, so that the warm-up's deliveries (and
                // the check after it) run on reused buffers.
                if t.source == SFU_ADDR {
                    self.engine.recycle(t.contents.into());
                }
            }
        }
    }

    fn run_until_connected(&mut self, limit: Duration) -> Result<(), String> {
        let end = self.now + limit;
        loop {
            let all = std::iter::once(&self.publisher)
                .chain(&self.subscribers)
                .all(|c| c.connected && self.engine.is_connected(c.peer));
            if all {
                self.clock = self.now;
                return Ok(());
            }
            if self.now >= end {
                return Err(format!("not connected within {limit:?}"));
            }
            self.tick(self.now + Duration::from_millis(1));
        }
    }
}

fn new_client(
    engine: &mut MediaEngine,
    index: usize,
    role: TransportRole,
    now: Instant,
) -> Result<Client, String> {
    let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 6000 + index as u16);
    let mut rtc = RtcConfig::new().set_rtp_mode(true).build(now);
    let candidate = Candidate::host(addr, "udp").map_err(|e| e.to_string())?;
    rtc.add_local_candidate(candidate)
        .ok_or("candidate refused")?;
    let peer = engine.add_peer(role, now).map_err(|e| e.to_string())?;
    Ok(Client {
        addr,
        rtc,
        peer,
        timeout: now,
        connected: false,
        rtp_received: 0,
    })
}

fn drain_client(client: &mut Client, network: &mut VecDeque<Transmit>) {
    loop {
        match client.rtc.poll_output().expect("client output") {
            Output::Transmit(t) => network.push_back(t),
            Output::Event(e) => client.handle(e),
            Output::Timeout(at) => {
                client.timeout = at;
                break;
            }
        }
    }
}

/// The payloads a source sends: for video, a VP8 keyframe start (descriptor S=1, partition 0,
/// inverse key bit clear) and a delta packet; for audio, one Opus packet (both the same).
fn payloads(setup: Setup) -> (Arc<[u8]>, Arc<[u8]>) {
    let body = |first: u8, second: u8| -> Arc<[u8]> {
        let mut p: Vec<u8> = (0..setup.payload_len).map(|i| (i * 7) as u8).collect();
        p[0] = first;
        p[1] = second;
        p.into()
    };
    match setup.kind {
        MediaKind::Video => (body(0x10, 0x00), body(0x00, 0x01)),
        MediaKind::Audio => (body(0x78, 0x01), body(0x78, 0x01)),
    }
}
