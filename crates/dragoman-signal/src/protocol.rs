//! The WebSocket signaling protocol (v1): every message is one JSON text frame `{"type": ..., ...}`.
//!
//! Requests from the client may carry an `id`; the server echoes it in the reply (or in the `error`).
//! Parsing is strict and bounded: [`parse_client_message`] turns any frame into either a typed
//! [`ClientMessage`] or a [`ProtocolError`] with a stable [`ErrorCode`], so the connection can answer and
//! keep serving. `docs/protocol.md` has one example of every message.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::role::Role;
use crate::routing::{Channel, SubscriberRouting};

/// Default upper bound for one signaling frame; SDP with simulcast stays well below it.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The `id` of a request, echoed in its reply. Clients may use numbers or strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(u64),
    Text(String),
}

/// Which of the participant's two peer connections a message is about.
///
/// The split keeps renegotiation glare-free: the client always offers on `publisher`, the server
/// always offers on `subscriber`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    Publisher,
    Subscriber,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    Audio,
    Video,
}

/// What a published track captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    Camera,
    Microphone,
    ScreenShare,
}

/// One ICE candidate sent by trickle, in the shape of the browser's `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, rename = "sdpMid", skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(
        default,
        rename = "sdpMLineIndex",
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_m_line_index: Option<u16>,
    #[serde(
        default,
        rename = "usernameFragment",
        skip_serializing_if = "Option::is_none"
    )]
    pub username_fragment: Option<String>,
}

/// Track metadata sent with `publish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// The `mid` of the track's transceiver on the publisher transport (after its offer/answer).
    pub mid: String,
    pub kind: TrackKind,
    pub source: TrackSource,
    /// Language channel of an audio track: `floor` (the speaker's own voice) or a language code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Simulcast layer ids (`rid`s), lowest first; empty for a single-layer track.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message: authenticate with a join token.
    Join {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        token: String,
    },
    /// SDP offer for the publisher transport.
    Offer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        transport: TransportKind,
        sdp: String,
    },
    /// SDP answer to the server's offer on the subscriber transport.
    Answer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        transport: TransportKind,
        sdp: String,
    },
    /// A trickled ICE candidate for one transport.
    Candidate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        transport: TransportKind,
        candidate: IceCandidate,
    },
    /// Announce a track negotiated on the publisher transport as a publication.
    Publish {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        track: TrackInfo,
    },
    /// Withdraw one of this participant's publications.
    Unpublish {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        publication: String,
    },
    /// Start (or resume) receiving the given publications.
    Subscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        publications: Vec<String>,
    },
    /// Stop receiving the given publications; the SFU stops sending at once.
    Unsubscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        publications: Vec<String>,
    },
    /// Keep-alive; answered with `pong`.
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Leave the call; the server removes the participant and closes the socket.
    Leave {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// A listener picks the language they hear (`null`: the original sound only). The field is
    /// required, so a misspelt one is an error rather than "original sound".
    SetLanguage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        #[serde(deserialize_with = "Option::deserialize")]
        language: Option<String>,
    },
    /// An interpreter switches the language they speak into (one of their pair).
    SwitchDirection {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        output: String,
    },
    /// An interpreter chooses what they listen to: `floor`, or (relay) a language channel.
    SetInput {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        input: Channel,
    },
    /// An interpreter asks their booth partner to swap who is on air.
    RequestHandover {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        to: String,
    },
    /// An interpreter accepts the handover their partner asked for.
    AcceptHandover {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        from: String,
    },
    /// An interpreter declines the handover their partner asked for.
    DeclineHandover {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        from: String,
    },
    /// An interpreter withdraws their own handover request.
    WithdrawHandover {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        to: String,
    },
    /// An interpreter goes on air (no booth partner is), into `output` or their current output.
    GoOnAir {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },
    /// An interpreter steps off air.
    GoOffAir {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
}

/// The `type` of every client message, for telling an unknown type from a malformed known one.
pub const CLIENT_MESSAGE_TYPES: &[&str] = &[
    "join",
    "offer",
    "answer",
    "candidate",
    "publish",
    "unpublish",
    "subscribe",
    "unsubscribe",
    "ping",
    "leave",
    "set_language",
    "switch_direction",
    "set_input",
    "request_handover",
    "accept_handover",
    "decline_handover",
    "withdraw_handover",
    "go_on_air",
    "go_off_air",
];

