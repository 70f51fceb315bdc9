//! One party of a call on Janus ([`JanusBot`]): a session with a publisher handle and, once the
//! others publish, a subscriber handle, with the same peer connections and synthetic media as a
//! Dragoman load run; and the rooms the parties join ([`create_room`], [`room_settings`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use dragoman_signal::protocol::{TrackKind, TransportKind};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use webrtc::peer_connection::RTCSessionDescription;

use super::client::{Session, Wait, connect};
use super::protocol::{
    Feed, JanusError, JanusMessage, Jsep, KEEPALIVE, VideoRoomReply, publication_name,
};
use crate::config::Timeouts;
use crate::error::BotError;
use crate::peer::Peer;
use crate::publisher::{self, SendOptions, TrackMedia};
use crate::report::Report;
use crate::sdp;
use crate::state::Shared;
use crate::synthetic::{SyntheticMedia, SyntheticReceive, SyntheticStats};

/// The settings of the rooms the load creates: up to four publishers, Opus and VP8 only, no
/// recording, no bitrate cap (0), no periodic keyframe requests (`fir_freq` 0), no join
/// notifications.
pub fn room_settings(description: &str) -> Value {
    json!({
        "request": "create",
        "description": description,
        "publishers": 4,
        "bitrate": 0,
        "fir_freq": 0,
        "audiocodec": "opus",
        "videocodec": "vp8",
        "record": false,
        "notify_joining": false,
        "permanent": false,
    })
}

/// Create a VideoRoom room on a short-lived session; returns its number.
pub async fn create_room(
    url: &str,
    description: &str,
    timeout: Duration,
) -> Result<u64, JanusError> {
    let connection = connect(url, timeout).await?;
    let client = connection.client.clone();
    let result = async {
        let session = Session::create(client.clone()).await?;
        let handle = session.attach().await?;
        let reply = session
            .message(
                "create (room)",
                handle,
                room_settings(description),
                None,
                Wait::Success,
            )
            .await;
        let _ = session.destroy().await;
        match reply?.0 {
            VideoRoomReply::Created { room } => Ok(room),
            other => Err(JanusError::Unexpected {
                request: "create (room)".into(),
                reply: format!("{other:?}"),
            }),
        }
    }
    .await;
    client.close();
    tokio::time::sleep(Duration::from_millis(20)).await;
    for task in connection.tasks {
        task.abort();
    }
    result
}

/// What a party needs to join a room.
#[derive(Debug, Clone)]
pub struct JoinSettings {
    /// `ws://…` of Janus's WebSocket transport.
    pub url: String,
    pub room: u64,
    /// The party's name in the room (`company`, …).
    pub display: String,
    pub bind_ip: IpAddr,
    pub media: SyntheticMedia,
    pub timeouts: Timeouts,
    /// How many other publishers to wait for before subscribing.
    pub others: usize,
    /// How long to wait for them; after it, the bot subscribes to those it has (at least one).
    pub others_timeout: Duration,
}

/// One party of a call on Janus: a session with a publisher and a subscriber handle.
pub struct JanusBot {
    shared: Arc<Shared>,
    session: Session,
    publisher: Option<Arc<Peer>>,
    subscriber: Option<Arc<Peer>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    left: bool,
}

impl std::fmt::Debug for JanusBot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JanusBot")
            .field("session", &self.session.id)
            .finish_non_exhaustive()
    }
}

