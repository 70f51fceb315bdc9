//! Forwarding over lossy links (seeded, so every run loses the same datagrams).
//!
//! - Publisher uplink loss: the engine's str0m NACKs the publisher and video is repaired by
//!   retransmission; repaired packets arrive late and out of order and are still forwarded, with the
//!   same rewriting as their neighbours. Audio is not retransmitted: its losses reach the subscriber
//!   as sequence gaps exactly where the publisher's packets went missing.
//! - Subscriber downlink loss: the subscriber NACKs the engine, whose str0m retransmits video (the
//!   engine writes video as nackable); audio losses stay losses. Only within the engine's resend
//!   window: with a window shorter than a NACK's round trip, lost video stays lost.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Received, Sent, Sim, SourceSpec};
use dragoman_media::{DropReason, EngineConfig};

const LOSS: f64 = 0.05;

#[test]
fn uplink_loss_is_repaired_for_video_and_leaves_gaps_in_audio() {
    let mut sim = Sim::new();
    let publisher = sim.av_publisher("publisher", SourceSpec::audio(), SourceSpec::video());
    let subscriber = sim.connected_subscriber("subscriber", &[publisher.audio, publisher.video]);
    sim.run_for(Duration::from_millis(500));
    sim.set_loss(publisher.client, LOSS, 0.0);
    sim.run_for(Duration::from_secs(5));
    sim.set_source_running(publisher.client, publisher.audio_mid, false);
    sim.set_source_running(publisher.client, publisher.video_mid, false);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.lost >= 20, "the uplink lost datagrams: {}", sim.lost);

    let sub = sim.client(subscriber);
    let video = sub.received_for(publisher.video);
    let audio = sub.received_for(publisher.audio);
    let pub_client = sim.client(publisher.client);
    let video_sent = &pub_client.source(publisher.video_mid).sent;
    let audio_sent = &pub_client.source(publisher.audio_mid).sent;

    // Video: every packet from the first one forwarded on arrived, each exactly once.
    let first = video[0].index;
    let expected: BTreeSet<u64> = video_sent
        .iter()
        .map(|s| s.index)
        .filter(|i| *i >= first)
        .collect();
    assert_eq!(indices(&video), expected, "video repaired");
    assert_eq!(video.len(), expected.len(), "no duplicates");
    assert!(!in_order(&video), "some repairs arrived late");
    assert_one_rewrite("video", &video);

    // Audio: some packets are gone for good, and the subscriber sees the gaps where they were.
    let sent: BTreeSet<u64> = audio_sent
        .iter()
        .map(|s| s.index)
        .filter(|i| *i >= audio[0].index)
        .collect();
    let got = indices(&audio);
    assert!(got.is_subset(&sent));
    let missing = sent.len() - got.len();
    assert!(missing >= 5, "audio lost upstream: {missing}");
    assert!(in_order(&audio));
    assert_one_rewrite("audio", &audio);
    assert_eq!(sim.drops(DropReason::BeforeSwitchPoint), 0);
}

/// What a subscriber received over a lossy downlink, and what the publisher sent meanwhile.
struct DownlinkRun {
    video: Vec<Received>,
    audio: Vec<Received>,
    /// Indices of the publisher's video packets from the subscriber's first one on.
    video_sent: BTreeSet<u64>,
    /// Every video packet the publisher sent, by index.
    video_sent_packets: Vec<Sent>,
    audio_sent: u64,
}

