//! A stand-in SFU for testing the bot without the real server: the v1 signaling flow over a
//! WebSocket, and media relayed through webrtc-rs peer connections in ICE-lite mode on 127.0.0.1.
//!
//! It is deliberately simple: tokens are identities, every subscription gets its own send-only
//! m-line on the subscriber connection (server offers, renegotiating for each `subscribe`),
//! publishers' RTP is forwarded with only SSRC and payload type rewritten, and a PLI goes to the
//! publisher whenever a video publication is (re)subscribed. It exists to test the bot's side of
//! negotiation, attribution and accounting, not to be an SFU.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dragoman_bot::sdp;
use dragoman_signal::ErrorCode;
use dragoman_signal::Role;
use dragoman_signal::protocol::{
    CallInfo, ClientMessage, LeaveReason, ParticipantInfo, PublicationInfo, RequestId,
    ServerMessage, SubscribedTrack, TrackKind, TransportKind,
};
use futures_util::{SinkExt, StreamExt};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCSessionDescription, Registry,
    SettingEngineBuilder,
};

const WAIT: Duration = Duration::from_secs(5);

/// A running stand-in SFU.
pub struct FakeSfu {
    pub url: String,
    pub hub: Arc<Hub>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSfu {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The publisher's remote track for a mid, once its first packet arrived.
type RemoteSlot = Arc<Mutex<Option<Arc<dyn TrackRemote>>>>;
/// publication → its forwarding task on a subscriber connection.
type Forwards = Arc<Mutex<HashMap<String, tokio::task::JoinHandle<()>>>>;

/// One published track as the stand-in holds it.
struct Publication {
    info: PublicationInfo,
    packets: broadcast::Sender<rtp::Packet>,
    /// The publisher's remote track, to send PLIs to.
    remote: RemoteSlot,
}

#[derive(Default)]
struct HubInner {
    next_id: u64,
    outboxes: HashMap<String, mpsc::UnboundedSender<ServerMessage>>,
    participants: Vec<ParticipantInfo>,
    publications: HashMap<String, Publication>,
}

/// What all sessions share.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<HubInner>,
    /// Make the next `subscribe` fail with this code (for error-path tests).
    pub fail_next_subscribe: Mutex<Option<ErrorCode>>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn broadcast(&self, except: &str, message: ServerMessage) {
        for (id, outbox) in &self.lock().outboxes {
            if id != except {
                let _ = outbox.send(message.clone());
            }
        }
    }

    /// Publication ids of a participant.
    pub fn publications_of(&self, participant: &str) -> Vec<String> {
        self.lock()
            .publications
            .values()
            .filter(|p| p.info.participant == participant)
            .map(|p| p.info.id.clone())
            .collect()
    }
}

pub async fn start() -> FakeSfu {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let hub = Arc::new(Hub::default());
    let accept_hub = Arc::clone(&hub);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let hub = Arc::clone(&accept_hub);
            tokio::spawn(async move {
                if let Ok(socket) = tokio_tungstenite::accept_async(stream).await {
                    Session::run(hub, socket).await;
                }
            });
        }
    });
    FakeSfu {
        url: format!("ws://{addr}/v1/signal"),
        hub,
        task,
    }
}

/// Server-side peer-connection events: gathering, and (publisher side) incoming tracks.
struct Handler {
    gathered: watch::Sender<u64>,
    tracks: Option<mpsc::UnboundedSender<Arc<dyn TrackRemote>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_modify(|n| *n += 1);
        }
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some(tx) = &self.tracks {
            let _ = tx.send(track);
        }
    }
}

struct ServerPeer {
    pc: Arc<dyn PeerConnection>,
    gathered: watch::Receiver<u64>,
}

