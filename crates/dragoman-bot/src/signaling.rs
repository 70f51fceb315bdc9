//! The signaling client: one WebSocket of JSON text frames, requests matched to their replies by
//! `id`, everything else applied to the bot's state in arrival order and handed on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dragoman_signal::protocol::{
    ClientMessage, PublicationInfo, RequestId, ServerMessage, SubscribedTrack, TransportKind,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};

use crate::error::BotError;
use crate::state::Shared;

/// The reply a request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    Joined,
    PublisherAnswer,
    Published,
    Ok,
    Pong,
}

impl Expect {
    fn matches(self, message: &ServerMessage) -> bool {
        matches!(
            (self, message),
            (Expect::Joined, ServerMessage::Joined { .. })
                | (
                    Expect::PublisherAnswer,
                    ServerMessage::Answer {
                        transport: TransportKind::Publisher,
                        ..
                    }
                )
                | (Expect::Published, ServerMessage::Published { .. })
                | (Expect::Ok, ServerMessage::Ok { .. })
                | (Expect::Pong, ServerMessage::Pong { .. })
        )
    }
}

/// What the reader hands to the bot's event loop (after applying it to the state).
#[derive(Debug)]
pub(crate) enum Inbound {
    /// The server offers (or re-offers) the subscriber transport.
    SubscriberOffer {
        sdp: String,
        tracks: Vec<SubscribedTrack>,
    },
    /// Another participant published.
    PublicationAdded(PublicationInfo),
}

/// A reply and when it arrived (ms on the bot's clock).
type TimedReply = (ServerMessage, u64);

#[derive(Debug, Default)]
struct Pending {
    waiting: BTreeMap<u64, (Expect, oneshot::Sender<TimedReply>)>,
    /// Ids of messages sent without waiting (subscriber answers): their replies are dropped, their
    /// errors recorded as events.
    unawaited: BTreeMap<u64, &'static str>,
    /// Why the socket closed, once it has.
    closed: Option<String>,
}

/// What became of a reply.
#[derive(Debug)]
enum Delivery {
    /// Handed to the waiting request.
    Delivered,
    /// The reply to a message nobody waits on; an error is worth recording.
    Unawaited(&'static str, ServerMessage),
    /// Nobody asked for it.
    Unclaimed(ServerMessage),
}

impl Pending {
    /// Hand a reply to the request that waits for it, by id. A reply without an id goes to the
    /// pending request of its type only where that cannot be ambiguous (`join`, the publisher
    /// offer: one at a time); an id-less `ok` is never guessed at, since the server also sends
    /// those for messages sent without an id.
    fn deliver(&mut self, message: ServerMessage, at_ms: u64) -> Delivery {
        let key = match reply_id(&message) {
            Some(RequestId::Number(n)) => {
                if let Some(what) = self.unawaited.remove(n) {
                    return Delivery::Unawaited(what, message);
                }
                Some(*n)
            }
            Some(RequestId::Text(_)) => None,
            None => self
                .waiting
                .iter()
                .find(|(_, (expect, _))| {
                    matches!(expect, Expect::Joined | Expect::PublisherAnswer)
                        && expect.matches(&message)
                })
                .map(|(k, _)| *k),
        };
        match key.and_then(|k| self.waiting.remove(&k)) {
            Some((_, tx)) => {
                // The requester may have timed out meanwhile; then the reply is simply dropped.
                let _ = tx.send((message, at_ms));
                Delivery::Delivered
            }
            None => Delivery::Unclaimed(message),
        }
    }
}

/// The `id` of a reply-type message, if it has one.
fn reply_id(message: &ServerMessage) -> Option<&RequestId> {
    match message {
        ServerMessage::Joined { id, .. }
        | ServerMessage::Answer { id, .. }
        | ServerMessage::Published { id, .. }
        | ServerMessage::Ok { id }
        | ServerMessage::Pong { id }
        | ServerMessage::Error { id, .. } => id.as_ref(),
        _ => None,
    }
}

fn is_reply(message: &ServerMessage) -> bool {
    matches!(
        message,
        ServerMessage::Joined { .. }
            | ServerMessage::Answer {
                transport: TransportKind::Publisher,
                ..
            }
            | ServerMessage::Published { .. }
            | ServerMessage::Ok { .. }
            | ServerMessage::Pong { .. }
            | ServerMessage::Error { id: Some(_), .. }
    )
}

#[derive(Debug)]
struct ClientInner {
    out: mpsc::UnboundedSender<Message>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    request_timeout: Duration,
}

/// A handle to the signaling connection; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct SignalClient {
    inner: Arc<ClientInner>,
}

