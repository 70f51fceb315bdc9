//! Several media workers on one UDP port: two calls of two `dragoman-bot` participants each, on a
//! server with two workers. Checks that the calls land on different workers, that every bot gets
//! the other's media with no sequence gap, and that once media flows no datagram crosses between
//! workers any more (each peer's datagrams arrive on its worker's connected socket).

// Tests stop at the first surprise; unwrap is the clearest way to say so.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use dragoman_bot::{Bot, BotConfig, PublishSpec, SubscribeSpec};
use dragoman_signal::Role;
use dragoman_tests::{http_get, signal_url, start_server_with, token};

const MEDIA_WAIT: Duration = Duration::from_secs(20);

/// The value of a metric line `name` (with its labels, if any) in a Prometheus text page.
fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no metric {name} in:\n{page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_on_two_workers_share_one_port_and_stay_on_their_worker() {
    let server = start_server_with(|c| c.media_workers = 2)
        .await
        .expect("server starts");
    let url = signal_url(&server);
    let mut bots = Vec::new();
    for call in ["call-a", "call-b"] {
        for (identity, role) in [("company", Role::Company), ("buyer", Role::Buyer)] {
            let config = BotConfig::new(&url, token(call, identity, role))
                .with_publish(PublishSpec::AUDIO_VIDEO)
                .with_subscribe(SubscribeSpec::All);
            let bot = Bot::join(config)
                .await
                .unwrap_or_else(|e| panic!("{call}/{identity} could not join: {e}"));
            bots.push((call, identity, bot));
        }
    }
    for (call, identity, bot) in &bots {
        bot.wait_until("the other's two publications", MEDIA_WAIT, |_| {
            bot.publications_in_call().len() == 2
        })
        .await
        .unwrap_or_else(|e| panic!("{call}/{identity}: {e}"));
        for publication in bot.publications_in_call() {
            bot.wait_for_packets(&publication.id, 20, MEDIA_WAIT)
                .await
                .unwrap_or_else(|e| panic!("{call}/{identity}: {e}"));
        }
    }

    // Each call is on its own worker: two participants, two transports each.
    let (status, page) = http_get(server.http_addr, "/metrics", None).await.unwrap();
    assert_eq!(status, 200);
    for worker in ["0", "1"] {
        let peers = metric(
            &page,
            &format!("dragoman_media_worker_peers{{worker=\"{worker}\"}}"),
        );
        assert_eq!(peers, 4.0, "worker {worker}");
    }

    // Steady state: media keeps flowing, and nothing is handed between workers any more.
    let handed_before = metric(&page, "dragoman_udp_datagrams_handed_over_total");
    eprintln!("handed over while connecting: {handed_before} datagrams");
    let received_before = metric(&page, "dragoman_udp_datagrams_received_total");
    let packets_before: Vec<u64> = bots
        .iter()
        .flat_map(|(_, _, bot)| {
            let report = bot.report();
            bot.publications_in_call()
                .into_iter()
                .map(move |p| report.received(&p.id).map_or(0, |r| r.packets))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, page) = http_get(server.http_addr, "/metrics", None).await.unwrap();
    let handed_after = metric(&page, "dragoman_udp_datagrams_handed_over_total");
    let received_after = metric(&page, "dragoman_udp_datagrams_received_total");
    assert!(
        received_after - received_before > 500.0,
        "media flowed: {received_before} → {received_after} datagrams"
    );
    assert_eq!(
        handed_after, handed_before,
        "no datagram crossed workers in steady state"
    );
    let mut k = 0;
    for (call, identity, bot) in &bots {
        let report = bot.report();
        for publication in bot.publications_in_call() {
            let received = report.received(&publication.id).unwrap();
            assert!(
                received.packets > packets_before[k] + 50,
                "{call}/{identity} kept receiving {}",
                publication.id
            );
            assert_eq!(
                received.sequence_gaps, 0,
                "{call}/{identity}: {}",
                publication.id
            );
            k += 1;
        }
    }
    for (_, _, mut bot) in bots {
        let _ = bot.leave().await;
    }
    server.shutdown().await;
}