async fn server_peer(tracks: Option<mpsc::UnboundedSender<Arc<dyn TrackRemote>>>) -> ServerPeer {
    let mut media_engine = MediaEngine::default();
    media_engine.register_default_codecs().expect("codecs");
    let registry =
        register_default_interceptors(Registry::new(), &mut media_engine).expect("interceptors");
    let (gathered_tx, gathered) = watch::channel(0);
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_setting_engine(
            SettingEngineBuilder::new()
                .with_lite(true)
                .with_multicast_dns_mode(MulticastDnsMode::Disabled)
                .build(),
        )
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler {
            gathered: gathered_tx,
            tracks,
        }))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .expect("server peer connection");
    ServerPeer {
        pc: Arc::new(pc),
        gathered,
    }
}

impl ServerPeer {
    async fn set_local_and_gather(&self, desc: RTCSessionDescription) -> String {
        let before = *self.gathered.borrow();
        self.pc.set_local_description(desc).await.expect("sld");
        let mut gathered = self.gathered.clone();
        let _ = tokio::time::timeout(WAIT, gathered.wait_for(|n| *n > before)).await;
        self.pc.local_description().await.expect("local").sdp
    }
}

/// One signaling connection.
struct Session {
    hub: Arc<Hub>,
    me: ParticipantInfo,
    out: mpsc::UnboundedSender<ServerMessage>,
    publisher: Option<ServerPeer>,
    /// mid on the publisher connection → packets arriving on it.
    mid_packets: HashMap<String, broadcast::Sender<rtp::Packet>>,
    mid_remote: HashMap<String, RemoteSlot>,
    subscriber: Arc<tokio::sync::Mutex<Option<ServerPeer>>>,
    answer_waiter: Arc<Mutex<Option<oneshot::Sender<String>>>>,
    /// publication → forwarding task on the subscriber connection.
    forwards: Forwards,
    /// Subscriber transceivers by publication, to reuse on resubscribe.
    sending: Arc<Mutex<HashMap<String, SendTrack>>>,
}