/// An open connection: the client, the stream of messages for the event loop, and the tasks.
pub(crate) struct Connection {
    pub client: SignalClient,
    pub inbound: mpsc::UnboundedReceiver<Inbound>,
    pub tasks: Vec<JoinHandle<()>>,
}

/// The task that writes a WebSocket's outgoing messages in order until a close frame (sent, then
/// the socket closed) or a write error (logged as `what`).
pub(crate) fn spawn_writer<S>(
    mut sink: S,
    mut out_rx: mpsc::UnboundedReceiver<Message>,
    what: &'static str,
) -> JoinHandle<()>
where
    S: futures_util::Sink<Message> + Unpin + Send + 'static,
    S::Error: std::fmt::Display,
{
    tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            let closing = matches!(message, Message::Close(_));
            if let Err(e) = sink.send(message).await {
                debug!("{what} write failed: {e}");
                break;
            }
            if closing {
                break;
            }
        }
        let _ = sink.close().await;
    })
}

/// Open the WebSocket and start its reader and writer tasks.
pub(crate) async fn connect(
    url: &str,
    connect_timeout: Duration,
    request_timeout: Duration,
    shared: Arc<Shared>,
) -> Result<Connection, BotError> {
    let (socket, _response) =
        tokio::time::timeout(connect_timeout, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| BotError::timeout(format!("the WebSocket to {url}"), connect_timeout))?
            .map_err(|e| BotError::Connect {
                url: url.to_owned(),
                message: e.to_string(),
            })?;
    let (sink, mut stream) = socket.split();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Message>();
    let (inbound_tx, inbound) = mpsc::unbounded_channel();
    let client = SignalClient {
        inner: Arc::new(ClientInner {
            out: out_tx,
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(1),
            request_timeout,
        }),
    };

    let writer = spawn_writer(sink, out_rx, "signaling");

    let reader_client = client.clone();
    let reader = tokio::spawn(async move {
        let reason = loop {
            match stream.next().await {
                None => break "the server closed the connection".to_owned(),
                Some(Err(e)) => break format!("read error: {e}"),
                Some(Ok(Message::Text(text))) => {
                    reader_client.on_text(text.as_str(), &shared, &inbound_tx);
                }
                Some(Ok(Message::Close(frame))) => {
                    break match frame {
                        Some(frame) => {
                            format!("closed by the server: {} {}", frame.code, frame.reason)
                        }
                        None => "closed by the server".to_owned(),
                    };
                }
                Some(Ok(Message::Binary(_))) => {
                    let now = shared.now_ms();
                    shared
                        .lock()
                        .unexpected(now, "a binary frame on the signaling socket".into());
                }
                Some(Ok(_)) => {} // ping/pong: answered by tungstenite
            }
        };
        debug!("signaling reader ends: {reason}");
        let now = shared.now_ms();
        shared.lock().signaling_closed(now, reason.clone());
        reader_client.closed(reason);
    });

    Ok(Connection {
        client,
        inbound,
        tasks: vec![reader, writer],
    })
}

impl SignalClient {
    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The reader saw the socket end: fail every waiting request.
    fn closed(&self, reason: String) {
        let mut pending = self.lock_pending();
        pending.closed = Some(reason);
        pending.waiting.clear();
    }

    /// Why the connection closed, if it has.
    pub fn closed_reason(&self) -> Option<String> {
        self.lock_pending().closed.clone()
    }

