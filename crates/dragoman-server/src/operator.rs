//! The operator API under `/v1/`, authenticated with the operator API key as a bearer token:
//! book a call for a slot and get a join link per party, list and inspect calls (with their live
//! state), end a call, remove a participant, export history as CSV. `/v1/openapi.json` describes it.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use dragoman_signal::Role;
use dragoman_signal::protocol::LeaveReason;
use dragoman_signal::routing::InterpretationMode;
use dragoman_signal::token::{JoinClaims, is_language_code, unix_now};
use serde::{Deserialize, Serialize};

use crate::history::{CallFilter, CallRecord, CallState, NewCall, Party, to_csv};
use crate::registry::close_code;
use crate::state::AppState;

/// Shortest and longest bookable slot.
const SLOT_MINUTES: std::ops::RangeInclusive<u64> = 5..=480;

/// Routes of the operator API, behind the bearer-key check.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let protected = Router::new()
        .route("/v1/calls", post(create_call).get(list_calls))
        .route("/v1/calls.csv", get(export_calls))
        .route("/v1/calls/{call}", get(get_call))
        .route("/v1/calls/{call}/end", post(end_call))
        .route("/v1/calls/{call}/health", get(call_health))
        .route("/v1/health/stream", get(health_stream))
        .route("/v1/calls/{call}/export.csv", get(export_call))
        .route(
            "/v1/calls/{call}/participants/{participant}",
            delete(remove_participant),
        )
        .route(
            "/v1/calls/{call}/participants/{participant}/reconnect",
            post(request_reconnect),
        )
        .route_layer(middleware::from_fn_with_state(state, require_operator_key));
    Router::new()
        .route("/v1/openapi.json", get(openapi))
        .merge(protected)
}

/// An API error: HTTP status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(error = %message, "operator API failure");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            message.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
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
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| query_key(request.uri().query()));
    match presented {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "send the operator API key as `Authorization: Bearer KEY`",
        )
        .into_response(),
        Some(key) if constant_time_eq(key.as_bytes(), state.config.operator_api_key.as_bytes()) => {
            next.run(request).await
        }
        Some(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "the operator API key is wrong",
        )
        .into_response(),
    }
}

/// `?api_key=` for the places a browser cannot set a header (WebSocket, CSV download links).
pub fn query_key(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("api_key="))
        .map(str::to_owned)
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A party in a booking request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartyRequest {
    /// Defaults to the role (with a number when a role appears twice).
    identity: Option<String>,
    name: String,
    role: String,
    #[serde(default)]
    languages: Vec<String>,
}

/// `POST /v1/calls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCall {
    booth: String,
    /// RFC 3339, e.g. `2026-11-25T09:00:00Z`.
    slot_start: String,
    #[serde(default = "default_duration")]
    duration_minutes: u64,
    #[serde(default = "default_mode")]
    mode: String,
    parties: Vec<PartyRequest>,
}

fn default_duration() -> u64 {
    60
}

fn default_mode() -> String {
    "consecutive".into()
}

#[derive(Debug, Serialize)]
struct JoinLink {
    identity: String,
    name: String,
    role: String,
    url: String,
    token: String,
    valid_from: String,
    valid_until: String,
}

#[derive(Debug, Serialize)]
struct Created {
    call: CallRecord,
    join_links: Vec<JoinLink>,
}

fn parse_time(text: &str) -> Result<u64, ApiError> {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .ok_or_else(|| {
            ApiError::bad(
                "invalid_slot",
                format!("{text:?} is not an RFC 3339 time like 2026-11-25T09:00:00Z"),
            )
        })
}

