//! The bot's live state, shared by its tasks behind one lock: who is in the call, the bot's own
//! tracks, what it receives, and the signaling events it saw. Every update is a short, synchronous
//! critical section; nothing awaits while holding the lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use dragoman_signal::protocol::{
    ParticipantInfo, PublicationInfo, ServerMessage, TrackKind, TransportKind,
};
use rtc::rtp;

use crate::media::vp8;
use crate::report::{
    PublishedTrackReport, ReceiveSpan, ReceivedPublicationReport, Report, RoutingRecord,
    SPAN_GAP_MS, SignalEvent, SignalEventKind, StateChange, SubscriptionWindow, TransportReport,
};
use crate::stats::{SequenceCounts, SequenceTracker};
use crate::synthetic::{SentTrack, SyntheticReceive, SyntheticStats};

/// At most this many keyframe-request times are kept per track.
const MAX_KEYFRAME_REQUEST_TIMES: usize = 1000;
/// At most this many receive spans are kept per publication (the latest).
const MAX_SPANS: usize = 1000;
/// At most this many `routing` messages are kept (the latest).
const MAX_ROUTING_RECORDS: usize = 1000;

/// The state and the clock it is measured against.
#[derive(Debug)]
pub(crate) struct Shared {
    pub started: Instant,
    pub started_unix_ms: u64,
    state: Mutex<State>,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        let started_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Arc::new(Shared {
            started: Instant::now(),
            started_unix_ms,
            state: Mutex::new(State::default()),
        })
    }

    /// Milliseconds from the bot's start to `at`.
    pub fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    pub fn now_ms(&self) -> u64 {
        self.ms(Instant::now())
    }

    /// Lock the state. A panic in another task does not make the state unusable.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn report(&self) -> Report {
        let now = self.now_ms();
        self.lock().report(self.started_unix_ms, now)
    }
}

/// One of the bot's own tracks.
#[derive(Debug)]
pub(crate) struct PublishedTrack {
    pub report: PublishedTrackReport,
    /// A keyframe request arrived and the sender has not acted on it yet.
    pub keyframe_wanted: bool,
    /// Synthetic media only: the track's number and what it sent in the measurement window.
    pub synthetic: Option<SentCounts>,
}

/// What a synthetic track sent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SentCounts {
    pub track_id: u32,
    pub in_window: u64,
    pub total: u64,
}

/// One publication of others, as received.
#[derive(Debug)]
pub(crate) struct ReceivedPublication {
    pub report: ReceivedPublicationReport,
    tracker: SequenceTracker,
    tracker_ssrc: Option<u32>,
    /// Counts of earlier SSRCs of the same publication.
    retired: SequenceCounts,
}

impl ReceivedPublication {
    fn new(publication: &str, info: Option<&PublicationInfo>) -> Self {
        ReceivedPublication {
            report: ReceivedPublicationReport {
                publication: publication.to_owned(),
                publisher: info.map(|i| i.participant.clone()),
                kind: info.map(|i| i.kind),
                mid: None,
                ssrc: None,
                packets: 0,
                bytes: 0,
                sequence_gaps: 0,
                duplicates: 0,
                out_of_order: 0,
                keyframes: 0,
                first_packet_latency_ms: None,
                first_packet_ms: None,
                last_packet_ms: None,
                first_keyframe_ms: None,
                subscribed: false,
                removed_ms: None,
                subscriptions: Vec::new(),
                spans: Vec::new(),
            },
            tracker: SequenceTracker::new(),
            tracker_ssrc: None,
            retired: SequenceCounts::default(),
        }
    }

    fn snapshot(&self) -> ReceivedPublicationReport {
        let counts = self.retired + self.tracker.counts();
        let mut report = self.report.clone();
        report.sequence_gaps = counts.missing;
        report.duplicates = counts.duplicates;
        report.out_of_order = counts.out_of_order;
        report
    }
}

/// Where packets on the subscriber transport belong, learned from the server's offers.
#[derive(Debug, Default)]
pub(crate) struct Routing {
    /// mid → publication, from each offer's `tracks`.
    pub mid_to_publication: HashMap<String, String>,
    /// SSRC → mid, from the offers' `a=ssrc` lines.
    pub ssrc_to_mid: HashMap<u32, String>,
    /// msid track id → mid.
    pub track_to_mid: HashMap<String, String>,
    /// The negotiated id of the `sdes:mid` header extension.
    pub mid_extension_id: Option<u8>,
}

