//! The bot's report: what it published, what it received, and the signaling events it saw.
//!
//! Every time is in milliseconds since the bot started (`*_ms`), so one bot's numbers compare
//! directly; `started_unix_ms` lets a test line up several bots.

use dragoman_signal::ErrorCode;
use dragoman_signal::protocol::{LeaveReason, TrackKind, TrackSource};
use dragoman_signal::routing::SubscriberRouting;
use serde::{Deserialize, Serialize};

/// A pause longer than this between two packets of one publication ends a [`ReceiveSpan`].
pub const SPAN_GAP_MS: u64 = 100;

/// A snapshot of everything the bot measured. Cheap to take at any time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// This bot's participant id, once joined.
    pub participant_id: Option<String>,
    pub call_id: Option<String>,
    /// Wall-clock time of the bot's start, in ms since the Unix epoch.
    pub started_unix_ms: u64,
    /// Time of this snapshot.
    pub elapsed_ms: u64,
    /// When `joined` arrived.
    pub joined_ms: Option<u64>,
    /// When the bot sent `leave`.
    pub left_ms: Option<u64>,
    pub publisher_transport: Option<TransportReport>,
    pub subscriber_transport: Option<TransportReport>,
    /// One entry per published track.
    pub published: Vec<PublishedTrackReport>,
    /// One entry per publication of others that the bot subscribed to or received media of.
    pub received: Vec<ReceivedPublicationReport>,
    /// RTP packets on the subscriber transport that no server offer attributed to a publication.
    pub unattributed_packets: u64,
    /// Signaling events in arrival order.
    pub events: Vec<SignalEvent>,
    /// Every `routing` message (which audio the server forwards, at which gain), in arrival order.
    #[serde(default)]
    pub routing: Vec<RoutingRecord>,
}

/// A `routing` message and when it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingRecord {
    pub at_ms: u64,
    pub routing: SubscriberRouting,
}

impl Report {
    /// The entry for a received publication.
    pub fn received(&self, publication: &str) -> Option<&ReceivedPublicationReport> {
        self.received.iter().find(|r| r.publication == publication)
    }

    /// The entry for one of the bot's own publications.
    pub fn published(&self, publication: &str) -> Option<&PublishedTrackReport> {
        self.published
            .iter()
            .find(|p| p.publication.as_deref() == Some(publication))
    }

    /// The entry for the bot's own track of `kind`.
    pub fn published_kind(&self, kind: TrackKind) -> Option<&PublishedTrackReport> {
        self.published.iter().find(|p| p.kind == kind)
    }

    /// Total RTP packets received across publications.
    pub fn packets_received(&self) -> u64 {
        self.received.iter().map(|r| r.packets).sum()
    }

    /// The latest `routing` message.
    pub fn latest_routing(&self) -> Option<&SubscriberRouting> {
        self.routing.last().map(|r| &r.routing)
    }
}

/// One peer connection's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransportReport {
    /// The latest peer-connection state (`new`, `connecting`, `connected`, …).
    pub state: String,
    /// When it first reached `connected`.
    pub connected_ms: Option<u64>,
    pub state_changes: Vec<StateChange>,
    /// Offer/answer rounds completed (for the subscriber: server offers answered).
    pub negotiations: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    pub at_ms: u64,
    pub state: String,
}

/// One of the bot's own tracks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedTrackReport {
    /// The server's publication id, once `published` arrived.
    pub publication: Option<String>,
    pub kind: TrackKind,
    pub source: TrackSource,
    pub mid: Option<String>,
    pub ssrc: u32,
    pub payload_type: Option<u8>,
    /// RTP packets handed to the transport.
    pub packets_sent: u64,
    /// RTP payload bytes handed to the transport.
    pub bytes_sent: u64,
    /// RTP packets dropped on purpose (`uplink_loss`); their sequence numbers were used.
    pub packets_dropped: u64,
    /// Packets the transport refused (written before it was ready, or after it closed).
    pub write_errors: u64,
    pub frames_sent: u64,
    /// Keyframes sent (video): the clip's own plus those forced by requests.
    pub keyframes_sent: u64,
    /// Times the video jumped back to a keyframe because one was requested.
    pub keyframes_forced: u64,
    /// Picture Loss Indications received for this track.
    pub pli_received: u64,
    /// Full Intra Requests received for this track.
    pub fir_received: u64,
    /// When each keyframe request (PLI or FIR) arrived; the first 1000.
    pub keyframe_request_ms: Vec<u64>,
    /// When the first packet was handed to the transport.
    pub first_packet_ms: Option<u64>,
    pub last_packet_ms: Option<u64>,
}

