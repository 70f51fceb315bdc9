//! One signaling connection: reads client messages, checks them against the call's rules
//! (`dragoman-signal`), has the media worker apply them, and replies. Every failure becomes an `error`
//! reply with a stable code and the connection keeps serving; only token refusals close it.

use std::sync::Arc;
use std::time::Instant;

use dragoman_media::{
    ClientAnswer, ClientOffer, MediaError, MediaKind, SubscribeOutcome, TrackLabel, TransportRole,
};
use dragoman_signal::call::Left;
use dragoman_signal::negotiation::NextStep;
use dragoman_signal::protocol::{
    CallInfo, ClientMessage, IceCandidate, LeaveReason, RequestId, ServerMessage, SubscribedTrack,
    TrackInfo, TrackKind, TransportKind, parse_client_message,
};
use dragoman_signal::token::{JoinClaims, unix_now};
use dragoman_signal::{ErrorCode, Permissions, SignalError};
use tokio::sync::mpsc;

use crate::health::EventKind;
use crate::media_worker::WorkerGone;
use crate::rate_limit::RateLimiter;
use crate::registry::{Member, Outbound, Room, close_code};
use crate::state::AppState;

mod interpretation;

pub use interpretation::set_call_mode;
use interpretation::{current_routing, reroute, send_all};

/// Who this connection is, once joined.
#[derive(Debug, Clone)]
struct Identity {
    call: String,
    participant: String,
    permissions: Permissions,
}

/// What the read loop should do after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The session ended (left, or refused); close the socket.
    Close,
}

/// The server side of one signaling connection.
#[derive(Debug)]
pub struct Session {
    state: Arc<AppState>,
    connection: u64,
    outbox: mpsc::UnboundedSender<Outbound>,
    identity: Option<Identity>,
    rate: RateLimiter,
}

type Reply = Result<Option<ServerMessage>, SignalError>;

impl Session {
    pub fn new(state: Arc<AppState>, outbox: mpsc::UnboundedSender<Outbound>) -> Self {
        let connection = state.next_connection_id();
        let rate = RateLimiter::new(state.config.limits.max_messages_per_second, Instant::now());
        Session {
            state,
            connection,
            outbox,
            identity: None,
            rate,
        }
    }

    pub fn is_joined(&self) -> bool {
        self.identity.is_some()
    }

    fn send(&self, message: ServerMessage) {
        let _ = self.outbox.send(Outbound::Message(Box::new(message)));
    }

    fn send_error(&self, id: Option<RequestId>, error: &SignalError) {
        self.state.metrics.signaling_error(error.code);
        self.send(ServerMessage::Error {
            id,
            code: error.code,
            message: error.message.clone(),
        });
    }

