//! Keyframe requests to publishers.
//!
//! - A new video subscriber makes the engine send a PLI to the publisher (the publisher sees
//!   `Event::KeyframeRequest`), and the subscriber's video starts with the keyframe that answers it.
//! - Requests for one publisher layer are throttled: within one `keyframe_request_interval` at most
//!   one goes out at once and one more (standing for all the others) when the interval ends. This
//!   holds for PLIs from several subscribers and for repeated unsubscribe/subscribe alike. While
//!   nothing answers, a subscriber waiting for a keyframe keeps asking, once per interval.
//! - A keyframe answers every request made before it: the deferred one is then not sent.
//! - Every request sent is reported as `MediaEvent::KeyframeRequested` and counted in the stats.

mod common;

use std::time::{Duration, Instant};

use common::{AvPublisher, ClientId, KeyframePolicy, Sim, SourceSpec};
use dragoman_media::DropReason;

const INTERVAL: Duration = Duration::from_millis(500);

/// Keyframes only when the test forces one: requests are counted, not answered.
const MANUAL_KEYFRAMES: KeyframePolicy = KeyframePolicy {
    first: true,
    every: None,
    on_request: false,
};

#[test]
fn a_new_video_subscriber_gets_a_keyframe_on_request() {
    let mut sim = Sim::with_keyframe_interval(INTERVAL);
    let publisher = sim.av_publisher("publisher", SourceSpec::audio(), SourceSpec::video());
    sim.run_for(Duration::from_secs(1));
    assert!(
        publisher_plis(&sim, &publisher).is_empty(),
        "nobody asked yet"
    );

    let subscriber = sim.connected_subscriber("subscriber", &[publisher.video]);
    let connected_at = sim.now;
    sim.run_for(Duration::from_secs(2));

    let plis = publisher_plis(&sim, &publisher);
    assert!(!plis.is_empty(), "the publisher was asked for a keyframe");
    assert!(
        plis[0] <= connected_at + Duration::from_millis(100),
        "asked at once: {plis:?}"
    );
    let video = sim.client(subscriber).received_for(publisher.video);
    assert!(
        video[0].keyframe,
        "video starts on the requested keyframe: {:?}",
        video[0]
    );
    assert!(video[0].at <= connected_at + Duration::from_millis(150));
    // The source's first keyframe was long gone: the one received was made for the request.
    let source = sim.client(publisher.client).source(publisher.video_mid);
    let keyframe = source
        .sent
        .iter()
        .find(|s| s.index == video[0].index)
        .expect("sent");
    assert!(keyframe.keyframe && keyframe.at >= plis[0]);
    // The requests made while waiting for that keyframe were answered by it: none was deferred.
    assert_eq!(plis.len(), 1, "{plis:?}");
    assert_requests_reported(&sim, &publisher);
}

#[test]
fn plis_from_several_subscribers_are_throttled() {
    let mut sim = Sim::with_keyframe_interval(INTERVAL);
    let publisher = sim.av_publisher("publisher", SourceSpec::audio(), SourceSpec::video());
    let subscribers: Vec<ClientId> = ["s1", "s2", "s3"]
        .into_iter()
        .map(|name| sim.connected_subscriber(name, &[publisher.video]))
        .collect();
    sim.run_for(Duration::from_secs(2));
    for s in &subscribers {
        assert!(
            !sim.client(*s).received_for(publisher.video).is_empty(),
            "video flows"
        );
    }
    // From now on the publisher does not answer requests, so nothing but the PLIs below asks.
    sim.set_keyframe_policy(publisher.client, publisher.video_mid, MANUAL_KEYFRAMES);
    let before = publisher_plis(&sim, &publisher).len();
    let received_before = sim.engine.stats().keyframe_requests_received;

    // Nine PLIs within 450 ms, from three subscribers.
    let first_pli = sim.now;
    for _round in 0..3 {
        for s in &subscribers {
            sim.send_pli(*s, publisher.video);
            sim.run_for(Duration::from_millis(50));
        }
    }
    sim.run_for(Duration::from_secs(2));

    assert_eq!(
        sim.engine.stats().keyframe_requests_received - received_before,
        9
    );
    let plis = publisher_plis(&sim, &publisher)[before..].to_vec();
    assert_eq!(plis.len(), 2, "one at once, one deferred: {plis:?}");
    assert!(
        plis[0] <= first_pli + Duration::from_millis(30),
        "the first went at once: {plis:?}"
    );
    assert!(
        plis[1] - plis[0] >= INTERVAL,
        "the second waited for the interval: {plis:?}"
    );
    assert!(
        plis[1] - plis[0] <= INTERVAL + Duration::from_millis(20),
        "and no longer: {plis:?}"
    );
    assert_requests_reported(&sim, &publisher);
}

