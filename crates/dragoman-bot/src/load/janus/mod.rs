//! A Janus VideoRoom signaling adapter, **only for the side-by-side load comparison** (issue 5,
//! point 3): it lets `dragoman-bot load --server janus` run the very same synthetic four-party
//! calls against a Janus gateway (Debian's `janus` 1.1, VideoRoom plugin) as against Dragoman, so
//! that the same measurement code counts CPU per delivered packet, loss and latency for both.
//! Nothing else in the bot uses it, and Dragoman does not depend on Janus.
//!
//! It speaks the Janus API over Janus's WebSocket transport (subprotocol `janus-protocol`): one
//! WebSocket and one Janus session per party, kept alive every [`KEEPALIVE`].
//!
//! - **Per call**, one VideoRoom room, created through the API ([`create_room`]) on a short-lived
//!   session of its own before the parties join.
//! - **Per party**, a publisher handle (`join` as `publisher`, then `publish` with the bot's SDP
//!   offer of one Opus and one VP8 track; Janus answers) and, once the other three parties have
//!   published, one subscriber handle (Janus 1.x multistream: `join` as `subscriber` with
//!   `streams: [{feed}, …]`, Janus offers every stream of those feeds, the bot answers with
//!   `start`).
//!
//! The bots' peer connections, synthetic senders and receivers are the ones a Dragoman load run
//! uses; only the signaling differs. The SDPs carry all candidates (the bots gather before they
//! send; Janus answers half-trickle, with its candidates in the SDP), and an end-of-candidates
//! trickle follows each SDP the bot sends.
//!
//! Every reply is parsed into typed results ([`JanusMessage`], [`VideoRoomReply`]); an `error`
//! reply of the core or an `error_code` of the plugin becomes a [`JanusError`]. Nothing panics on
//! what Janus sends.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dragoman_signal::protocol::{TrackKind, TransportKind};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tracing::{debug, info, warn};
use webrtc::peer_connection::RTCSessionDescription;

use crate::config::Timeouts;
use crate::error::BotError;
use crate::peer::Peer;
use crate::publisher::{self, SendOptions, TrackMedia};
use crate::report::Report;
use crate::sdp;
use crate::state::Shared;
use crate::synthetic::{SyntheticMedia, SyntheticReceive, SyntheticStats};

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
    fn to_json(&self) -> Value {
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
fn publication_name(stream: &SubscriberStream) -> String {
    let feed = stream
        .feed_display
        .clone()
        .or_else(|| stream.feed_id.map(|id| id.to_string()))
        .unwrap_or_else(|| "?".to_owned());
    format!("janus:{feed}:{}", stream.kind)
}

/// What a request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// `keepalive`, `trickle`: the `ack` is the answer.
    Ack,
    /// Core requests and synchronous plugin requests: `success` (or `error`).
    Success,
    /// Asynchronous plugin requests: the `event` after the `ack`.
    Event,
}

#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<String, (Wait, oneshot::Sender<JanusMessage>)>,
    closed: Option<String>,
}

#[derive(Debug)]
struct ClientInner {
    out: mpsc::UnboundedSender<Message>,
    pending: Mutex<Pending>,
    next: AtomicU64,
    timeout: Duration,
}

/// One WebSocket to Janus: requests matched to their answers by transaction; everything else
/// goes to the connection's notification stream.
#[derive(Debug, Clone)]
struct JanusClient {
    inner: Arc<ClientInner>,
}

/// An open WebSocket, its notifications and tasks.
struct Connection {
    client: JanusClient,
    notifications: mpsc::UnboundedReceiver<JanusMessage>,
    tasks: Vec<JoinHandle<()>>,
}

