//! The Janus API as typed values: its constants, [`JanusError`], the core's messages
//! ([`JanusMessage`], with their [`Jsep`]) and the VideoRoom plugin's replies ([`VideoRoomReply`],
//! [`Feed`], [`SubscriberStream`]), and their parsing. No I/O here, and nothing panics on what
//! Janus sends.

use std::time::Duration;

use serde_json::{Value, json};

use crate::error::BotError;

/// The WebSocket subprotocol of the Janus API.
pub const SUBPROTOCOL: &str = "janus-protocol";
/// The plugin every handle attaches to.
pub const VIDEOROOM: &str = "janus.plugin.videoroom";
/// How often a session is kept alive (Janus drops a session after 60 s without a request).
pub const KEEPALIVE: Duration = Duration::from_secs(25);

/// What went wrong talking to Janus.
#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    /// The Janus core answered a request with `"janus": "error"`.
    #[error("Janus refused {request}: error {code}: {reason}")]
    Core {
        request: String,
        code: i64,
        reason: String,
    },
    /// The VideoRoom plugin answered a request with an `error_code`.
    #[error("the VideoRoom plugin refused {request}: error {code}: {message}")]
    Plugin {
        request: String,
        code: i64,
        message: String,
    },
    /// A message that is not JSON, or lacks what its type requires.
    #[error("unreadable message from Janus: {0}")]
    Malformed(String),
    /// A well-formed reply of the wrong kind.
    #[error("unexpected reply from Janus to {request}: {reply}")]
    Unexpected { request: String, reply: String },
    /// The WebSocket closed while a request waited.
    #[error("the Janus WebSocket closed: {0}")]
    Closed(String),
    /// The WebSocket could not be opened.
    #[error("cannot connect to Janus at {url}: {message}")]
    Connect { url: String, message: String },
    /// Janus did not answer in time.
    #[error("timed out after {timeout:?} waiting for Janus to answer {request}")]
    Timeout { request: String, timeout: Duration },
    /// The bot's side failed (WebRTC, media).
    #[error(transparent)]
    Bot(#[from] BotError),
}

impl From<JanusError> for BotError {
    fn from(e: JanusError) -> BotError {
        match e {
            JanusError::Bot(e) => e,
            JanusError::Timeout { request, timeout } => {
                BotError::timeout(format!("Janus to answer {request}"), timeout)
            }
            JanusError::Connect { url, message } => BotError::Connect { url, message },
            JanusError::Closed(reason) => BotError::SignalingClosed(reason),
            other => BotError::Protocol(other.to_string()),
        }
    }
}

/// An SDP and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jsep {
    /// `offer` or `answer`.
    pub kind: String,
    pub sdp: String,
}

impl Jsep {
    pub(super) fn to_json(&self) -> Value {
        json!({ "type": self.kind, "sdp": self.sdp })
    }

    fn parse(value: &Value) -> Result<Jsep, JanusError> {
        let kind = value.get("type").and_then(Value::as_str);
        let sdp = value.get("sdp").and_then(Value::as_str);
        match (kind, sdp) {
            (Some(kind), Some(sdp)) => Ok(Jsep {
                kind: kind.to_owned(),
                sdp: sdp.to_owned(),
            }),
            _ => Err(JanusError::Malformed(format!(
                "a jsep without type and sdp: {}",
                shorten(value)
            ))),
        }
    }
}

/// One message from Janus, by its `janus` field.
#[derive(Debug, Clone, PartialEq)]
pub enum JanusMessage {
    /// The request was received; an asynchronous answer follows (or, for `keepalive` and
    /// `trickle`, that is the answer).
    Ack { transaction: Option<String> },
    /// A synchronous answer: `data.id` for `create` and `attach`, `plugindata` for synchronous
    /// plugin requests.
    Success {
        transaction: Option<String>,
        id: Option<u64>,
        plugin: Option<Value>,
    },
    /// The core refused the request.
    Error {
        transaction: Option<String>,
        code: i64,
        reason: String,
    },
    /// A plugin event: the asynchronous answer to a request (same transaction), or a
    /// notification (no transaction).
    Event {
        transaction: Option<String>,
        sender: Option<u64>,
        plugin: Option<Value>,
        jsep: Option<Jsep>,
    },
    /// A PeerConnection of handle `sender` is up (DTLS done).
    WebrtcUp { sender: u64 },
    /// Janus started or stopped receiving a medium on handle `sender`.
    Media {
        sender: u64,
        kind: String,
        receiving: bool,
    },
    /// The PeerConnection of handle `sender` was closed.
    Hangup { sender: u64, reason: String },
    /// Anything else (`slowlink`, `timeout`, `detached`, `trickle`, …).
    Other {
        kind: String,
        transaction: Option<String>,
        sender: Option<u64>,
    },
}