impl ClientMessage {
    /// The request id, if the client sent one.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            ClientMessage::Join { id, .. }
            | ClientMessage::Offer { id, .. }
            | ClientMessage::Answer { id, .. }
            | ClientMessage::Candidate { id, .. }
            | ClientMessage::Publish { id, .. }
            | ClientMessage::Unpublish { id, .. }
            | ClientMessage::Subscribe { id, .. }
            | ClientMessage::Unsubscribe { id, .. }
            | ClientMessage::Ping { id }
            | ClientMessage::Leave { id }
            | ClientMessage::SetLanguage { id, .. }
            | ClientMessage::SwitchDirection { id, .. }
            | ClientMessage::SetInput { id, .. }
            | ClientMessage::RequestHandover { id, .. }
            | ClientMessage::AcceptHandover { id, .. }
            | ClientMessage::DeclineHandover { id, .. }
            | ClientMessage::WithdrawHandover { id, .. }
            | ClientMessage::GoOnAir { id, .. }
            | ClientMessage::GoOffAir { id } => id.as_ref(),
        }
    }

    /// The message's `type` string, for logs and metrics.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Join { .. } => "join",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::Candidate { .. } => "candidate",
            ClientMessage::Publish { .. } => "publish",
            ClientMessage::Unpublish { .. } => "unpublish",
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Unsubscribe { .. } => "unsubscribe",
            ClientMessage::Ping { .. } => "ping",
            ClientMessage::Leave { .. } => "leave",
            ClientMessage::SetLanguage { .. } => "set_language",
            ClientMessage::SwitchDirection { .. } => "switch_direction",
            ClientMessage::SetInput { .. } => "set_input",
            ClientMessage::RequestHandover { .. } => "request_handover",
            ClientMessage::AcceptHandover { .. } => "accept_handover",
            ClientMessage::DeclineHandover { .. } => "decline_handover",
            ClientMessage::WithdrawHandover { .. } => "withdraw_handover",
            ClientMessage::GoOnAir { .. } => "go_on_air",
            ClientMessage::GoOffAir { .. } => "go_off_air",
        }
    }
}

/// A participant as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub languages: Vec<String>,
}

/// A publication as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicationInfo {
    pub id: String,
    pub participant: String,
    pub kind: TrackKind,
    pub source: TrackSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

/// The call a participant joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInfo {
    pub id: String,
}

/// An ICE server (STUN/TURN) the client should use, in the browser's `RTCIceServer` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Which publication a `mid` of the subscriber transport carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribedTrack {
    pub mid: String,
    pub publication: String,
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The participant sent `leave`.
    Left,
    /// The signaling socket or the media connection was lost.
    Disconnected,
    /// The same identity joined again from another connection.
    Replaced,
    /// The server is shutting down.
    ServerShutdown,
    /// An operator removed the participant, or ended the call.
    Removed,
}

/// How well a participant's media is getting through, as a badge for the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    Excellent,
    Good,
    Poor,
    /// No media connection.
    Lost,
}

/// One participant's network quality, from what the SFU measures on their links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantQuality {
    pub participant: String,
    pub quality: Quality,
    /// The worse of uplink and downlink packet loss, in percent.
    pub loss_percent: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<u32>,
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Reply to `join`: who you are and what is in the call.
    Joined {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        call: CallInfo,
        participant: ParticipantInfo,
        participants: Vec<ParticipantInfo>,
        publications: Vec<PublicationInfo>,
        ice_servers: Vec<IceServer>,
        /// True when this `join` resumed a membership whose signaling socket had dropped: the
        /// participant's transports, publications and subscriptions are as they were.
        #[serde(default)]
        resumed: bool,
        /// On resume: the publications this participant subscribes to.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        subscriptions: Vec<String>,
        /// On resume: this participant's own publications.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        own_publications: Vec<PublicationInfo>,
    },
    /// The server's SDP answer on the publisher transport.
    Answer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        transport: TransportKind,
        sdp: String,
    },
    /// The server's SDP offer on the subscriber transport, with the publication carried by each new `mid`.
    Offer {
        transport: TransportKind,
        sdp: String,
        tracks: Vec<SubscribedTrack>,
    },
    /// Reply to `publish`.
    Published {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        publication: PublicationInfo,
    },
    /// Success reply to a request with nothing else to say.
    Ok {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Reply to `ping`.
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        participant: String,
        reason: LeaveReason,
    },
    PublicationAdded {
        publication: PublicationInfo,
    },
    PublicationRemoved {
        publication: String,
    },
    /// Network quality of every visible participant (and yourself), pushed every few seconds.
    Quality {
        participants: Vec<ParticipantQuality>,
    },
    /// Which audio this participant receives and at which gain: sent after `joined` and whenever it
    /// changes. Audio publications not listed are not forwarded to this participant.
    Routing(SubscriberRouting),
    /// A request failed, or a message could not be understood. The connection stays usable unless the
    /// code says otherwise (token errors close it).
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        code: ErrorCode,
        message: String,
    },
}