#[test]
fn repeated_resubscribes_are_throttled() {
    let mut sim = Sim::with_keyframe_interval(INTERVAL);
    let publisher = sim.av_publisher(
        "publisher",
        SourceSpec::audio(),
        SourceSpec::video().keyframes(MANUAL_KEYFRAMES),
    );
    let subscriber = sim.connected_subscriber("subscriber", &[publisher.video]);
    sim.force_keyframe(publisher.client, publisher.video_mid);
    sim.run_for(Duration::from_secs(2));
    assert!(
        !sim.client(subscriber)
            .received_for(publisher.video)
            .is_empty(),
        "video flows"
    );
    let before = publisher_plis(&sim, &publisher).len();

    // Five pause/resume cycles within 400 ms, no keyframe in between: each resume wants one.
    let first_resume = sim.now;
    for _ in 0..5 {
        sim.unsubscribe(subscriber, publisher.video);
        sim.run_for(Duration::from_millis(40));
        sim.subscribe(subscriber, &[publisher.video]);
        sim.run_for(Duration::from_millis(40));
    }
    // Within the first interval: the first resume's request only.
    let almost_due = first_resume + INTERVAL - Duration::from_millis(10);
    sim.run_for(almost_due - sim.now);
    assert_eq!(publisher_plis(&sim, &publisher)[before..].len(), 1);
    // Still waiting for a keyframe: one deferred request per interval until it comes.
    sim.run_for(Duration::from_millis(1100));
    let plis = publisher_plis(&sim, &publisher)[before..].to_vec();
    assert!(
        plis.len() == 3 || plis.len() == 4,
        "one per interval while waiting: {plis:?}"
    );
    for pair in plis.windows(2) {
        assert!(pair[1] - pair[0] >= INTERVAL, "throttled: {plis:?}");
    }
    assert!(sim.drops(DropReason::WaitingForKeyframe) > 0);

    // The keyframe ends the requests, the deferred one included.
    let before_keyframe = publisher_plis(&sim, &publisher).len();
    sim.force_keyframe(publisher.client, publisher.video_mid);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(publisher_plis(&sim, &publisher).len(), before_keyframe);
    let video = sim.client(subscriber).received_for(publisher.video);
    let resumed = video
        .iter()
        .find(|r| r.at > first_resume)
        .expect("video resumed");
    assert!(resumed.keyframe, "{resumed:?}");
    assert_requests_reported(&sim, &publisher);
}

/// When the publisher received keyframe requests for its video.
fn publisher_plis(sim: &Sim, publisher: &AvPublisher) -> Vec<Instant> {
    sim.client(publisher.client)
        .keyframe_requests_for(publisher.video_mid)
}

/// Every PLI the publisher got was reported as `KeyframeRequested` and counted as sent.
fn assert_requests_reported(sim: &Sim, publisher: &AvPublisher) {
    let plis = publisher_plis(sim, publisher).len();
    let events = sim.keyframe_requested_events(publisher.video).len();
    assert_eq!(plis, events, "one KeyframeRequested event per PLI");
    assert_eq!(sim.engine.stats().keyframe_requests_sent, events as u64);
    assert!(
        sim.keyframe_requested_events(publisher.audio).is_empty(),
        "audio is never asked"
    );
}