    /// Handle one text frame.
    pub async fn handle_text(&mut self, text: &str) -> Flow {
        if !self.rate.allow(Instant::now()) {
            let error = SignalError::new(
                ErrorCode::RateLimited,
                format!(
                    "more than {} messages per second; this one was ignored",
                    self.state.config.limits.max_messages_per_second
                ),
            );
            self.send_error(None, &error);
            return Flow::Continue;
        }
        let message = match parse_client_message(text, self.state.config.limits.max_message_bytes) {
            Ok(message) => message,
            Err(e) => {
                self.send_error(e.id.clone(), &SignalError::new(e.code, e.message));
                return Flow::Continue;
            }
        };
        let id = message.id().cloned();
        let kind = message.type_name();
        let is_join = matches!(message, ClientMessage::Join { .. });
        let is_leave = matches!(message, ClientMessage::Leave { .. });
        match self.dispatch(message).await {
            Ok(Some(reply)) => self.send(reply),
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(message = kind, code = %error.code, error = %error.message, "request failed");
                self.send_error(id, &error);
                if is_join
                    && matches!(
                        error.code,
                        ErrorCode::InvalidToken | ErrorCode::TokenExpired
                    )
                {
                    let _ = self.outbox.send(Outbound::Close {
                        code: close_code::TOKEN_REFUSED,
                        reason: truncate_reason(&error.message),
                    });
                    return Flow::Close;
                }
            }
        }
        if is_leave && self.identity.is_none() {
            return Flow::Close;
        }
        Flow::Continue
    }

    /// A binary frame: not part of the protocol.
    pub fn handle_binary(&mut self) {
        self.send_error(
            None,
            &SignalError::new(
                ErrorCode::InvalidMessage,
                "binary frames are not used; send JSON text",
            ),
        );
    }

    async fn dispatch(&mut self, message: ClientMessage) -> Reply {
        match message {
            ClientMessage::Join { id, token } => self.join(id, &token).await,
            ClientMessage::Ping { id } => Ok(Some(ServerMessage::Pong { id })),
            ClientMessage::Offer { id, transport, sdp } => self.offer(id, transport, sdp).await,
            ClientMessage::Answer { id, transport, sdp } => self.answer(id, transport, sdp).await,
            ClientMessage::Candidate {
                id,
                transport,
                candidate,
            } => self.candidate(id, transport, candidate).await,
            ClientMessage::Publish { id, track } => self.publish(id, track).await,
            ClientMessage::Unpublish { id, publication } => self.unpublish(id, publication).await,
            ClientMessage::Subscribe { id, publications } => self.subscribe(id, publications).await,
            ClientMessage::Unsubscribe { id, publications } => {
                self.unsubscribe(id, publications).await
            }
            ClientMessage::Leave { id } => {
                self.send(ServerMessage::Ok { id });
                if self.identity.is_some() {
                    self.leave(LeaveReason::Left).await;
                } else {
                    let _ = self.outbox.send(Outbound::Close {
                        code: close_code::LEFT,
                        reason: "left before joining".into(),
                    });
                }
                Ok(None)
            }
            // set_language, switch_direction, set_input, the handover steps, go_on_air/off_air.
            interpretation => self.interpret(interpretation).await,
        }
    }

    fn identity(&self) -> Result<Identity, SignalError> {
        self.identity
            .clone()
            .ok_or_else(|| SignalError::new(ErrorCode::NotJoined, "send join with a token first"))
    }

    async fn join(&mut self, id: Option<RequestId>, token: &str) -> Reply {
        if self.identity.is_some() {
            return Err(SignalError::new(
                ErrorCode::AlreadyJoined,
                "this connection has joined already",
            ));
        }
        let claims = self.state.tokens.verify(token, unix_now())?;
        let call = claims.call.clone();
        let closed = record(&self.state, move |h| h.is_closed(&call)).await;
        if closed == Some(true) {
            return Err(SignalError::new(
                ErrorCode::Forbidden,
                "this call has been ended by an operator",
            ));
        }
        loop {
            let room = self.state.registry.room(&claims.call)?;
            let mut room = room.lock().await;
            if room.closed {
                continue; // Removed while we waited for it; take the fresh one.
            }
            if room.removed.contains(&claims.identity) {
                return Err(SignalError::new(
                    ErrorCode::Forbidden,
                    "an operator removed you from this call",
                ));
            }
            return self.join_room(&mut room, id, &claims).await;
        }
    }

    async fn join_room(
        &mut self,
        room: &mut Room,
        id: Option<RequestId>,
        claims: &JoinClaims,
    ) -> Reply {
        if room
            .members
            .get(&claims.identity)
            .is_some_and(Member::is_detached)
        {
            return self.resume(room, id, claims).await;
        }
        let joined = room.call.join(claims)?;
        if let Some(replaced) = joined.replaced {
            if let Some(old) = room.members.remove(&replaced.participant) {
                old.close(
                    close_code::REPLACED,
                    "the same participant joined from another connection",
                );
                release_media(&self.state, room, &old, &replaced).await;
                self.state.metrics.participant_left();
            }
            room.deliver(replaced.notices);
        }
        // The transports are built here, not on the media worker: that is about 1 ms of CPU
        // each, during which the worker would forward nothing for its other calls.
        let media = self.state.media.worker(room.worker);
        let peers = match media.build_transports().await {
            Ok(Ok([publisher, subscriber])) => {
                media
                    .run(move |w, _| {
                        Ok::<_, MediaError>((
                            w.engine.add_peer_with(TransportRole::Publisher, publisher),
                            w.engine
                                .add_peer_with(TransportRole::Subscriber, subscriber),
                        ))
                    })
                    .await
            }
            Ok(Err(e)) => Ok(Err(e)),
            Err(gone) => Err(gone),
        };
        let (publisher, subscriber) = match peers {
            Ok(Ok(peers)) => peers,
            failed => {
                // Undo the join so no participant without media lingers in the call.
                room.call.leave(&claims.identity, LeaveReason::Disconnected);
                if room.call.is_empty() {
                    room.closed = true;
                    self.state.registry.remove(&claims.call, room.worker);
                }
                let message = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "the media worker has stopped (server shutting down)".into(),
                };
                return Err(SignalError::new(ErrorCode::Internal, message));
            }
        };
        room.members.insert(
            claims.identity.clone(),
            Member {
                connection: self.connection,
                outbox: Some(self.outbox.clone()),
                detached_at: None,
                publisher,
                subscriber,
                negotiation: Default::default(),
            },
        );
        self.identity = Some(Identity {
            call: claims.call.clone(),
            participant: claims.identity.clone(),
            permissions: claims.role.permissions(),
        });
        self.state.metrics.participant_joined();
        let (call, party) = (claims.call.clone(), party_of(claims));
        record(&self.state, move |h| {
            h.record_join(&call, &party, unix_now(), false)
        })
        .await;
        self.state.health.event(
            &claims.call,
            &claims.identity,
            EventKind::Joined,
            None,
            claims.role.as_str(),
        );
        tracing::info!(call = %claims.call, participant = %claims.identity, role = %claims.role, "joined");
        let me = room
            .call
            .participant(&claims.identity)
            .map(|p| p.info.clone())
            .ok_or_else(|| SignalError::new(ErrorCode::Internal, "participant vanished"))?;
        self.send(ServerMessage::Joined {
            id,
            call: CallInfo {
                id: claims.call.clone(),
            },
            participant: me,
            participants: room.call.visible_participants(&claims.identity),
            publications: room.call.visible_publications(&claims.identity),
            ice_servers: self.state.config.ice_servers.clone(),
            resumed: false,
            subscriptions: Vec::new(),
            own_publications: Vec::new(),
        });
        room.deliver(joined.notices);
        let out = reroute(&self.state, room).await;
        send_all(room, out);
        Ok(None)
    }

    /// Attach this connection to a membership whose socket dropped: transports, publications and
    /// subscriptions carry on; the client gets a fresh snapshot.
    async fn resume(
        &mut self,
        room: &mut Room,
        id: Option<RequestId>,
        claims: &JoinClaims,
    ) -> Reply {
        let participant = room
            .call
            .participant(&claims.identity)
            .cloned()
            .ok_or_else(|| SignalError::new(ErrorCode::Internal, "participant vanished"))?;
        let member = room
            .members
            .get_mut(&claims.identity)
            .ok_or_else(|| SignalError::new(ErrorCode::Internal, "member vanished"))?;
        member.outbox = Some(self.outbox.clone());
        member.connection = self.connection;
        member.detached_at = None;
        // An offer sent before the drop may never have reached the client: withdraw it and offer
        // its tracks again below.
        let offer_was_pending = member.negotiation.offer_in_flight();
        if offer_was_pending {
            member.negotiation.offer_abandoned();
        }
        let subscriber = member.subscriber;
        let needs_offer = self
            .state
            .media
            .worker(room.worker)
            .run(move |w, _| w.engine.abandon_offer(subscriber))
            .await
            .map_err(gone)?
            .map_err(media_error)?;
        self.identity = Some(Identity {
            call: claims.call.clone(),
            participant: claims.identity.clone(),
            permissions: participant.permissions,
        });
        tracing::info!(call = %claims.call, participant = %claims.identity, "resumed");
        let (call, party) = (claims.call.clone(), party_of(claims));
        record(&self.state, move |h| {
            h.record_join(&call, &party, unix_now(), true)
        })
        .await;
        self.state.health.event(
            &claims.call,
            &claims.identity,
            EventKind::Reconnected,
            None,
            "signaling resumed",
        );
        let own_publications = room
            .call
            .publications()
            .filter(|p| p.info.participant == claims.identity)
            .map(|p| p.info.clone())
            .collect();
        self.send(ServerMessage::Joined {
            id,
            call: CallInfo {
                id: claims.call.clone(),
            },
            participant: participant.info.clone(),
            participants: room.call.visible_participants(&claims.identity),
            publications: room.call.visible_publications(&claims.identity),
            ice_servers: self.state.config.ice_servers.clone(),
            resumed: true,
            subscriptions: participant.subscriptions.iter().cloned().collect(),
            own_publications,
        });
        let me = self.identity()?;
        if needs_offer
            && member_mut(room, &me)?.negotiation.tracks_changed() == NextStep::SendOffer
            && let Some(offer) = create_subscriber_offer(&self.state, room, &me).await?
        {
            self.send(offer);
        }
        // Routing messages sent while the socket was down were lost: send the current one.
        if let Some(routing) = current_routing(room, &me.participant) {
            self.send(routing);
        }
        Ok(None)
    }

    /// Run `f` with this session's room locked and its membership checked.
    async fn with_room<R>(
        &self,
        f: impl AsyncFnOnce(&mut Room, &Identity) -> Result<R, SignalError>,
    ) -> Result<R, SignalError> {
        let me = self.identity()?;
        let room = self
            .state
            .registry
            .get(&me.call)
            .ok_or_else(|| SignalError::new(ErrorCode::NotJoined, "the call has ended"))?;
        let mut room = room.lock().await;
        match room.members.get(&me.participant) {
            Some(member) if member.connection == self.connection => {}
            _ => {
                return Err(SignalError::new(
                    ErrorCode::NotJoined,
                    "this connection is no longer in the call",
                ));
            }
        }
        f(&mut room, &me).await
    }

    async fn offer(&self, id: Option<RequestId>, transport: TransportKind, sdp: String) -> Reply {
        self.identity()?;
        if transport == TransportKind::Subscriber {
            return Err(SignalError::new(
                ErrorCode::NegotiationState,
                "only the server offers on the subscriber transport; answer its offers instead",
            ));
        }
        let media = self.state.media.clone();
        self.with_room(async |room, me| {
            if !me.permissions.publish {
                return Err(SignalError::new(
                    ErrorCode::Forbidden,
                    "this role may not publish media",
                ));
            }
            let peer = member(room, me)?.publisher;
            // Parsed here, not on the media worker (a few hundred µs for a browser's offer).
            let offer = ClientOffer::parse(&sdp).map_err(media_error)?;
            let answer = media
                .worker(room.worker)
                .run(move |w, _| w.engine.accept_parsed_offer(peer, offer))
                .await
                .map_err(gone)?
                .map_err(media_error)?;
            Ok(Some(ServerMessage::Answer {
                id,
                transport,
                sdp: answer,
            }))
        })
        .await
    }

    async fn answer(&self, id: Option<RequestId>, transport: TransportKind, sdp: String) -> Reply {
        self.identity()?;
        if transport == TransportKind::Publisher {
            return Err(SignalError::new(
                ErrorCode::NegotiationState,
                "the server answers on the publisher transport; it never offers there",
            ));
        }
        let media = self.state.media.clone();
        self.with_room(async |room, me| {
            let m = member(room, me)?;
            if !m.negotiation.offer_in_flight() {
                return Err(SignalError::new(
                    ErrorCode::NegotiationState,
                    "an answer on the subscriber transport, but the server has no offer outstanding",
                ));
            }
            let peer = m.subscriber;
            // Parsed here, not on the media worker (a few hundred µs for a browser's answer).
            let accepted = match ClientAnswer::parse(&sdp) {
                Ok(answer) => media
                    .worker(room.worker)
                    .run(move |w, _| w.engine.accept_parsed_answer(peer, answer))
                    .await
                    .map_err(gone)?,
                Err(e) => Err(e),
            };
            let next_offer = match accepted {
                Ok(()) => match member_mut(room, me)?.negotiation.answer_received()? {
                    NextStep::SendOffer => create_subscriber_offer(&self.state, room, me).await?,
                    NextStep::Wait => None,
                },
                // Unparsable: the offer is still outstanding; the client may answer again.
                Err(e @ MediaError::BadSdp(_)) => return Err(media_error(e)),
                Err(e) => {
                    // Refused: the offer is spent. Offer again what it carried, after the error.
                    let m = member_mut(room, me)?;
                    m.negotiation.offer_abandoned();
                    let again = match m.negotiation.tracks_changed() {
                        NextStep::SendOffer => create_subscriber_offer(&self.state, room, me).await,
                        NextStep::Wait => Ok(None),
                    };
                    self.send_error(id, &media_error(e));
                    if let Some(offer) = again? {
                        self.send(offer);
                    }
                    return Ok(None);
                }
            };
            self.send(ServerMessage::Ok { id });
            if let Some(offer) = next_offer {
                self.send(offer);
            }
            Ok(None)
        })
        .await
    }

    async fn candidate(
        &self,
        id: Option<RequestId>,
        transport: TransportKind,
        candidate: IceCandidate,
    ) -> Reply {
        let media = self.state.media.clone();
        self.with_room(async |room, me| {
            let m = member(room, me)?;
            let peer = match transport {
                TransportKind::Publisher => m.publisher,
                TransportKind::Subscriber => m.subscriber,
            };
            media
                .worker(room.worker)
                .run(move |w, _| w.engine.add_remote_candidate(peer, &candidate.candidate))
                .await
                .map_err(gone)?
                .map_err(|e| SignalError::new(ErrorCode::InvalidMessage, e.to_string()))?;
            // Trickle is fire-and-forget unless the client asked for a reply.
            Ok(id.map(|id| ServerMessage::Ok { id: Some(id) }))
        })
        .await
    }

    async fn publish(&self, id: Option<RequestId>, track: TrackInfo) -> Reply {
        let media = self.state.media.clone();
        let metrics = self.state.metrics.clone();
        self.with_room(async |room, me| {
            let (publication, notices) = room.call.publish(&me.participant, &track)?;
            let peer = member(room, me)?.publisher;
            let kind = match track.kind {
                TrackKind::Audio => MediaKind::Audio,
                TrackKind::Video => MediaKind::Video,
            };
            let label = TrackLabel {
                stream: me.participant.clone(),
                track: publication.id.clone(),
            };
            let mid = track.mid.clone();
            let layers = track.layers.clone();
            let added = media
                .worker(room.worker)
                .run(move |w, _| w.engine.add_track(peer, &mid, kind, &layers, label))
                .await
                .map_err(gone)?;
            let track_id = match added {
                Ok(track_id) => track_id,
                Err(e) => {
                    // Keep the call state as it was: the publication never existed for anyone.
                    let _ = room.call.unpublish(&me.participant, &publication.id);
                    return Err(SignalError::new(ErrorCode::UnknownTrack, e.to_string()));
                }
            };
            room.tracks.insert(publication.id.clone(), track_id);
            metrics.publication_added();
            tracing::info!(participant = %me.participant, publication = %publication.id, kind = ?track.kind, "published");
            // New audio is negotiated to everyone at once and forwarded where the routing says.
            let out = match track.kind {
                TrackKind::Audio => reroute(&self.state, room).await,
                TrackKind::Video => Vec::new(),
            };
            self.send(ServerMessage::Published { id, publication });
            room.deliver(notices);
            send_all(room, out);
            Ok(None)
        })
        .await
    }

    async fn unpublish(&self, id: Option<RequestId>, publication: String) -> Reply {
        let media = self.state.media.clone();
        let metrics = self.state.metrics.clone();
        self.with_room(async |room, me| {
            let notices = room.call.unpublish(&me.participant, &publication)?;
            if let Some(track) = room.tracks.remove(&publication) {
                media
                    .worker(room.worker)
                    .run(move |w, _| w.engine.remove_track(track))
                    .await
                    .map_err(gone)?;
                metrics.publication_removed();
            }
            let out = reroute(&self.state, room).await;
            self.send(ServerMessage::Ok { id });
            room.deliver(notices);
            send_all(room, out);
            Ok(None)
        })
        .await
    }

    async fn subscribe(&self, id: Option<RequestId>, publications: Vec<String>) -> Reply {
        let media = self.state.media.clone();
        self.with_room(async |room, me| {
            let added = room.call.subscribe(&me.participant, &publications)?;
            let peer = member(room, me)?.subscriber;
            let tracks: Vec<_> = added
                .iter()
                .filter_map(|p| room.tracks.get(p).copied())
                .collect();
            let outcomes = media
                .worker(room.worker)
                .run(move |w, now| {
                    tracks
                        .into_iter()
                        .map(|t| w.engine.subscribe(peer, t, now))
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(gone)?;
            let mut needs_offer = false;
            let mut failure = None;
            for outcome in outcomes {
                match outcome {
                    Ok(SubscribeOutcome::NeedsNegotiation) => needs_offer = true,
                    Ok(SubscribeOutcome::Resumed) => {}
                    Err(e) => failure = Some(SignalError::new(ErrorCode::Internal, e.to_string())),
                }
            }
            let offer = match failure {
                None if needs_offer
                    && member_mut(room, me)?.negotiation.tracks_changed()
                        == NextStep::SendOffer =>
                {
                    create_subscriber_offer(&self.state, room, me).await
                }
                None => Ok(None),
                Some(error) => Err(error),
            };
            match offer {
                Ok(offer) => {
                    let rerouted = if room.call.names_audio(&publications) {
                        reroute(&self.state, room).await
                    } else {
                        Vec::new()
                    };
                    self.send(ServerMessage::Ok { id });
                    if let Some(offer) = offer {
                        self.send(offer);
                    }
                    send_all(room, rerouted);
                    Ok(None)
                }
                Err(error) => {
                    // All or nothing: undo the subscriptions this request made.
                    let _ = room.call.unsubscribe(&me.participant, &added);
                    let tracks: Vec<_> = added
                        .iter()
                        .filter_map(|p| room.tracks.get(p).copied())
                        .collect();
                    let _ = media
                        .worker(room.worker)
                        .run(move |w, _| {
                            for track in tracks {
                                let _ = w.engine.unsubscribe(peer, track);
                            }
                        })
                        .await;
                    Err(error)
                }
            }
        })
        .await
    }

    async fn unsubscribe(&self, id: Option<RequestId>, publications: Vec<String>) -> Reply {
        let media = self.state.media.clone();
        self.with_room(async |room, me| {
            let removed = room.call.unsubscribe(&me.participant, &publications)?;
            let peer = member(room, me)?.subscriber;
            let tracks: Vec<_> = removed
                .iter()
                .filter_map(|p| room.tracks.get(p).copied())
                .collect();
            media
                .worker(room.worker)
                .run(move |w, _| {
                    for track in tracks {
                        let _ = w.engine.unsubscribe(peer, track);
                    }
                })
                .await
                .map_err(gone)?;
            let rerouted = if room.call.names_audio(&publications) {
                reroute(&self.state, room).await
            } else {
                Vec::new()
            };
            self.send(ServerMessage::Ok { id });
            send_all(room, rerouted);
            Ok(None)
        })
        .await
    }

    /// Leave the call (on `leave`, on disconnect, or at shutdown). Safe to call more than once.
    ///
    /// A lost socket (`Disconnected`) only detaches the membership for the reconnect grace period:
    /// media keeps flowing and the same identity can `join` again to resume it.
    pub async fn leave(&mut self, reason: LeaveReason) {
        let Some(me) = self.identity.take() else {
            return;
        };
        let Some(room_lock) = self.state.registry.get(&me.call) else {
            return;
        };
        let mut room = room_lock.lock().await;
        let ours = room
            .members
            .get(&me.participant)
            .is_some_and(|m| m.connection == self.connection);
        if !ours {
            return; // Replaced by a newer connection, which owns the membership now.
        }
        if reason == LeaveReason::Disconnected && !self.state.config.reconnect_grace().is_zero() {
            detach_member(&self.state, &mut room, &me.call, &me.participant);
            return;
        }
        remove_member(&self.state, &mut room, &me.call, &me.participant, reason).await;
        if reason == LeaveReason::Left {
            let _ = self.outbox.send(Outbound::Close {
                code: close_code::LEFT,
                reason: "left the call".into(),
            });
        }
    }
}

/// Keep a membership whose signaling socket is gone (or going) for the reconnect grace period:
/// messages to it are dropped, media flows on, and the same identity's next `join` resumes it.
pub fn detach_member(state: &Arc<AppState>, room: &mut Room, call: &str, participant: &str) {
    let Some(member) = room.members.get_mut(participant) else {
        return;
    };
    let at = std::time::Instant::now();
    member.outbox = None;
    member.connection = 0;
    member.detached_at = Some(at);
    tracing::info!(
        %call,
        %participant,
        grace_secs = state.config.reconnect_grace_secs,
        "signaling lost; holding the membership for a reconnect"
    );
    tokio::spawn(expire_detached(
        state.clone(),
        call.to_owned(),
        participant.to_owned(),
        at,
    ));
}

/// Watch a detached membership: remove it when the grace period ends, or sooner when the client's
/// media has fallen silent too (the client is gone, not just its signaling socket). Stops when the
/// membership is resumed, replaced or removed.
async fn expire_detached(
    state: Arc<AppState>,
    call: String,
    participant: String,
    detached_at: std::time::Instant,
) {
    let grace = state.config.reconnect_grace();
    let silence = state.config.media_timeout();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        tick.tick().await;
        let Some(room_lock) = state.registry.get(&call) else {
            return;
        };
        let mut room = room_lock.lock().await;
        let Some(member) = room
            .members
            .get(&participant)
            .filter(|m| m.detached_at == Some(detached_at))
        else {
            return;
        };
        let (publisher, subscriber) = (member.publisher, member.subscriber);
        let Ok(last_seen) = state
            .media
            .worker(room.worker)
            .run(move |w, _| {
                w.engine
                    .last_seen(publisher)
                    .max(w.engine.last_seen(subscriber))
            })
            .await
        else {
            return;
        };
        let now = std::time::Instant::now();
        let quiet_since = last_seen.map_or(detached_at, |seen| seen.max(detached_at));
        let why = if now.duration_since(detached_at) >= grace {
            "no reconnect within the grace period"
        } else if now.duration_since(quiet_since) >= silence {
            "signaling and media both lost"
        } else {
            continue;
        };
        tracing::info!(%call, %participant, why, "removing a detached participant");
        remove_member(
            &state,
            &mut room,
            &call,
            &participant,
            LeaveReason::Disconnected,
        )
        .await;
        return;
    }
}

