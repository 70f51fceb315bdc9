//! 16-bit sequence number wraparound, on both legs.
//!
//! - Into the engine: the publisher's sequence numbers cross 65535 (they start just below it; str0m
//!   cannot start a stream with a non-zero rollover counter), and the subscriber still sees one
//!   continuous stream.
//! - Out of the engine: the subscriber's own sequence numbers start below 2^15 and cross 65535 after
//!   some 33,000 packets; SRTP (whose rollover counter both ends must track) keeps working and the
//!   stream stays continuous.

mod common;

use std::time::Duration;

use common::{Sim, SourceSpec, assert_continuous};
use dragoman_media::DropReason;

#[test]
fn publisher_sequence_wrap_is_invisible_to_the_subscriber() {
    let mut sim = Sim::new();
    let publisher = sim.av_publisher(
        "publisher",
        SourceSpec::audio().first_seq(65_500),
        SourceSpec::video().first_seq(65_510),
    );
    let subscriber = sim.connected_subscriber("subscriber", &[publisher.audio, publisher.video]);
    // The subscriber missed the first keyframe; the engine's PLI brings the next one.
    sim.run_for(Duration::from_secs(3));
    sim.set_source_running(publisher.client, publisher.audio_mid, false);
    sim.set_source_running(publisher.client, publisher.video_mid, false);
    sim.run_for(Duration::from_millis(200));

    let pub_client = sim.client(publisher.client);
    let sub = sim.client(subscriber);
    for (what, mid, track) in [
        ("audio", publisher.audio_mid, publisher.audio),
        ("video", publisher.video_mid, publisher.video),
    ] {
        let sent = &pub_client.source(mid).sent;
        let last_sent = sent.last().expect("sent").seq;
        assert!(
            last_sent > 65_535 + 50,
            "{what}: the publisher wrapped well past 65535 ({last_sent})"
        );
        let received = sub.received_for(track);
        let first = received.first().expect("received");
        // Everything from the first forwarded packet on arrived, across the publisher's wrap.
        let expected: Vec<u64> = sent
            .iter()
            .map(|s| s.index)
            .skip_while(|i| *i != first.index)
            .collect();
        let got: Vec<u64> = received.iter().map(|r| r.index).collect();
        assert_eq!(got, expected, "{what}");
        let wrapped_at = sent
            .iter()
            .find(|s| s.seq == 65_536)
            .expect("packet 65536")
            .index;
        assert!(
            first.index < wrapped_at,
            "{what}: forwarding started before the wrap"
        );
        assert_continuous(what, &received);
    }
    assert_eq!(sim.drops(DropReason::BeforeSwitchPoint), 0);
    assert_eq!(sim.drops(DropReason::UnknownStream), 0);
}

#[test]
fn subscriber_sequence_wraps_and_srtp_keeps_up() {
    let mut sim = Sim::new();
    let publisher = sim.add_publisher("publisher", &[dragoman_media::MediaKind::Audio]);
    sim.connect(publisher);
    let audio = sim.publish(publisher, dragoman_media::MediaKind::Audio);
    let subscriber = sim.connected_subscriber("subscriber", &[audio]);
    // 1000 packets a second (a fast source keeps the virtual run short). Output starts at the
    // publisher's first sequence number masked to 15 bits: 0x7f00 here, 33,024 packets short of the wrap.
    let mid = sim.start_source(
        publisher,
        dragoman_media::MediaKind::Audio,
        SourceSpec::audio()
            .first_seq(0x7f00)
            .frame_interval(Duration::from_millis(1)),
    );
    sim.run_for(Duration::from_secs(34));
    sim.set_source_running(publisher, mid, false);
    sim.run_for(Duration::from_millis(200));

    let sent = sim.client(publisher).source(mid).sent.len();
    let received = sim.client(subscriber).received_for(audio);
    assert_eq!(received.len(), sent, "every packet arrived");
    assert_eq!(received[0].seq, 0x7f00);
    let last = received.last().expect("received");
    assert!(
        last.ext_seq > 65_535 + 500,
        "the subscriber's sequence wrapped: {last:?}"
    );
    assert!(received.iter().any(|r| r.seq == 0xffff) && received.iter().any(|r| r.seq == 0));
    assert_continuous("audio", &received);
}