#[derive(Clone)]
struct SendTrack {
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

impl Session {
    async fn run(hub: Arc<Hub>, socket: Socket) {
        let (mut sink, mut stream) = socket.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<ServerMessage>();
        let (close_tx, mut close_rx) = oneshot::channel::<()>();
        let writer = tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    biased;
                    message = out_rx.recv() => message,
                    _ = &mut close_rx => {
                        // Flush what is queued, then close.
                        while let Ok(message) = out_rx.try_recv() {
                            let text = serde_json::to_string(&message).expect("encode");
                            let _ = sink.send(Message::text(text)).await;
                        }
                        let _ = sink.close().await;
                        break;
                    }
                };
                let Some(message) = message else { break };
                let text = serde_json::to_string(&message).expect("encode");
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let mut close_tx = Some(close_tx);
        let mut session: Option<Session> = None;
        while let Some(Ok(frame)) = stream.next().await {
            let Message::Text(text) = frame else { continue };
            let Ok(message) = serde_json::from_str::<ClientMessage>(text.as_str()) else {
                let _ = out.send(ServerMessage::Error {
                    id: None,
                    code: ErrorCode::BadJson,
                    message: "bad".into(),
                });
                continue;
            };
            match (&mut session, message) {
                (None, ClientMessage::Join { id, token }) => {
                    session = Some(Session::join(&hub, &out, id, token));
                }
                (Some(s), ClientMessage::Leave { id }) => {
                    s.leave();
                    let _ = out.send(ServerMessage::Ok { id });
                    if let Some(close) = close_tx.take() {
                        let _ = close.send(());
                    }
                    break;
                }
                (Some(s), message) => s.handle(message).await,
                (None, _) => {
                    let _ = out.send(ServerMessage::Error {
                        id: None,
                        code: ErrorCode::NotJoined,
                        message: "join first".into(),
                    });
                }
            }
        }
        if let Some(s) = &session {
            s.leave();
            if let Some(p) = &s.publisher {
                let _ = p.pc.close().await;
            }
            if let Some(p) = s.subscriber.lock().await.as_ref() {
                let _ = p.pc.close().await;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    }

    fn join(
        hub: &Arc<Hub>,
        out: &mpsc::UnboundedSender<ServerMessage>,
        id: Option<RequestId>,
        token: String,
    ) -> Session {
        let me = ParticipantInfo {
            id: format!("PA_{token}"),
            name: token.clone(),
            role: Role::Company,
            languages: vec![],
        };
        let (participants, publications) = {
            let mut inner = hub.lock();
            inner.outboxes.insert(me.id.clone(), out.clone());
            inner.participants.push(me.clone());
            (
                inner.participants.clone(),
                inner
                    .publications
                    .values()
                    .map(|p| p.info.clone())
                    .collect::<Vec<_>>(),
            )
        };
        let _ = out.send(ServerMessage::Joined {
            id,
            call: CallInfo { id: "CA_1".into() },
            participant: me.clone(),
            participants,
            publications,
            ice_servers: vec![],
            resumed: false,
            subscriptions: vec![],
            own_publications: vec![],
        });
        hub.broadcast(
            &me.id,
            ServerMessage::ParticipantJoined {
                participant: me.clone(),
            },
        );
        Session {
            hub: Arc::clone(hub),
            me,
            out: out.clone(),
            publisher: None,
            mid_packets: HashMap::new(),
            mid_remote: HashMap::new(),
            subscriber: Arc::new(tokio::sync::Mutex::new(None)),
            answer_waiter: Arc::new(Mutex::new(None)),
            forwards: Arc::new(Mutex::new(HashMap::new())),
            sending: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn leave(&self) {
        let gone: Vec<String> = {
            let mut inner = self.hub.lock();
            if inner.outboxes.remove(&self.me.id).is_none() {
                return; // already left
            }
            inner.participants.retain(|p| p.id != self.me.id);
            let gone: Vec<String> = inner
                .publications
                .values()
                .filter(|p| p.info.participant == self.me.id)
                .map(|p| p.info.id.clone())
                .collect();
            for id in &gone {
                inner.publications.remove(id);
            }
            gone
        };
        for id in gone {
            self.hub.broadcast(
                &self.me.id,
                ServerMessage::PublicationRemoved { publication: id },
            );
        }
        self.hub.broadcast(
            &self.me.id,
            ServerMessage::ParticipantLeft {
                participant: self.me.id.clone(),
                reason: LeaveReason::Left,
            },
        );
        for (_, task) in self
            .forwards
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            task.abort();
        }
    }

    fn error(&self, id: Option<RequestId>, code: ErrorCode, message: &str) {
        let _ = self.out.send(ServerMessage::Error {
            id,
            code,
            message: message.into(),
        });
    }

    async fn handle(&mut self, message: ClientMessage) {
        match message {
            ClientMessage::Offer {
                id,
                transport: TransportKind::Publisher,
                sdp: offer,
            } => self.publisher_offer(id, offer).await,
            ClientMessage::Answer {
                transport: TransportKind::Subscriber,
                sdp: answer,
                ..
            } => {
                if let Some(waiter) = self
                    .answer_waiter
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                {
                    let _ = waiter.send(answer);
                }
            }
            ClientMessage::Publish { id, track } => {
                let Some(packets) = self.mid_packets.get(&track.mid).cloned() else {
                    return self.error(id, ErrorCode::UnknownTrack, "no such mid");
                };
                let remote = self.mid_remote.get(&track.mid).cloned().unwrap_or_default();
                let info = {
                    let mut inner = self.hub.lock();
                    inner.next_id += 1;
                    let info = PublicationInfo {
                        id: format!("PB_{}", inner.next_id),
                        participant: self.me.id.clone(),
                        kind: track.kind,
                        source: track.source,
                        channel: track.channel.clone(),
                        layers: vec![],
                    };
                    inner.publications.insert(
                        info.id.clone(),
                        Publication {
                            info: info.clone(),
                            packets,
                            remote,
                        },
                    );
                    info
                };
                let _ = self.out.send(ServerMessage::Published {
                    id,
                    publication: info.clone(),
                });
                self.hub.broadcast(
                    &self.me.id,
                    ServerMessage::PublicationAdded { publication: info },
                );
            }
            ClientMessage::Subscribe { id, publications } => {
                let fail = self
                    .hub
                    .fail_next_subscribe
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                if let Some(code) = fail {
                    return self.error(id, code, "told to fail");
                }
                if let Some(unknown) = publications
                    .iter()
                    .find(|p| !self.hub.lock().publications.contains_key(*p))
                {
                    return self.error(
                        id,
                        ErrorCode::UnknownPublication,
                        &format!("no publication {unknown}"),
                    );
                }
                // Negotiate in the background: the answer arrives through this session's loop.
                let task = SubscribeTask {
                    hub: Arc::clone(&self.hub),
                    out: self.out.clone(),
                    subscriber: Arc::clone(&self.subscriber),
                    answer_waiter: Arc::clone(&self.answer_waiter),
                    forwards: Arc::clone(&self.forwards),
                    sending: Arc::clone(&self.sending),
                };
                tokio::spawn(task.run(id, publications));
            }
            ClientMessage::Unsubscribe { id, publications } => {
                let mut forwards = self.forwards.lock().unwrap_or_else(|e| e.into_inner());
                for p in &publications {
                    if let Some(task) = forwards.remove(p) {
                        task.abort();
                    }
                }
                let _ = self.out.send(ServerMessage::Ok { id });
            }
            ClientMessage::Ping { id } => {
                let _ = self.out.send(ServerMessage::Pong { id });
            }
            other => self.error(
                other.id().cloned(),
                ErrorCode::InvalidMessage,
                "not supported by the stand-in",
            ),
        }
    }

    async fn publisher_offer(&mut self, id: Option<RequestId>, offer: String) {
        let map = sdp::media_map(&offer);
        let (tracks_tx, mut tracks_rx) = mpsc::unbounded_channel();
        let peer = server_peer(Some(tracks_tx)).await;
        for mid in &map.mids {
            self.mid_packets
                .insert(mid.clone(), broadcast::channel(1024).0);
            self.mid_remote
                .insert(mid.clone(), Arc::new(Mutex::new(None)));
        }
        // Route incoming tracks to their mid's channel.
        let packets = self.mid_packets.clone();
        let remotes = self.mid_remote.clone();
        let ssrc_to_mid = map.ssrc_to_mid.clone();
        tokio::spawn(async move {
            while let Some(track) = tracks_rx.recv().await {
                let ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
                let Some(mid) = ssrc_to_mid.get(&ssrc).cloned() else {
                    continue;
                };
                if let Some(slot) = remotes.get(&mid) {
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&track));
                }
                let Some(tx) = packets.get(&mid).cloned() else {
                    continue;
                };
                tokio::spawn(async move {
                    while let Some(event) = track.poll().await {
                        match event {
                            TrackRemoteEvent::OnRtpPacket(p) => {
                                let _ = tx.send(p);
                            }
                            TrackRemoteEvent::OnEnded => break,
                            _ => {}
                        }
                    }
                });
            }
        });
        let offer = RTCSessionDescription::offer(offer).expect("offer");
        peer.pc.set_remote_description(offer).await.expect("srd");
        let answer = peer.pc.create_answer(None).await.expect("answer");
        let sdp = peer.set_local_and_gather(answer).await;
        self.publisher = Some(peer);
        let _ = self.out.send(ServerMessage::Answer {
            id,
            transport: TransportKind::Publisher,
            sdp,
        });
    }
}

struct SubscribeTask {
    hub: Arc<Hub>,
    out: mpsc::UnboundedSender<ServerMessage>,
    subscriber: Arc<tokio::sync::Mutex<Option<ServerPeer>>>,
    answer_waiter: Arc<Mutex<Option<oneshot::Sender<String>>>>,
    forwards: Forwards,
    sending: Arc<Mutex<HashMap<String, SendTrack>>>,
}

fn codec(kind: TrackKind) -> RTCRtpCodec {
    match kind {
        TrackKind::Audio => RTCRtpCodec {
            mime_type: "audio/opus".into(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
            rtcp_feedback: vec![],
        },
        TrackKind::Video => RTCRtpCodec {
            mime_type: "video/VP8".into(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
    }
}

impl SubscribeTask {
    async fn run(self, id: Option<RequestId>, publications: Vec<String>) {
        // One negotiation at a time per subscriber connection.
        let mut slot = self.subscriber.lock().await;
        if slot.is_none() {
            *slot = Some(server_peer(None).await);
        }
        let Some(peer) = slot.as_ref() else { return };
        let mut new_tracks = Vec::new();
        for publication in &publications {
            let known = self
                .sending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(publication);
            if known {
                continue;
            }
            let Some(kind) = self
                .hub
                .lock()
                .publications
                .get(publication)
                .map(|p| p.info.kind)
            else {
                continue;
            };
            let ssrc = rand::random::<u32>();
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                format!("stream-{publication}"),
                format!("track-{publication}"),
                publication.clone(),
                match kind {
                    TrackKind::Audio => RtpCodecKind::Audio,
                    TrackKind::Video => RtpCodecKind::Video,
                },
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: codec(kind),
                    active: true,
                    ..Default::default()
                }],
            )));
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
                .expect("transceiver");
            new_tracks.push((publication.clone(), kind, track, ssrc, transceiver));
        }
        if !new_tracks.is_empty() {
            let offer = peer.pc.create_offer(None).await.expect("offer");
            let sdp = peer.set_local_and_gather(offer).await;
            let mut tracks = Vec::new();
            for (publication, _, _, _, transceiver) in &new_tracks {
                let mid = transceiver.mid().await.expect("mid").expect("a mid");
                tracks.push(SubscribedTrack {
                    mid,
                    publication: publication.clone(),
                });
            }
            let (tx, rx) = oneshot::channel();
            *self.answer_waiter.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
            let _ = self.out.send(ServerMessage::Offer {
                transport: TransportKind::Subscriber,
                sdp,
                tracks,
            });
            let Ok(Ok(answer)) = tokio::time::timeout(WAIT, rx).await else {
                let _ = self.out.send(ServerMessage::Error {
                    id,
                    code: ErrorCode::NegotiationState,
                    message: "no answer".into(),
                });
                return;
            };
            let answer = RTCSessionDescription::answer(answer).expect("answer");
            peer.pc.set_remote_description(answer).await.expect("srd");
            for (publication, kind, track, ssrc, transceiver) in new_tracks {
                let sender = transceiver.sender().await.expect("s").expect("sender");
                let params = sender.get_parameters().await.expect("params");
                let wanted = codec(kind).mime_type;
                let payload_type = params
                    .rtp_parameters
                    .codecs
                    .iter()
                    .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(&wanted))
                    .map(|c| c.payload_type)
                    .expect("negotiated codec");
                self.sending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        publication,
                        SendTrack {
                            track,
                            ssrc,
                            payload_type,
                        },
                    );
            }
        }
        drop(slot);
        for publication in &publications {
            self.start_forward(publication);
        }
        let _ = self.out.send(ServerMessage::Ok { id });
    }

    fn start_forward(&self, publication: &str) {
        let Some(send) = self
            .sending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(publication)
            .cloned()
        else {
            return;
        };
        let (mut packets, remote, kind) = {
            let inner = self.hub.lock();
            let Some(p) = inner.publications.get(publication) else {
                return;
            };
            (p.packets.subscribe(), Arc::clone(&p.remote), p.info.kind)
        };
        let task = tokio::spawn(async move {
            loop {
                match packets.recv().await {
                    Ok(mut packet) => {
                        packet.header.ssrc = send.ssrc;
                        packet.header.payload_type = send.payload_type;
                        packet.header.extension = false;
                        packet.header.extensions.clear();
                        let _ = send.track.write_rtp(packet).await;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        if kind == TrackKind::Video {
            // Ask the publisher for a keyframe, once its track has shown up here.
            tokio::spawn(async move {
                for _ in 0..250 {
                    let track = remote.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    if let Some(track) = track {
                        let ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
                        let _ = track
                            .write_rtcp(vec![Box::new(PictureLossIndication {
                                sender_ssrc: 0,
                                media_ssrc: ssrc,
                            })])
                            .await;
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        }
        let mut forwards = self.forwards.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = forwards.insert(publication.to_owned(), task) {
            old.abort();
        }
    }
}