fn downlink_loss_run(mut sim: Sim) -> DownlinkRun {
    let publisher = sim.av_publisher("publisher", SourceSpec::audio(), SourceSpec::video());
    let subscriber = sim.connected_subscriber("subscriber", &[publisher.audio, publisher.video]);
    sim.run_for(Duration::from_millis(500));
    sim.set_loss(subscriber, 0.0, LOSS);
    sim.run_for(Duration::from_secs(5));
    sim.set_source_running(publisher.client, publisher.audio_mid, false);
    sim.set_source_running(publisher.client, publisher.video_mid, false);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.lost >= 20, "the downlink lost datagrams: {}", sim.lost);

    let sub = sim.client(subscriber);
    let video = sub.received_for(publisher.video);
    let audio = sub.received_for(publisher.audio);
    let pub_client = sim.client(publisher.client);
    let first = video[0].index;
    let video_sent = pub_client
        .source(publisher.video_mid)
        .sent
        .iter()
        .map(|s| s.index)
        .filter(|i| *i >= first)
        .collect();
    let video_sent_packets = pub_client.source(publisher.video_mid).sent.clone();
    let audio_sent = pub_client.source(publisher.audio_mid).sent.len() as u64 - audio[0].index;
    DownlinkRun {
        video,
        audio,
        video_sent,
        video_sent_packets,
        audio_sent,
    }
}

#[test]
fn downlink_loss_is_repaired_for_video_by_the_engines_retransmissions() {
    // The default resend window.
    let DownlinkRun {
        video,
        audio,
        video_sent: expected,
        video_sent_packets,
        audio_sent: sent,
    } = downlink_loss_run(Sim::new());

    // The engine forwarded everything; the subscriber's str0m got the lost video back via RTX.
    assert_eq!(indices(&video), expected, "video repaired");
    assert_eq!(video.len(), expected.len(), "no duplicates");
    assert_one_rewrite("video", &video);
    // A resend is the packet as first sent: same timestamp, marker, payload type and video
    // orientation, and the mid (video keeps it, see forwarding.rs).
    let first = &video[0];
    for r in &video {
        let sent = &video_sent_packets[r.index as usize];
        assert_eq!(sent.index, r.index);
        assert_eq!(
            r.timestamp.wrapping_sub(sent.rtp_time as u32),
            first
                .timestamp
                .wrapping_sub(video_sent_packets[first.index as usize].rtp_time as u32),
            "{r:?}"
        );
        assert_eq!(r.marker, sent.marker, "{r:?}");
        assert_eq!(r.pt, first.pt, "{r:?}");
        assert!(r.mid_in_header, "{r:?}");
        let orientation = sent.marker.then(|| common::video_orientation(sent.frame));
        assert_eq!(r.video_orientation, orientation, "{r:?}");
    }

    let missing = sent - audio.len() as u64;
    assert!(missing >= 5, "audio is not retransmitted: {missing} lost");
    assert_one_rewrite("audio", &audio);
}

#[test]
fn video_lost_on_the_downlink_is_not_resent_once_out_of_the_resend_window() {
    // Shorter than any NACK's round trip: every lost packet has left the cache when asked for.
    let run = downlink_loss_run(Sim::with_config(EngineConfig {
        resend_window: Duration::from_millis(1),
        ..EngineConfig::default()
    }));
    let received = indices(&run.video);
    assert!(received.is_subset(&run.video_sent));
    let missing = run.video_sent.len() - received.len();
    assert!(missing >= 5, "lost video stays lost: {missing} missing");
    assert_eq!(run.video.len(), received.len(), "no duplicates");
    assert_one_rewrite("video", &run.video);
}

fn indices(packets: &[Received]) -> BTreeSet<u64> {
    packets.iter().map(|r| r.index).collect()
}

fn in_order(packets: &[Received]) -> bool {
    packets.windows(2).all(|w| w[0].index < w[1].index)
}

/// One offset maps every publisher packet to its subscriber sequence number, late ones included: the
/// subscriber sees the publisher's stream, shifted, with gaps only where packets are missing.
fn assert_one_rewrite(what: &str, packets: &[Received]) {
    let offset = packets[0].ext_seq - packets[0].index;
    for r in packets {
        assert_eq!(r.ext_seq - r.index, offset, "{what}: {r:?}");
        assert_eq!(r.seq, r.ext_seq as u16);
    }
}