fn shorten(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 300 {
        let mut end = 300;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    } else {
        text
    }
}

impl JanusMessage {
    /// Parse one text frame.
    pub fn parse(text: &str) -> Result<JanusMessage, JanusError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| JanusError::Malformed(format!("not JSON ({e})")))?;
        let kind = value.get("janus").and_then(Value::as_str).ok_or_else(|| {
            JanusError::Malformed(format!("no \"janus\" field: {}", shorten(&value)))
        })?;
        let transaction = value
            .get("transaction")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let sender = value.get("sender").and_then(Value::as_u64);
        let need_sender = || {
            sender.ok_or_else(|| {
                JanusError::Malformed(format!("a {kind:?} without a sender: {}", shorten(&value)))
            })
        };
        Ok(match kind {
            "ack" => JanusMessage::Ack { transaction },
            "success" => JanusMessage::Success {
                transaction,
                id: value
                    .get("data")
                    .and_then(|d| d.get("id"))
                    .and_then(Value::as_u64),
                plugin: value.get("plugindata").cloned(),
            },
            "error" => {
                let error = value.get("error");
                JanusMessage::Error {
                    transaction,
                    code: error
                        .and_then(|e| e.get("code"))
                        .and_then(Value::as_i64)
                        .unwrap_or(0),
                    reason: error
                        .and_then(|e| e.get("reason"))
                        .and_then(Value::as_str)
                        .unwrap_or("(no reason given)")
                        .to_owned(),
                }
            }
            "event" => JanusMessage::Event {
                transaction,
                sender,
                plugin: value.get("plugindata").cloned(),
                jsep: value.get("jsep").map(Jsep::parse).transpose()?,
            },
            "webrtcup" => JanusMessage::WebrtcUp {
                sender: need_sender()?,
            },
            "media" => JanusMessage::Media {
                sender: need_sender()?,
                kind: value
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                receiving: value
                    .get("receiving")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
            "hangup" => JanusMessage::Hangup {
                sender: need_sender()?,
                reason: value
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            },
            other => JanusMessage::Other {
                kind: other.to_owned(),
                transaction,
                sender,
            },
        })
    }

    pub fn transaction(&self) -> Option<&str> {
        match self {
            JanusMessage::Ack { transaction }
            | JanusMessage::Success { transaction, .. }
            | JanusMessage::Error { transaction, .. }
            | JanusMessage::Event { transaction, .. }
            | JanusMessage::Other { transaction, .. } => transaction.as_deref(),
            _ => None,
        }
    }
}

/// A publisher of the room, as announced by the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub id: u64,
    pub display: Option<String>,
    /// (kind, mid) of each of its streams.
    pub streams: Vec<(String, String)>,
}

/// One stream of a subscriber handle, from the `attached` (or `updated`) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberStream {
    pub mid: String,
    /// `audio`, `video` or `data`.
    pub kind: String,
    pub feed_id: Option<u64>,
    pub feed_mid: Option<String>,
    pub feed_display: Option<String>,
}

/// What the VideoRoom plugin answered (`plugindata.data`), typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoRoomReply {
    /// `create`: the room exists.
    Created { room: u64 },
    /// `join` as publisher: this party's feed id, and the room's current publishers.
    Joined {
        room: u64,
        id: u64,
        private_id: Option<u64>,
        publishers: Vec<Feed>,
    },
    /// `join` as subscriber: the streams of the offer that comes with it.
    Attached {
        room: u64,
        streams: Vec<SubscriberStream>,
    },
    /// An `event`: `configured` answers `publish`, `started` answers `start`; `publishers` lists
    /// new publishers; `unpublished` and `leaving` name a feed that went away.
    Event {
        configured: bool,
        started: bool,
        publishers: Vec<Feed>,
        unpublished: Option<u64>,
        leaving: Option<u64>,
    },
    /// Another `videoroom` value (`destroyed`, `talking`, `updated`, `slow_link`, …).
    Other(String),
}