/// Keep the publishers of the room up to date from the notifications; record hangups.
async fn follow_notifications(
    mut notifications: mpsc::UnboundedReceiver<JanusMessage>,
    feeds: watch::Sender<BTreeMap<u64, Feed>>,
    shared: Arc<Shared>,
) {
    while let Some(message) = notifications.recv().await {
        match message {
            JanusMessage::Event {
                plugin: Some(plugin),
                ..
            } => match VideoRoomReply::parse(&plugin, "a notification") {
                Ok(VideoRoomReply::Event {
                    publishers,
                    unpublished,
                    leaving,
                    ..
                }) => feeds.send_modify(|known| {
                    for feed in publishers {
                        known.insert(feed.id, feed);
                    }
                    for gone in [unpublished, leaving].into_iter().flatten() {
                        known.remove(&gone);
                    }
                }),
                Ok(other) => debug!(?other, "Janus notification"),
                Err(e) => {
                    let now = shared.now_ms();
                    shared.lock().unexpected(now, e.to_string());
                }
            },
            JanusMessage::Hangup { sender, reason } => {
                warn!(handle = sender, %reason, "Janus hung up");
                let now = shared.now_ms();
                shared
                    .lock()
                    .unexpected(now, format!("Janus hung up handle {sender}: {reason}"));
            }
            other => debug!(?other, "Janus notification"),
        }
    }
}

async fn keep_alive(session: Session, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(KEEPALIVE) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = session.keepalive().await {
            debug!("Janus keepalive: {e}");
            if matches!(e, JanusError::Closed(_)) {
                return;
            }
        }
    }
}

impl JanusBot {
    /// Join the room as a publisher, publish audio and video, wait for the publisher transport
    /// to connect and start sending, then subscribe to the other publishers.
    pub async fn join(settings: JoinSettings) -> Result<JanusBot, JanusError> {
        settings.media.validate()?;
        let shared = Shared::new();
        shared.lock().synthetic_rx = Some(SyntheticReceive::new(Arc::clone(&settings.media.probe)));
        let connection = connect(&settings.url, settings.timeouts.request).await?;
        let mut tasks = connection.tasks;
        let (feeds_tx, feeds) = watch::channel(BTreeMap::new());
        tasks.push(tokio::spawn(follow_notifications(
            connection.notifications,
            feeds_tx.clone(),
            Arc::clone(&shared),
        )));
        let session = match Session::create(connection.client.clone()).await {
            Ok(session) => session,
            Err(e) => {
                connection.client.close();
                for task in tasks {
                    task.abort();
                }
                return Err(e);
            }
        };
        let (stop, _) = watch::channel(false);
        tasks.push(tokio::spawn(keep_alive(session.clone(), stop.subscribe())));
        let mut bot = JanusBot {
            shared,
            session,
            publisher: None,
            subscriber: None,
            stop,
            tasks,
            left: false,
        };
        match bot.start(&settings, feeds_tx, feeds).await {
            Ok(()) => Ok(bot),
            Err(e) => {
                bot.shutdown().await;
                Err(e)
            }
        }
    }

