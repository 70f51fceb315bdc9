//! Bad input on the signaling socket gets an `error` with a stable code, and the connection keeps
//! working; bad tokens are refused with a clear reason. One test per case, against the real server.

// Tests stop at the first surprise; unwrap is the clearest way to say so.
#![allow(clippy::unwrap_used)]

use dragoman_signal::Role;
use dragoman_signal::token::unix_now;
use dragoman_tests::{SignalClient, signal_url, start_server, token, token_with};
use serde_json::json;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite;

/// Assert an `error` with the code (and echoed id), then that the socket still answers a ping.
async fn assert_error_then_alive(client: &mut SignalClient, code: &str, id: serde_json::Value) {
    let error = client.expect("error").await.unwrap();
    assert_eq!(error["code"], code, "{error}");
    assert_eq!(error["id"], id, "{error}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{error}"
    );
    client.assert_alive().await.unwrap();
}

#[tokio::test]
async fn malformed_json_gets_bad_json() {
    let server = start_server().await.unwrap();
    let mut client = SignalClient::connect(&signal_url(&server)).await.unwrap();
    client
        .send_text("{\"type\": \"join\", ".into())
        .await
        .unwrap();
    assert_error_then_alive(&mut client, "bad_json", serde_json::Value::Null).await;
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_message_type_gets_unknown_type() {
    let server = start_server().await.unwrap();
    let mut client = SignalClient::connect(&signal_url(&server)).await.unwrap();
    client
        .send(&json!({"type": "teleport", "id": 7}))
        .await
        .unwrap();
    assert_error_then_alive(&mut client, "unknown_type", json!(7)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn message_with_missing_fields_gets_invalid_message() {
    let server = start_server().await.unwrap();
    let mut client = SignalClient::connect(&signal_url(&server)).await.unwrap();
    client
        .send(&json!({"type": "join", "id": 8}))
        .await
        .unwrap();
    assert_error_then_alive(&mut client, "invalid_message", json!(8)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn oversize_message_gets_message_too_large() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let (mut client, _) = SignalClient::join(&url, &token("c1", "company", Role::Company))
        .await
        .unwrap();
    let huge = "v=0\r\n".repeat(20_000); // ~100 KiB, above the 64 KiB default
    client
        .send(&json!({"type": "offer", "id": 9, "transport": "publisher", "sdp": huge}))
        .await
        .unwrap();
    // The id cannot be read from a message that was never parsed.
    assert_error_then_alive(&mut client, "message_too_large", serde_json::Value::Null).await;
    server.shutdown().await;
}

#[tokio::test]
async fn unparsable_sdp_gets_bad_sdp() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let (mut client, _) = SignalClient::join(&url, &token("c1", "company", Role::Company))
        .await
        .unwrap();
    client
        .send(
            &json!({"type": "offer", "id": 10, "transport": "publisher", "sdp": "this is not SDP"}),
        )
        .await
        .unwrap();
    assert_error_then_alive(&mut client, "bad_sdp", json!(10)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn subscribe_to_unknown_publication_gets_unknown_publication() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let (mut client, _) = SignalClient::join(&url, &token("c1", "buyer", Role::Buyer))
        .await
        .unwrap();
    client
        .send(&json!({"type": "subscribe", "id": 11, "publications": ["PB_404"]}))
        .await
        .unwrap();
    assert_error_then_alive(&mut client, "unknown_publication", json!(11)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn operator_may_not_publish() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let (mut client, joined) = SignalClient::join(&url, &token("c1", "op", Role::Operator))
        .await
        .unwrap();
    assert_eq!(joined["participant"]["role"], "operator");
    client
        .send(&json!({"type": "publish", "id": 12, "track": {"mid": "0", "kind": "audio", "source": "microphone"}}))
        .await
        .unwrap();
    assert_error_then_alive(&mut client, "forbidden", json!(12)).await;
    // Nor may it offer media on a publisher transport.
    client
        .send(&json!({"type": "offer", "id": 13, "transport": "publisher", "sdp": "v=0"}))
        .await
        .unwrap();
    assert_error_then_alive(&mut client, "forbidden", json!(13)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn operator_is_hidden_from_the_others() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let (_op, _) = SignalClient::join(&url, &token("c1", "op", Role::Operator))
        .await
        .unwrap();
    let (_company, joined) = SignalClient::join(&url, &token("c1", "company", Role::Company))
        .await
        .unwrap();
    assert_eq!(joined["participants"], json!([]), "{joined}");
    server.shutdown().await;
}

#[tokio::test]
async fn requests_before_join_get_not_joined() {
    let server = start_server().await.unwrap();
    let mut client = SignalClient::connect(&signal_url(&server)).await.unwrap();
    client
        .send(&json!({"type": "subscribe", "id": 14, "publications": []}))
        .await
        .unwrap();
    assert_error_then_alive(&mut client, "not_joined", json!(14)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn expired_token_is_refused_with_a_reason() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let expired = token_with(
        "c1",
        "buyer",
        Role::Buyer,
        unix_now() - 60,
        dragoman_tests::SECRET,
    );

    let mut client = SignalClient::connect(&url).await.unwrap();
    client
        .send(&json!({"type": "join", "id": 1, "token": expired}))
        .await
        .unwrap();
    let error = client.expect("error").await.unwrap();
    assert_eq!(error["code"], "token_expired", "{error}");
    let close = client.expect_close().await.unwrap().expect("a close frame");
    assert_eq!(u16::from(close.code), 4001);
    assert!(close.reason.contains("expired"), "{close:?}");

    let refused = connect_async(format!("{url}?token={expired}"))
        .await
        .unwrap_err();
    assert_http_refusal(refused, "token_expired");
    server.shutdown().await;
}

#[tokio::test]
async fn forged_token_is_refused_with_a_reason() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let forged = token_with(
        "c1",
        "buyer",
        Role::Buyer,
        unix_now() + 3600,
        "someone-elses-secret",
    );

    let mut client = SignalClient::connect(&url).await.unwrap();
    client
        .send(&json!({"type": "join", "id": 1, "token": forged}))
        .await
        .unwrap();
    let error = client.expect("error").await.unwrap();
    assert_eq!(error["code"], "invalid_token", "{error}");
    let close = client.expect_close().await.unwrap().expect("a close frame");
    assert_eq!(u16::from(close.code), 4001);
    assert!(close.reason.contains("signature"), "{close:?}");

    let refused = connect_async(format!("{url}?token={forged}"))
        .await
        .unwrap_err();
    assert_http_refusal(refused, "invalid_token");
    server.shutdown().await;
}

fn assert_http_refusal(error: tungstenite::Error, code: &str) {
    let tungstenite::Error::Http(response) = error else {
        panic!("expected an HTTP refusal, got {error}");
    };
    assert_eq!(response.status(), 401);
    let body: serde_json::Value =
        serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
    assert_eq!(body["code"], code, "{body}");
}

#[tokio::test]
async fn a_bad_client_does_not_disturb_another() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let (mut good, _) = SignalClient::join(&url, &token("c1", "company", Role::Company))
        .await
        .unwrap();
    let (mut bad, _) = SignalClient::join(&url, &token("c1", "buyer", Role::Buyer))
        .await
        .unwrap();
    for garbage in ["", "null", "[]", "{\"type\":42}", "\u{0}\u{1}"] {
        bad.send_text(garbage.into()).await.unwrap();
        let error = bad.expect("error").await.unwrap();
        assert!(error["code"].is_string(), "{garbage:?}: {error}");
    }
    good.assert_alive().await.unwrap();
    bad.assert_alive().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn unparsable_answer_keeps_the_subscriber_offer_outstanding() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let publisher = dragoman_bot::Bot::join(
        dragoman_bot::BotConfig::new(&url, token("c1", "company", Role::Company))
            .with_publish(dragoman_bot::PublishSpec::AUDIO)
            .with_subscribe(dragoman_bot::SubscribeSpec::None),
    )
    .await
    .unwrap();
    let audio = publisher.own_publications()[0].id.clone();
    let (mut client, _) = SignalClient::join(&url, &token("c1", "buyer", Role::Buyer))
        .await
        .unwrap();
    // Audio is routed by the server: the company's audio is offered to the buyer at once.
    let offer = client.expect("offer").await.unwrap();
    assert_eq!(offer["tracks"][0]["publication"], audio, "{offer}");
    // A broken answer is refused, and the offer stays open for a good one (a second try is again
    // judged on its SDP, not refused for having no offer).
    for id in [21, 22] {
        client
            .send(&json!({"type": "answer", "id": id, "transport": "subscriber", "sdp": "garbage"}))
            .await
            .unwrap();
        assert_error_then_alive(&mut client, "bad_sdp", json!(id)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn answer_without_an_offer_gets_negotiation_state() {
    let server = start_server().await.unwrap();
    let url = signal_url(&server);
    let (mut client, _) = SignalClient::join(&url, &token("c1", "buyer", Role::Buyer))
        .await
        .unwrap();
    client
        .send(&json!({"type": "answer", "id": 30, "transport": "subscriber", "sdp": "v=0"}))
        .await
        .unwrap();
    assert_error_then_alive(&mut client, "negotiation_state", json!(30)).await;
    client
        .send(&json!({"type": "offer", "id": 31, "transport": "subscriber", "sdp": "v=0"}))
        .await
        .unwrap();
    assert_error_then_alive(&mut client, "negotiation_state", json!(31)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn leave_before_join_is_acknowledged_and_closes() {
    let server = start_server().await.unwrap();
    let mut client = SignalClient::connect(&signal_url(&server)).await.unwrap();
    client
        .send(&json!({"type": "leave", "id": 40}))
        .await
        .unwrap();
    assert_eq!(client.expect("ok").await.unwrap()["id"], 40);
    let close = client.expect_close().await.unwrap().expect("a close frame");
    assert_eq!(u16::from(close.code), 4004);
    server.shutdown().await;
}
