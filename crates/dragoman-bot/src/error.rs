//! Typed errors of the bot: what failed, and while doing what.

use std::time::Duration;

use dragoman_signal::ErrorCode;

/// Everything that can go wrong while a bot joins, negotiates, publishes, subscribes or leaves.
///
/// Bad input from the server never panics the bot: it ends up here (or, for unsolicited messages,
/// in the report's event list).
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The configuration cannot work (bad URL, loss share out of range, …).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The WebSocket connection could not be opened.
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },

    /// The signaling connection ended while the bot still needed it.
    #[error("signaling connection closed: {0}")]
    SignalingClosed(String),

    /// A bounded wait ran out.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },

    /// The server answered a request with an `error` message.
    #[error("server refused {request}: {code}: {message}")]
    Server {
        request: String,
        code: ErrorCode,
        message: String,
    },

    /// The server answered a request with a message of the wrong type.
    #[error("unexpected reply to {request}: {reply}")]
    UnexpectedReply { request: String, reply: String },

    /// The server sent something the bot cannot use (bad SDP, unknown mid, …).
    #[error("bad input from the server: {0}")]
    Protocol(String),

    /// The WebRTC stack refused an operation.
    #[error("webrtc ({context}): {message}")]
    WebRtc { context: String, message: String },

    /// A peer connection reached the `failed` or `closed` state.
    #[error("{transport} transport {state}")]
    TransportFailed {
        transport: &'static str,
        state: String,
    },

    /// The embedded test media could not be loaded or packetized.
    #[error("test media: {0}")]
    Media(String),

    /// The user interrupted the bot (Ctrl-C) before it could finish what it was doing.
    #[error("interrupted {0}")]
    Interrupted(&'static str),

    /// Writing the report failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl BotError {
    /// The server's error code, if the server refused a request.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            BotError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn webrtc(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        BotError::WebRtc {
            context: context.into(),
            message: err.to_string(),
        }
    }

    pub(crate) fn timeout(what: impl Into<String>, timeout: Duration) -> Self {
        BotError::Timeout {
            what: what.into(),
            timeout,
        }
    }
}