fn validate_booking(state: &AppState, request: &CreateCall, now: u64) -> Result<NewCall, ApiError> {
    let booth = request.booth.trim();
    if booth.is_empty() || booth.len() > 64 {
        return Err(ApiError::bad(
            "invalid_booth",
            "booth must be 1 to 64 characters",
        ));
    }
    let slot_start = parse_time(&request.slot_start)?;
    if !SLOT_MINUTES.contains(&request.duration_minutes) {
        return Err(ApiError::bad(
            "invalid_slot",
            format!(
                "duration_minutes must be {} to {}",
                SLOT_MINUTES.start(),
                SLOT_MINUTES.end()
            ),
        ));
    }
    let slot_end = slot_start + request.duration_minutes * 60;
    if slot_end + state.config.join_window_after_secs <= now {
        return Err(ApiError::bad(
            "invalid_slot",
            "the slot is over already; book a slot that has not ended",
        ));
    }
    if !matches!(request.mode.as_str(), "consecutive" | "simultaneous") {
        return Err(ApiError::bad(
            "invalid_mode",
            format!(
                "mode {:?} is neither consecutive nor simultaneous",
                request.mode
            ),
        ));
    }
    let max = state.config.limits.max_participants_per_call;
    if request.parties.is_empty() || request.parties.len() > max {
        return Err(ApiError::bad(
            "invalid_parties",
            format!("a call has 1 to {max} parties"),
        ));
    }
    let mut parties: Vec<Party> = Vec::new();
    for p in &request.parties {
        let role: Role = p
            .role
            .parse()
            .map_err(|e: String| ApiError::bad("unknown_role", e))?;
        if let Some(bad) = p.languages.iter().find(|l| !is_language_code(l)) {
            return Err(ApiError::bad(
                "invalid_language",
                format!("{bad:?} is not a language code (e.g. en, th, ko, pt-BR)"),
            ));
        }
        let name = p.name.trim();
        if name.is_empty() || name.len() > 128 {
            return Err(ApiError::bad(
                "invalid_parties",
                "every party needs a name of 1 to 128 characters",
            ));
        }
        let identity = match &p.identity {
            Some(id) => id.trim().to_owned(),
            None => {
                let same = parties.iter().filter(|q| q.role == role.as_str()).count();
                if same == 0 {
                    role.as_str().to_owned()
                } else {
                    format!("{}-{}", role.as_str(), same + 1)
                }
            }
        };
        let identity_ok = !identity.is_empty()
            && identity.len() <= 64
            && identity
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !identity_ok {
            return Err(ApiError::bad(
                "invalid_parties",
                format!("identity {identity:?} must be 1 to 64 letters, digits, '-', '_' or '.'"),
            ));
        }
        if parties.iter().any(|q| q.identity == identity) {
            return Err(ApiError::bad(
                "invalid_parties",
                format!("identity {identity:?} appears twice"),
            ));
        }
        parties.push(Party {
            identity,
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            languages: p.languages.clone(),
        });
    }
    let id = format!("CL_{}", &crate::random_key()[..12]);
    Ok(NewCall {
        id,
        booth: booth.to_owned(),
        slot_start,
        slot_end,
        mode: request.mode.clone(),
        parties,
    })
}

async fn create_call(
    State(state): State<Arc<AppState>>,
    body: Result<Json<CreateCall>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::bad("invalid_request", e.body_text()))?;
    let now = unix_now();
    let call = validate_booking(&state, &request, now)?;
    let mode: InterpretationMode =
        serde_json::from_value(serde_json::Value::String(call.mode.clone()))
            .map_err(ApiError::internal)?;
    let valid_from = call
        .slot_start
        .saturating_sub(state.config.join_window_before_secs);
    let valid_until = call.slot_end + state.config.join_window_after_secs;
    let mut links = Vec::new();
    for party in &call.parties {
        let claims = JoinClaims {
            call: call.id.clone(),
            identity: party.identity.clone(),
            name: party.name.clone(),
            role: party.role.parse().map_err(ApiError::internal)?,
            languages: party.languages.clone(),
            exp: valid_until,
            nbf: Some(valid_from),
            mode: Some(mode),
        };
        let token = state.tokens.sign(&claims).map_err(ApiError::internal)?;
        links.push(JoinLink {
            identity: party.identity.clone(),
            name: party.name.clone(),
            role: party.role.clone(),
            url: format!("{}/join?token={token}", state.config.public_base_url()),
            token,
            valid_from: crate::history::rfc3339(valid_from),
            valid_until: crate::history::rfc3339(valid_until),
        });
    }
    let history = state.history.clone();
    let booked = call.clone();
    tokio::task::spawn_blocking(move || history.create_call(&booked))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let record = fetch_call(&state, &call.id).await?;
    tracing::info!(call = %call.id, booth = %call.booth, "call booked");
    Ok((
        StatusCode::CREATED,
        Json(Created {
            call: record,
            join_links: links,
        }),
    )
        .into_response())
}