/// Write to the call history off the async threads. A failure is logged, never fatal to the call.
async fn record<R: Send + 'static>(
    state: &AppState,
    write: impl FnOnce(&crate::history::History) -> Result<R, crate::history::HistoryError>
    + Send
    + 'static,
) -> Option<R> {
    let history = state.history.clone();
    match tokio::task::spawn_blocking(move || write(&history)).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "call history not updated");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "call history task failed");
            None
        }
    }
}

fn party_of(claims: &JoinClaims) -> crate::history::Party {
    crate::history::Party {
        identity: claims.identity.clone(),
        name: claims.name.clone(),
        role: claims.role.as_str().to_owned(),
        languages: claims.languages.clone(),
    }
}

/// Take a participant out of a call: control state, media, notices; close the room when empty.
pub async fn remove_member(
    state: &AppState,
    room: &mut Room,
    call: &str,
    participant: &str,
    reason: LeaveReason,
) {
    let left = room.call.leave(participant, reason);
    if let Some(old) = room.members.remove(participant) {
        release_media(state, room, &old, &left).await;
    }
    state.metrics.participant_left();
    tracing::info!(%call, %participant, ?reason, "left");
    state.health.event(
        call,
        participant,
        EventKind::Left,
        None,
        format!("{reason:?}").to_lowercase(),
    );
    room.deliver(left.notices);
    if !room.call.is_empty() {
        let out = reroute(state, room).await;
        send_all(room, out);
    }
    let now = unix_now();
    let (id, who) = (call.to_owned(), participant.to_owned());
    record(state, move |h| h.record_leave(&id, &who, now)).await;
    if room.call.is_empty() {
        room.closed = true;
        state.registry.remove(call, room.worker);
        let id = call.to_owned();
        record(state, move |h| h.record_call_end(&id, now)).await;
    }
}

