//! Stable error codes of the signaling protocol and the typed errors of the control plane.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code sent in `error` messages. Clients match on these strings;
/// never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    BadJson,
    /// The frame is JSON but its `type` is not one the server knows.
    UnknownType,
    /// A known message with missing or ill-typed fields.
    InvalidMessage,
    /// The frame is larger than the configured limit.
    MessageTooLarge,
    /// The client sends faster than the configured rate.
    RateLimited,
    /// A request that needs `join` first.
    NotJoined,
    /// A second `join` on one connection.
    AlreadyJoined,
    /// The join token is malformed or its signature does not verify.
    InvalidToken,
    /// The join token's expiry has passed.
    TokenExpired,
    /// The participant's role may not do this.
    Forbidden,
    /// The call already has its maximum number of participants.
    CallFull,
    /// The named publication does not exist (or is not visible to this participant).
    UnknownPublication,
    /// The publication or track limit for this participant is reached.
    TooManyTracks,
    /// The SDP could not be parsed or was not acceptable.
    BadSdp,
    /// The message does not fit the transport's negotiation state (for example an answer with no offer).
    NegotiationState,
    /// A `publish` names a `mid` that is not negotiated on the publisher transport, or of another kind.
    UnknownTrack,
    /// An interpretation message names a participant who is not in the call.
    UnknownParticipant,
    /// The interpreter booth is not in a state where this step makes sense (no such handover
    /// request, nobody or both partners on air, already on air, the partner is on air).
    HandoverState,
    /// Something failed inside the server; the message says what.
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::CallFull => "call_full",
            ErrorCode::UnknownPublication => "unknown_publication",
            ErrorCode::TooManyTracks => "too_many_tracks",
            ErrorCode::BadSdp => "bad_sdp",
            ErrorCode::NegotiationState => "negotiation_state",
            ErrorCode::UnknownTrack => "unknown_track",
            ErrorCode::UnknownParticipant => "unknown_participant",
            ErrorCode::HandoverState => "handover_state",
            ErrorCode::Internal => "internal",
        }
    }

    /// Every code, for metrics that pre-register one series per code.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::BadJson,
        ErrorCode::UnknownType,
        ErrorCode::InvalidMessage,
        ErrorCode::MessageTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::InvalidToken,
        ErrorCode::TokenExpired,
        ErrorCode::Forbidden,
        ErrorCode::CallFull,
        ErrorCode::UnknownPublication,
        ErrorCode::TooManyTracks,
        ErrorCode::BadSdp,
        ErrorCode::NegotiationState,
        ErrorCode::UnknownTrack,
        ErrorCode::UnknownParticipant,
        ErrorCode::HandoverState,
        ErrorCode::Internal,
    ];
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed control-plane request: a code for the wire and a sentence for the human.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SignalError {
    pub code: ErrorCode,
    pub message: String,
}

impl SignalError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        SignalError {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
