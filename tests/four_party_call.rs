//! A four-party call end to end: the real server on 127.0.0.1 (ephemeral ports), four `dragoman-bot`
//! participants on webrtc-rs over real UDP and DTLS, each publishing audio and video, each with its own
//! subscriptions (not all-to-all). Audio is routed by the server (in a consecutive call everyone hears
//! everyone) and a participant opts out of a voice by unsubscribing it. Checks exact delivery,
//! continuity, the routing messages,
//! unsubscribe/resubscribe with a keyframe request, and that `leave` and a killed bot take their
//! publications away.

// Tests stop at the first surprise; unwrap is the clearest way to say so.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use dragoman_bot::{Bot, BotConfig, PublishSpec, Report, SignalEventKind, SubscribeSpec};
use dragoman_signal::Role;
use dragoman_signal::protocol::TrackKind;
use dragoman_tests::{signal_url, start_server, token};

const CALL: &str = "booth-7-1000";
const MEDIA_WAIT: Duration = Duration::from_secs(20);

/// (participant, kind) → publication id, as the call announced it.
type Publications = BTreeMap<(String, TrackKind), String>;

async fn join(url: &str, identity: &str, role: Role) -> Bot {
    let config = BotConfig::new(url, token(CALL, identity, role))
        .with_publish(PublishSpec::AUDIO_VIDEO)
        .with_subscribe(SubscribeSpec::None);
    Bot::join(config)
        .await
        .unwrap_or_else(|e| panic!("{identity} could not join: {e}"))
}

fn publication(publications: &Publications, participant: &str, kind: TrackKind) -> String {
    publications
        .get(&(participant.to_owned(), kind))
        .unwrap_or_else(|| panic!("no {kind:?} publication of {participant}"))
        .clone()
}

fn packets(report: &Report, publication: &str) -> u64 {
    report.received(publication).map_or(0, |r| r.packets)
}