/// Remove a departed member's peers and publications from the media plane.
async fn release_media(state: &AppState, room: &mut Room, member: &Member, left: &Left) {
    for publication in &left.removed_publications {
        if room.tracks.remove(publication).is_some() {
            state.metrics.publication_removed();
        }
    }
    let (publisher, subscriber) = (member.publisher, member.subscriber);
    let released = state
        .media
        .worker(room.worker)
        .run(move |w, _| {
            [
                w.engine.remove_peer(publisher),
                w.engine.remove_peer(subscriber),
            ]
        })
        .await;
    match released {
        // The transports are freed here, not on the media worker: after a call, freeing a
        // member's two took 150 µs (median) to 3 ms.
        Ok(removed) => drop(tokio::task::spawn_blocking(move || drop(removed))),
        Err(_) => tracing::debug!("media worker gone while releasing peers"),
    }
}

/// Create the next subscriber offer for a member: the message to send, or `None` when nothing
/// needed negotiating.
async fn create_subscriber_offer(
    state: &AppState,
    room: &mut Room,
    me: &Identity,
) -> Result<Option<ServerMessage>, SignalError> {
    create_offer_for(state, room, &me.participant).await
}

/// [`create_subscriber_offer`] for any member of the room.
async fn create_offer_for(
    state: &AppState,
    room: &mut Room,
    participant: &str,
) -> Result<Option<ServerMessage>, SignalError> {
    let not_in_call = || SignalError::new(ErrorCode::NotJoined, "not in the call");
    let peer = room
        .members
        .get(participant)
        .ok_or_else(not_in_call)?
        .subscriber;
    let offer = state
        .media
        .worker(room.worker)
        .run(move |w, _| w.engine.create_offer(peer))
        .await
        .map_err(gone)?;
    match offer {
        Ok(Some(offer)) => {
            let tracks = offer
                .tracks
                .iter()
                .filter_map(|(mid, track)| {
                    room.publication_of(*track)
                        .map(|publication| SubscribedTrack {
                            mid: mid.to_string(),
                            publication: publication.to_owned(),
                        })
                })
                .collect();
            Ok(Some(ServerMessage::Offer {
                transport: TransportKind::Subscriber,
                sdp: offer.sdp,
                tracks,
            }))
        }
        Ok(None) => {
            abandon(room, participant)?;
            Ok(None)
        }
        Err(e) => {
            abandon(room, participant)?;
            Err(SignalError::new(ErrorCode::Internal, e.to_string()))
        }
    }
}