impl Routing {
    /// The mid of a remote track, from what the SDP said about its SSRC or msid.
    pub fn mid_for(&self, ssrc: Option<u32>, track_id: &str) -> Option<String> {
        ssrc.and_then(|s| self.ssrc_to_mid.get(&s))
            .or_else(|| self.track_to_mid.get(track_id))
            .cloned()
    }

    /// The mid named by a packet's `sdes:mid` header extension.
    pub fn mid_from_packet(&self, packet: &rtp::Packet) -> Option<String> {
        let id = self.mid_extension_id?;
        let value = packet.header.get_extension(id)?;
        std::str::from_utf8(&value).ok().map(str::to_owned)
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub me: Option<ParticipantInfo>,
    pub call_id: Option<String>,
    pub joined_ms: Option<u64>,
    pub left_ms: Option<u64>,
    /// Other participants now in the call.
    pub participants: BTreeMap<String, ParticipantInfo>,
    /// Others' publications now in the call.
    pub publications: BTreeMap<String, PublicationInfo>,
    pub own_publications: Vec<PublicationInfo>,
    pub published: Vec<PublishedTrack>,
    pub received: BTreeMap<String, ReceivedPublication>,
    pub routing: Routing,
    pub unattributed_packets: u64,
    pub publisher_transport: Option<TransportReport>,
    pub subscriber_transport: Option<TransportReport>,
    pub events: Vec<SignalEvent>,
    /// `routing` messages in arrival order.
    pub routing_records: Vec<RoutingRecord>,
    /// Set when the signaling socket is gone.
    pub closed: Option<String>,
    /// Synthetic media only: what arrived of it.
    pub synthetic_rx: Option<SyntheticReceive>,
}

impl State {
    pub fn my_id(&self) -> Option<&str> {
        self.me.as_ref().map(|p| p.id.as_str())
    }

    fn push_event(&mut self, at_ms: u64, kind: SignalEventKind) {
        self.events.push(SignalEvent { at_ms, kind });
    }

    /// Apply what a server message says about the call. Replies and offers are handled elsewhere;
    /// this only keeps membership and the event log, in the order messages arrived.
    pub fn apply(&mut self, message: &ServerMessage, at_ms: u64) {
        match message {
            ServerMessage::Joined {
                call,
                participant,
                participants,
                publications,
                ..
            } => {
                self.me = Some(participant.clone());
                self.call_id = Some(call.id.clone());
                self.joined_ms = Some(at_ms);
                self.participants = participants
                    .iter()
                    .filter(|p| p.id != participant.id)
                    .map(|p| (p.id.clone(), p.clone()))
                    .collect();
                self.publications = publications
                    .iter()
                    .filter(|p| p.participant != participant.id)
                    .map(|p| (p.id.clone(), p.clone()))
                    .collect();
            }
            ServerMessage::ParticipantJoined { participant } => {
                if Some(participant.id.as_str()) != self.my_id() {
                    self.participants
                        .insert(participant.id.clone(), participant.clone());
                }
                self.push_event(
                    at_ms,
                    SignalEventKind::ParticipantJoined {
                        participant: participant.id.clone(),
                    },
                );
            }
            ServerMessage::ParticipantLeft {
                participant,
                reason,
            } => {
                self.participants.remove(participant);
                let gone: Vec<String> = self
                    .publications
                    .values()
                    .filter(|p| &p.participant == participant)
                    .map(|p| p.id.clone())
                    .collect();
                for id in gone {
                    self.publications.remove(&id);
                }
                self.push_event(
                    at_ms,
                    SignalEventKind::ParticipantLeft {
                        participant: participant.clone(),
                        reason: *reason,
                    },
                );
            }
            ServerMessage::PublicationAdded { publication } => {
                if Some(publication.participant.as_str()) != self.my_id() {
                    self.publications
                        .insert(publication.id.clone(), publication.clone());
                    if let Some(received) = self.received.get_mut(&publication.id) {
                        received.report.publisher = Some(publication.participant.clone());
                        received.report.kind = Some(publication.kind);
                    }
                }
                self.push_event(
                    at_ms,
                    SignalEventKind::PublicationAdded {
                        publication: publication.id.clone(),
                        participant: publication.participant.clone(),
                        kind: publication.kind,
                    },
                );
            }
            ServerMessage::PublicationRemoved { publication } => {
                self.publications.remove(publication);
                self.own_publications.retain(|p| &p.id != publication);
                if let Some(received) = self.received.get_mut(publication) {
                    received.report.removed_ms = Some(at_ms);
                    received.report.subscribed = false;
                }
                self.push_event(
                    at_ms,
                    SignalEventKind::PublicationRemoved {
                        publication: publication.clone(),
                    },
                );
            }
            ServerMessage::Routing(routing) => {
                if self.routing_records.len() >= MAX_ROUTING_RECORDS {
                    self.routing_records.remove(0);
                }
                self.routing_records.push(RoutingRecord {
                    at_ms,
                    routing: routing.clone(),
                });
            }
            ServerMessage::Error {
                id: None,
                code,
                message,
            } => self.push_event(
                at_ms,
                SignalEventKind::Error {
                    code: *code,
                    message: message.clone(),
                },
            ),
            _ => {}
        }
    }