/// The path of the `dragoman-bot` binary next to this test's executable.
fn bot_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let bot = dir.join("dragoman-bot");
    assert!(
        bot.exists(),
        "{} is missing: build it first with `cargo build -p dragoman-bot` (tests/run.sh does)",
        bot.display()
    );
    bot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_party_call_with_per_participant_subscriptions() {
    let server = start_server().await.expect("server starts");
    let url = signal_url(&server);
    let parties = [
        ("company", Role::Company),
        ("interpreter", Role::Interpreter),
        ("office", Role::Office),
        ("buyer", Role::Buyer),
    ];
    let mut bots = BTreeMap::new();
    for (identity, role) in parties {
        bots.insert(identity, join(&url, identity, role).await);
    }

    // Everyone sees the other three parties' audio and video.
    let mut publications = Publications::new();
    for bot in bots.values() {
        for p in bot.own_publications() {
            publications.insert((p.participant.clone(), p.kind), p.id.clone());
        }
    }
    assert_eq!(publications.len(), 8, "{publications:?}");
    for (identity, bot) in &bots {
        bot.wait_until("all others' publications", MEDIA_WAIT, |_| {
            bot.publications_in_call().len() == 6
        })
        .await
        .unwrap_or_else(|e| panic!("{identity}: {e}"));
    }

    use TrackKind::{Audio, Video};
    // Per-participant subscriptions, not all-to-all. Audio is routed by the server (everyone hears
    // everyone in a consecutive call) and a participant opts out of a voice by unsubscribing it, so
    // each bot subscribes to what it wants and unsubscribes the other voices.
    let plan: BTreeMap<&str, Vec<(&str, TrackKind)>> = BTreeMap::from([
        ("buyer", vec![("company", Video), ("office", Audio)]),
        (
            "interpreter",
            vec![("company", Audio), ("office", Audio), ("buyer", Audio)],
        ),
        (
            "office",
            vec![
                ("company", Audio),
                ("company", Video),
                ("interpreter", Audio),
            ],
        ),
        (
            "company",
            vec![("interpreter", Audio), ("buyer", Audio), ("buyer", Video)],
        ),
    ]);
    let wanted: BTreeMap<&str, BTreeSet<String>> = plan
        .iter()
        .map(|(who, list)| {
            let ids = list
                .iter()
                .map(|(p, k)| publication(&publications, p, *k))
                .collect();
            (*who, ids)
        })
        .collect();
    for (who, ids) in &wanted {
        let bot = &bots[who];
        let subscribe: Vec<String> = ids.iter().cloned().collect();
        bot.subscribe(&subscribe)
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        let unwanted_audio: Vec<String> = parties
            .iter()
            .filter(|(other, _)| other != who)
            .map(|(other, _)| publication(&publications, other, Audio))
            .filter(|id| !ids.contains(id))
            .collect();
        bot.unsubscribe(&unwanted_audio)
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}"));
    }
    // The `routing` messages say exactly the chosen voices, at gain 1.0.
    for (who, ids) in &wanted {
        let bot = &bots[who];
        let audio: BTreeSet<String> = ids
            .iter()
            .filter(|id| {
                publications
                    .iter()
                    .any(|((_, k), p)| p == *id && *k == Audio)
            })
            .cloned()
            .collect();
        let routing = bot
            .wait_for_routing("the chosen voices routed", MEDIA_WAIT, |r| {
                r.routes
                    .iter()
                    .map(|r| r.publication.clone())
                    .collect::<BTreeSet<_>>()
                    == audio
            })
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}\n{:#?}", bot.report().routing));
        assert!(
            routing.routing.routes.iter().all(|r| r.gain == 1.0),
            "{routing:?}"
        );
    }

    // From now on every wanted flow arrives (audio 50 pps, video at the clip's frame rate), and
    // nothing else: voices heard before the opt-outs above took effect stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before: BTreeMap<&str, Report> = bots.iter().map(|(who, b)| (*who, b.report())).collect();
    for (who, ids) in &wanted {
        let bot = &bots[who];
        let start = &before[who];
        bot.wait_until("every subscribed flow", MEDIA_WAIT, |r| {
            ids.iter()
                .all(|id| packets(r, id) >= packets(start, id) + 40)
        })
        .await
        .unwrap_or_else(|e| panic!("{who}: {e}\n{:#?}", bot.report()));
    }

    // Exactly the subscribed publications, none other, no gaps or duplicates.
    for (who, ids) in &wanted {
        let report = bots[who].report();
        let start = &before[who];
        let flowing: BTreeSet<String> = report
            .received
            .iter()
            .filter(|r| r.packets > packets(start, &r.publication))
            .map(|r| r.publication.clone())
            .collect();
        assert_eq!(
            &flowing, ids,
            "{who} receives exactly what it subscribed to"
        );
        assert_eq!(
            report.unattributed_packets, 0,
            "{who}: packets on unknown mids"
        );
        for received in report.received.iter().filter(|r| r.packets > 0) {
            assert_eq!(received.sequence_gaps, 0, "{who}: gaps in {received:?}");
            assert_eq!(received.duplicates, 0, "{who}: duplicates in {received:?}");
        }
    }

    // Unsubscribe stops the flow within 500 ms.
    let buyer = &bots["buyer"];
    let company_video = publication(&publications, "company", Video);
    buyer
        .unsubscribe(std::slice::from_ref(&company_video))
        .await
        .unwrap();
    let unsubscribed_at = buyer.now_ms();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_500ms = packets(&buyer.report(), &company_video);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let report = buyer.report();
    assert_eq!(
        packets(&report, &company_video),
        after_500ms,
        "company video still arriving more than 500 ms after unsubscribe"
    );
    let last = report
        .received(&company_video)
        .and_then(|r| r.last_packet_ms)
        .unwrap();
    assert!(
        last <= unsubscribed_at + 500,
        "last packet {} ms after unsubscribe",
        last.saturating_sub(unsubscribed_at)
    );
    // The other flow of the buyer is untouched.
    let office_audio = publication(&publications, "office", Audio);
    let before = packets(&report, &office_audio);
    buyer
        .wait_for_packets(&office_audio, before + 25, MEDIA_WAIT)
        .await
        .unwrap();

    // Resubscribe resumes the same flow, starting on a keyframe the publisher was asked for.
    let company = &bots["company"];
    let asked_since = company.now_ms();
    let before = packets(&buyer.report(), &company_video);
    buyer
        .subscribe(std::slice::from_ref(&company_video))
        .await
        .unwrap();
    buyer
        .wait_for_packets(&company_video, before + 30, MEDIA_WAIT)
        .await
        .unwrap_or_else(|e| panic!("resume: {e}\n{:#?}", buyer.report()));
    let published = company.report();
    let video = published
        .published_kind(Video)
        .expect("company publishes video");
    assert!(
        video.keyframe_requests_since(asked_since) >= 1,
        "no keyframe request reached the company after the resubscribe: {video:?}"
    );
    let resumed = buyer.report();
    let flow = resumed.received(&company_video).unwrap();
    assert_eq!(
        flow.sequence_gaps, 0,
        "sequence numbers continue across the pause: {flow:?}"
    );
    assert_eq!(flow.duplicates, 0);
    let window = flow
        .subscriptions
        .last()
        .expect("a second subscription window");
    assert!(window.first_packet_ms.is_some());
    assert_eq!(
        window.first_keyframe_ms, window.first_packet_ms,
        "the resumed flow starts with a keyframe: {window:?}"
    );

    // `leave` removes the office's publications from everyone within 5 s.
    let mut office = bots.remove("office").unwrap();
    office.leave().await.unwrap();
    let office_ids: BTreeSet<String> = [Audio, Video]
        .iter()
        .map(|k| publication(&publications, "office", *k))
        .collect();
    for (who, bot) in &bots {
        for id in &office_ids {
            bot.wait_for_event("office publication removed", Duration::from_secs(5), |e| {
                matches!(&e.kind, SignalEventKind::PublicationRemoved { publication } if publication == id)
            })
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        }
        bot.wait_for_event("office left", Duration::from_secs(5), |e| {
            matches!(&e.kind, SignalEventKind::ParticipantLeft { participant, .. } if participant == "office")
        })
        .await
        .unwrap_or_else(|e| panic!("{who}: {e}"));
    }

    // A killed bot (a separate process, SIGKILL) disappears from the call within 5 s too.
    let buyer = &bots["buyer"];
    let mut killed = tokio::process::Command::new(bot_binary())
        .args([
            "--url",
            &url,
            "--token",
            &token(CALL, "relay", Role::Office),
        ])
        .args([
            "--publish",
            "audio,video",
            "--subscribe",
            "all",
            "--duration",
            "60s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn dragoman-bot");
    let relay_audio = buyer
        .wait_for_publication("the relay's audio", MEDIA_WAIT, |p| {
            p.participant == "relay" && p.kind == Audio
        })
        .await
        .unwrap();
    // Routed to the buyer by the server (consecutive call: everyone hears everyone).
    buyer
        .wait_for_packets(&relay_audio.id, 25, MEDIA_WAIT)
        .await
        .unwrap();
    killed.start_kill().expect("kill the relay bot");
    let killed_at = buyer.now_ms();
    let removed = buyer
        .wait_for_event("killed bot's publication removed", Duration::from_secs(5), |e| {
            matches!(&e.kind, SignalEventKind::PublicationRemoved { publication } if *publication == relay_audio.id)
        })
        .await
        .unwrap();
    assert!(removed.at_ms >= killed_at);
    let _ = killed.wait().await;

    for (_, mut bot) in bots {
        bot.leave().await.unwrap();
    }
    server.shutdown().await;
}