fn abandon(room: &mut Room, participant: &str) -> Result<(), SignalError> {
    room.members
        .get_mut(participant)
        .ok_or_else(|| SignalError::new(ErrorCode::NotJoined, "not in the call"))?
        .negotiation
        .offer_abandoned();
    Ok(())
}

fn member<'a>(room: &'a Room, me: &Identity) -> Result<&'a Member, SignalError> {
    room.members
        .get(&me.participant)
        .ok_or_else(|| SignalError::new(ErrorCode::NotJoined, "not in the call"))
}

fn member_mut<'a>(room: &'a mut Room, me: &Identity) -> Result<&'a mut Member, SignalError> {
    room.members
        .get_mut(&me.participant)
        .ok_or_else(|| SignalError::new(ErrorCode::NotJoined, "not in the call"))
}

fn gone(_: WorkerGone) -> SignalError {
    SignalError::new(
        ErrorCode::Internal,
        "the media worker has stopped (server shutting down)",
    )
}

fn media_error(e: MediaError) -> SignalError {
    let code = match e {
        MediaError::BadSdp(_) | MediaError::SdpRejected(_) => ErrorCode::BadSdp,
        MediaError::NoOfferPending | MediaError::OfferPending => ErrorCode::NegotiationState,
        MediaError::BadCandidate(_) => ErrorCode::InvalidMessage,
        _ => ErrorCode::Internal,
    };
    SignalError::new(code, e.to_string())
}

/// WebSocket close reasons are limited to 123 bytes.
fn truncate_reason(text: &str) -> String {
    let mut end = text.len().min(120);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
