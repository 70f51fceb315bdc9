//! Interpretation on the server: the signaling messages that change who hears what, and applying the
//! routing policy (`dragoman_signal::routing`) to the media plane.
//!
//! Audio is **server-routed**. Every audio publication is negotiated onto the subscriber transport of
//! every other participant who may hear audio (not hidden operators) as soon as it exists, and its
//! forwarding is then paused or resumed on that same `mid` as the routing says. So a re-route (a
//! direction switch, a handover, a language change) is one media-worker job and needs no
//! renegotiation: forwarding starts with the publisher's next packet. A publication a participant
//! should not hear is not sent at all (paused), never sent at gain 0.
//!
//! After every change (join, leave, resume, audio publish/unpublish, each interpretation message,
//! the call's mode) [`reroute`] recomputes the routing, applies it, and returns the `routing`
//! messages for the participants whose routing changed plus any subscriber offers for newly
//! negotiated `mid`s; the caller sends its own reply first and then [`send_all`].

use std::collections::BTreeSet;
use std::sync::Arc;

use dragoman_media::{PeerId, SubscribeOutcome, TrackId};
use dragoman_signal::negotiation::NextStep;
use dragoman_signal::protocol::{ClientMessage, RequestId, ServerMessage, TrackKind};
use dragoman_signal::routing::{InterpretationMode, RoutingConfig};
use dragoman_signal::{ErrorCode, SignalError};

use super::{Reply, Session, create_offer_for};
use crate::registry::Room;
use crate::state::AppState;

/// A message for one participant, sent after the reply to the request that caused it.
pub(crate) type Outgoing = (String, ServerMessage);

/// The routing policy's settings, from the server configuration (`floor_duck_gain`, `gain_ramp_ms`;
/// validated at start, so the fallback to the policy's defaults never happens in practice).
fn routing_config(state: &AppState) -> RoutingConfig {
    RoutingConfig::new(state.config.floor_duck_gain, state.config.gain_ramp_ms).unwrap_or_default()
}

impl Session {
    /// An interpretation request: change the call's interpretation state, re-route, reply `ok`,
    /// then send the `routing` messages it caused.
    pub(crate) async fn interpret(&self, message: ClientMessage) -> Reply {
        let id: Option<RequestId> = message.id().cloned();
        let state = Arc::clone(&self.state);
        self.with_room(async |room, me| {
            let who = me.participant.as_str();
            let call = &mut room.call;
            match message {
                ClientMessage::SetLanguage { language, .. } => {
                    call.set_listening_language(who, language.as_deref())?;
                }
                ClientMessage::SwitchDirection { output, .. } => {
                    call.switch_direction(who, &output)?;
                }
                ClientMessage::SetInput { input, .. } => call.set_input(who, input)?,
                ClientMessage::RequestHandover { to, .. } => {
                    call.request_handover(who, &to)?;
                }
                ClientMessage::AcceptHandover { from, .. } => {
                    call.accept_handover(who, &from)?;
                }
                ClientMessage::DeclineHandover { from, .. } => {
                    call.decline_handover(who, &from)?;
                }
                ClientMessage::WithdrawHandover { to, .. } => {
                    call.withdraw_handover(who, &to)?;
                }
                ClientMessage::GoOnAir { output, .. } => call.go_on_air(who, output.as_deref())?,
                ClientMessage::GoOffAir { .. } => call.go_off_air(who)?,
                other => {
                    return Err(SignalError::new(
                        ErrorCode::Internal,
                        format!("{} is not an interpretation request", other.type_name()),
                    ));
                }
            }
            let out = reroute(&state, room).await;
            self.send(ServerMessage::Ok { id });
            send_all(room, out);
            Ok(None)
        })
        .await
    }
}

/// Set a running call's interpretation mode (from its booking) and re-route everyone. Returns
/// `false` when the call is not running on this server.
pub async fn set_call_mode(state: &AppState, call: &str, mode: InterpretationMode) -> bool {
    let Some(room) = state.registry.get(call) else {
        return false;
    };
    let mut room = room.lock().await;
    if room.closed {
        return false;
    }
    room.call.set_mode(mode);
    let out = reroute(state, &mut room).await;
    send_all(&room, out);
    true
}

