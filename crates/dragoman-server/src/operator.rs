//! The operator API under `/v1/calls`, authenticated with the operator API key as a bearer token.
//! (Booking, listing and call health come with the operator issue; this holds what exists now.)

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::registry::close_code;
use crate::state::AppState;

/// Routes of the operator API, behind the bearer-key check.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/v1/calls/{call}/participants/{participant}/reconnect",
            post(request_reconnect),
        )
        .route_layer(middleware::from_fn_with_state(state, require_operator_key))
}

fn problem(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"code": code, "message": message})),
    )
        .into_response()
}

async fn require_operator_key(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        None => problem(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "send the operator API key as `Authorization: Bearer KEY`",
        ),
        Some(key) if constant_time_eq(key.as_bytes(), state.config.operator_api_key.as_bytes()) => {
            next.run(request).await
        }
        Some(_) => problem(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "the operator API key is wrong",
        ),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Close a participant's signaling socket with "reconnect requested" (4005). The membership, its
/// media and publications stay; a client reconnects and resumes within the grace period.
async fn request_reconnect(
    State(state): State<Arc<AppState>>,
    Path((call, participant)): Path<(String, String)>,
) -> Response {
    let Some(room) = state.registry.get(&call) else {
        return problem(
            StatusCode::NOT_FOUND,
            "unknown_call",
            "no such call is live",
        );
    };
    let mut room = room.lock().await;
    match room.members.get(&participant) {
        Some(member) if !member.is_detached() => {
            member.close(close_code::RECONNECT, "reconnect requested");
            tracing::info!(%call, %participant, "reconnect requested by an operator");
            // Detach now, so the client's new `join` resumes even if it arrives before the old
            // socket's close is read.
            crate::session::detach_member(&state, &mut room, &call, &participant);
            StatusCode::NO_CONTENT.into_response()
        }
        Some(_) => problem(
            StatusCode::CONFLICT,
            "not_connected",
            "the participant has no signaling connection at the moment",
        ),
        None => problem(
            StatusCode::NOT_FOUND,
            "unknown_participant",
            "no such participant in the call",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn key_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
