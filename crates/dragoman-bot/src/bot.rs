//! The bot: joins a call over signaling, publishes its clips on a publisher transport, answers the
//! server's offers on a subscriber transport, subscribes, and reports what it saw.

use std::sync::Arc;
use std::time::Duration;

use dragoman_signal::protocol::{
    ClientMessage, ParticipantInfo, PublicationInfo, RequestId, ServerMessage, SubscribedTrack,
    TrackKind, TransportKind,
};
use dragoman_signal::routing::{Channel, SubscriberRouting};
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use webrtc::peer_connection::RTCSessionDescription;

use crate::config::{BotConfig, MediaMode};
use crate::error::BotError;
use crate::media::Clip;
use crate::peer::Peer;
use crate::publisher::{self, SendOptions, TrackMedia};
use crate::report::{Report, RoutingRecord, SignalEvent};
use crate::sdp;
use crate::signaling::{self, Expect, Inbound, SignalClient};
use crate::state::Shared;
use crate::synthetic::{SyntheticReceive, SyntheticStats};

/// How often the `wait_*` helpers look again.
const POLL: Duration = Duration::from_millis(20);

/// A synthetic participant in a call.
///
/// [`Bot::join`] returns once the bot has joined, negotiated its publisher transport, had its
/// tracks acknowledged as publications, seen that transport connect, and sent its initial
/// subscriptions. Media then flows until [`Bot::leave`] (or drop).
pub struct Bot {
    config: BotConfig,
    shared: Arc<Shared>,
    signal: SignalClient,
    participant: ParticipantInfo,
    publisher: Option<Arc<Peer>>,
    subscriber: Arc<Mutex<Option<Arc<Peer>>>>,
    stop: watch::Sender<bool>,
    /// The share of outgoing RTP packets dropped on purpose; changeable while the bot runs.
    uplink_loss: watch::Sender<f64>,
    tasks: Vec<JoinHandle<()>>,
    left: bool,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("participant", &self.participant.id)
            .field("publish", &self.config.publish)
            .field("subscribe", &self.config.subscribe)
            .finish_non_exhaustive()
    }
}

/// What the event loop needs.
struct EventLoop {
    shared: Arc<Shared>,
    signal: SignalClient,
    subscriber: Arc<Mutex<Option<Arc<Peer>>>>,
    config: BotConfig,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    stop: watch::Receiver<bool>,
}

impl Bot {
    /// Connect, join, publish and subscribe as `config` says. Every step is bounded by
    /// `config.timeouts`; on any failure the half-built bot is torn down and the error returned.
    pub async fn join(config: BotConfig) -> Result<Bot, BotError> {
        config.validate()?;
        let mut media = Vec::new();
        for (wanted, kind) in [
            (config.publish.audio, TrackKind::Audio),
            (config.publish.video, TrackKind::Video),
        ] {
            if !wanted {
                continue;
            }
            media.push((
                kind,
                match &config.media {
                    MediaMode::Clip => TrackMedia::Clip(Arc::new(Clip::for_kind(kind)?)),
                    MediaMode::Synthetic(synthetic) => TrackMedia::Synthetic {
                        media: synthetic.clone(),
                        track_id: synthetic.probe.next_track_id(),
                    },
                },
            ));
        }
        let shared = Shared::new();
        if let MediaMode::Synthetic(synthetic) = &config.media {
            shared.lock().synthetic_rx = Some(SyntheticReceive::new(Arc::clone(&synthetic.probe)));
        }
        let connection = signaling::connect(
            &config.url,
            config.timeouts.connect,
            config.timeouts.request,
            Arc::clone(&shared),
        )
        .await?;
        let signal = connection.client.clone();
        let (stop, stop_rx) = watch::channel(false);
        let subscriber = Arc::new(Mutex::new(None));
        // Until the bot exists, dropping this future (a caller's timeout, Ctrl-C) must not leave
        // the signaling tasks running.
        let mut guard = TaskGuard {
            tasks: connection.tasks,
            signal: signal.clone(),
        };
        guard.tasks.push(tokio::spawn(
            EventLoop {
                shared: Arc::clone(&shared),
                signal: signal.clone(),
                subscriber: Arc::clone(&subscriber),
                config: config.clone(),
                inbound: connection.inbound,
                stop: stop_rx.clone(),
            }
            .run(),
        ));

        let joined = signal
            .request("join", Expect::Joined, |id| ClientMessage::Join {
                id,
                token: config.token.clone(),
            })
            .await?;
        let ServerMessage::Joined { participant, .. } = joined else {
            return Err(BotError::UnexpectedReply {
                request: "join".into(),
                reply: format!("{joined:?}"),
            });
        };
        info!(participant = %participant.id, "joined");
        let tasks = std::mem::take(&mut guard.tasks);

        let (uplink_loss, _) = watch::channel(config.uplink_loss);
        let mut bot = Bot {
            config,
            shared,
            signal,
            participant,
            publisher: None,
            subscriber,
            stop,
            uplink_loss,
            tasks,
            left: false,
        };
        if let Err(e) = bot.start(media).await {
            bot.shutdown().await;
            return Err(e);
        }
        Ok(bot)
    }

