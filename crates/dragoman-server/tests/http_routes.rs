//! The HTTP routes, driven through `app()` with `oneshot`: no TCP port is bound (the media worker
//! still owns a real UDP socket on 127.0.0.1).

// Tests stop at the first surprise; unwrap is the clearest way to say so.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dragoman_server::history::History;
use dragoman_server::media_worker::MediaPool;
use dragoman_server::state::AppState;
use dragoman_server::{Config, app};
use tower::ServiceExt;

fn state() -> (Arc<AppState>, MediaPool) {
    let config = Config {
        secret: "s".into(),
        ..Config::default()
    };
    common::state_with(config, History::in_memory().unwrap())
}

async fn get(state: &Arc<AppState>, path: &str) -> (StatusCode, String) {
    let response = app(state.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn healthz_answers_ok_while_the_media_worker_runs() {
    let (state, worker) = state();
    assert_eq!(
        get(&state, "/healthz").await,
        (StatusCode::OK, "ok\n".into())
    );
    tokio::task::spawn_blocking(move || worker.shutdown())
        .await
        .unwrap();
    let (status, _) = get(&state, "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn metrics_expose_the_required_series() {
    let (state, worker) = state();
    let (status, text) = get(&state, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for series in [
        "dragoman_participants 0",
        "dragoman_publications 0",
        "dragoman_subscriptions 0",
        "dragoman_rtp_packets_received_total 0",
        "dragoman_rtp_packets_forwarded_total 0",
        "dragoman_rtp_packets_queued_total 0",
        "dragoman_udp_bytes_received_total 0",
        "dragoman_udp_bytes_sent_total 0",
        "dragoman_packets_dropped_total{reason=\"waiting_for_keyframe\"} 0",
    ] {
        assert!(text.contains(series), "missing {series:?} in:\n{text}");
    }
    tokio::task::spawn_blocking(move || worker.shutdown())
        .await
        .unwrap();
}

#[tokio::test]
async fn signal_route_refuses_a_bad_query_token_before_upgrading() {
    let (state, worker) = state();
    let (status, body) = get(&state, "/v1/signal?token=garbage").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "invalid_token");
    tokio::task::spawn_blocking(move || worker.shutdown())
        .await
        .unwrap();
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let (state, worker) = state();
    assert_eq!(get(&state, "/nope").await.0, StatusCode::NOT_FOUND);
    tokio::task::spawn_blocking(move || worker.shutdown())
        .await
        .unwrap();
}