    /// Record an unexpected or unreadable message.
    pub fn unexpected(&mut self, at_ms: u64, message: String) {
        self.push_event(at_ms, SignalEventKind::Unexpected { message });
    }

    /// Record that the signaling socket closed.
    pub fn signaling_closed(&mut self, at_ms: u64, reason: String) {
        if self.closed.is_none() {
            self.closed = Some(reason.clone());
            self.push_event(at_ms, SignalEventKind::Closed { reason });
        }
    }

    fn received_entry(&mut self, publication: &str) -> &mut ReceivedPublication {
        let info = self.publications.get(publication).cloned();
        self.received
            .entry(publication.to_owned())
            .or_insert_with(|| ReceivedPublication::new(publication, info.as_ref()))
    }

    /// Of `publications`, those not subscribed yet, now marked as being subscribed at `at_ms`.
    /// (Check and mark under one lock, so two paths never subscribe to the same one twice.)
    pub fn claim_subscriptions(&mut self, publications: &[String], at_ms: u64) -> Vec<String> {
        let fresh: Vec<String> = publications
            .iter()
            .filter(|p| !self.is_subscribed(p))
            .cloned()
            .collect();
        self.subscribing(&fresh, at_ms);
        fresh
    }

    /// A `subscribe` for these publications is being sent now. A publication already subscribed
    /// keeps its open window.
    pub fn subscribing(&mut self, publications: &[String], at_ms: u64) {
        for id in publications {
            let entry = self.received_entry(id);
            entry.report.subscribed = true;
            if entry
                .report
                .subscriptions
                .last()
                .is_some_and(|w| w.unsubscribed_ms.is_none())
            {
                continue;
            }
            entry.report.subscriptions.push(SubscriptionWindow {
                subscribed_ms: at_ms,
                unsubscribed_ms: None,
                first_packet_ms: None,
                first_keyframe_ms: None,
                packets: 0,
                packets_after_unsubscribe: 0,
            });
        }
    }

    /// The `subscribe` sent at `at_ms` failed: forget the windows it opened.
    pub fn subscribe_failed(&mut self, publications: &[String], at_ms: u64) {
        for id in publications {
            let Some(entry) = self.received.get_mut(id) else {
                continue;
            };
            if entry
                .report
                .subscriptions
                .last()
                .is_some_and(|w| w.subscribed_ms == at_ms && w.unsubscribed_ms.is_none())
            {
                entry.report.subscriptions.pop();
            }
            entry.report.subscribed = entry
                .report
                .subscriptions
                .last()
                .is_some_and(|w| w.unsubscribed_ms.is_none());
            if entry.report.subscriptions.is_empty() && entry.report.packets == 0 {
                self.received.remove(id);
            }
        }
    }

    /// An `unsubscribe` for these publications is being sent now.
    pub fn unsubscribing(&mut self, publications: &[String], at_ms: u64) {
        for id in publications {
            if let Some(entry) = self.received.get_mut(id) {
                entry.report.subscribed = false;
                if let Some(window) = entry.report.subscriptions.last_mut()
                    && window.unsubscribed_ms.is_none()
                {
                    window.unsubscribed_ms = Some(at_ms);
                }
            }
        }
    }

    /// The `unsubscribe` sent at `at_ms` failed: the windows it closed are open again.
    pub fn unsubscribe_failed(&mut self, publications: &[String], at_ms: u64) {
        for id in publications {
            if let Some(entry) = self.received.get_mut(id)
                && let Some(window) = entry.report.subscriptions.last_mut()
                && window.unsubscribed_ms == Some(at_ms)
            {
                window.unsubscribed_ms = None;
                entry.report.subscribed = true;
            }
        }
    }