    async fn start(&mut self, media: Vec<(TrackKind, TrackMedia)>) -> Result<(), BotError> {
        if !media.is_empty() {
            self.publish(media).await?;
        }
        let wanted: Vec<String> = {
            let state = self.shared.lock();
            state
                .publications
                .values()
                .filter(|p| self.config.subscribe.wants(p))
                .map(|p| p.id.clone())
                .collect()
        };
        subscribe_claimed(&self.signal, &self.shared, &wanted).await?;
        if let Some(interval) = self.config.ping_interval {
            self.tasks.push(tokio::spawn(keep_alive(
                self.signal.clone(),
                interval,
                self.stop.subscribe(),
            )));
        }
        Ok(())
    }

    /// Negotiate the publisher transport, publish each track, wait for the transport to connect
    /// and start sending.
    async fn publish(&mut self, media: Vec<(TrackKind, TrackMedia)>) -> Result<(), BotError> {
        let timeouts = self.config.timeouts;
        let (keyframe_tx, keyframe_rx) = mpsc::unbounded_channel();
        let peer = Arc::new(
            Peer::build(
                TransportKind::Publisher,
                self.config.bind_ip,
                Arc::clone(&self.shared),
                Some(keyframe_tx),
            )
            .await?,
        );
        self.publisher = Some(Arc::clone(&peer));
        self.tasks
            .push(tokio::spawn(publisher::dispatch_keyframe_requests(
                Arc::clone(&self.shared),
                keyframe_rx,
            )));

        let mut tracks = Vec::new();
        for (kind, media) in media {
            tracks.push(publisher::add_track(&peer, kind, media, &self.shared).await?);
        }
        let offer = peer
            .pc
            .create_offer(None)
            .await
            .map_err(|e| BotError::webrtc("publisher create_offer", e))?;
        let local = peer.set_local_and_gather(offer, timeouts.gathering).await?;
        let reply = self
            .signal
            .request("publisher offer", Expect::PublisherAnswer, |id| {
                ClientMessage::Offer {
                    id,
                    transport: TransportKind::Publisher,
                    sdp: local.sdp.clone(),
                }
            })
            .await?;
        let ServerMessage::Answer { sdp, .. } = reply else {
            return Err(BotError::UnexpectedReply {
                request: "publisher offer".into(),
                reply: format!("{reply:?}"),
            });
        };
        let answer = RTCSessionDescription::answer(sdp)
            .map_err(|e| BotError::Protocol(format!("the publisher answer: {e}")))?;
        peer.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| BotError::webrtc("publisher set_remote_description", e))?;
        self.shared.lock().negotiated(TransportKind::Publisher);

        for track in &mut tracks {
            publisher::learn_negotiated(track, &self.shared).await?;
            let info = track.info(&self.config.audio_channel)?;
            let reply = self
                .signal
                .request("publish", Expect::Published, |id| ClientMessage::Publish {
                    id,
                    track: info.clone(),
                })
                .await?;
            let ServerMessage::Published { publication, .. } = reply else {
                return Err(BotError::UnexpectedReply {
                    request: "publish".into(),
                    reply: format!("{reply:?}"),
                });
            };
            info!(publication = %publication.id, kind = ?track.kind, mid = %info.mid, "published");
            let mut state = self.shared.lock();
            if let Some(published) = state.published.get_mut(track.index) {
                published.report.publication = Some(publication.id.clone());
            }
            state.own_publications.push(publication);
        }

