//! Call health, computed on a one-second timer beside the media path (never in it): per participant
//! and direction (uplink: what reaches the SFU from them; downlink: what reaches them from the SFU)
//! bitrate, loss, jitter, round-trip time, NACK/PLI counts, video frame rate and freezes, audio level,
//! and an E-model voice score. Keeps a few minutes of samples and an event timeline per call for the
//! operator dashboard (streamed over a WebSocket), pushes the `quality` badges to participants,
//! feeds the Prometheus histograms and writes quality samples to the call history.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dragoman_media::{MediaKind, PeerHealth, PeerId, TrackActivity};
use dragoman_signal::protocol::{ParticipantQuality, Quality, ServerMessage};
use dragoman_signal::quality::{LinkFigures, classify, mean_opinion_score};
use dragoman_signal::token::unix_now;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::state::AppState;

/// How often health is sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// How much history the dashboard gets when it connects.
const BACKLOG: usize = 300;
/// Events kept per call.
const EVENTS_KEPT: usize = 50;
/// A direction counts as recovered after this many good samples in a row.
const RECOVERY_SAMPLES: u32 = 3;
/// Video with no new frame for this long counts as frozen.
const FREEZE_AFTER: Duration = Duration::from_millis(700);
/// Quality samples go to the history database this often (in samples).
const HISTORY_EVERY: u64 = 5;

/// One direction's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DirectionHealth {
    pub score: Option<f64>,
    pub bitrate_kbps: Option<f64>,
    pub loss_percent: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub rtt_ms: Option<f64>,
    pub nacks: u64,
    pub plis: u64,
    /// Uplink video frames per second (best layer), when the participant sends video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Uplink video freezes so far (no new frame for 700 ms while video is published).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freezes: Option<u64>,
    /// Uplink audio level in dBov (0 loudest, -127 silence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_level: Option<i32>,
}

/// Whether a participant's call is going well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Good,
    Degraded,
    Lost,
}

/// One participant's latest health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParticipantHealth {
    pub id: String,
    pub name: String,
    pub role: String,
    pub connected: bool,
    pub score: Option<f64>,
    pub status: Status,
    pub uplink: DirectionHealth,
    pub downlink: DirectionHealth,
}

/// What happened, for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Joined,
    Left,
    Reconnected,
    Degraded,
    Recovered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Uplink,
    Downlink,
}

/// A timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthEvent {
    /// Unix milliseconds.
    pub at: u64,
    pub participant: String,
    pub kind: EventKind,
    pub direction: Option<Direction>,
    pub detail: String,
}

/// A call's health as the dashboard sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallHealth {
    pub id: String,
    pub booth: String,
    pub slot_start: u64,
    pub slot_end: u64,
    /// `degraded` when any participant is; `idle` with nobody connected.
    pub health: &'static str,
    pub participants: Vec<ParticipantHealth>,
    pub events: Vec<HealthEvent>,
}

/// The counters of one participant at the previous sample, for rates.
#[derive(Debug, Clone, Copy, Default)]
struct Previous {
    bytes_rx: u64,
    bytes_tx: u64,
    frames: u64,
    /// NACKs and PLIs sent to the client (about its uplink) and received from it (downlink).
    feedback: [u64; 4],
}

#[derive(Debug, Default)]
struct ParticipantState {
    latest: Option<ParticipantHealth>,
    series: VecDeque<(u64, ParticipantHealth)>,
    previous: Option<Previous>,
    degraded: [bool; 2],
    good_streak: [u32; 2],
    freezes: u64,
    frozen: bool,
}

#[derive(Debug, Default)]
struct CallState {
    booth: String,
    slot_start: u64,
    slot_end: u64,
    participants: BTreeMap<String, ParticipantState>,
    events: VecDeque<HealthEvent>,
}