/// A frame that could not be turned into a [`ClientMessage`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    /// The request id, when it could be read from the frame.
    pub id: Option<RequestId>,
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    /// The `error` reply for this failure.
    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::Error {
            id: self.id.clone(),
            code: self.code,
            message: self.message.clone(),
        }
    }
}

/// Parse one text frame, enforcing `max_bytes`, and tell exactly what is wrong with a bad one.
pub fn parse_client_message(text: &str, max_bytes: usize) -> Result<ClientMessage, ProtocolError> {
    if text.len() > max_bytes {
        return Err(ProtocolError {
            id: None,
            code: ErrorCode::MessageTooLarge,
            message: format!("message is {} bytes; the limit is {max_bytes}", text.len()),
        });
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ProtocolError {
        id: None,
        code: ErrorCode::BadJson,
        message: format!("not valid JSON: {e}"),
    })?;
    let id = value
        .get("id")
        .and_then(|v| serde_json::from_value::<RequestId>(v.clone()).ok());
    let Some(object) = value.as_object() else {
        return Err(ProtocolError {
            id,
            code: ErrorCode::InvalidMessage,
            message: "a message must be a JSON object".into(),
        });
    };
    let Some(kind) = object
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
    else {
        return Err(ProtocolError {
            id,
            code: ErrorCode::InvalidMessage,
            message: "a message needs a string field \"type\"".into(),
        });
    };
    if !CLIENT_MESSAGE_TYPES.contains(&kind.as_str()) {
        return Err(ProtocolError {
            id,
            code: ErrorCode::UnknownType,
            message: format!("unknown message type {kind:?}"),
        });
    }
    serde_json::from_value(value).map_err(|e| ProtocolError {
        id,
        code: ErrorCode::InvalidMessage,
        message: format!("invalid {kind:?} message: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
        parse_client_message(text, DEFAULT_MAX_MESSAGE_BYTES)
    }

    #[test]
    fn parses_every_client_message_type() {
        let cases = [
            r#"{"type":"join","id":1,"token":"t"}"#,
            r#"{"type":"offer","id":"a","transport":"publisher","sdp":"v=0"}"#,
            r#"{"type":"answer","transport":"subscriber","sdp":"v=0"}"#,
            r#"{"type":"candidate","transport":"publisher","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0"}}"#,
            r#"{"type":"publish","id":2,"track":{"mid":"0","kind":"audio","source":"microphone","channel":"floor"}}"#,
            r#"{"type":"unpublish","publication":"PB_1"}"#,
            r#"{"type":"subscribe","id":3,"publications":["PB_1","PB_2"]}"#,
            r#"{"type":"unsubscribe","publications":["PB_1"]}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"leave"}"#,
            r#"{"type":"set_language","id":8,"language":"th"}"#,
            r#"{"type":"switch_direction","id":9,"output":"ko"}"#,
            r#"{"type":"set_input","id":10,"input":"en"}"#,
            r#"{"type":"request_handover","id":11,"to":"interp-2"}"#,
            r#"{"type":"accept_handover","id":12,"from":"interp-1"}"#,
            r#"{"type":"decline_handover","from":"interp-1"}"#,
            r#"{"type":"withdraw_handover","to":"interp-2"}"#,
            r#"{"type":"go_on_air","output":"en"}"#,
            r#"{"type":"go_off_air","id":13}"#,
        ];
        assert_eq!(cases.len(), CLIENT_MESSAGE_TYPES.len());
        for (case, expected) in cases.iter().zip(CLIENT_MESSAGE_TYPES) {
            let message = parse(case).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(message.type_name(), *expected);
        }
    }

    #[test]
    fn interpretation_messages_carry_their_fields() {
        assert_eq!(
            parse(r#"{"type":"set_language","language":null}"#).unwrap(),
            ClientMessage::SetLanguage {
                id: None,
                language: None
            }
        );
        assert_eq!(
            parse(r#"{"type":"set_input","id":"x","input":"floor"}"#).unwrap(),
            ClientMessage::SetInput {
                id: Some(RequestId::Text("x".into())),
                input: Channel::Floor
            }
        );
        assert_eq!(
            parse(r#"{"type":"go_on_air"}"#).unwrap(),
            ClientMessage::GoOnAir {
                id: None,
                output: None
            }
        );
        // Each message's id is echoed, whatever its type.
        let message = parse(r#"{"type":"withdraw_handover","id":77,"to":"b"}"#).unwrap();
        assert_eq!(message.id(), Some(&RequestId::Number(77)));
        let bad = [
            // `language` must be present (null for the original sound), not misspelt.
            r#"{"type":"set_language","id":1,"lang":"th"}"#,
            r#"{"type":"set_language","id":1,"language":7}"#,
            r#"{"type":"switch_direction","id":1}"#,
            r#"{"type":"set_input","id":1,"input":"not a language"}"#,
            r#"{"type":"request_handover","id":1}"#,
            r#"{"type":"accept_handover","id":1,"to":"a"}"#,
        ];
        for text in bad {
            let err = parse(text).expect_err(text);
            assert_eq!(err.code, ErrorCode::InvalidMessage, "{text}: {err}");
            assert_eq!(err.id, Some(RequestId::Number(1)), "{text}");
        }
    }

    #[test]
    fn routing_messages_are_flat() {
        let routing: SubscriberRouting = serde_json::from_value(serde_json::json!({
            "participant": "buyer", "mode": "simultaneous", "ramp_ms": 300,
            "routes": [{"publication": "PB_1", "participant": "company", "channel": "floor",
                        "gain": 0.2, "priority": "floor"}],
            "summary": {"listening": "th", "live_channel": "th", "floor_gain": 0.2},
        }))
        .unwrap();
        let message = ServerMessage::Routing(routing);
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["type"], "routing");
        assert_eq!(json["routes"][0]["gain"], 0.2);
        let back: ServerMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, message);
    }

    #[test]
    fn echoes_the_request_id() {
        let message = parse(r#"{"type":"subscribe","id":"req-7","publications":[]}"#).unwrap();
        assert_eq!(message.id(), Some(&RequestId::Text("req-7".into())));
    }

    #[test]
    fn rejects_bad_input_with_a_stable_code() {
        let cases = [
            ("{not json", ErrorCode::BadJson, None),
            ("[1,2]", ErrorCode::InvalidMessage, None),
            (
                r#"{"id":4}"#,
                ErrorCode::InvalidMessage,
                Some(RequestId::Number(4)),
            ),
            (
                r#"{"type":"dance","id":5}"#,
                ErrorCode::UnknownType,
                Some(RequestId::Number(5)),
            ),
            (
                r#"{"type":"join","id":6}"#,
                ErrorCode::InvalidMessage,
                Some(RequestId::Number(6)),
            ),
            (
                r#"{"type":"offer","transport":"sideways","sdp":""}"#,
                ErrorCode::InvalidMessage,
                None,
            ),
        ];
        for (text, code, id) in cases {
            let err = parse(text).expect_err(text);
            assert_eq!(err.code, code, "{text}: {err}");
            assert_eq!(err.id, id, "{text}");
        }
    }

    #[test]
    fn rejects_oversize_messages_before_parsing() {
        let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(100));
        let err = parse_client_message(&big, 64).expect_err("too large");
        assert_eq!(err.code, ErrorCode::MessageTooLarge);
    }

    #[test]
    fn server_messages_serialize_with_snake_case_types() {
        let text = serde_json::to_string(&ServerMessage::PublicationRemoved {
            publication: "PB_1".into(),
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"type":"publication_removed","publication":"PB_1"}"#
        );
    }
}
