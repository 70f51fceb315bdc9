//! The bot against a stand-in SFU (webrtc-rs in ICE-lite mode behind the v1 signaling flow, see
//! `support/`): joining, publishing, subscribing with server-side renegotiation, attribution of
//! received media, keyframe requests, deliberate loss, and events. Everything is on 127.0.0.1.

mod support;

use std::time::Duration;

use dragoman_bot::{Bot, BotConfig, BotError, PublishSpec, SignalEventKind, SubscribeSpec};
use dragoman_signal::ErrorCode;
use dragoman_signal::protocol::{PublicationInfo, TrackKind};

const WAIT: Duration = Duration::from_secs(10);

fn config(url: &str, name: &str) -> BotConfig {
    BotConfig::new(url, name)
}

fn publication_of(bot: &Bot, kind: TrackKind) -> PublicationInfo {
    bot.own_publications()
        .into_iter()
        .find(|p| p.kind == kind)
        .unwrap_or_else(|| panic!("{} publishes no {kind:?}", bot.participant_id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_from_one_bot_to_another() {
    let sfu = support::start().await;
    let mut alice = Bot::join(config(&sfu.url, "alice").with_subscribe(SubscribeSpec::None))
        .await
        .expect("alice joins");
    let audio = publication_of(&alice, TrackKind::Audio);
    let video = publication_of(&alice, TrackKind::Video);
    assert_eq!(audio.channel.as_deref(), Some("floor"));

    let mut bob = Bot::join(
        config(&sfu.url, "bob")
            .with_publish(PublishSpec::NONE)
            .with_subscribe(SubscribeSpec::All),
    )
    .await
    .expect("bob joins");
    assert_eq!(bob.publications_in_call().len(), 2);

    let report = bob
        .wait_until("audio and a video keyframe at bob", WAIT, |r| {
            r.received(&audio.id).is_some_and(|a| a.packets >= 50)
                && r.received(&video.id)
                    .is_some_and(|v| v.keyframes >= 1 && v.packets >= 30)
        })
        .await
        .expect("media arrives");
    let a = report.received(&audio.id).expect("audio entry");
    assert_eq!(a.publisher.as_deref(), Some(alice.participant_id()));
    assert_eq!(a.kind, Some(TrackKind::Audio));
    assert!(a.mid.is_some());
    assert!(a.first_packet_latency_ms.is_some());
    let v = report.received(&video.id).expect("video entry");
    assert_eq!(v.kind, Some(TrackKind::Video));
    assert_ne!(a.mid, v.mid);
    assert_eq!(report.unattributed_packets, 0);
    assert_eq!(
        report
            .subscriber_transport
            .as_ref()
            .map(|t| t.state.as_str()),
        Some("connected")
    );

    // The stand-in asks alice for a keyframe when bob subscribes to her video.
    let alice_report = alice
        .wait_until("a PLI at alice", WAIT, |r| {
            r.published_kind(TrackKind::Video)
                .is_some_and(|t| t.pli_received >= 1)
        })
        .await
        .expect("PLI arrives");
    let sent = alice_report
        .published_kind(TrackKind::Video)
        .expect("video");
    assert!(sent.packets_sent > 0);
    assert_eq!(sent.packets_dropped, 0);

    let final_bob = bob.leave().await.expect("bob leaves");
    assert!(final_bob.left_ms.is_some());
    let r = final_bob.received(&audio.id).expect("audio");
    // Loopback, no loss: nothing missing (allow a packet at the very end to be in flight).
    assert!(r.sequence_gaps <= 1, "{r:?}");
    assert_eq!(r.duplicates, 0);
    alice.leave().await.expect("alice leaves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_renegotiate_and_resume() {
    let sfu = support::start().await;
    let mut alice = Bot::join(config(&sfu.url, "alice").with_subscribe(SubscribeSpec::None))
        .await
        .expect("alice joins");
    let audio = publication_of(&alice, TrackKind::Audio);
    let video = publication_of(&alice, TrackKind::Video);
    let mut bob = Bot::join(
        config(&sfu.url, "bob")
            .with_publish(PublishSpec::NONE)
            .with_subscribe(SubscribeSpec::None),
    )
    .await
    .expect("bob joins");

    // First audio alone (the first offer), then video (a renegotiation adding an m-line).
    bob.subscribe(std::slice::from_ref(&audio.id))
        .await
        .expect("subscribe audio");
    bob.wait_for_packets(&audio.id, 20, WAIT)
        .await
        .expect("audio");
    bob.subscribe(std::slice::from_ref(&video.id))
        .await
        .expect("subscribe video");
    bob.wait_for_packets(&video.id, 20, WAIT)
        .await
        .expect("video after renegotiation");
    let report = bob.report();
    assert_eq!(
        report.subscriber_transport.as_ref().map(|t| t.negotiations),
        Some(2)
    );

    // Unsubscribe: the stand-in stops at once.
    bob.unsubscribe(std::slice::from_ref(&video.id))
        .await
        .expect("unsubscribe");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = bob.report();
    let window = before.received(&video.id).expect("video").subscriptions[0].clone();
    assert!(window.unsubscribed_ms.is_some());
    assert!(window.packets_after_unsubscribe < 10, "{window:?}");
    assert!(!before.received(&video.id).expect("video").subscribed);

    // Resubscribe: media resumes and alice is asked for a keyframe again.
    let plis_before = alice
        .report()
        .published_kind(TrackKind::Video)
        .map(|t| t.pli_received)
        .unwrap_or_default();
    let resubscribed_at = alice.now_ms();
    bob.subscribe(std::slice::from_ref(&video.id))
        .await
        .expect("resubscribe");
    let report = bob
        .wait_until("video again", WAIT, |r| {
            r.received(&video.id)
                .is_some_and(|v| v.subscriptions.len() == 2 && v.subscriptions[1].packets >= 10)
        })
        .await
        .expect("video resumes");
    let second = &report.received(&video.id).expect("video").subscriptions[1];
    assert!(second.latency_ms().is_some());
    let alice_report = alice
        .wait_until("another PLI", WAIT, |r| {
            r.published_kind(TrackKind::Video)
                .is_some_and(|t| t.pli_received > plis_before)
        })
        .await
        .expect("PLI on resubscribe");
    let track = alice_report
        .published_kind(TrackKind::Video)
        .expect("video");
    assert!(track.keyframe_requests_since(resubscribed_at) >= 1);

    // A refused subscribe is a typed error, and leaves no subscription behind.
    let err = bob
        .subscribe(&["PB_nope".to_owned()])
        .await
        .expect_err("unknown publication");
    assert_eq!(err.server_code(), Some(ErrorCode::UnknownPublication));
    assert!(bob.report().received("PB_nope").is_none());

    bob.leave().await.expect("bob leaves");
    alice.leave().await.expect("alice leaves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliberate_uplink_loss_shows_as_gaps_downstream() {
    let sfu = support::start().await;
    let mut alice = Bot::join(
        config(&sfu.url, "alice")
            .with_publish(PublishSpec::AUDIO)
            .with_subscribe(SubscribeSpec::None)
            .with_uplink_loss(0.2)
            .with_loss_seed(7),
    )
    .await
    .expect("alice joins");
    let audio = publication_of(&alice, TrackKind::Audio);
    let mut bob = Bot::join(
        config(&sfu.url, "bob")
            .with_publish(PublishSpec::NONE)
            .with_subscribe(SubscribeSpec::All),
    )
    .await
    .expect("bob joins");
    let report = bob
        .wait_for_packets(&audio.id, 100, WAIT)
        .await
        .expect("audio");
    let received = report.received(&audio.id).expect("audio");
    assert!(received.sequence_gaps >= 5, "{received:?}");

    let sent = alice.leave().await.expect("alice leaves");
    let track = sent.published_kind(TrackKind::Audio).expect("audio");
    let share = track.packets_dropped as f64 / (track.packets_dropped + track.packets_sent) as f64;
    assert!((0.1..0.3).contains(&share), "dropped share {share}");

    // Alice's departure reaches bob as events.
    let removed = bob
        .wait_for_event("publication_removed", WAIT, |e| {
            matches!(&e.kind, SignalEventKind::PublicationRemoved { publication } if *publication == audio.id)
        })
        .await
        .expect("publication_removed");
    let left = bob
        .wait_for_event("participant_left", WAIT, |e| {
            matches!(&e.kind, SignalEventKind::ParticipantLeft { participant, .. } if participant == alice.participant_id())
        })
        .await
        .expect("participant_left");
    assert!(left.at_ms >= removed.at_ms);
    assert!(bob.publications_in_call().is_empty());
    let report = bob.leave().await.expect("bob leaves");
    assert!(
        report
            .received(&audio.id)
            .expect("audio")
            .removed_ms
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_is_a_clear_error() {
    let err = Bot::join(config("ws://127.0.0.1:9/v1/signal", "x"))
        .await
        .expect_err("nothing listens on port 9");
    assert!(matches!(err, BotError::Connect { .. }), "{err}");
    let err = Bot::join(config("http://127.0.0.1:9", "x"))
        .await
        .expect_err("not a ws URL");
    assert!(matches!(err, BotError::Config(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_writes_a_report() {
    let sfu = support::start().await;
    let mut alice = Bot::join(config(&sfu.url, "alice").with_subscribe(SubscribeSpec::None))
        .await
        .expect("alice joins");
    let path =
        std::env::temp_dir().join(format!("dragoman-bot-report-{}.json", std::process::id()));
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dragoman-bot"))
        .args([
            "--url",
            &sfu.url,
            "--token",
            "carol",
            "--publish",
            "none",
            "--subscribe",
            "all",
            "--duration",
            "2s",
            "--report",
        ])
        .arg(&path)
        .env("RUST_LOG", "error")
        .kill_on_drop(true)
        .output()
        .await
        .expect("the bot runs");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        path.display().to_string()
    );
    let report: dragoman_bot::Report =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("report file"))
            .expect("a report");
    let _ = std::fs::remove_file(&path);
    assert_eq!(report.participant_id.as_deref(), Some("PA_carol"));
    assert_eq!(report.received.len(), 2);
    assert!(report.packets_received() > 20, "{report:?}");
    assert!(report.left_ms.is_some());
    alice.leave().await.expect("alice leaves");

    // A failure is one clear line on stderr and a non-zero exit.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dragoman-bot"))
        .args(["--url", "ws://127.0.0.1:9/v1/signal", "--token", "x"])
        .env("RUST_LOG", "off")
        .output()
        .await
        .expect("the bot runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("dragoman-bot: cannot connect"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_media_is_stamped_and_counted_in_the_window() {
    use dragoman_bot::synthetic::{Probe, SyntheticMedia, clock_ns};

    let sfu = support::start().await;
    let probe = Probe::new();
    let mut media = SyntheticMedia::new(std::sync::Arc::clone(&probe));
    // The stand-in asks for a keyframe once, possibly before bob's transport is up; like the
    // clip, send one every second anyway.
    media.keyframe_interval = Some(Duration::from_secs(1));
    let mut alice = Bot::join(
        config(&sfu.url, "alice")
            .with_subscribe(SubscribeSpec::None)
            .with_synthetic_media(media.clone()),
    )
    .await
    .expect("alice joins");
    let video = publication_of(&alice, TrackKind::Video);
    let mut bob = Bot::join(
        config(&sfu.url, "bob")
            .with_publish(PublishSpec::NONE)
            .with_subscribe(SubscribeSpec::All)
            .with_synthetic_media(media),
    )
    .await
    .expect("bob joins");
    // The stand-in forwards video from a keyframe on.
    bob.wait_until("synthetic video keyframe at bob", WAIT, |r| {
        r.received(&video.id).is_some_and(|v| v.keyframes >= 1)
    })
    .await
    .expect("video flows");

    let start = clock_ns() + 200_000_000;
    probe.set_window(start, start + 1_000_000_000);
    tokio::time::sleep(Duration::from_millis(1700)).await;

    let sent = alice
        .synthetic_stats()
        .expect("alice sends synthetic media");
    let got = bob.synthetic_stats().expect("bob measures synthetic media");
    assert!(
        alice
            .report()
            .published_kind(TrackKind::Video)
            .is_some_and(|t| t.pli_received >= 1 && t.keyframes_forced >= 1)
    );
    assert_eq!(sent.sent.len(), 2);
    assert_eq!(got.unstamped, 0);
    for track in &sent.sent {
        // 50 audio packets/s, 180 video packets/s, for one second.
        let (low, high) = match track.kind {
            TrackKind::Audio => (45, 55),
            TrackKind::Video => (170, 190),
        };
        assert!((low..=high).contains(&track.packets_in_window), "{track:?}");
        let received = got
            .received
            .iter()
            .find(|r| r.track_id == track.track_id)
            .unwrap_or_else(|| panic!("nothing of {track:?} at bob"));
        assert_eq!(
            received.unique_in_window, track.packets_in_window,
            "{received:?}"
        );
        assert_eq!(received.duplicates_in_window, 0);
    }
    let in_window = got.latency_audio.count() + got.latency_video.count();
    assert_eq!(
        in_window,
        sent.sent.iter().map(|t| t.packets_in_window).sum::<u64>()
    );
    // Loopback through a webrtc-rs relay: well under a second.
    assert!(got.latency_video.quantile(0.5) < 200_000_000);

    bob.leave().await.expect("bob leaves");
    alice.leave().await.expect("alice leaves");
}