async fn fetch_call(state: &AppState, id: &str) -> Result<CallRecord, ApiError> {
    let history = state.history.clone();
    let key = id.to_owned();
    tokio::task::spawn_blocking(move || history.call(&key, unix_now()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("unknown_call", format!("no call {id:?}")))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    state: Option<String>,
    /// A day, `YYYY-MM-DD` (UTC): slots starting that day.
    date: Option<String>,
    booth: Option<String>,
    /// Ignored here: the key may come as a query parameter (checked by the middleware).
    #[serde(rename = "api_key")]
    _api_key: Option<String>,
}

fn filter_of(query: &ListQuery) -> Result<CallFilter, ApiError> {
    let state = match &query.state {
        None => None,
        Some(s) => Some(CallState::parse(s).ok_or_else(|| {
            ApiError::bad(
                "invalid_filter",
                format!("state {s:?} is not upcoming, live or ended"),
            )
        })?),
    };
    let (from, to) = match &query.date {
        None => (None, None),
        Some(day) => {
            let start = parse_time(&format!("{day}T00:00:00Z")).map_err(|_| {
                ApiError::bad("invalid_filter", format!("date {day:?} is not YYYY-MM-DD"))
            })?;
            (Some(start), Some(start + 86_400))
        }
    };
    Ok(CallFilter {
        state,
        from,
        to,
        booth: query.booth.clone(),
    })
}

async fn query_calls(state: &AppState, filter: CallFilter) -> Result<Vec<CallRecord>, ApiError> {
    let history = state.history.clone();
    tokio::task::spawn_blocking(move || history.list_calls(&filter, unix_now()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

async fn list_calls(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let calls = query_calls(&state, filter_of(&query)?).await?;
    Ok(Json(serde_json::json!({ "calls": calls })))
}

/// A participant's live state, as an operator sees it.
#[derive(Debug, Serialize)]
struct LiveParticipant {
    id: String,
    name: String,
    role: String,
    /// Has a signaling connection now (false while a dropped socket waits for a reconnect).
    connected: bool,
    publications: usize,
}

async fn get_call(
    State(state): State<Arc<AppState>>,
    Path(call): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let record = fetch_call(&state, &call).await?;
    let mut live = Vec::new();
    if let Some(room) = state.registry.get(&call) {
        let room = room.lock().await;
        for p in room.call.participants() {
            live.push(LiveParticipant {
                id: p.info.id.clone(),
                name: p.info.name.clone(),
                role: p.info.role.as_str().to_owned(),
                connected: room
                    .members
                    .get(&p.info.id)
                    .is_some_and(|m| !m.is_detached()),
                publications: room
                    .call
                    .publications()
                    .filter(|x| x.info.participant == p.info.id)
                    .count(),
            });
        }
    }
    let mut value = serde_json::to_value(&record).map_err(ApiError::internal)?;
    value["live"] = serde_json::json!({ "participants": live });
    value["health"] = serde_json::to_value(state.health.call(&call)).map_err(ApiError::internal)?;
    Ok(Json(value))
}

async fn end_call(
    State(state): State<Arc<AppState>>,
    Path(call): Path<String>,
) -> Result<StatusCode, ApiError> {
    fetch_call(&state, &call).await?;
    if let Some(room) = state.registry.get(&call) {
        let mut room = room.lock().await;
        let everyone: Vec<String> = room.members.keys().cloned().collect();
        for participant in everyone {
            if let Some(member) = room.members.get(&participant) {
                member.close(close_code::CALL_ENDED, "the call was ended by an operator");
            }
            crate::session::remove_member(
                &state,
                &mut room,
                &call,
                &participant,
                LeaveReason::Removed,
            )
            .await;
        }
    }
    let history = state.history.clone();
    let id = call.clone();
    tokio::task::spawn_blocking(move || history.end_call(&id, unix_now()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    tracing::info!(%call, "call ended by an operator");
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_participant(
    State(state): State<Arc<AppState>>,
    Path((call, participant)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let room = state
        .registry
        .get(&call)
        .ok_or_else(|| ApiError::not_found("unknown_call", "no such call is live"))?;
    let mut room = room.lock().await;
    let member = room.members.get(&participant).ok_or_else(|| {
        ApiError::not_found("unknown_participant", "no such participant in the call")
    })?;
    member.close(close_code::REMOVED, "removed from the call by an operator");
    room.removed.insert(participant.clone());
    crate::session::remove_member(&state, &mut room, &call, &participant, LeaveReason::Removed)
        .await;
    tracing::info!(%call, %participant, "participant removed by an operator");
    Ok(StatusCode::NO_CONTENT)
}

fn csv_response(name: &str, calls: &[CallRecord]) -> Result<Response, ApiError> {
    let body = to_csv(calls).map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}

async fn export_call(
    State(state): State<Arc<AppState>>,
    Path(call): Path<String>,
) -> Result<Response, ApiError> {
    let record = fetch_call(&state, &call).await?;
    csv_response(&call, &[record])
}

async fn export_calls(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let calls = query_calls(&state, filter_of(&query)?).await?;
    csv_response("calls", &calls)
}

/// Close a participant's signaling socket with "reconnect requested" (4005). The membership, its
/// media and publications stay; a client reconnects and resumes within the grace period.
async fn request_reconnect(
    State(state): State<Arc<AppState>>,
    Path((call, participant)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let room = state
        .registry
        .get(&call)
        .ok_or_else(|| ApiError::not_found("unknown_call", "no such call is live"))?;
    let mut room = room.lock().await;
    match room.members.get(&participant) {
        Some(member) if !member.is_detached() => {
            member.close(close_code::RECONNECT, "reconnect requested");
            tracing::info!(%call, %participant, "reconnect requested by an operator");
            // Detach now, so the client's new `join` resumes even if it arrives before the old
            // socket's close is read.
            crate::session::detach_member(&state, &mut room, &call, &participant);
            Ok(StatusCode::NO_CONTENT)
        }
        Some(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_connected",
            "the participant has no signaling connection at the moment",
        )),
        None => Err(ApiError::not_found(
            "unknown_participant",
            "no such participant in the call",
        )),
    }
}

/// `GET /v1/calls/{call}/health`: a live call's current health (participants, scores, events).
async fn call_health(
    State(state): State<Arc<AppState>>,
    Path(call): Path<String>,
) -> Result<Json<crate::health::CallHealth>, ApiError> {
    state
        .health
        .call(&call)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("unknown_call", "no such call is live"))
}

/// `GET /v1/health/stream` (WebSocket): the backlog of the last minutes, then a snapshot of every
/// live call each second and events as they happen.
async fn health_stream(
    State(state): State<Arc<AppState>>,
    ws: axum::extract::WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| stream_health(state, socket))
}

async fn stream_health(state: Arc<AppState>, mut socket: axum::extract::ws::WebSocket) {
    use axum::extract::ws::Message;
    use tokio::sync::broadcast::error::RecvError;
    let mut updates = state.health.subscribe();
    let backlog = state.health.backlog().to_string();
    if socket.send(Message::Text(backlog.into())).await.is_err() {
        return;
    }
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Ok(text) => {
                    if socket.send(Message::Text(text.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn key_from_query() {
        assert_eq!(query_key(Some("state=live&api_key=k1")), Some("k1".into()));
        assert_eq!(query_key(Some("state=live")), None);
        assert_eq!(query_key(None), None);
    }
}