    /// Whether the bot currently subscribes to `publication`.
    pub fn is_subscribed(&self, publication: &str) -> bool {
        self.received
            .get(publication)
            .is_some_and(|r| r.report.subscribed)
    }

    /// Account for one RTP packet received on the subscriber transport under `mid`.
    pub fn on_rtp(
        &mut self,
        mid: Option<&str>,
        kind: Option<TrackKind>,
        packet: &rtp::Packet,
        at_ms: u64,
    ) {
        let Some(mid) = mid else {
            self.unattributed_packets += 1;
            return;
        };
        let Some(publication) = self.routing.mid_to_publication.get(mid) else {
            self.unattributed_packets += 1;
            return;
        };
        // Per packet: no allocation once the publication's entry exists.
        if !self.received.contains_key(publication.as_str()) {
            let info = self.publications.get(publication).cloned();
            self.received.insert(
                publication.clone(),
                ReceivedPublication::new(publication, info.as_ref()),
            );
        }
        let Some(entry) = self.received.get_mut(publication.as_str()) else {
            return;
        };
        let report = &mut entry.report;
        if report.mid.as_deref() != Some(mid) {
            report.mid = Some(mid.to_owned());
        }
        if report.kind.is_none() {
            report.kind = kind;
        }
        let ssrc = packet.header.ssrc;
        report.ssrc = Some(ssrc);
        if entry.tracker_ssrc != Some(ssrc) {
            if entry.tracker_ssrc.is_some() {
                entry.retired = entry.retired + entry.tracker.counts();
                entry.tracker = SequenceTracker::new();
            }
            entry.tracker_ssrc = Some(ssrc);
        }
        entry.tracker.record(packet.header.sequence_number);

        report.packets += 1;
        report.bytes += packet.payload.len() as u64;
        if report.first_packet_ms.is_none() {
            report.first_packet_ms = Some(at_ms);
            report.first_packet_latency_ms = report
                .subscriptions
                .first()
                .map(|w| at_ms.saturating_sub(w.subscribed_ms));
        }
        report.last_packet_ms = Some(at_ms);
        match report.spans.last_mut() {
            Some(span) if at_ms.saturating_sub(span.last_ms) <= SPAN_GAP_MS => {
                span.last_ms = span.last_ms.max(at_ms);
                span.packets += 1;
            }
            _ => {
                if report.spans.len() >= MAX_SPANS {
                    report.spans.remove(0);
                }
                report.spans.push(ReceiveSpan {
                    first_ms: at_ms,
                    last_ms: at_ms,
                    packets: 1,
                });
            }
        }
        let keyframe =
            report.kind == Some(TrackKind::Video) && vp8::payload_starts_keyframe(&packet.payload);
        if keyframe {
            report.keyframes += 1;
            report.first_keyframe_ms.get_or_insert(at_ms);
        }
        if let Some(window) = report.subscriptions.last_mut() {
            match window.unsubscribed_ms {
                Some(until) if at_ms > until => window.packets_after_unsubscribe += 1,
                _ => {
                    window.packets += 1;
                    window.first_packet_ms.get_or_insert(at_ms);
                    if keyframe {
                        window.first_keyframe_ms.get_or_insert(at_ms);
                    }
                }
            }
        }
    }

    /// The synthetic tracks' numbers and what each sent in the window.
    pub fn synthetic_sent(&self) -> Vec<(u32, u64)> {
        self.published
            .iter()
            .filter_map(|t| t.synthetic.map(|c| (c.track_id, c.in_window)))
            .collect()
    }

    /// The synthetic-media measurement so far (`None` when the bot sends clips).
    pub fn synthetic_stats(&self) -> Option<SyntheticStats> {
        let rx = self.synthetic_rx.as_ref()?;
        let sent = self
            .published
            .iter()
            .filter_map(|t| {
                t.synthetic.map(|c| SentTrack {
                    track_id: c.track_id,
                    kind: t.report.kind,
                    publication: t.report.publication.clone(),
                    packets_in_window: c.in_window,
                    packets_total: c.total,
                })
            })
            .collect();
        let (received, [latency_audio, latency_video, latency_late], unstamped) = rx.snapshot();
        Some(SyntheticStats {
            sent,
            received,
            latency_audio,
            latency_video,
            latency_late,
            unstamped,
        })
    }

