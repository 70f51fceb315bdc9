//! Signaling reconnects: a participant whose socket drops keeps its place (transports, publications,
//! subscriptions) for the grace period and resumes with a new `join`; one whose media is gone too is
//! removed within seconds. Against the real server on loopback.

// Tests stop at the first surprise; unwrap is the clearest way to say so.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use dragoman_bot::{Bot, BotConfig, PublishSpec, SignalEventKind, SubscribeSpec};
use dragoman_signal::Role;
use dragoman_signal::protocol::TrackKind;
use dragoman_tests::{SignalClient, http_post, signal_url, start_server, token};
use serde_json::json;

async fn publisher(url: &str) -> Bot {
    let config = BotConfig::new(url, token("c1", "company", Role::Company))
        .with_publish(PublishSpec::AUDIO_VIDEO)
        .with_subscribe(SubscribeSpec::None);
    Bot::join(config).await.unwrap()
}

#[tokio::test]
async fn a_dropped_socket_resumes_with_the_same_subscriptions() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let company = publisher(&url).await;
    let own = company.own_publications();
    let id_of = |kind| {
        own.iter()
            .find(|p| p.kind == kind)
            .map(|p| p.id.clone())
            .unwrap()
    };
    let (audio, video) = (id_of(TrackKind::Audio), id_of(TrackKind::Video));

    let buyer_token = token("c1", "buyer", Role::Buyer);
    let (mut buyer, _) = SignalClient::join(&url, &buyer_token).await.unwrap();
    // The server offers the routed audio by itself; the video subscription waits for that offer.
    let offer = buyer.expect("offer").await.unwrap(); // Left unanswered: the drop comes first.
    assert_eq!(offer["tracks"][0]["publication"], audio, "{offer}");
    buyer
        .send(&json!({"type": "subscribe", "id": 2, "publications": [video]}))
        .await
        .unwrap();
    buyer.expect("ok").await.unwrap();

    let key = server.state.config.operator_api_key.clone();
    let path = "/v1/calls/c1/participants/buyer/reconnect";
    let (status, body) = http_post(server.http_addr, path, Some(&key)).await.unwrap();
    assert_eq!(status, 204, "{body}");
    let close = buyer.expect_close().await.unwrap().expect("a close frame");
    assert_eq!(u16::from(close.code), 4005);

    let (mut buyer, joined) = SignalClient::join(&url, &buyer_token).await.unwrap();
    assert_eq!(joined["resumed"], true, "{joined}");
    assert_eq!(joined["subscriptions"], json!([video]), "{joined}");
    // The offer the client never answered is made again, with the subscription that waited for it.
    let offer = buyer.expect("offer").await.unwrap();
    let mut offered: Vec<&str> = offer["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["publication"].as_str())
        .collect();
    offered.sort_unstable();
    let mut expected = vec![audio.as_str(), video.as_str()];
    expected.sort_unstable();
    assert_eq!(offered, expected, "{offer}");

    // Nobody saw the buyer leave.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = company
        .events()
        .into_iter()
        .any(|e| matches!(e.kind, SignalEventKind::ParticipantLeft { .. }));
    assert!(!left, "{:?}", company.events());
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_gone_entirely_is_removed_within_seconds() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let company = publisher(&url).await;
    let (buyer, _) = SignalClient::join(&url, &token("c1", "buyer", Role::Buyer))
        .await
        .unwrap();
    drop(buyer); // No media ever flowed from it, so only the signaling socket told of it.
    let left = company
        .wait_for_event("buyer removed", Duration::from_secs(5), |e| {
            matches!(&e.kind, SignalEventKind::ParticipantLeft { participant, .. } if participant == "buyer")
        })
        .await
        .unwrap();
    assert!(matches!(
        left.kind,
        SignalEventKind::ParticipantLeft {
            reason: dragoman_signal::protocol::LeaveReason::Disconnected,
            ..
        }
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn the_operator_api_wants_its_key() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let (_buyer, _) = SignalClient::join(&url, &token("c1", "buyer", Role::Buyer))
        .await
        .unwrap();
    let path = "/v1/calls/c1/participants/buyer/reconnect";
    let (status, body) = http_post(server.http_addr, path, None).await.unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("missing_api_key"), "{body}");
    let (status, body) = http_post(server.http_addr, path, Some("wrong"))
        .await
        .unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("invalid_api_key"), "{body}");
    let key = server.state.config.operator_api_key.clone();
    let (status, body) = http_post(
        server.http_addr,
        "/v1/calls/nope/participants/buyer/reconnect",
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(status, 404);
    assert!(body.contains("unknown_call"), "{body}");
    let (status, _) = http_post(
        server.http_addr,
        "/v1/calls/c1/participants/ghost/reconnect",
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(status, 404);
    server.shutdown().await;
}