        peer.wait_connected(timeouts.media_connect).await?;
        let seed = self.config.loss_seed.unwrap_or_else(rand::random);
        for (i, track) in tracks.into_iter().enumerate() {
            self.tasks.push(tokio::spawn(publisher::run_sender(
                Arc::clone(&self.shared),
                track,
                SendOptions {
                    uplink_loss: self.uplink_loss.subscribe(),
                    seed: seed.wrapping_add(i as u64),
                },
                peer.state_watch(),
                self.stop.subscribe(),
            )));
        }
        Ok(())
    }

    /// This bot's participant id.
    pub fn participant_id(&self) -> &str {
        &self.participant.id
    }

    /// This bot as the server described it in `joined`.
    pub fn participant(&self) -> &ParticipantInfo {
        &self.participant
    }

    pub fn config(&self) -> &BotConfig {
        &self.config
    }

    /// The bot's own publications, as acknowledged by `published`.
    pub fn own_publications(&self) -> Vec<PublicationInfo> {
        self.shared.lock().own_publications.clone()
    }

    /// Others' publications now in the call, as known from `joined` and later events.
    pub fn publications_in_call(&self) -> Vec<PublicationInfo> {
        self.shared.lock().publications.values().cloned().collect()
    }

    /// Other participants now in the call.
    pub fn participants_in_call(&self) -> Vec<ParticipantInfo> {
        self.shared.lock().participants.values().cloned().collect()
    }

    /// Signaling events seen so far (joins, leaves, publications added and removed, errors).
    pub fn events(&self) -> Vec<SignalEvent> {
        self.shared.lock().events.clone()
    }

    /// Milliseconds since this bot started: the clock of every `*_ms` in its report.
    pub fn now_ms(&self) -> u64 {
        self.shared.now_ms()
    }

    /// A snapshot of everything measured so far.
    pub fn report(&self) -> Report {
        self.shared.report()
    }

    /// With synthetic media: what the bot sent and received in the probe's measurement window,
    /// and the forwarding latency of what it received. `None` with clips.
    pub fn synthetic_stats(&self) -> Option<SyntheticStats> {
        self.shared.lock().synthetic_stats()
    }

    /// Change the share of outgoing RTP packets dropped on purpose (0.0 to below 1.0), at once.
    pub fn set_uplink_loss(&self, share: f64) -> Result<(), BotError> {
        if !(0.0..1.0).contains(&share) {
            return Err(BotError::Config(format!(
                "uplink loss must be at least 0 and below 1, not {share}"
            )));
        }
        self.uplink_loss.send_replace(share);
        Ok(())
    }

    /// Subscribe to `publications` and wait for the server's `ok`.
    pub async fn subscribe(&self, publications: &[String]) -> Result<(), BotError> {
        if publications.is_empty() {
            return Ok(());
        }
        let at = self.shared.now_ms();
        self.shared.lock().subscribing(publications, at);
        send_subscribe(&self.signal, &self.shared, publications, at).await
    }

    /// Unsubscribe from `publications` and wait for the server's `ok`.
    pub async fn unsubscribe(&self, publications: &[String]) -> Result<(), BotError> {
        if publications.is_empty() {
            return Ok(());
        }
        let at = self.shared.now_ms();
        self.shared.lock().unsubscribing(publications, at);
        let result = self
            .signal
            .request("unsubscribe", Expect::Ok, |id| ClientMessage::Unsubscribe {
                id,
                publications: publications.to_vec(),
            })
            .await;
        if result.is_err() {
            self.shared.lock().unsubscribe_failed(publications, at);
        }
        result.map(|_| ())
    }

    /// The latest `routing` message: which audio the server forwards to this bot, at which gain.
    pub fn routing(&self) -> Option<SubscriberRouting> {
        self.shared
            .lock()
            .routing_records
            .last()
            .map(|r| r.routing.clone())
    }

    /// Wait until the latest `routing` message satisfies `predicate`; return it with its arrival.
    pub async fn wait_for_routing(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&SubscriberRouting) -> bool,
    ) -> Result<RoutingRecord, BotError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(latest) = self
                .shared
                .lock()
                .routing_records
                .last()
                .filter(|r| predicate(&r.routing))
            {
                return Ok(latest.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BotError::timeout(what, timeout));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Send an interpretation request and wait for its `ok`. Returns when the `ok` arrived, in ms
    /// on the bot's clock (the reader's timestamp, not when this future woke).
    async fn interpretation(
        &self,
        what: &str,
        build: impl FnOnce(Option<RequestId>) -> ClientMessage,
    ) -> Result<u64, BotError> {
        self.signal
            .request_timed(what, Expect::Ok, build)
            .await
            .map(|(_, at_ms)| at_ms)
    }

    /// Pick the language to listen to (`None`: the original sound only). Listeners only.
    pub async fn set_language(&self, language: Option<&str>) -> Result<u64, BotError> {
        let language = language.map(str::to_owned);
        self.interpretation("set_language", |id| ClientMessage::SetLanguage {
            id,
            language,
        })
        .await
    }

    /// Interpreter: speak into `output` (one of the pair) from now on.
    pub async fn switch_direction(&self, output: &str) -> Result<u64, BotError> {
        let output = output.to_owned();
        self.interpretation("switch_direction", |id| ClientMessage::SwitchDirection {
            id,
            output,
        })
        .await
    }

    /// Interpreter: listen to the floor or (relay) a language channel.
    pub async fn set_input(&self, input: Channel) -> Result<u64, BotError> {
        self.interpretation("set_input", |id| ClientMessage::SetInput { id, input })
            .await
    }

    /// Interpreter: ask booth partner `to` to swap who is on air.
    pub async fn request_handover(&self, to: &str) -> Result<u64, BotError> {
        let to = to.to_owned();
        self.interpretation("request_handover", |id| ClientMessage::RequestHandover {
            id,
            to,
        })
        .await
    }

    /// Interpreter: accept the handover `from` asked for.
    pub async fn accept_handover(&self, from: &str) -> Result<u64, BotError> {
        let from = from.to_owned();
        self.interpretation("accept_handover", |id| ClientMessage::AcceptHandover {
            id,
            from,
        })
        .await
    }

    /// Interpreter: decline the handover `from` asked for.
    pub async fn decline_handover(&self, from: &str) -> Result<u64, BotError> {
        let from = from.to_owned();
        self.interpretation("decline_handover", |id| ClientMessage::DeclineHandover {
            id,
            from,
        })
        .await
    }

    /// Interpreter: withdraw the handover request to `to`.
    pub async fn withdraw_handover(&self, to: &str) -> Result<u64, BotError> {
        let to = to.to_owned();
        self.interpretation("withdraw_handover", |id| ClientMessage::WithdrawHandover {
            id,
            to,
        })
        .await
    }

    /// Interpreter: go on air (no booth partner is), into `output` or the current output.
    pub async fn go_on_air(&self, output: Option<&str>) -> Result<u64, BotError> {
        let output = output.map(str::to_owned);
        self.interpretation("go_on_air", |id| ClientMessage::GoOnAir { id, output })
            .await
    }

    /// Interpreter: step off air.
    pub async fn go_off_air(&self) -> Result<u64, BotError> {
        self.interpretation("go_off_air", |id| ClientMessage::GoOffAir { id })
            .await
    }

    /// Wait until `predicate` holds for a report snapshot; return that snapshot.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&Report) -> bool,
    ) -> Result<Report, BotError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let report = self.report();
            if predicate(&report) {
                return Ok(report);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BotError::timeout(what, timeout));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Wait until at least `packets` RTP packets of `publication` have arrived.
    pub async fn wait_for_packets(
        &self,
        publication: &str,
        packets: u64,
        timeout: Duration,
    ) -> Result<Report, BotError> {
        self.wait_until(
            &format!("{packets} packets of {publication}"),
            timeout,
            |r| {
                r.received(publication)
                    .is_some_and(|p| p.packets >= packets)
            },
        )
        .await
    }

    /// Wait for a signaling event matching `predicate` (already seen ones count).
    pub async fn wait_for_event(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&SignalEvent) -> bool,
    ) -> Result<SignalEvent, BotError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(event) = self.shared.lock().events.iter().find(|e| predicate(e)) {
                return Ok(event.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BotError::timeout(what, timeout));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Wait until a publication of others matching `predicate` is in the call.
    pub async fn wait_for_publication(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&PublicationInfo) -> bool,
    ) -> Result<PublicationInfo, BotError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(p) = self
                .shared
                .lock()
                .publications
                .values()
                .find(|p| predicate(p))
            {
                return Ok(p.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BotError::timeout(what, timeout));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Send `leave`, wait for its `ok`, close both transports and the socket, and return the final
    /// report. The report stays available through [`Bot::report`]. Calling it again only returns
    /// the report.
    pub async fn leave(&mut self) -> Result<Report, BotError> {
        if self.left {
            return Ok(self.report());
        }
        let at = self.shared.now_ms();
        self.shared.lock().left_ms = Some(at);
        // Stop sending first, so the final counts are the ones the server could have seen.
        self.stop.send_replace(true);
        let result = self
            .signal
            .request("leave", Expect::Ok, |id| ClientMessage::Leave { id })
            .await;
        self.shutdown().await;
        match result {
            // The server may close the socket right after (or instead of) its `ok`.
            Ok(_) | Err(BotError::SignalingClosed(_)) => Ok(self.report()),
            Err(e) => Err(e),
        }
    }

    /// Stop every task, close the transports and the socket.
    async fn shutdown(&mut self) {
        self.left = true;
        self.stop.send_replace(true);
        if let Some(peer) = self.publisher.take() {
            peer.close().await;
        }
        if let Some(peer) = self.subscriber.lock().await.take() {
            peer.close().await;
        }
        self.signal.close();
        // Give the writer a moment to send the close frame.
        tokio::time::sleep(Duration::from_millis(20)).await;
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        self.stop.send_replace(true);
        self.signal.close();
        for task in self.tasks.drain(..) {
            task.abort();
        }
        // Peer connections keep their drivers running until closed; close them in the background.
        let publisher = self.publisher.take();
        let subscriber = Arc::clone(&self.subscriber);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Some(peer) = publisher {
                    peer.close().await;
                }
                if let Some(peer) = subscriber.lock().await.take() {
                    peer.close().await;
                }
            });
        }
    }
}