    /// A keyframe request (PLI or FIR) for `ssrc` arrived. Returns whether it named one of the
    /// bot's tracks.
    pub fn keyframe_requested(&mut self, ssrc: u32, fir: bool, at_ms: u64) -> bool {
        let Some(track) = self.published.iter_mut().find(|t| t.report.ssrc == ssrc) else {
            return false;
        };
        if fir {
            track.report.fir_received += 1;
        } else {
            track.report.pli_received += 1;
        }
        if track.report.keyframe_request_ms.len() < MAX_KEYFRAME_REQUEST_TIMES {
            track.report.keyframe_request_ms.push(at_ms);
        }
        track.keyframe_wanted = true;
        true
    }

    fn transport_mut(&mut self, kind: TransportKind) -> &mut TransportReport {
        let slot = match kind {
            TransportKind::Publisher => &mut self.publisher_transport,
            TransportKind::Subscriber => &mut self.subscriber_transport,
        };
        slot.get_or_insert_with(|| TransportReport {
            state: "new".into(),
            connected_ms: None,
            state_changes: Vec::new(),
            negotiations: 0,
        })
    }

    pub fn transport_state(&mut self, kind: TransportKind, state: &str, at_ms: u64) {
        let transport = self.transport_mut(kind);
        transport.state = state.to_owned();
        if state == "connected" && transport.connected_ms.is_none() {
            transport.connected_ms = Some(at_ms);
        }
        transport.state_changes.push(StateChange {
            at_ms,
            state: state.to_owned(),
        });
    }

    pub fn negotiated(&mut self, kind: TransportKind) {
        self.transport_mut(kind).negotiations += 1;
    }

    pub fn report(&self, started_unix_ms: u64, now_ms: u64) -> Report {
        Report {
            participant_id: self.me.as_ref().map(|p| p.id.clone()),
            call_id: self.call_id.clone(),
            started_unix_ms,
            elapsed_ms: now_ms,
            joined_ms: self.joined_ms,
            left_ms: self.left_ms,
            publisher_transport: self.publisher_transport.clone(),
            subscriber_transport: self.subscriber_transport.clone(),
            published: self.published.iter().map(|t| t.report.clone()).collect(),
            received: self.received.values().map(|r| r.snapshot()).collect(),
            unattributed_packets: self.unattributed_packets,
            events: self.events.clone(),
            routing: self.routing_records.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use dragoman_signal::protocol::TrackSource;

    fn packet(seq: u16, ssrc: u32, payload: &'static [u8]) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                sequence_number: seq,
                ssrc,
                ..Default::default()
            },
            payload: Bytes::from_static(payload),
        }
    }

    fn state_with_video_publication() -> State {
        let mut state = State::default();
        state.publications.insert(
            "PB_1".into(),
            PublicationInfo {
                id: "PB_1".into(),
                participant: "PA_2".into(),
                kind: TrackKind::Video,
                source: TrackSource::Camera,
                channel: None,
                layers: vec![],
            },
        );
        state
            .routing
            .mid_to_publication
            .insert("0".into(), "PB_1".into());
        state
    }

    #[test]
    fn accounts_packets_per_subscription_window() {
        let mut state = state_with_video_publication();
        state.subscribing(&["PB_1".into()], 100);
        state.on_rtp(Some("0"), None, &packet(65535, 9, &[0x10, 0x50]), 130);
        state.on_rtp(Some("0"), None, &packet(1, 9, &[0x00]), 140);
        state.on_rtp(Some("0"), None, &packet(1, 9, &[0x00]), 141);
        state.unsubscribing(&["PB_1".into()], 200);
        state.on_rtp(Some("0"), None, &packet(2, 9, &[0x00]), 210);
        state.subscribing(&["PB_1".into()], 300);
        state.on_rtp(Some("0"), None, &packet(3, 9, &[0x00]), 350);

        let report = state.report(0, 400);
        let r = report.received("PB_1").unwrap();
        assert_eq!(r.publisher.as_deref(), Some("PA_2"));
        assert_eq!(r.kind, Some(TrackKind::Video));
        assert_eq!(r.packets, 5);
        assert_eq!(r.sequence_gaps, 1, "0 never arrived");
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.keyframes, 1);
        assert_eq!(r.first_packet_latency_ms, Some(30));
        assert_eq!(r.first_keyframe_ms, Some(130));
        assert_eq!(r.last_packet_ms, Some(350));
        assert!(r.subscribed);
        assert_eq!(r.subscriptions.len(), 2);
        assert_eq!(r.subscriptions[0].packets, 3);
        assert_eq!(r.subscriptions[0].packets_after_unsubscribe, 1);
        assert_eq!(r.subscriptions[1].latency_ms(), Some(50));
    }