/// Send each message to its participant (dropped for one whose socket is detached; they get the
/// current routing when they resume).
pub(crate) fn send_all(room: &Room, out: Vec<Outgoing>) {
    for (participant, message) in out {
        if let Some(member) = room.members.get(&participant) {
            member.send(message);
        }
    }
}

/// The current `routing` message of one participant, if the call has computed one.
pub(crate) fn current_routing(room: &Room, participant: &str) -> Option<ServerMessage> {
    room.call
        .routing()
        .for_participant(participant)
        .cloned()
        .map(ServerMessage::Routing)
}

/// One audio publication and one participant who may hear audio: forward it to them or not.
struct AudioLink {
    participant: String,
    subscriber: PeerId,
    track: TrackId,
    routed: bool,
}

/// Recompute the call's routing and apply it to the media plane: every audio publication is
/// negotiated onto every other non-hidden member's subscriber transport, forwarded where routed and
/// paused elsewhere. Returns what to send, in order: each changed participant's `routing`, then a
/// subscriber offer for each member that got new `mid`s. Media failures (the worker stopping at
/// shutdown) are logged; the control state stays authoritative.
pub(crate) async fn reroute(state: &AppState, room: &mut Room) -> Vec<Outgoing> {
    let changed = room.call.update_routing(&routing_config(state));
    let mut links = Vec::new();
    for (participant, member) in &room.members {
        let Some(p) = room.call.participant(participant) else {
            continue;
        };
        if p.permissions.hidden {
            continue; // Operators hear nothing: no audio is even negotiated to them.
        }
        let routing = room.call.routing().for_participant(participant);
        for publication in room.call.publications() {
            let info = &publication.info;
            if info.kind != TrackKind::Audio || info.participant == *participant {
                continue;
            }
            let Some(track) = room.tracks.get(&info.id) else {
                continue;
            };
            links.push(AudioLink {
                participant: participant.clone(),
                subscriber: member.subscriber,
                track: *track,
                routed: routing.is_some_and(|r| r.route(&info.id).is_some()),
            });
        }
    }
    let applied = state
        .media
        .worker(room.worker)
        .run(move |w, now| {
            let mut renegotiate = BTreeSet::new();
            for link in links {
                let engine = &mut w.engine;
                let new_mid = if link.routed {
                    matches!(
                        engine.subscribe(link.subscriber, link.track, now),
                        Ok(SubscribeOutcome::NeedsNegotiation)
                    )
                } else if engine.unsubscribe(link.subscriber, link.track).is_ok() {
                    false
                } else {
                    // Not on this transport yet: negotiate it now, paused, so that routing it
                    // later is only a resume.
                    let outcome = engine.subscribe(link.subscriber, link.track, now);
                    let _ = engine.unsubscribe(link.subscriber, link.track);
                    matches!(outcome, Ok(SubscribeOutcome::NeedsNegotiation))
                };
                if new_mid {
                    renegotiate.insert(link.participant);
                }
            }
            renegotiate
        })
        .await;
    let renegotiate = applied.unwrap_or_else(|_| {
        tracing::debug!("media worker gone while applying the routing");
        BTreeSet::new()
    });
    let mut out: Vec<Outgoing> = changed
        .into_iter()
        .map(|routing| (routing.participant.clone(), ServerMessage::Routing(routing)))
        .collect();
    for participant in renegotiate {
        let Some(member) = room.members.get_mut(&participant) else {
            continue;
        };
        if member.negotiation.tracks_changed() != NextStep::SendOffer {
            continue; // An offer is in flight; these mids go in the follow-up offer.
        }
        match create_offer_for(state, room, &participant).await {
            Ok(Some(offer)) => out.push((participant, offer)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%participant, error = %e, "subscriber offer for routed audio failed")
            }
        }
    }
    out
}