/// Stops the signaling tasks of a join that did not finish.
struct TaskGuard {
    tasks: Vec<JoinHandle<()>>,
    signal: SignalClient,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.tasks.is_empty() {
            return;
        }
        self.signal.close();
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

/// Send `subscribe` for publications already marked as subscribing at `at`; undo the mark if the
/// server refuses.
async fn send_subscribe(
    signal: &SignalClient,
    shared: &Shared,
    publications: &[String],
    at: u64,
) -> Result<(), BotError> {
    let result = signal
        .request("subscribe", Expect::Ok, |id| ClientMessage::Subscribe {
            id,
            publications: publications.to_vec(),
        })
        .await;
    if result.is_err() {
        shared.lock().subscribe_failed(publications, at);
    }
    result.map(|_| ())
}

/// Subscribe to those of `publications` not subscribed yet.
async fn subscribe_claimed(
    signal: &SignalClient,
    shared: &Shared,
    publications: &[String],
) -> Result<(), BotError> {
    let at = shared.now_ms();
    let fresh = shared.lock().claim_subscriptions(publications, at);
    if fresh.is_empty() {
        return Ok(());
    }
    info!(?fresh, "subscribing");
    send_subscribe(signal, shared, &fresh, at).await
}

async fn keep_alive(signal: SignalClient, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = signal
            .request("ping", Expect::Pong, |id| ClientMessage::Ping { id })
            .await
        {
            debug!("keep-alive: {e}");
            if matches!(e, BotError::SignalingClosed(_)) {
                return;
            }
        }
    }
}