    #[test]
    fn packets_group_into_spans_and_routing_is_recorded() {
        let mut state = state_with_video_publication();
        for (seq, at) in [
            (1, 0),
            (2, 20),
            (3, 40),
            (4, 40 + SPAN_GAP_MS + 1),
            (5, 200),
        ] {
            state.on_rtp(Some("0"), None, &packet(seq, 9, &[0]), at);
        }
        let routing: dragoman_signal::routing::SubscriberRouting =
            serde_json::from_value(serde_json::json!({
                "participant": "me", "mode": "consecutive", "ramp_ms": 300, "routes": [],
                "summary": {"listening": null, "live_channel": null, "floor_gain": 1.0},
            }))
            .unwrap();
        state.apply(&ServerMessage::Routing(routing.clone()), 210);
        let report = state.report(0, 300);
        let spans = &report.received("PB_1").unwrap().spans;
        assert_eq!(
            spans,
            &vec![
                ReceiveSpan {
                    first_ms: 0,
                    last_ms: 40,
                    packets: 3
                },
                ReceiveSpan {
                    first_ms: 141,
                    last_ms: 200,
                    packets: 2
                },
            ]
        );
        assert!(!spans[0].overlaps(&spans[1]));
        assert_eq!(report.latest_routing(), Some(&routing));
        assert_eq!(report.routing[0].at_ms, 210);
    }

    #[test]
    fn a_new_ssrc_starts_a_new_sequence_space() {
        let mut state = state_with_video_publication();
        state.on_rtp(Some("0"), None, &packet(10, 1, &[0]), 1);
        state.on_rtp(Some("0"), None, &packet(12, 1, &[0]), 2);
        state.on_rtp(Some("0"), None, &packet(40_000, 2, &[0]), 3);
        state.on_rtp(Some("0"), None, &packet(40_001, 2, &[0]), 4);
        let report = state.report(0, 5);
        assert_eq!(report.received("PB_1").unwrap().sequence_gaps, 1);
    }

    #[test]
    fn unknown_mids_are_counted_apart() {
        let mut state = state_with_video_publication();
        state.on_rtp(Some("7"), None, &packet(1, 1, &[0]), 1);
        state.on_rtp(None, None, &packet(1, 1, &[0]), 1);
        assert_eq!(state.report(0, 1).unattributed_packets, 2);
        assert!(state.received.is_empty());
    }

    #[test]
    fn a_failed_subscribe_leaves_no_trace() {
        let mut state = state_with_video_publication();
        state.subscribing(&["PB_9".into()], 10);
        state.subscribe_failed(&["PB_9".into()], 10);
        assert!(state.received.is_empty());
    }

    #[test]
    fn keyframe_requests_are_counted_per_track() {
        let mut state = State::default();
        state.published.push(PublishedTrack {
            report: PublishedTrackReport {
                publication: Some("PB_3".into()),
                kind: TrackKind::Video,
                source: TrackSource::Camera,
                mid: Some("1".into()),
                ssrc: 77,
                payload_type: Some(96),
                packets_sent: 0,
                bytes_sent: 0,
                packets_dropped: 0,
                write_errors: 0,
                frames_sent: 0,
                keyframes_sent: 0,
                keyframes_forced: 0,
                pli_received: 0,
                fir_received: 0,
                keyframe_request_ms: vec![],
                first_packet_ms: None,
                last_packet_ms: None,
            },
            keyframe_wanted: false,
            synthetic: None,
        });
        assert!(state.keyframe_requested(77, false, 5));
        assert!(state.keyframe_requested(77, true, 9));
        assert!(!state.keyframe_requested(78, false, 9));
        let report = state.report(0, 10);
        let track = report.published("PB_3").unwrap();
        assert_eq!((track.pli_received, track.fir_received), (1, 1));
        assert_eq!(track.keyframe_requests_since(6), 1);
        assert!(state.published[0].keyframe_wanted);
    }

    #[test]
    fn membership_follows_events() {
        let mut state = state_with_video_publication();
        state.apply(
            &ServerMessage::PublicationRemoved {
                publication: "PB_1".into(),
            },
            50,
        );
        assert!(state.publications.is_empty());
        assert_eq!(state.events.len(), 1);
        let json = serde_json::to_value(&state.events[0]).unwrap();
        assert_eq!(json["event"], "publication_removed");
        assert_eq!(json["at_ms"], 50);
    }
}
