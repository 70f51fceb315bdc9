//! Removing peers.
//!
//! Removing a publisher's peer ends its tracks (`remove_peer` returns them), stops their forwarding
//! and makes its later datagrams unknown; a second publisher in the same engine, and the subscribers
//! of its tracks, carry on untouched. Removing a subscriber's peer ends none of the tracks it
//! received and leaves the other subscribers as they were.

mod common;

use std::time::Duration;

use common::{Sim, SourceSpec, assert_continuous};
use dragoman_media::{DropReason, MediaError, MediaKind};

#[test]
fn removing_a_publisher_ends_its_tracks_and_nothing_else() {
    let mut sim = Sim::new();
    let leaving = sim.av_publisher("leaving", SourceSpec::audio(), SourceSpec::video());
    let staying = sim.add_publisher("staying", &[MediaKind::Audio]);
    sim.connect(staying);
    let staying_audio = sim.publish(staying, MediaKind::Audio);
    let staying_mid = sim.start_source(
        staying,
        MediaKind::Audio,
        SourceSpec::audio().first_seq(30_000),
    );
    let everything =
        sim.connected_subscriber("everything", &[leaving.audio, leaving.video, staying_audio]);
    let staying_only = sim.connected_subscriber("staying-only", &[staying_audio]);
    sim.run_for(Duration::from_secs(1));
    for track in [leaving.audio, leaving.video, staying_audio] {
        assert!(
            !sim.client(everything).received_for(track).is_empty(),
            "{track} flows"
        );
    }
    assert_eq!(sim.engine.counts().peers, 4);
    assert_eq!(sim.engine.counts().tracks, 3);
    assert_eq!(sim.engine.counts().active_subscriptions, 4);

    let mut ended = sim.remove_peer(leaving.client);
    ended.sort();
    assert_eq!(ended, vec![leaving.audio, leaving.video]);
    let removed_at = sim.now;
    let leaving_peer = sim.client(leaving.client).peer;
    assert!(!sim.engine.is_connected(leaving_peer));
    assert_eq!(sim.engine.counts().peers, 3);
    assert_eq!(sim.engine.counts().tracks, 1);
    assert_eq!(sim.engine.counts().active_subscriptions, 2);
    // The ended tracks cannot be subscribed to any more; removing the peer twice is harmless.
    let subscriber_peer = sim.client(everything).peer;
    assert_eq!(
        sim.engine
            .subscribe(subscriber_peer, leaving.video, sim.now),
        Err(MediaError::UnknownTrack(leaving.video))
    );
    assert!(sim.remove_peer(leaving.client).is_empty());

    // The departed client does not know it is gone and keeps sending: every datagram from it is now
    // from an unknown source.
    let unknown_before = sim.drops(DropReason::UnknownSource);
    sim.run_for(Duration::from_secs(2));
    let from_leaving = sim
        .refused
        .iter()
        .filter(|(at, source, _)| *at > removed_at && *source == sim.client(leaving.client).addr)
        .count() as u64;
    assert!(
        from_leaving >= 100,
        "the departed publisher's media was refused: {from_leaving}"
    );
    assert_eq!(
        sim.drops(DropReason::UnknownSource) - unknown_before,
        from_leaving
    );
    assert!(
        sim.refused
            .iter()
            .all(|(_, source, _)| *source == sim.client(leaving.client).addr)
    );

    // Nothing of the ended tracks arrives after the removal (beyond what was already on the way).
    let sub = sim.client(everything);
    for track in [leaving.audio, leaving.video] {
        let late = sub
            .received_for(track)
            .iter()
            .filter(|r| r.at > removed_at + Duration::from_millis(20))
            .count();
        assert_eq!(late, 0, "{track} stopped");
    }
    // The other publisher's audio went on without a gap, to both of its subscribers.
    let sent = &sim.client(staying).source(staying_mid).sent;
    for subscriber in [everything, staying_only] {
        let audio = sim.client(subscriber).received_for(staying_audio);
        assert!(
            audio
                .iter()
                .any(|r| r.at > removed_at + Duration::from_millis(1900))
        );
        let first = audio[0].index;
        let expected: Vec<u64> = sent
            .iter()
            .map(|s| s.index)
            .filter(|i| *i >= first)
            .collect();
        let got: Vec<u64> = audio.iter().map(|r| r.index).collect();
        assert_eq!(got[..], expected[..got.len()], "every packet, in order");
        assert!(
            expected.len() - got.len() <= 1,
            "at most the last packet still on the way"
        );
        assert_continuous("staying audio", &audio);
    }
}

#[test]
fn removing_a_subscriber_leaves_the_others_alone() {
    let mut sim = Sim::new();
    let publisher = sim.av_publisher("publisher", SourceSpec::audio(), SourceSpec::video());
    let leaving = sim.connected_subscriber("leaving", &[publisher.audio, publisher.video]);
    let staying = sim.connected_subscriber("staying", &[publisher.audio, publisher.video]);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.engine.counts().active_subscriptions, 4);

    assert!(
        sim.remove_peer(leaving).is_empty(),
        "a subscriber ends no track"
    );
    let removed_at = sim.now;
    assert_eq!(sim.engine.counts().tracks, 2);
    assert_eq!(sim.engine.counts().active_subscriptions, 2);
    let forwarded = sim.engine.stats().rtp_packets_forwarded;
    let packets_in = sim.engine.stats().rtp_packets_in;
    let drops = sim.engine.stats().drops.clone();
    sim.run_for(Duration::from_secs(1));

    // Each packet now goes to the one remaining subscriber, and none is counted as dropped for the
    // departed one.
    let arrived = sim.engine.stats().rtp_packets_in - packets_in;
    assert!(arrived >= 95);
    assert_eq!(
        sim.engine.stats().rtp_packets_forwarded - forwarded,
        arrived
    );
    for reason in DropReason::ALL {
        if reason != DropReason::UnknownSource {
            assert_eq!(
                sim.drops(reason),
                drops.get(reason),
                "no new {reason:?} drops"
            );
        }
    }
    // The departed client's own RTCP is refused as from an unknown source.
    assert!(sim.refused.iter().all(|(_, source, reason)| {
        *source == sim.client(leaving).addr && *reason == DropReason::UnknownSource
    }));
    let gone = sim.client(leaving);
    assert!(
        gone.received
            .iter()
            .all(|r| r.at <= removed_at + Duration::from_millis(20))
    );
    for track in [publisher.audio, publisher.video] {
        let received = sim.client(staying).received_for(track);
        assert!(
            received
                .iter()
                .any(|r| r.at > removed_at + Duration::from_millis(900))
        );
        assert_continuous("staying", &received);
    }
}