impl EventLoop {
    async fn run(mut self) {
        loop {
            let inbound = tokio::select! {
                inbound = self.inbound.recv() => inbound,
                _ = self.stop.wait_for(|s| *s) => None,
            };
            let Some(inbound) = inbound else {
                break;
            };
            match inbound {
                Inbound::SubscriberOffer { sdp, tracks } => {
                    if let Err(e) = self.answer_offer(sdp, tracks).await {
                        warn!("subscriber negotiation failed: {e}");
                        let now = self.shared.now_ms();
                        self.shared
                            .lock()
                            .unexpected(now, format!("subscriber negotiation failed: {e}"));
                    }
                }
                Inbound::PublicationAdded(publication) => {
                    let mine = self.shared.lock().my_id() == Some(publication.participant.as_str());
                    if mine || !self.config.subscribe.wants(&publication) {
                        continue;
                    }
                    // Not awaited here: the server may send its offer before the `ok`, and
                    // this loop must be free to answer it.
                    let signal = self.signal.clone();
                    let shared = Arc::clone(&self.shared);
                    tokio::spawn(async move {
                        if let Err(e) = subscribe_claimed(
                            &signal,
                            &shared,
                            std::slice::from_ref(&publication.id),
                        )
                        .await
                        {
                            warn!(publication = %publication.id, "automatic subscribe failed: {e}");
                        }
                    });
                }
            }
        }
        debug!("event loop ends");
    }

