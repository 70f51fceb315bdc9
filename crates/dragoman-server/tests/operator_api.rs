//! The operator API through `app()` with `oneshot` (no TCP port): booking, listing, inspecting,
//! ending, CSV export, OpenAPI, and every kind of bad input.

// Tests stop at the first surprise; unwrap is the clearest way to say so.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use dragoman_server::history::History;
use dragoman_server::media_worker::MediaPool;
use dragoman_server::state::AppState;
use dragoman_server::{Config, app};
use dragoman_signal::token::{TokenError, unix_now};
use serde_json::{Value, json};
use tower::ServiceExt;

const KEY: &str = "operator-test-key";

struct Api {
    state: Arc<AppState>,
    worker: Option<MediaPool>,
}

impl Api {
    fn new() -> Api {
        Api::with_history(History::in_memory().unwrap())
    }

    fn with_history(history: History) -> Api {
        let config = Config {
            secret: "s".into(),
            operator_api_key: KEY.into(),
            public_url: "https://booths.example".into(),
            ..Config::default()
        };
        let (state, workers) = common::state_with(config, history);
        Api {
            state,
            worker: Some(workers),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let response = app(self.state.clone())
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, text) = self.send(method, path, Some(KEY), body).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn shutdown(mut self) {
        if let Some(worker) = self.worker.take() {
            tokio::task::spawn_blocking(move || worker.shutdown())
                .await
                .unwrap();
        }
    }
}

fn in_an_hour() -> String {
    dragoman_server::history::rfc3339(unix_now() + 3600)
}

fn booking(slot_start: &str) -> Value {
    json!({
        "booth": "Booth 3",
        "slot_start": slot_start,
        "duration_minutes": 60,
        "mode": "simultaneous",
        "parties": [
            {"name": "Kim Minji", "role": "company", "languages": ["ko"]},
            {"name": "Lee Jiwoo", "role": "interpreter", "languages": ["ko", "en"]},
            {"name": "Bangkok office", "role": "office", "languages": ["en", "th"]},
            {"name": "Somchai", "role": "buyer", "languages": ["th"]}
        ]
    })
}

#[tokio::test]
async fn booking_returns_a_join_link_per_party_valid_in_the_slot_window() {
    let api = Api::new();
    let (status, booked) = api
        .json(Method::POST, "/v1/calls", Some(booking(&in_an_hour())))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let call = &booked["call"];
    assert_eq!(call["state"], "upcoming");
    assert_eq!(call["mode"], "simultaneous");
    assert_eq!(call["parties"].as_array().unwrap().len(), 4);
    let links = booked["join_links"].as_array().unwrap();
    assert_eq!(links.len(), 4);
    let identities: Vec<_> = links
        .iter()
        .map(|l| l["identity"].as_str().unwrap())
        .collect();
    assert_eq!(identities, ["company", "interpreter", "office", "buyer"]);
    let link = &links[3];
    assert!(
        link["url"]
            .as_str()
            .unwrap()
            .starts_with("https://booths.example/join?token=")
    );
    // The link opens 15 minutes before the slot: an hour early it is not valid yet, in the slot it is.
    let token = link["token"].as_str().unwrap();
    let slot_start = call["slot_start"].as_u64().unwrap();
    assert!(matches!(
        api.state.tokens.verify(token, unix_now()),
        Err(TokenError::NotYetValid(_))
    ));
    let claims = api.state.tokens.verify(token, slot_start + 60).unwrap();
    assert_eq!(claims.call, call["id"].as_str().unwrap());
    assert_eq!(claims.languages, ["th"]);
    // After the slot and its grace period it is expired.
    assert!(matches!(
        api.state.tokens.verify(token, slot_start + 3600 + 1800 + 1),
        Err(TokenError::Expired(_))
    ));
    api.shutdown().await;
}

#[tokio::test]
async fn a_join_link_outside_its_window_is_refused_with_a_reason() {
    let api = Api::new();
    let tomorrow = dragoman_server::history::rfc3339(unix_now() + 86_400);
    let (_, booked) = api
        .json(Method::POST, "/v1/calls", Some(booking(&tomorrow)))
        .await;
    let token = booked["join_links"][0]["token"].as_str().unwrap();
    let (status, body) = api
        .send(
            Method::GET,
            &format!("/v1/signal?token={token}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not valid for another"),
        "{body}"
    );
    api.shutdown().await;
}

#[tokio::test]
async fn list_get_end_and_export() {
    let api = Api::new();
    let (_, booked) = api
        .json(Method::POST, "/v1/calls", Some(booking(&in_an_hour())))
        .await;
    let id = booked["call"]["id"].as_str().unwrap().to_owned();

    let (status, list) = api
        .json(Method::GET, "/v1/calls?state=upcoming", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["calls"].as_array().unwrap().len(), 1);
    let (_, live) = api.json(Method::GET, "/v1/calls?state=live", None).await;
    assert_eq!(live["calls"], json!([]));
    let today = &dragoman_server::history::rfc3339(unix_now() + 3600)[..10];
    let (_, by_day) = api
        .json(
            Method::GET,
            &format!("/v1/calls?date={today}&booth=Booth%203"),
            None,
        )
        .await;
    assert_eq!(by_day["calls"][0]["id"], id.as_str());

    let (status, one) = api
        .json(Method::GET, &format!("/v1/calls/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["live"]["participants"], json!([]));

    let (status, csv) = api
        .send(
            Method::GET,
            &format!("/v1/calls/{id}/export.csv"),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.lines().nth(4).unwrap().contains("Somchai"), "{csv}");
    let (status, all) = api
        .send(Method::GET, "/v1/calls.csv", Some(KEY), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(all.starts_with("call,booth,"));

    let (status, _) = api
        .send(
            Method::POST,
            &format!("/v1/calls/{id}/end"),
            Some(KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, ended) = api
        .json(Method::GET, &format!("/v1/calls/{id}"), None)
        .await;
    assert_eq!(ended["state"], "ended");
    api.shutdown().await;
}

#[tokio::test]
async fn the_api_key_is_required_and_checked() {
    let api = Api::new();
    for (key, code) in [
        (None, "missing_api_key"),
        (Some("wrong"), "invalid_api_key"),
    ] {
        let (status, body) = api.send(Method::GET, "/v1/calls", key, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains(code), "{body}");
        let (status, _) = api
            .send(Method::POST, "/v1/calls", key, Some(booking(&in_an_hour())))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // A query parameter works where a header cannot be set (downloads, WebSockets).
    let (status, _) = api
        .send(
            Method::GET,
            &format!("/v1/calls.csv?api_key={KEY}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The description is public.
    let (status, doc) = api.send(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/calls"]["post"].is_object());
    api.shutdown().await;
}

#[tokio::test]
async fn unknown_calls_and_participants_are_404() {
    let api = Api::new();
    for (method, path) in [
        (Method::GET, "/v1/calls/CL_nope"),
        (Method::POST, "/v1/calls/CL_nope/end"),
        (Method::GET, "/v1/calls/CL_nope/export.csv"),
        (Method::GET, "/v1/calls/CL_nope/health"),
        (Method::DELETE, "/v1/calls/CL_nope/participants/buyer"),
        (
            Method::POST,
            "/v1/calls/CL_nope/participants/buyer/reconnect",
        ),
    ] {
        let (status, body) = api.json(method.clone(), path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(body["code"], "unknown_call", "{method} {path}: {body}");
    }
    api.shutdown().await;
}

#[tokio::test]
async fn bad_bookings_get_a_code_and_a_reason() {
    let api = Api::new();
    let yesterday = dragoman_server::history::rfc3339(unix_now() - 86_400);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"booth": "B", "slot_start": "tomorrow at nine", "parties": [{"name": "A", "role": "buyer"}]}),
            "invalid_slot",
        ),
        (
            json!({"booth": "B", "slot_start": yesterday, "parties": [{"name": "A", "role": "buyer"}]}),
            "invalid_slot",
        ),
        (
            json!({"booth": "B", "slot_start": in_an_hour(), "duration_minutes": 2, "parties": [{"name": "A", "role": "buyer"}]}),
            "invalid_slot",
        ),
        (
            json!({"booth": "B", "slot_start": in_an_hour(), "parties": [{"name": "A", "role": "janitor"}]}),
            "unknown_role",
        ),
        (
            json!({"booth": "B", "slot_start": in_an_hour(), "parties": [{"name": "A", "role": "buyer", "languages": ["Thai!"]}]}),
            "invalid_language",
        ),
        (
            json!({"booth": "B", "slot_start": in_an_hour(), "mode": "whispered", "parties": [{"name": "A", "role": "buyer"}]}),
            "invalid_mode",
        ),
        (
            json!({"booth": "B", "slot_start": in_an_hour(), "parties": []}),
            "invalid_parties",
        ),
        (
            json!({"booth": "B", "slot_start": in_an_hour(), "parties": [{"identity": "x", "name": "A", "role": "buyer"}, {"identity": "x", "name": "B", "role": "company"}]}),
            "invalid_parties",
        ),
        (
            json!({"booth": "", "slot_start": in_an_hour(), "parties": [{"name": "A", "role": "buyer"}]}),
            "invalid_booth",
        ),
        (json!({"booth": "B", "parties": []}), "invalid_request"),
        (
            json!({"booth": "B", "slot_start": in_an_hour(), "parties": [], "colour": "red"}),
            "invalid_request",
        ),
    ];
    for (body, code) in cases {
        let (status, reply) = api
            .json(Method::POST, "/v1/calls", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert_eq!(reply["code"], code, "{body}: {reply}");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, reply) = api
        .json(Method::GET, "/v1/calls?state=sleeping", None)
        .await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_filter"))
    );
    let (status, reply) = api
        .json(Method::GET, "/v1/calls?date=25/11/2026", None)
        .await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_filter"))
    );
    // Nothing was booked by the bad requests.
    let (_, list) = api.json(Method::GET, "/v1/calls", None).await;
    assert_eq!(list["calls"], json!([]));
    api.shutdown().await;
}

#[tokio::test]
async fn history_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("dragoman-operator-api-{}", std::process::id()));
    let path = dir.join("history.sqlite");
    let _ = std::fs::remove_file(&path);
    let api = Api::with_history(History::open(&path).unwrap());
    let (_, booked) = api
        .json(Method::POST, "/v1/calls", Some(booking(&in_an_hour())))
        .await;
    let id = booked["call"]["id"].as_str().unwrap().to_owned();
    api.shutdown().await;

    let api = Api::with_history(History::open(&path).unwrap());
    let (status, call) = api
        .json(Method::GET, &format!("/v1/calls/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(call["booth"], "Booth 3");
    api.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