async fn connect(url: &str, timeout: Duration) -> Result<Connection, JanusError> {
    let connect_error = |message: String| JanusError::Connect {
        url: url.to_owned(),
        message,
    };
    let mut request = url
        .into_client_request()
        .map_err(|e| connect_error(e.to_string()))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (socket, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(request))
        .await
        .map_err(|_| JanusError::Timeout {
            request: "the WebSocket".into(),
            timeout,
        })?
        .map_err(|e| connect_error(e.to_string()))?;
    let (mut sink, mut stream) = socket.split();
    let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
    let (note_tx, notifications) = mpsc::unbounded_channel();
    let client = JanusClient {
        inner: Arc::new(ClientInner {
            out,
            pending: Mutex::new(Pending::default()),
            next: AtomicU64::new(1),
            timeout,
        }),
    };
    let writer = tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            let closing = matches!(message, Message::Close(_));
            if let Err(e) = sink.send(message).await {
                debug!("Janus write failed: {e}");
                break;
            }
            if closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let reader_client = client.clone();
    let reader = tokio::spawn(async move {
        let reason = loop {
            match stream.next().await {
                None => break "Janus closed the connection".to_owned(),
                Some(Err(e)) => break format!("read error: {e}"),
                Some(Ok(Message::Text(text))) => match JanusMessage::parse(text.as_str()) {
                    Ok(message) => {
                        if let Some(message) = reader_client.deliver(message) {
                            let _ = note_tx.send(message);
                        }
                    }
                    Err(e) => warn!("{e}"),
                },
                Some(Ok(Message::Close(frame))) => {
                    break frame.map_or_else(
                        || "closed by Janus".to_owned(),
                        |f| format!("closed by Janus: {} {}", f.code, f.reason),
                    );
                }
                Some(Ok(_)) => {}
            }
        };
        debug!("Janus reader ends: {reason}");
        reader_client.closed(reason);
    });
    Ok(Connection {
        client,
        notifications,
        tasks: vec![reader, writer],
    })
}

impl JanusClient {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn closed(&self, reason: String) {
        let mut pending = self.lock();
        pending.closed = Some(reason);
        pending.waiting.clear();
    }

    /// Hand `message` to the request waiting for it; return it when nobody is.
    fn deliver(&self, message: JanusMessage) -> Option<JanusMessage> {
        let Some(transaction) = message.transaction().map(str::to_owned) else {
            return Some(message);
        };
        let mut pending = self.lock();
        let Some((wait, _)) = pending.waiting.get(&transaction) else {
            return match message {
                // The ack of a request that already has its answer, or of a timed-out one.
                JanusMessage::Ack { .. } => None,
                other => Some(other),
            };
        };
        let answers = match (&message, wait) {
            (JanusMessage::Error { .. }, _) => true,
            (JanusMessage::Ack { .. }, Wait::Ack) => true,
            (JanusMessage::Ack { .. }, _) => false,
            (_, _) => true,
        };
        if !answers {
            return None;
        }
        if let Some((_, tx)) = pending.waiting.remove(&transaction) {
            let _ = tx.send(message);
        }
        None
    }

    fn close(&self) {
        let _ = self.inner.out.send(Message::Close(None));
    }

    /// Send `body` (with a fresh transaction) and wait for its answer.
    async fn call(
        &self,
        what: &str,
        wait: Wait,
        mut body: Map<String, Value>,
    ) -> Result<JanusMessage, JanusError> {
        let transaction = format!("t{}", self.inner.next.fetch_add(1, Ordering::Relaxed));
        body.insert("transaction".into(), Value::String(transaction.clone()));
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.lock();
            if let Some(reason) = &pending.closed {
                return Err(JanusError::Closed(reason.clone()));
            }
            pending.waiting.insert(transaction.clone(), (wait, tx));
        }
        let text = Value::Object(body).to_string();
        if self.inner.out.send(Message::Text(text.into())).is_err() {
            self.lock().waiting.remove(&transaction);
            return Err(JanusError::Closed("the writer has stopped".into()));
        }
        let timeout = self.inner.timeout;
        let answer = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => {
                let reason = self
                    .lock()
                    .closed
                    .clone()
                    .unwrap_or_else(|| "dropped".into());
                return Err(JanusError::Closed(reason));
            }
            Err(_) => {
                self.lock().waiting.remove(&transaction);
                return Err(JanusError::Timeout {
                    request: what.to_owned(),
                    timeout,
                });
            }
        };
        match answer {
            JanusMessage::Error { code, reason, .. } => Err(JanusError::Core {
                request: what.to_owned(),
                code,
                reason,
            }),
            other => Ok(other),
        }
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// One Janus session on its connection.
#[derive(Debug, Clone)]
struct Session {
    client: JanusClient,
    id: u64,
}

impl Session {
    async fn create(client: JanusClient) -> Result<Session, JanusError> {
        let reply = client
            .call(
                "create",
                Wait::Success,
                object(json!({ "janus": "create" })),
            )
            .await?;
        match reply {
            JanusMessage::Success { id: Some(id), .. } => Ok(Session { client, id }),
            other => Err(JanusError::Unexpected {
                request: "create".into(),
                reply: format!("{other:?}"),
            }),
        }
    }

