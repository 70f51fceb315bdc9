//! HTTP surface: `/v1/signal` (WebSocket), `/healthz`, `/metrics`, and a landing page.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use dragoman_signal::protocol::LeaveReason;
use dragoman_signal::token::unix_now;
use dragoman_signal::{ErrorCode, SignalError};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::registry::{Outbound, close_code};
use crate::session::{Flow, Session};
use crate::state::AppState;

/// Frames above this size close the socket outright; up to it, the configured (smaller or equal)
/// message limit answers with `message_too_large` and keeps the connection.
const HARD_FRAME_LIMIT: usize = crate::config::MAX_MESSAGE_BYTES_CEILING + 1024;

/// The HTTP application.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/signal", get(signal))
        .route("/join", get(crate::web::join_page))
        .route("/operator", get(crate::web::operator_page))
        .route("/{*path}", get(crate::web::static_file))
        .merge(crate::operator::routes(state.clone()))
        .with_state(state)
}

async fn landing(State(state): State<Arc<AppState>>) -> Html<String> {
    let http = state.config.http;
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Dragoman</title>\
         <h1>Dragoman SFU</h1>\
         <p>Participants open a join link: <code>http://{http}/join?token=TOKEN</code>.</p>\
         <p>Signaling: <code>ws://{http}/v1/signal</code> (protocol in <code>docs/protocol.md</code>).</p>\
         <p>Mint a join token: <code>dragoman token --secret SECRET --call CALL --identity ID --role company</code> \
         (SECRET is the one <code>dragoman serve</code> printed at start, or your <code>DRAGOMAN_SECRET</code>).</p>\
         <p><a href=/healthz>/healthz</a> · <a href=/metrics>/metrics</a></p>"
    ))
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    match state.media.run_on_all(|_, _| ()).await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "a media worker stopped\n").into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let snapshot = state
        .media
        .run_on_all(|w, _| (w.engine.counts(), w.engine.stats().clone(), w.socket))
        .await;
    if let Ok(workers) = snapshot {
        let (mut counts, mut stats, mut socket) = Default::default();
        let peers: Vec<usize> = workers.iter().map(|(c, _, _)| c.peers).collect();
        state.metrics.update_workers(&peers);
        for (c, s, k) in workers {
            counts += c;
            stats += &s;
            socket += k;
        }
        state
            .metrics
            .update_media(state.registry.call_count(), counts, &stats, socket);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct SignalQuery {
    token: Option<String>,
}

/// Upgrade to the signaling WebSocket. A `?token=` is checked before the upgrade, so a bad token is
/// refused with HTTP 401 and a JSON reason instead of a socket.
async fn signal(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    Query(query): Query<SignalQuery>,
    State(state): State<Arc<AppState>>,
) -> Response {
    if let Some(token) = &query.token
        && let Err(e) = state.tokens.verify(token, unix_now())
    {
        let error = SignalError::from(e);
        state.metrics.signaling_error(error.code);
        let body = serde_json::json!({"code": error.code, "message": error.message});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| run_connection(state, socket))
}

/// Serve one signaling connection until it closes.
async fn run_connection(state: Arc<AppState>, socket: WebSocket) {
    state.metrics.connection_opened();
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut outgoing) = mpsc::unbounded_channel::<Outbound>();
    let writer = tokio::spawn(async move {
        while let Some(out) = outgoing.recv().await {
            let frame = match out {
                Outbound::Message(message) => match serde_json::to_string(&*message) {
                    Ok(text) => Message::Text(text.into()),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot serialize a server message");
                        continue;
                    }
                },
                Outbound::Close { code, reason } => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })))
                        .await;
                    break;
                }
            };
            if sink.send(frame).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let mut session = Session::new(state.clone(), outbox.clone());
    let mut shutdown = state.shutdown.clone();
    let join_deadline = tokio::time::Instant::now() + state.config.limits.join_timeout();
    let mut reason = LeaveReason::Disconnected;
    loop {
        let joined = session.is_joined();
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if session.handle_text(text.as_str()).await == Flow::Close {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_))) => session.handle_binary(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            _ = tokio::time::sleep_until(join_deadline), if !joined => {
                let _ = outbox.send(Outbound::Message(Box::new(dragoman_signal::protocol::ServerMessage::Error {
                    id: None,
                    code: ErrorCode::NotJoined,
                    message: "no join within the join timeout".into(),
                })));
                let _ = outbox.send(Outbound::Close {
                    code: close_code::JOIN_TIMEOUT,
                    reason: "no join within the join timeout".into(),
                });
                break;
            }
            _ = shutdown.changed() => {
                reason = LeaveReason::ServerShutdown;
                let _ = outbox.send(Outbound::Close {
                    code: close_code::SHUTDOWN,
                    reason: "server shutting down".into(),
                });
                break;
            }
        }
    }
    session.leave(reason).await;
    drop(session);
    drop(outbox);
    // Let the writer flush what is queued (a close frame, an error) before the socket goes.
    if tokio::time::timeout(Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        tracing::debug!("signaling writer did not finish in time");
    }
    state.metrics.connection_closed();
}
