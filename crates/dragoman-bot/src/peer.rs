//! One WebRTC peer connection of the bot (publisher or subscriber): its loopback-friendly
//! configuration, its event handler, and bounded waits for gathering and connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dragoman_signal::protocol::TransportKind;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Slot;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription,
    Registry, SettingEngineBuilder,
};

use crate::error::BotError;
use crate::keyframe::{KeyframeRequest, KeyframeRequestTap};
use crate::receiver;
use crate::sdp;
use crate::state::Shared;

/// Payload types the bot offers (the browser's usual numbers).
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
pub const VP8_PAYLOAD_TYPE: u8 = 96;
pub const VP8_RTX_PAYLOAD_TYPE: u8 = 97;

/// The Opus codec the bot sends and accepts: 48 kHz stereo.
pub fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The VP8 codec the bot sends and accepts, with NACK, PLI and FIR feedback.
pub fn vp8_codec() -> RTCRtpCodec {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![
            feedback("ccm", "fir"),
            feedback("nack", ""),
            feedback("nack", "pli"),
        ],
    }
}

/// Only Opus and VP8 (with RTX): what the bot's clips are, so nothing else can be negotiated.
fn media_engine() -> Result<MediaEngine, BotError> {
    let mut engine = MediaEngine::default();
    let register = |engine: &mut MediaEngine, codec, payload_type, kind| {
        engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: codec,
                    payload_type,
                },
                kind,
            )
            .map_err(|e| BotError::webrtc("registering a codec", e))
    };
    register(
        &mut engine,
        opus_codec(),
        OPUS_PAYLOAD_TYPE,
        RtpCodecKind::Audio,
    )?;
    register(
        &mut engine,
        vp8_codec(),
        VP8_PAYLOAD_TYPE,
        RtpCodecKind::Video,
    )?;
    register(
        &mut engine,
        RTCRtpCodec {
            mime_type: MIME_TYPE_RTX.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: format!("apt={VP8_PAYLOAD_TYPE}"),
            rtcp_feedback: vec![],
        },
        VP8_RTX_PAYLOAD_TYPE,
        RtpCodecKind::Video,
    )?;
    Ok(engine)
}

/// The peer connection's events, turned into state the bot can wait on.
struct Handler {
    kind: TransportKind,
    shared: Arc<Shared>,
    state_tx: watch::Sender<RTCPeerConnectionState>,
    /// Counts completed gatherings.
    gathered_tx: watch::Sender<u64>,
    /// Readers of remote tracks (subscriber only), stopped with the connection.
    readers: Mutex<Vec<JoinHandle<()>>>,
}

fn transport_name(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Publisher => "publisher",
        TransportKind::Subscriber => "subscriber",
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        debug!(transport = transport_name(self.kind), %state, "ICE gathering");
        if state == RTCIceGatheringState::Complete {
            self.gathered_tx.send_modify(|n| *n += 1);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        info!(transport = transport_name(self.kind), %state, "peer connection");
        let now = self.shared.now_ms();
        self.shared
            .lock()
            .transport_state(self.kind, &state.to_string(), now);
        self.state_tx.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if self.kind != TransportKind::Subscriber {
            return;
        }
        let reader = tokio::spawn(receiver::read_track(Arc::clone(&self.shared), track));
        let mut readers = self
            .readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        readers.retain(|r| !r.is_finished());
        readers.push(reader);
    }
}