    /// Attach a VideoRoom handle.
    async fn attach(&self) -> Result<u64, JanusError> {
        let reply = self
            .client
            .call(
                "attach",
                Wait::Success,
                object(json!({ "janus": "attach", "session_id": self.id, "plugin": VIDEOROOM })),
            )
            .await?;
        match reply {
            JanusMessage::Success { id: Some(id), .. } => Ok(id),
            other => Err(JanusError::Unexpected {
                request: "attach".into(),
                reply: format!("{other:?}"),
            }),
        }
    }

    /// A VideoRoom request on `handle`; synchronous ones (`create`) answer with `success`, the
    /// others with an `event` after the `ack`.
    async fn message(
        &self,
        what: &str,
        handle: u64,
        body: Value,
        jsep: Option<&Jsep>,
        wait: Wait,
    ) -> Result<(VideoRoomReply, Option<Jsep>), JanusError> {
        let mut request = object(json!({
            "janus": "message",
            "session_id": self.id,
            "handle_id": handle,
            "body": body,
        }));
        if let Some(jsep) = jsep {
            request.insert("jsep".into(), jsep.to_json());
        }
        let reply = self.client.call(what, wait, request).await?;
        let (plugin, jsep) = match reply {
            JanusMessage::Success {
                plugin: Some(plugin),
                ..
            } => (plugin, None),
            JanusMessage::Event {
                plugin: Some(plugin),
                jsep,
                ..
            } => (plugin, jsep),
            other => {
                return Err(JanusError::Unexpected {
                    request: what.to_owned(),
                    reply: format!("{other:?}"),
                });
            }
        };
        Ok((VideoRoomReply::parse(&plugin, what)?, jsep))
    }

    /// Tell Janus the bot has no more candidates (they were all in its SDP).
    async fn end_of_candidates(&self, handle: u64) -> Result<(), JanusError> {
        self.client
            .call(
                "trickle",
                Wait::Ack,
                object(json!({
                    "janus": "trickle",
                    "session_id": self.id,
                    "handle_id": handle,
                    "candidate": { "completed": true },
                })),
            )
            .await
            .map(|_| ())
    }

    async fn keepalive(&self) -> Result<(), JanusError> {
        self.client
            .call(
                "keepalive",
                Wait::Ack,
                object(json!({ "janus": "keepalive", "session_id": self.id })),
            )
            .await
            .map(|_| ())
    }

    async fn destroy(&self) -> Result<(), JanusError> {
        self.client
            .call(
                "destroy",
                Wait::Success,
                object(json!({ "janus": "destroy", "session_id": self.id })),
            )
            .await
            .map(|_| ())
    }
}

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

    #[tokio::test]
    async fn answers_are_matched_by_transaction_and_acks_skipped() {
        let (out, _out_rx) = mpsc::unbounded_channel();
        let client = JanusClient {
            inner: Arc::new(ClientInner {
                out,
                pending: Mutex::new(Pending::default()),
                next: AtomicU64::new(1),
                timeout: Duration::from_secs(5),
            }),
        };
        let (tx, mut rx) = oneshot::channel();
        client.lock().waiting.insert("t1".into(), (Wait::Event, tx));
        // The ack does not answer an asynchronous request; a notification is handed on.
        assert_eq!(
            client.deliver(JanusMessage::Ack {
                transaction: Some("t1".into())
            }),
            None
        );
        assert!(rx.try_recv().is_err());
        let note = JanusMessage::Event {
            transaction: None,
            sender: Some(1),
            plugin: None,
            jsep: None,
        };
        assert_eq!(client.deliver(note.clone()), Some(note));
        let answer = JanusMessage::Event {
            transaction: Some("t1".into()),
            sender: Some(1),
            plugin: None,
            jsep: None,
        };
        assert_eq!(client.deliver(answer.clone()), None);
        assert_eq!(rx.try_recv().unwrap(), answer);
        // A late ack of an answered request is dropped.
        assert_eq!(
            client.deliver(JanusMessage::Ack {
                transaction: Some("t1".into())
            }),
            None
        );
        // A call on a closed connection fails at once, with the reason.
        client.closed("gone".into());
        let err = client
            .call("keepalive", Wait::Ack, Map::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, JanusError::Closed(ref r) if r == "gone"),
            "{err}"
        );
    }

    #[test]
    fn rooms_are_opus_vp8_without_recording() {
        let room = room_settings("x");
        assert_eq!(room["audiocodec"], "opus");
        assert_eq!(room["videocodec"], "vp8");
        assert_eq!(room["record"], false);
        assert_eq!(room["publishers"], 4);
    }
}