    /// Answer a server offer on the subscriber transport, creating the transport on the first one.
    async fn answer_offer(
        &mut self,
        sdp: String,
        tracks: Vec<SubscribedTrack>,
    ) -> Result<(), BotError> {
        {
            let map = sdp::media_map(&sdp);
            let mut state = self.shared.lock();
            for track in &tracks {
                state
                    .routing
                    .mid_to_publication
                    .insert(track.mid.clone(), track.publication.clone());
            }
            state.routing.ssrc_to_mid.extend(map.ssrc_to_mid);
            state.routing.track_to_mid.extend(map.track_to_mid);
            if map.mid_extension_id.is_some() {
                state.routing.mid_extension_id = map.mid_extension_id;
            }
        }
        let (peer, first) = {
            let mut slot = self.subscriber.lock().await;
            match slot.as_ref() {
                Some(peer) => (Arc::clone(peer), false),
                None => {
                    let peer = Arc::new(
                        Peer::build(
                            TransportKind::Subscriber,
                            self.config.bind_ip,
                            Arc::clone(&self.shared),
                            None,
                        )
                        .await?,
                    );
                    *slot = Some(Arc::clone(&peer));
                    (peer, true)
                }
            }
        };
        let offer = RTCSessionDescription::offer(sdp)
            .map_err(|e| BotError::Protocol(format!("the subscriber offer: {e}")))?;
        peer.pc
            .set_remote_description(offer)
            .await
            .map_err(|e| BotError::webrtc("subscriber set_remote_description", e))?;
        let answer = peer
            .pc
            .create_answer(None)
            .await
            .map_err(|e| BotError::webrtc("subscriber create_answer", e))?;
        // A renegotiation reuses the candidates gathered the first time.
        let gathering = if first {
            self.config.timeouts.gathering
        } else {
            self.config
                .timeouts
                .gathering
                .min(Duration::from_millis(500))
        };
        let local = peer.set_local_and_gather(answer, gathering).await?;
        self.signal
            .send_unawaited("the subscriber answer", |id| ClientMessage::Answer {
                id,
                transport: TransportKind::Subscriber,
                sdp: local.sdp,
            })?;
        self.shared.lock().negotiated(TransportKind::Subscriber);
        info!(
            tracks = tracks.len(),
            renegotiation = !first,
            "answered the subscriber offer"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Tests and load generators spawn bots onto tasks: every public future must be `Send`.
    #[allow(dead_code)]
    fn public_futures_are_send(bot: &mut Bot, config: BotConfig) {
        assert_send(&Bot::join(config));
        assert_send(&bot.subscribe(&[]));
        assert_send(&bot.unsubscribe(&[]));
        assert_send(&bot.wait_until("", Duration::ZERO, |_| true));
        assert_send(&bot.wait_for_event("", Duration::ZERO, |_| true));
        assert_send(&bot.wait_for_publication("", Duration::ZERO, |_| true));
        assert_send(&bot.leave());
        assert_send(&bot.switch_direction("en"));
        assert_send(&bot.set_input(Channel::Floor));
        assert_send(&bot.wait_for_routing("", Duration::ZERO, |_| true));
    }

    #[test]
    fn bots_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Bot>();
    }
}
