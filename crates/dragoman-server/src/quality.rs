//! Pushes `quality` badges to every participant of every call on a timer, from the media plane's
//! link figures. Runs beside the forwarding path, never in it.

use std::sync::Arc;

use dragoman_signal::protocol::{ParticipantQuality, ServerMessage};
use dragoman_signal::quality::{LinkFigures, classify};

use crate::state::AppState;

/// Every `quality_interval`, send each connected participant the badges of the participants they
/// can see, and their own.
pub async fn broadcast_loop(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.config.quality_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for room in state.registry.all() {
            let room = room.lock().await;
            let members: Vec<_> = room
                .members
                .iter()
                .map(|(id, m)| (id.clone(), m.publisher, m.subscriber))
                .collect();
            if members.is_empty() {
                continue;
            }
            let peers: Vec<_> = members.iter().map(|(_, p, s)| (*p, *s)).collect();
            let Ok(figures) = state
                .media
                .run(move |w, _| {
                    peers
                        .into_iter()
                        .map(|(publisher, subscriber)| {
                            let up = w.engine.peer_health(publisher).unwrap_or_default();
                            let down = w.engine.peer_health(subscriber).unwrap_or_default();
                            let rtt = down.rtt.or(up.rtt);
                            LinkFigures {
                                connected: w.engine.is_connected(publisher)
                                    || w.engine.is_connected(subscriber),
                                uplink_loss: up.ingress_loss.map(f64::from),
                                downlink_loss: down.egress_loss.map(f64::from),
                                rtt_ms: rtt
                                    .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
                            }
                        })
                        .collect::<Vec<_>>()
                })
                .await
            else {
                return; // The media worker stopped: the server is shutting down.
            };
            let badges: Vec<ParticipantQuality> = members
                .iter()
                .zip(&figures)
                .map(|((id, _, _), f)| ParticipantQuality {
                    participant: id.clone(),
                    quality: classify(f),
                    loss_percent: (f.worst_loss() * 1000.0).round() / 10.0,
                    rtt_ms: f.rtt_ms,
                })
                .collect();
            for (viewer, member) in &room.members {
                let visible = room.call.visible_participants(viewer);
                let participants = badges
                    .iter()
                    .filter(|b| {
                        b.participant == *viewer || visible.iter().any(|v| v.id == b.participant)
                    })
                    .cloned()
                    .collect();
                member.send(ServerMessage::Quality { participants });
            }
        }
    }
}