    fn on_text(&self, text: &str, shared: &Shared, inbound: &mpsc::UnboundedSender<Inbound>) {
        let now = shared.now_ms();
        let message = match serde_json::from_str::<ServerMessage>(text) {
            Ok(message) => message,
            Err(e) => {
                warn!("unreadable server message: {e}");
                let shown: String = text.chars().take(200).collect();
                shared
                    .lock()
                    .unexpected(now, format!("unreadable message ({e}): {shown}"));
                return;
            }
        };
        debug!(?message, "server message");
        shared.lock().apply(&message, now);

        if is_reply(&message) {
            let delivery = self.lock_pending().deliver(message, now);
            match delivery {
                Delivery::Delivered => {}
                Delivery::Unawaited(what, ServerMessage::Error { code, message, .. }) => {
                    warn!("the server refused {what}: {code}: {message}");
                    shared.lock().apply(
                        &ServerMessage::Error {
                            id: None,
                            code,
                            message: format!("in reply to {what}: {message}"),
                        },
                        now,
                    );
                }
                Delivery::Unawaited(..) => {}
                Delivery::Unclaimed(ServerMessage::Error { code, message, .. }) => {
                    shared.lock().apply(
                        &ServerMessage::Error {
                            id: None,
                            code,
                            message,
                        },
                        now,
                    );
                }
                // An id-less `ok` answers a message sent without an id.
                Delivery::Unclaimed(ServerMessage::Ok { id: None }) => {}
                Delivery::Unclaimed(other) => shared
                    .lock()
                    .unexpected(now, format!("a reply nobody waits for: {other:?}")),
            }
            return;
        }
        let forward = match message {
            ServerMessage::Offer {
                transport: TransportKind::Subscriber,
                sdp,
                tracks,
            } => Some(Inbound::SubscriberOffer { sdp, tracks }),
            ServerMessage::PublicationAdded { publication } => {
                Some(Inbound::PublicationAdded(publication))
            }
            ServerMessage::Offer {
                transport: TransportKind::Publisher,
                ..
            }
            | ServerMessage::Answer {
                transport: TransportKind::Subscriber,
                ..
            } => {
                shared.lock().unexpected(
                    now,
                    "the server negotiated a transport the other way round".into(),
                );
                None
            }
            _ => None,
        };
        if let Some(forward) = forward {
            // The event loop is gone only when the bot is shutting down.
            let _ = inbound.send(forward);
        }
    }

    fn send_raw(&self, message: &ClientMessage) -> Result<(), BotError> {
        let text = serde_json::to_string(message).map_err(|e| {
            BotError::Protocol(format!("cannot encode {}: {e}", message.type_name()))
        })?;
        debug!(message = %text, "client message");
        self.inner.out.send(Message::text(text)).map_err(|_| {
            BotError::SignalingClosed(
                self.closed_reason()
                    .unwrap_or_else(|| "the writer has stopped".into()),
            )
        })
    }