/// Health of every live call, and the stream to dashboards.
#[derive(Debug)]
pub struct HealthHub {
    calls: Mutex<HashMap<String, CallState>>,
    stream: broadcast::Sender<Arc<str>>,
    /// Score below which a direction counts as degraded.
    threshold: f64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl HealthHub {
    pub fn new(threshold: f64) -> Self {
        let (stream, _) = broadcast::channel(64);
        HealthHub {
            calls: Mutex::new(HashMap::new()),
            stream,
            threshold,
        }
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<String, CallState>> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Record a timeline event and push it to dashboards.
    pub fn event(
        &self,
        call: &str,
        participant: &str,
        kind: EventKind,
        direction: Option<Direction>,
        detail: impl Into<String>,
    ) {
        let event = HealthEvent {
            at: now_ms(),
            participant: participant.to_owned(),
            kind,
            direction,
            detail: detail.into(),
        };
        tracing::info!(%call, %participant, ?kind, ?direction, detail = %event.detail, "call health event");
        {
            let mut calls = self.calls();
            let state = calls.entry(call.to_owned()).or_default();
            state.events.push_back(event.clone());
            while state.events.len() > EVENTS_KEPT {
                state.events.pop_front();
            }
            if kind == EventKind::Left {
                state.participants.remove(participant);
            }
        }
        let message = serde_json::json!({"type": "event", "call": call, "event": event});
        let _ = self.stream.send(message.to_string().into());
    }

    /// The current health of every call, for the dashboard's snapshot.
    pub fn snapshot(&self) -> Vec<CallHealth> {
        let calls = self.calls();
        let mut out: Vec<CallHealth> = calls
            .iter()
            .map(|(id, c)| {
                let participants: Vec<ParticipantHealth> = c
                    .participants
                    .values()
                    .filter_map(|p| p.latest.clone())
                    .collect();
                let health = if participants.iter().all(|p| !p.connected) {
                    "idle"
                } else if participants.iter().any(|p| p.status != Status::Good) {
                    "degraded"
                } else {
                    "good"
                };
                CallHealth {
                    id: id.clone(),
                    booth: c.booth.clone(),
                    slot_start: c.slot_start,
                    slot_end: c.slot_end,
                    health,
                    participants,
                    events: c.events.iter().cloned().collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Does the hub still need the booking details (booth, slot) of this call?
    fn needs_booking(&self, call: &str) -> bool {
        self.calls().get(call).is_none_or(|c| c.slot_end == 0)
    }

    fn set_booking(&self, call: &str, booth: String, slot_start: u64, slot_end: u64) {
        let mut calls = self.calls();
        let state = calls.entry(call.to_owned()).or_default();
        state.booth = booth;
        state.slot_start = slot_start;
        state.slot_end = slot_end.max(1);
    }

    /// Forget a call that is no longer live.
    fn retain_calls(&self, live: &[String]) {
        self.calls().retain(|id, _| live.contains(id));
    }

    /// One call's current health.
    pub fn call(&self, id: &str) -> Option<CallHealth> {
        self.snapshot().into_iter().find(|c| c.id == id)
    }

    /// The last minutes of samples, per call and participant, as columns for charts.
    pub fn backlog(&self) -> serde_json::Value {
        let calls = self.calls();
        let mut out = serde_json::Map::new();
        for (id, call) in calls.iter() {
            let mut participants = serde_json::Map::new();
            for (pid, p) in &call.participants {
                let column = |f: &dyn Fn(&ParticipantHealth) -> Option<f64>| -> Vec<Option<f64>> {
                    p.series.iter().map(|(_, h)| f(h)).collect()
                };
                participants.insert(
                    pid.clone(),
                    serde_json::json!({
                        "t": p.series.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
                        "uplink_kbps": column(&|h| h.uplink.bitrate_kbps),
                        "downlink_kbps": column(&|h| h.downlink.bitrate_kbps),
                        "loss_percent": column(&|h| max_opt(h.uplink.loss_percent, h.downlink.loss_percent)),
                        "jitter_ms": column(&|h| h.uplink.jitter_ms),
                        "rtt_ms": column(&|h| h.downlink.rtt_ms.or(h.uplink.rtt_ms)),
                        "score": column(&|h| h.score),
                    }),
                );
            }
            out.insert(id.clone(), serde_json::Value::Object(participants));
        }
        serde_json::json!({"type": "backlog", "calls": out})
    }

    /// Listen to snapshots and events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.stream.subscribe()
    }

    fn publish_snapshot(&self) {
        if self.stream.receiver_count() == 0 {
            return;
        }
        let message =
            serde_json::json!({"type": "snapshot", "at": now_ms(), "calls": self.snapshot()});
        let _ = self.stream.send(message.to_string().into());
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// What the media plane reports for one participant at one sample.
#[derive(Debug, Clone, Default)]
struct MediaFigures {
    connected: bool,
    up: PeerHealth,
    down: PeerHealth,
    tracks: Vec<(MediaKind, TrackActivity)>,
}

/// Sample every live call once a second, forever (until the media worker stops).
pub async fn run(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let badge_every =
        (state.config.quality_interval().as_millis() / SAMPLE_INTERVAL.as_millis()).max(1) as u64;
    let mut round: u64 = 0;
    loop {
        tick.tick().await;
        round += 1;
        let rooms = state.registry.all();
        let mut live = Vec::new();
        for room in rooms {
            let room = room.lock().await;
            let call_id = room.call.id().to_owned();
            live.push(call_id.clone());
            if state.health.needs_booking(&call_id) {
                let history = state.history.clone();
                let id = call_id.clone();
                let booking =
                    tokio::task::spawn_blocking(move || history.call(&id, unix_now())).await;
                let (booth, start, end) = match booking {
                    Ok(Ok(Some(c))) => (c.booth, c.slot_start, c.slot_end),
                    _ => (String::new(), unix_now(), unix_now()),
                };
                state.health.set_booking(&call_id, booth, start, end);
            }
            let members: Vec<(String, PeerId, PeerId)> = room
                .members
                .iter()
                .map(|(id, m)| (id.clone(), m.publisher, m.subscriber))
                .collect();
            let peers: Vec<(PeerId, PeerId)> = members.iter().map(|(_, p, s)| (*p, *s)).collect();
            let Ok(figures) = state
                .media
                .worker(room.worker)
                .run(move |w, _| {
                    peers
                        .into_iter()
                        .map(|(publisher, subscriber)| MediaFigures {
                            connected: w.engine.is_connected(publisher)
                                || w.engine.is_connected(subscriber),
                            up: w.engine.peer_health(publisher).unwrap_or_default(),
                            down: w.engine.peer_health(subscriber).unwrap_or_default(),
                            tracks: w
                                .engine
                                .published_tracks(publisher)
                                .into_iter()
                                .map(|(_, kind, activity)| (kind, activity))
                                .collect(),
                        })
                        .collect::<Vec<_>>()
                })
                .await
            else {
                return; // The media worker stopped: shutting down.
            };
            let names: HashMap<String, (String, String)> = room
                .call
                .participants()
                .map(|p| {
                    (
                        p.info.id.clone(),
                        (p.info.name.clone(), p.info.role.as_str().to_owned()),
                    )
                })
                .collect();
            let samples = sample_call(&state, &call_id, &members, &figures, &names);
            if round.is_multiple_of(badge_every) {
                send_badges(&room, &samples);
            }
            if round.is_multiple_of(HISTORY_EVERY) {
                record_history(&state, &call_id, &samples).await;
            }
        }
        state.health.retain_calls(&live);
        state.health.publish_snapshot();
    }
}

/// Turn one call's media figures into health samples, events and metrics.
fn sample_call(
    state: &AppState,
    call_id: &str,
    members: &[(String, PeerId, PeerId)],
    figures: &[MediaFigures],
    names: &HashMap<String, (String, String)>,
) -> Vec<ParticipantHealth> {
    let hub = &state.health;
    let now = std::time::Instant::now();
    let at = now_ms();
    let mut events = Vec::new();
    let mut samples = Vec::new();
    {
        let mut calls = hub.calls();
        let call = calls.entry(call_id.to_owned()).or_default();
        for ((id, _, _), f) in members.iter().zip(figures) {
            let (name, role) = names.get(id).cloned().unwrap_or_default();
            let p = call.participants.entry(id.clone()).or_default();
            let seconds = SAMPLE_INTERVAL.as_secs_f64();
            let frames: u64 = f
                .tracks
                .iter()
                .filter(|(k, _)| *k == MediaKind::Video)
                .map(|(_, a)| a.frames)
                .sum();
            let rate = |now: u64, before: Option<u64>| {
                before.map(|b| (now.saturating_sub(b)) as f64 * 8.0 / 1000.0 / seconds)
            };
            let up_kbps = rate(f.up.bytes_rx, p.previous.map(|x| x.bytes_rx));
            let down_kbps = rate(f.down.bytes_tx, p.previous.map(|x| x.bytes_tx));
            let video = f
                .tracks
                .iter()
                .find(|(k, _)| *k == MediaKind::Video)
                .map(|(_, a)| *a);
            let fps = video.and(
                p.previous
                    .map(|x| (frames.saturating_sub(x.frames)) as f64 / seconds),
            );
            if let Some(v) = video {
                let frozen = v
                    .last_frame_at
                    .is_none_or(|t| now.duration_since(t) > FREEZE_AFTER);
                if frozen && !p.frozen && v.last_frame_at.is_some() {
                    p.freezes += 1;
                }
                p.frozen = frozen;
            }
            let feedback = [
                f.up.ingress_nacks,
                f.up.ingress_plis,
                f.down.egress_nacks,
                f.down.egress_plis,
            ];
            let before = p.previous.map_or(feedback, |x| x.feedback);
            let delta = |i: usize| feedback[i].saturating_sub(before[i]);
            state
                .metrics
                .count_feedback(delta(0), delta(1), delta(2), delta(3));
            p.previous = Some(Previous {
                bytes_rx: f.up.bytes_rx,
                bytes_tx: f.down.bytes_tx,
                frames,
                feedback,
            });
            let rtt_ms = f.down.rtt.or(f.up.rtt).map(|d| d.as_secs_f64() * 1000.0);
            let up_loss = f.up.ingress_loss.map(|l| f64::from(l) * 100.0);
            let down_loss = f.down.egress_loss.map(|l| f64::from(l) * 100.0);
            let sends = !f.tracks.is_empty();
            let score_of = |loss: Option<f64>, jitter: Option<f64>| {
                mean_opinion_score(
                    loss.unwrap_or(0.0),
                    jitter.unwrap_or(0.0),
                    rtt_ms.unwrap_or(0.0),
                )
            };
            let uplink = DirectionHealth {
                score: (f.connected && sends).then(|| score_of(up_loss, f.up.ingress_jitter_ms)),
                bitrate_kbps: up_kbps,
                loss_percent: up_loss,
                jitter_ms: f.up.ingress_jitter_ms,
                rtt_ms,
                nacks: f.up.ingress_nacks,
                plis: f.up.ingress_plis,
                fps,
                freezes: video.map(|_| p.freezes),
                audio_level: f
                    .tracks
                    .iter()
                    .find_map(|(k, a)| (*k == MediaKind::Audio).then_some(a.audio_level).flatten())
                    .map(|l| -i32::from(l)),
            };
            let downlink = DirectionHealth {
                score: f.connected.then(|| score_of(down_loss, None)),
                bitrate_kbps: down_kbps,
                loss_percent: down_loss,
                jitter_ms: None,
                rtt_ms,
                nacks: f.down.egress_nacks,
                plis: f.down.egress_plis,
                fps: None,
                freezes: None,
                audio_level: None,
            };
            for (index, (direction, d)) in [
                (Direction::Uplink, &uplink),
                (Direction::Downlink, &downlink),
            ]
            .into_iter()
            .enumerate()
            {
                let Some(score) = d.score else { continue };
                if score < hub.threshold {
                    p.good_streak[index] = 0;
                    if !p.degraded[index] {
                        p.degraded[index] = true;
                        events.push((
                            id.clone(),
                            EventKind::Degraded,
                            direction,
                            describe(d, score),
                        ));
                    }
                } else if p.degraded[index] {
                    p.good_streak[index] += 1;
                    if p.good_streak[index] >= RECOVERY_SAMPLES {
                        p.degraded[index] = false;
                        p.good_streak[index] = 0;
                        events.push((
                            id.clone(),
                            EventKind::Recovered,
                            direction,
                            describe(d, score),
                        ));
                    }
                }
            }
            let score = match (uplink.score, downlink.score) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let status = if !f.connected {
                Status::Lost
            } else if p.degraded.iter().any(|d| *d) {
                Status::Degraded
            } else {
                Status::Good
            };
            state.metrics.observe_participant(
                rtt_ms,
                f.up.ingress_jitter_ms,
                max_opt(up_loss, down_loss),
            );
            let health = ParticipantHealth {
                id: id.clone(),
                name,
                role,
                connected: f.connected,
                score,
                status,
                uplink,
                downlink,
            };
            p.series.push_back((at, health.clone()));
            while p.series.len() > BACKLOG {
                p.series.pop_front();
            }
            p.latest = Some(health.clone());
            samples.push(health);
        }
        // Participants who left are dropped from the live view.
        call.participants
            .retain(|id, _| members.iter().any(|(m, _, _)| m == id));
    }
    for (participant, kind, direction, detail) in events {
        hub.event(call_id, &participant, kind, Some(direction), detail);
    }
    samples
}

fn describe(d: &DirectionHealth, score: f64) -> String {
    let mut parts = vec![format!("score {score:.1}")];
    if let Some(loss) = d.loss_percent {
        parts.push(format!("loss {loss:.0}%"));
    }
    if let Some(jitter) = d.jitter_ms {
        parts.push(format!("jitter {jitter:.0} ms"));
    }
    if let Some(rtt) = d.rtt_ms {
        parts.push(format!("rtt {rtt:.0} ms"));
    }
    parts.join(", ")
}

/// Push every participant the `quality` badges of those they can see, and their own.
fn send_badges(room: &crate::registry::Room, samples: &[ParticipantHealth]) {
    let badges: Vec<ParticipantQuality> = samples
        .iter()
        .map(|h| {
            let figures = LinkFigures {
                connected: h.connected,
                uplink_loss: h.uplink.loss_percent.map(|l| l / 100.0),
                downlink_loss: h.downlink.loss_percent.map(|l| l / 100.0),
                rtt_ms: h.downlink.rtt_ms.map(|r| r as u32),
            };
            let loss = figures.worst_loss() * 100.0;
            let quality = match (classify(&figures), h.status) {
                (Quality::Excellent | Quality::Good, Status::Degraded) => Quality::Poor,
                (q, _) => q,
            };
            ParticipantQuality {
                participant: h.id.clone(),
                quality,
                loss_percent: (loss * 10.0).round() / 10.0,
                rtt_ms: figures.rtt_ms,
            }
        })
        .collect();
    for (viewer, member) in &room.members {
        let visible = room.call.visible_participants(viewer);
        let participants = badges
            .iter()
            .filter(|b| b.participant == *viewer || visible.iter().any(|v| v.id == b.participant))
            .cloned()
            .collect();
        member.send(ServerMessage::Quality { participants });
    }
}

/// Add a quality sample per connected participant to the call history.
async fn record_history(state: &AppState, call: &str, samples: &[ParticipantHealth]) {
    let rows: Vec<(String, f64, f64)> = samples
        .iter()
        .filter_map(|h| {
            let loss = max_opt(h.uplink.loss_percent, h.downlink.loss_percent).unwrap_or(0.0);
            h.score.map(|s| (h.id.clone(), s, loss))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let history = state.history.clone();
    let call = call.to_owned();
    let written = tokio::task::spawn_blocking(move || {
        for (identity, score, loss) in rows {
            // Loss is kept as a share of a nominal 100 packets per sample, so totals average out.
            let lost = loss.round().clamp(0.0, 100.0) as u64;
            history.record_quality(&call, &identity, score, loss, 100, lost)?;
        }
        Ok::<_, crate::history::HistoryError>(())
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::warn!("quality samples not written to the history");
    }
}