fn parse_feeds(value: Option<&Value>) -> Vec<Feed> {
    let Some(list) = value.and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|p| {
            Some(Feed {
                id: p.get("id")?.as_u64()?,
                display: p.get("display").and_then(Value::as_str).map(str::to_owned),
                streams: p
                    .get("streams")
                    .and_then(Value::as_array)
                    .map(|streams| {
                        streams
                            .iter()
                            .filter(|s| s.get("disabled").and_then(Value::as_bool) != Some(true))
                            .filter_map(|s| {
                                Some((
                                    s.get("type")?.as_str()?.to_owned(),
                                    s.get("mid")?.as_str()?.to_owned(),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

impl VideoRoomReply {
    /// Read a `plugindata` object (with its `plugin` and `data`), answering `request`.
    pub fn parse(plugindata: &Value, request: &str) -> Result<VideoRoomReply, JanusError> {
        let plugin = plugindata.get("plugin").and_then(Value::as_str);
        if plugin.is_some_and(|p| p != VIDEOROOM) {
            return Err(JanusError::Unexpected {
                request: request.to_owned(),
                reply: format!("plugin data of {}", plugin.unwrap_or_default()),
            });
        }
        let data = plugindata.get("data").ok_or_else(|| {
            JanusError::Malformed(format!("plugin data without data: {}", shorten(plugindata)))
        })?;
        if let Some(code) = data.get("error_code").and_then(Value::as_i64) {
            return Err(JanusError::Plugin {
                request: request.to_owned(),
                code,
                message: data
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("(no message)")
                    .to_owned(),
            });
        }
        let what = data
            .get("videoroom")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                JanusError::Malformed(format!(
                    "VideoRoom data without \"videoroom\": {}",
                    shorten(data)
                ))
            })?;
        let room = || {
            data.get("room").and_then(Value::as_u64).ok_or_else(|| {
                JanusError::Malformed(format!(
                    "a {what:?} without a numeric room: {}",
                    shorten(data)
                ))
            })
        };
        Ok(match what {
            "created" => VideoRoomReply::Created { room: room()? },
            "joined" => VideoRoomReply::Joined {
                room: room()?,
                id: data.get("id").and_then(Value::as_u64).ok_or_else(|| {
                    JanusError::Malformed(format!(
                        "\"joined\" without a feed id: {}",
                        shorten(data)
                    ))
                })?,
                private_id: data.get("private_id").and_then(Value::as_u64),
                publishers: parse_feeds(data.get("publishers")),
            },
            "attached" => VideoRoomReply::Attached {
                room: room()?,
                streams: data
                    .get("streams")
                    .and_then(Value::as_array)
                    .map(|streams| {
                        streams
                            .iter()
                            .filter_map(|s| {
                                Some(SubscriberStream {
                                    mid: s.get("mid")?.as_str()?.to_owned(),
                                    kind: s.get("type")?.as_str()?.to_owned(),
                                    feed_id: s.get("feed_id").and_then(Value::as_u64),
                                    feed_mid: s
                                        .get("feed_mid")
                                        .and_then(Value::as_str)
                                        .map(str::to_owned),
                                    feed_display: s
                                        .get("feed_display")
                                        .and_then(Value::as_str)
                                        .map(str::to_owned),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            "event" => VideoRoomReply::Event {
                configured: data.get("configured").and_then(Value::as_str) == Some("ok"),
                started: data.get("started").and_then(Value::as_str) == Some("ok"),
                publishers: parse_feeds(data.get("publishers")),
                unpublished: data.get("unpublished").and_then(Value::as_u64),
                leaving: data.get("leaving").and_then(Value::as_u64),
            },
            other => VideoRoomReply::Other(other.to_owned()),
        })
    }
}

/// The publication name the bot's report uses for a stream of a subscriber handle.
pub(super) fn publication_name(stream: &SubscriberStream) -> String {
    let feed = stream
        .feed_display
        .clone()
        .or_else(|| stream.feed_id.map(|id| id.to_string()))
        .unwrap_or_else(|| "?".to_owned());
    format!("janus:{feed}:{}", stream.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_replies_are_typed() {
        let created = JanusMessage::parse(
            r#"{"janus":"success","transaction":"t1","data":{"id":4951254186713218}}"#,
        )
        .unwrap();
        assert_eq!(
            created,
            JanusMessage::Success {
                transaction: Some("t1".into()),
                id: Some(4951254186713218),
                plugin: None,
            }
        );
        assert_eq!(
            JanusMessage::parse(r#"{"janus":"ack","session_id":1,"transaction":"t2"}"#).unwrap(),
            JanusMessage::Ack {
                transaction: Some("t2".into())
            }
        );
        let error = JanusMessage::parse(
            r#"{"janus":"error","session_id":9,"transaction":"t3","error":{"code":458,"reason":"No such session 9"}}"#,
        )
        .unwrap();
        assert_eq!(
            error,
            JanusMessage::Error {
                transaction: Some("t3".into()),
                code: 458,
                reason: "No such session 9".into(),
            }
        );
        assert_eq!(
            JanusMessage::parse(r#"{"janus":"webrtcup","session_id":1,"sender":77}"#).unwrap(),
            JanusMessage::WebrtcUp { sender: 77 }
        );
        assert_eq!(
            JanusMessage::parse(
                r#"{"janus":"media","session_id":1,"sender":77,"mid":"1","type":"video","receiving":true}"#
            )
            .unwrap(),
            JanusMessage::Media {
                sender: 77,
                kind: "video".into(),
                receiving: true
            }
        );
        assert_eq!(
            JanusMessage::parse(
                r#"{"janus":"hangup","session_id":1,"sender":7,"reason":"DTLS alert"}"#
            )
            .unwrap(),
            JanusMessage::Hangup {
                sender: 7,
                reason: "DTLS alert".into()
            }
        );
        assert!(matches!(
            JanusMessage::parse(r#"{"janus":"slowlink","sender":7}"#).unwrap(),
            JanusMessage::Other { kind, sender: Some(7), .. } if kind == "slowlink"
        ));
    }

    #[test]
    fn bad_messages_are_errors_not_panics() {
        for text in [
            "",
            "not json",
            "[]",
            r#"{"transaction":"t"}"#,
            r#"{"janus":"hangup"}"#,
            r#"{"janus":"event","jsep":{"type":"offer"}}"#,
        ] {
            assert!(
                matches!(JanusMessage::parse(text), Err(JanusError::Malformed(_))),
                "{text}"
            );
        }
    }

    fn plugin(data: &str) -> Value {
        serde_json::from_str(&format!(
            r#"{{"plugin":"janus.plugin.videoroom","data":{data}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn videoroom_replies_are_typed() {
        assert_eq!(
            VideoRoomReply::parse(
                &plugin(r#"{"videoroom":"created","room":123456,"permanent":false}"#),
                "create"
            )
            .unwrap(),
            VideoRoomReply::Created { room: 123456 }
        );
        let joined = VideoRoomReply::parse(
            &plugin(
                r#"{"videoroom":"joined","room":5,"description":"d","id":111,"private_id":222,
                "publishers":[{"id":333,"display":"buyer","streams":[
                    {"type":"audio","mindex":0,"mid":"0","codec":"opus"},
                    {"type":"video","mindex":1,"mid":"1","codec":"vp8"},
                    {"type":"video","mindex":2,"mid":"2","disabled":true}]}]}"#,
            ),
            "join",
        )
        .unwrap();
        assert_eq!(
            joined,
            VideoRoomReply::Joined {
                room: 5,
                id: 111,
                private_id: Some(222),
                publishers: vec![Feed {
                    id: 333,
                    display: Some("buyer".into()),
                    streams: vec![("audio".into(), "0".into()), ("video".into(), "1".into())],
                }],
            }
        );
        let attached = VideoRoomReply::parse(
            &plugin(
                r#"{"videoroom":"attached","room":5,"streams":[
                {"type":"audio","active":true,"mindex":0,"mid":"0","ready":false,"send":true,
                 "feed_id":333,"feed_display":"buyer","feed_mid":"0","codec":"opus"},
                {"type":"video","active":true,"mindex":1,"mid":"1","feed_id":333,"feed_mid":"1"}]}"#,
            ),
            "join (subscriber)",
        )
        .unwrap();
        let VideoRoomReply::Attached { room, streams } = attached else {
            panic!("not attached: {attached:?}");
        };
        assert_eq!((room, streams.len()), (5, 2));
        assert_eq!(publication_name(&streams[0]), "janus:buyer:audio");
        assert_eq!(publication_name(&streams[1]), "janus:333:video");
        assert_eq!(streams[1].feed_mid.as_deref(), Some("1"));
        assert_eq!(
            VideoRoomReply::parse(
                &plugin(r#"{"videoroom":"event","room":5,"configured":"ok","audio_codec":"opus"}"#),
                "publish"
            )
            .unwrap(),
            VideoRoomReply::Event {
                configured: true,
                started: false,
                publishers: vec![],
                unpublished: None,
                leaving: None,
            }
        );
        assert!(matches!(
            VideoRoomReply::parse(
                &plugin(r#"{"videoroom":"event","room":5,"started":"ok"}"#),
                "start"
            )
            .unwrap(),
            VideoRoomReply::Event { started: true, .. }
        ));
        assert!(matches!(
            VideoRoomReply::parse(
                &plugin(r#"{"videoroom":"event","room":5,"unpublished":333}"#),
                "n"
            )
            .unwrap(),
            VideoRoomReply::Event {
                unpublished: Some(333),
                ..
            }
        ));
        // "leaving": "ok" is about oneself, not a feed.
        assert!(matches!(
            VideoRoomReply::parse(
                &plugin(r#"{"videoroom":"event","room":5,"leaving":"ok"}"#),
                "n"
            )
            .unwrap(),
            VideoRoomReply::Event { leaving: None, .. }
        ));
    }

    #[test]
    fn plugin_errors_are_typed() {
        let err = VideoRoomReply::parse(
            &plugin(r#"{"videoroom":"event","error_code":426,"error":"No such room (1234)"}"#),
            "join (publisher)",
        )
        .unwrap_err();
        match &err {
            JanusError::Plugin {
                request,
                code,
                message,
            } => {
                assert_eq!((request.as_str(), *code), ("join (publisher)", 426));
                assert_eq!(message, "No such room (1234)");
            }
            other => panic!("not a plugin error: {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "the VideoRoom plugin refused join (publisher): error 426: No such room (1234)"
        );
        let other_plugin: Value =
            serde_json::from_str(r#"{"plugin":"janus.plugin.echotest","data":{"result":"ok"}}"#)
                .unwrap();
        assert!(matches!(
            VideoRoomReply::parse(&other_plugin, "x"),
            Err(JanusError::Unexpected { .. })
        ));
        assert!(matches!(
            VideoRoomReply::parse(&plugin(r#"{"videoroom":"joined","room":5}"#), "join"),
            Err(JanusError::Malformed(_))
        ));
        assert!(matches!(
            VideoRoomReply::parse(&plugin(r#"{"room":5}"#), "join"),
            Err(JanusError::Malformed(_))
        ));
        // Into the bot's errors with the message kept.
        let bot: BotError = err.into();
        assert!(bot.to_string().contains("No such room (1234)"), "{bot}");
    }

    #[test]
    fn events_with_jsep_are_typed() {
        let message = JanusMessage::parse(
            r#"{"janus":"event","session_id":1,"sender":2,"transaction":"t9",
            "plugindata":{"plugin":"janus.plugin.videoroom","data":{"videoroom":"event","room":5,"configured":"ok"}},
            "jsep":{"type":"answer","sdp":"v=0\r\n"}}"#,
        )
        .unwrap();
        let JanusMessage::Event {
            transaction,
            sender,
            plugin: Some(plugin),
            jsep: Some(jsep),
        } = message
        else {
            panic!("not an event with plugin data and jsep");
        };
        assert_eq!((transaction.as_deref(), sender), (Some("t9"), Some(2)));
        assert_eq!(
            jsep,
            Jsep {
                kind: "answer".into(),
                sdp: "v=0\r\n".into()
            }
        );
        assert!(matches!(
            VideoRoomReply::parse(&plugin, "publish").unwrap(),
            VideoRoomReply::Event {
                configured: true,
                ..
            }
        ));
    }
}