    /// Send a message built around a fresh id without waiting for its reply; a refusal is
    /// recorded as an error event.
    pub fn send_unawaited(
        &self,
        what: &'static str,
        build: impl FnOnce(Option<RequestId>) -> ClientMessage,
    ) -> Result<(), BotError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut pending = self.lock_pending();
            if let Some(reason) = &pending.closed {
                return Err(BotError::SignalingClosed(reason.clone()));
            }
            // Bounded: the oldest entries are dropped if a server never replies.
            if pending.unawaited.len() >= 256 {
                pending.unawaited.pop_first();
            }
            pending.unawaited.insert(id, what);
        }
        self.send_raw(&build(Some(RequestId::Number(id))))
    }

    /// Send a request built around a fresh id and wait (bounded) for its reply.
    ///
    /// An `error` reply becomes [`BotError::Server`]; a reply of another type than `expect`
    /// becomes [`BotError::UnexpectedReply`].
    pub async fn request(
        &self,
        what: &str,
        expect: Expect,
        build: impl FnOnce(Option<RequestId>) -> ClientMessage,
    ) -> Result<ServerMessage, BotError> {
        self.request_timed(what, expect, build)
            .await
            .map(|(reply, _)| reply)
    }

    /// [`SignalClient::request`], also telling when the reply arrived (ms on the bot's clock, taken
    /// by the reader as the frame came in).
    pub async fn request_timed(
        &self,
        what: &str,
        expect: Expect,
        build: impl FnOnce(Option<RequestId>) -> ClientMessage,
    ) -> Result<TimedReply, BotError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.lock_pending();
            if let Some(reason) = &pending.closed {
                return Err(BotError::SignalingClosed(reason.clone()));
            }
            pending.waiting.insert(id, (expect, tx));
        }
        if let Err(e) = self.send_raw(&build(Some(RequestId::Number(id)))) {
            self.lock_pending().waiting.remove(&id);
            return Err(e);
        }
        let timeout = self.inner.request_timeout;
        let reply = match tokio::time::timeout(timeout, rx).await {
            Err(_) => {
                self.lock_pending().waiting.remove(&id);
                return Err(BotError::timeout(format!("the reply to {what}"), timeout));
            }
            Ok(Err(_)) => {
                return Err(BotError::SignalingClosed(
                    self.closed_reason()
                        .unwrap_or_else(|| "the connection ended".into()),
                ));
            }
            Ok(Ok(reply)) => reply,
        };
        match reply {
            (ServerMessage::Error { code, message, .. }, _) => Err(BotError::Server {
                request: what.to_owned(),
                code,
                message,
            }),
            (reply, at_ms) if expect.matches(&reply) => Ok((reply, at_ms)),
            (reply, _) => Err(BotError::UnexpectedReply {
                request: what.to_owned(),
                reply: format!("{reply:?}"),
            }),
        }
    }

    /// Ask the writer to close the socket.
    pub fn close(&self) {
        let _ = self.inner.out.send(Message::Close(None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_go_to_their_request_by_id() {
        let mut pending = Pending::default();
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        pending.waiting.insert(1, (Expect::Ok, tx1));
        pending.waiting.insert(2, (Expect::Published, tx2));
        pending.unawaited.insert(3, "answer");

        // an `ok` for an unknown id is nobody's
        let stray = ServerMessage::Ok {
            id: Some(RequestId::Number(9)),
        };
        assert!(matches!(pending.deliver(stray, 0), Delivery::Unclaimed(_)));
        // an id-less `ok` is never guessed at
        let bare = ServerMessage::Ok { id: None };
        assert!(matches!(pending.deliver(bare, 0), Delivery::Unclaimed(_)));

        // an `error` with request 2's id goes to request 2, whatever it expected
        let refused = ServerMessage::Error {
            id: Some(RequestId::Number(2)),
            code: dragoman_signal::ErrorCode::Forbidden,
            message: "no".into(),
        };
        assert!(matches!(pending.deliver(refused, 0), Delivery::Delivered));
        assert!(matches!(
            rx2.try_recv(),
            Ok((ServerMessage::Error { .. }, 0))
        ));

        let ok = ServerMessage::Ok {
            id: Some(RequestId::Number(1)),
        };
        assert!(matches!(pending.deliver(ok, 0), Delivery::Delivered));
        assert!(matches!(rx1.try_recv(), Ok((ServerMessage::Ok { .. }, 0))));

        // the reply to an unawaited message is recognised as such, once
        let ok3 = ServerMessage::Ok {
            id: Some(RequestId::Number(3)),
        };
        assert!(matches!(
            pending.deliver(ok3.clone(), 0),
            Delivery::Unawaited("answer", _)
        ));
        assert!(matches!(pending.deliver(ok3, 0), Delivery::Unclaimed(_)));
        assert!(pending.waiting.is_empty());
    }

    #[test]
    fn an_id_less_joined_goes_to_the_join_request() {
        let mut pending = Pending::default();
        let (tx, mut rx) = oneshot::channel();
        pending.waiting.insert(1, (Expect::Joined, tx));
        let joined: ServerMessage = serde_json::from_value(serde_json::json!({
            "type": "joined", "call": {"id": "C"},
            "participant": {"id": "P", "name": "p", "role": "company"},
            "participants": [], "publications": [], "ice_servers": []
        }))
        .unwrap();
        assert!(matches!(pending.deliver(joined, 0), Delivery::Delivered));
        assert!(matches!(
            rx.try_recv(),
            Ok((ServerMessage::Joined { .. }, 0))
        ));
    }
}