/// A peer connection and the means to wait on it.
pub(crate) struct Peer {
    pub kind: TransportKind,
    pub pc: Arc<dyn PeerConnection>,
    handler: Arc<Handler>,
    state_rx: watch::Receiver<RTCPeerConnectionState>,
    gathered_rx: watch::Receiver<u64>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("kind", &self.kind)
            .field("state", &*self.state_rx.borrow())
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// Build a peer connection bound to one UDP socket on `bind_ip`, with host candidates only
    /// (no mDNS, no STUN). With `keyframes`, inbound PLI/FIR are reported there.
    pub async fn build(
        kind: TransportKind,
        bind_ip: IpAddr,
        shared: Arc<Shared>,
        keyframes: Option<mpsc::UnboundedSender<KeyframeRequest>>,
    ) -> Result<Peer, BotError> {
        let mut media_engine = media_engine()?;
        let mut registry = register_default_interceptors(Registry::new(), &mut media_engine)
            .map_err(|e| BotError::webrtc("registering interceptors", e))?;
        if let Some(tx) = keyframes {
            registry = registry.with(Slot::from(500), KeyframeRequestTap::new(tx));
        }
        // Loopback host candidates come from binding 127.0.0.1 explicitly (a wildcard bind skips
        // loopback interfaces); mDNS would replace them with `.local` names.
        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_include_loopback_candidate(true)
            .build();
        let (state_tx, state_rx) = watch::channel(RTCPeerConnectionState::New);
        let (gathered_tx, gathered_rx) = watch::channel(0u64);
        let handler = Arc::new(Handler {
            kind,
            shared: Arc::clone(&shared),
            state_tx,
            gathered_tx,
            readers: Mutex::new(Vec::new()),
        });
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::clone(&handler) as Arc<dyn PeerConnectionEventHandler>)
            .with_udp_addrs(vec![SocketAddr::new(bind_ip, 0)])
            .build()
            .await
            .map_err(|e| BotError::webrtc("building a peer connection", e))?;
        let now = shared.now_ms();
        shared.lock().transport_state(kind, "new", now);
        Ok(Peer {
            kind,
            pc: Arc::new(pc),
            handler,
            state_rx,
            gathered_rx,
        })
    }

    pub fn name(&self) -> &'static str {
        transport_name(self.kind)
    }

    /// How many gatherings have completed so far (to wait for the next one).
    pub fn gatherings(&self) -> u64 {
        *self.gathered_rx.borrow()
    }

    /// Apply `description` locally, wait (at most `timeout`) for the gathering it starts to
    /// complete, and return the local description with its candidates.
    ///
    /// If gathering does not report completion in time, the description is still used when it
    /// already carries a candidate (a renegotiation reuses the first gathering's candidates).
    pub async fn set_local_and_gather(
        &self,
        description: RTCSessionDescription,
        timeout: Duration,
    ) -> Result<RTCSessionDescription, BotError> {
        let before = self.gatherings();
        self.pc
            .set_local_description(description)
            .await
            .map_err(|e| BotError::webrtc(format!("{} set_local_description", self.name()), e))?;
        let mut gathered = self.gathered_rx.clone();
        let completed = matches!(
            tokio::time::timeout(timeout, gathered.wait_for(|n| *n > before)).await,
            Ok(Ok(_))
        );
        let local = self.pc.local_description().await.ok_or_else(|| {
            BotError::webrtc(self.name(), "no local description after setting one")
        })?;
        match completed {
            true => Ok(local),
            false if sdp::has_candidate(&local.sdp) => {
                debug!(
                    transport = self.name(),
                    "gathering did not complete; using the candidates so far"
                );
                Ok(local)
            }
            false => Err(BotError::timeout(
                format!("{} ICE gathering", self.name()),
                timeout,
            )),
        }
    }

    /// Wait until the connection is `connected`; fail at once if it fails or closes.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), BotError> {
        let mut state = self.state_rx.clone();
        let reached = tokio::time::timeout(
            timeout,
            state.wait_for(|s| {
                matches!(
                    s,
                    RTCPeerConnectionState::Connected
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                )
            }),
        )
        .await;
        match reached {
            Err(_) => Err(BotError::timeout(
                format!(
                    "the {} transport to connect (state {})",
                    self.name(),
                    self.state()
                ),
                timeout,
            )),
            Ok(Err(_)) => Err(BotError::TransportFailed {
                transport: self.name(),
                state: "dropped".into(),
            }),
            Ok(Ok(s)) if *s == RTCPeerConnectionState::Connected => Ok(()),
            Ok(Ok(s)) => Err(BotError::TransportFailed {
                transport: self.name(),
                state: s.to_string(),
            }),
        }
    }

    pub fn state(&self) -> RTCPeerConnectionState {
        *self.state_rx.borrow()
    }

    /// A receiver of state changes (for tasks that wait for `connected`).
    pub fn state_watch(&self) -> watch::Receiver<RTCPeerConnectionState> {
        self.state_rx.clone()
    }

    /// Close the connection and stop its track readers.
    pub async fn close(&self) {
        if let Err(e) = self.pc.close().await {
            debug!(transport = self.name(), "close: {e}");
        }
        let readers = std::mem::take(
            &mut *self
                .handler
                .readers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for reader in readers {
            reader.abort();
        }
    }
}
