//! One WebSocket to Janus ([`connect`]): requests go out with a fresh transaction and are matched
//! to their answers ([`JanusClient`]), everything else goes to the connection's notification
//! stream; and a Janus [`Session`] on it, with the requests the bot makes (attach, VideoRoom
//! messages, trickle, keepalive, destroy).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tracing::{debug, warn};

use super::protocol::{JanusError, JanusMessage, Jsep, SUBPROTOCOL, VIDEOROOM, VideoRoomReply};

/// What a request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
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
pub(super) struct JanusClient {
    inner: Arc<ClientInner>,
}

/// An open WebSocket, its notifications and tasks.
pub(super) struct Connection {
    pub(super) client: JanusClient,
    pub(super) notifications: mpsc::UnboundedReceiver<JanusMessage>,
    pub(super) tasks: Vec<JoinHandle<()>>,
}

pub(super) async fn connect(url: &str, timeout: Duration) -> Result<Connection, JanusError> {
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
    let (sink, mut stream) = socket.split();
    let (out, out_rx) = mpsc::unbounded_channel::<Message>();
    let (note_tx, notifications) = mpsc::unbounded_channel();
    let client = JanusClient {
        inner: Arc::new(ClientInner {
            out,
            pending: Mutex::new(Pending::default()),
            next: AtomicU64::new(1),
            timeout,
        }),
    };
    let writer = crate::signaling::spawn_writer(sink, out_rx, "Janus");
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

    pub(super) fn close(&self) {
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
pub(super) struct Session {
    pub(super) client: JanusClient,
    pub(super) id: u64,
}

impl Session {
    pub(super) async fn create(client: JanusClient) -> Result<Session, JanusError> {
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
    pub(super) async fn attach(&self) -> Result<u64, JanusError> {
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
    pub(super) async fn message(
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
    pub(super) async fn end_of_candidates(&self, handle: u64) -> Result<(), JanusError> {
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

    pub(super) async fn keepalive(&self) -> Result<(), JanusError> {
        self.client
            .call(
                "keepalive",
                Wait::Ack,
                object(json!({ "janus": "keepalive", "session_id": self.id })),
            )
            .await
            .map(|_| ())
    }

    pub(super) async fn destroy(&self) -> Result<(), JanusError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