impl PublishedTrackReport {
    /// PLI and FIR together.
    pub fn keyframe_requests(&self) -> u64 {
        self.pli_received + self.fir_received
    }

    /// Keyframe requests that arrived at or after `since_ms`.
    pub fn keyframe_requests_since(&self, since_ms: u64) -> usize {
        self.keyframe_request_ms
            .iter()
            .filter(|&&t| t >= since_ms)
            .count()
    }
}

/// One publication of another participant, as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivedPublicationReport {
    pub publication: String,
    /// The publishing participant, when known from `joined` / `publication_added`.
    pub publisher: Option<String>,
    pub kind: Option<TrackKind>,
    /// The subscriber-transport mid carrying it (from the server's offer).
    pub mid: Option<String>,
    /// The SSRC of the latest packet.
    pub ssrc: Option<u32>,
    /// RTP packets received (duplicates included).
    pub packets: u64,
    /// RTP payload bytes received.
    pub bytes: u64,
    /// Sequence numbers missing between the lowest and highest received (64-bit extended,
    /// summed over SSRCs if the stream's SSRC changed).
    pub sequence_gaps: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Video: packets that start a VP8 keyframe.
    pub keyframes: u64,
    /// From the first `subscribe` request to the first packet.
    pub first_packet_latency_ms: Option<u64>,
    pub first_packet_ms: Option<u64>,
    pub last_packet_ms: Option<u64>,
    pub first_keyframe_ms: Option<u64>,
    /// Whether the bot is subscribed now.
    pub subscribed: bool,
    /// When the server announced `publication_removed`.
    pub removed_ms: Option<u64>,
    /// Each subscribe … unsubscribe period, in order.
    pub subscriptions: Vec<SubscriptionWindow>,
    /// Periods of continuous receipt (packets less than [`SPAN_GAP_MS`] apart), in order; the
    /// latest 1000. Two publications whose spans never intersect were never received at once.
    #[serde(default)]
    pub spans: Vec<ReceiveSpan>,
}

impl ReceivedPublicationReport {
    /// Packets received in `[from_ms, to_ms]`, counting whole spans that touch the interval.
    pub fn packets_in_spans_touching(&self, from_ms: u64, to_ms: u64) -> u64 {
        self.spans
            .iter()
            .filter(|s| s.last_ms >= from_ms && s.first_ms <= to_ms)
            .map(|s| s.packets)
            .sum()
    }

    /// The first span that starts at or after `ms`.
    pub fn span_starting_after(&self, ms: u64) -> Option<&ReceiveSpan> {
        self.spans.iter().find(|s| s.first_ms >= ms)
    }
}

/// A period in which packets of one publication kept arriving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveSpan {
    /// The first packet's arrival.
    pub first_ms: u64,
    /// The last packet's arrival.
    pub last_ms: u64,
    pub packets: u64,
}

impl ReceiveSpan {
    /// Whether the two spans share any moment.
    pub fn overlaps(&self, other: &ReceiveSpan) -> bool {
        self.first_ms <= other.last_ms && other.first_ms <= self.last_ms
    }
}

/// One period between a `subscribe` request and the matching `unsubscribe` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionWindow {
    /// When `subscribe` was sent.
    pub subscribed_ms: u64,
    /// When `unsubscribe` was sent, if it was.
    pub unsubscribed_ms: Option<u64>,
    /// First packet after `subscribed_ms`.
    pub first_packet_ms: Option<u64>,
    /// First keyframe start after `subscribed_ms` (video).
    pub first_keyframe_ms: Option<u64>,
    /// Packets received before `unsubscribed_ms`.
    pub packets: u64,
    /// Packets received after `unsubscribed_ms` (in flight, or a server that did not stop).
    pub packets_after_unsubscribe: u64,
}

impl SubscriptionWindow {
    /// From the request to the first packet.
    pub fn latency_ms(&self) -> Option<u64> {
        self.first_packet_ms
            .map(|t| t.saturating_sub(self.subscribed_ms))
    }
}

/// A signaling event with the time it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalEvent {
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: SignalEventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SignalEventKind {
    ParticipantJoined {
        participant: String,
    },
    ParticipantLeft {
        participant: String,
        reason: LeaveReason,
    },
    PublicationAdded {
        publication: String,
        participant: String,
        kind: TrackKind,
    },
    PublicationRemoved {
        publication: String,
    },
    /// An `error` that answered no pending request.
    Error {
        code: ErrorCode,
        message: String,
    },
    /// A frame the bot could not parse, or a message it did not expect.
    Unexpected {
        message: String,
    },
    /// The signaling socket closed.
    Closed {
        reason: String,
    },
}