    async fn start(
        &mut self,
        settings: &JoinSettings,
        feeds_tx: watch::Sender<BTreeMap<u64, Feed>>,
        mut feeds: watch::Receiver<BTreeMap<u64, Feed>>,
    ) -> Result<(), JanusError> {
        let timeouts = settings.timeouts;
        let session = self.session.clone();
        let handle = session.attach().await?;
        let (reply, _) = session
            .message(
                "join (publisher)",
                handle,
                json!({
                    "request": "join",
                    "ptype": "publisher",
                    "room": settings.room,
                    "display": settings.display,
                }),
                None,
                Wait::Event,
            )
            .await?;
        let VideoRoomReply::Joined {
            id: own,
            publishers,
            ..
        } = reply
        else {
            return Err(JanusError::Unexpected {
                request: "join (publisher)".into(),
                reply: format!("{reply:?}"),
            });
        };
        feeds_tx.send_modify(|known| {
            for feed in publishers {
                known.insert(feed.id, feed);
            }
        });
        {
            let now = self.shared.now_ms();
            self.shared.lock().joined_ms = Some(now);
        }

        // Publish: the same tracks, codecs and synthetic media as on Dragoman.
        let (keyframe_tx, keyframe_rx) = mpsc::unbounded_channel();
        let peer = Arc::new(
            Peer::build(
                TransportKind::Publisher,
                settings.bind_ip,
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
        for kind in [TrackKind::Audio, TrackKind::Video] {
            let media = TrackMedia::Synthetic {
                media: settings.media.clone(),
                track_id: settings.media.probe.next_track_id(),
            };
            tracks.push(publisher::add_track(&peer, kind, media, &self.shared).await?);
        }
        let offer = peer
            .pc
            .create_offer(None)
            .await
            .map_err(|e| BotError::webrtc("publisher create_offer", e))?;
        let local = peer.set_local_and_gather(offer, timeouts.gathering).await?;
        let offer = Jsep {
            kind: "offer".into(),
            sdp: local.sdp,
        };
        let (reply, answer) = session
            .message(
                "publish",
                handle,
                json!({ "request": "publish", "display": settings.display }),
                Some(&offer),
                Wait::Event,
            )
            .await?;
        let (
            VideoRoomReply::Event {
                configured: true, ..
            },
            Some(answer),
        ) = (&reply, answer)
        else {
            return Err(JanusError::Unexpected {
                request: "publish".into(),
                reply: format!("{reply:?} (an SDP answer was expected with it)"),
            });
        };
        debug!(offer = %offer.sdp, answer = %answer.sdp, "publisher negotiation");
        let answer = RTCSessionDescription::answer(answer.sdp)
            .map_err(|e| BotError::Protocol(format!("Janus's publisher answer: {e}")))?;
        peer.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| BotError::webrtc("publisher set_remote_description", e))?;
        session.end_of_candidates(handle).await?;
        self.shared.lock().negotiated(TransportKind::Publisher);
        for track in &mut tracks {
            publisher::learn_negotiated(track, &self.shared).await?;
        }
        peer.wait_connected(timeouts.media_connect).await?;
        let (_, no_loss) = watch::channel(0.0);
        for (i, track) in tracks.into_iter().enumerate() {
            self.tasks.push(tokio::spawn(publisher::run_sender(
                Arc::clone(&self.shared),
                track,
                SendOptions {
                    uplink_loss: no_loss.clone(),
                    seed: i as u64,
                },
                peer.state_watch(),
                self.stop.subscribe(),
            )));
        }
        info!(room = settings.room, feed = own, "publishing on Janus");

        // Subscribe to the others once they publish.
        let others = |known: &BTreeMap<u64, Feed>| known.keys().filter(|&&id| id != own).count();
        let timed_out = tokio::time::timeout(
            settings.others_timeout,
            feeds.wait_for(|known| others(known) >= settings.others),
        )
        .await
        .is_err();
        let feed_ids: Vec<u64> = feeds
            .borrow()
            .keys()
            .copied()
            .filter(|&id| id != own)
            .collect();
        if timed_out {
            warn!(
                room = settings.room,
                have = feed_ids.len(),
                want = settings.others,
                "not every other party published in time"
            );
        }
        if feed_ids.is_empty() {
            return Err(JanusError::Bot(BotError::timeout(
                "another publisher in the Janus room",
                settings.others_timeout,
            )));
        }
        self.subscribe(settings, &feed_ids).await
    }

    async fn subscribe(
        &mut self,
        settings: &JoinSettings,
        feed_ids: &[u64],
    ) -> Result<(), JanusError> {
        let session = self.session.clone();
        let handle = session.attach().await?;
        let streams: Vec<Value> = feed_ids.iter().map(|id| json!({ "feed": id })).collect();
        let (reply, offer) = session
            .message(
                "join (subscriber)",
                handle,
                json!({
                    "request": "join",
                    "ptype": "subscriber",
                    "room": settings.room,
                    "streams": streams,
                }),
                None,
                Wait::Event,
            )
            .await?;
        let (VideoRoomReply::Attached { streams, .. }, Some(offer)) = (&reply, offer) else {
            return Err(JanusError::Unexpected {
                request: "join (subscriber)".into(),
                reply: format!("{reply:?} (an SDP offer was expected with it)"),
            });
        };
        let at = self.shared.now_ms();
        {
            let map = sdp::media_map(&offer.sdp);
            let mut state = self.shared.lock();
            let mut publications = Vec::new();
            for stream in streams.iter().filter(|s| s.kind != "data") {
                let name = publication_name(stream);
                state
                    .routing
                    .mid_to_publication
                    .insert(stream.mid.clone(), name.clone());
                publications.push(name);
            }
            state.routing.ssrc_to_mid.extend(map.ssrc_to_mid);
            state.routing.track_to_mid.extend(map.track_to_mid);
            if map.mid_extension_id.is_some() {
                state.routing.mid_extension_id = map.mid_extension_id;
            }
            state.subscribing(&publications, at);
        }
        let peer = Arc::new(
            Peer::build(
                TransportKind::Subscriber,
                settings.bind_ip,
                Arc::clone(&self.shared),
                None,
            )
            .await?,
        );
        self.subscriber = Some(Arc::clone(&peer));
        let offer = RTCSessionDescription::offer(offer.sdp)
            .map_err(|e| BotError::Protocol(format!("Janus's subscriber offer: {e}")))?;
        peer.pc
            .set_remote_description(offer)
            .await
            .map_err(|e| BotError::webrtc("subscriber set_remote_description", e))?;
        let answer = peer
            .pc
            .create_answer(None)
            .await
            .map_err(|e| BotError::webrtc("subscriber create_answer", e))?;
        let local = peer
            .set_local_and_gather(answer, settings.timeouts.gathering)
            .await?;
        let answer = Jsep {
            kind: "answer".into(),
            sdp: local.sdp,
        };
        let (reply, _) = session
            .message(
                "start",
                handle,
                json!({ "request": "start" }),
                Some(&answer),
                Wait::Event,
            )
            .await?;
        if !matches!(reply, VideoRoomReply::Event { started: true, .. }) {
            return Err(JanusError::Unexpected {
                request: "start".into(),
                reply: format!("{reply:?}"),
            });
        }
        session.end_of_candidates(handle).await?;
        self.shared.lock().negotiated(TransportKind::Subscriber);
        info!(
            room = settings.room,
            streams = streams.len(),
            "subscribed on Janus"
        );
        Ok(())
    }

    /// Milliseconds since this bot started.
    pub fn now_ms(&self) -> u64 {
        self.shared.now_ms()
    }

    pub fn report(&self) -> Report {
        self.shared.report()
    }

    pub fn synthetic_stats(&self) -> Option<SyntheticStats> {
        self.shared.lock().synthetic_stats()
    }

    /// Stop sending, destroy the session (which closes both handles), close the transports.
    pub async fn leave(&mut self) -> Result<Report, BotError> {
        if self.left {
            return Ok(self.report());
        }
        let at = self.shared.now_ms();
        self.shared.lock().left_ms = Some(at);
        self.stop.send_replace(true);
        let result = self.session.destroy().await;
        self.shutdown().await;
        match result {
            Ok(()) | Err(JanusError::Closed(_)) => Ok(self.report()),
            Err(e) => Err(e.into()),
        }
    }

    async fn shutdown(&mut self) {
        self.left = true;
        self.stop.send_replace(true);
        if let Some(peer) = self.publisher.take() {
            peer.close().await;
        }
        if let Some(peer) = self.subscriber.take() {
            peer.close().await;
        }
        self.session.client.close();
        tokio::time::sleep(Duration::from_millis(20)).await;
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for JanusBot {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        self.stop.send_replace(true);
        self.session.client.close();
        for task in self.tasks.drain(..) {
            task.abort();
        }
        let publisher = self.publisher.take();
        let subscriber = self.subscriber.take();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                for peer in [publisher, subscriber].into_iter().flatten() {
                    peer.close().await;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_opus_vp8_without_recording() {
        let room = room_settings("x");
        assert_eq!(room["audiocodec"], "opus");
        assert_eq!(room["videocodec"], "vp8");
        assert_eq!(room["record"], false);
        assert_eq!(room["publishers"], 4);
    }
}
