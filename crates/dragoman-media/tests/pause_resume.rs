//! Pausing and resuming a subscription without renegotiation.
//!
//! `unsubscribe` stops forwarding at once (drops counted as `Paused`) while the publisher keeps
//! sending; `subscribe` again answers `Resumed` with nothing to negotiate. Audio resumes on the next
//! packet, video only at a keyframe (the engine asks the publisher for one). Either way the subscriber
//! sees its stream continue: the sequence number exactly +1 from the last packet before the pause, and
//! the RTP timestamp advanced by the (virtual) wall-clock length of the pause.

mod common;

use std::time::{Duration, Instant};

use common::{KeyframePolicy, Received, Sim, SourceSpec, assert_continuous};
use dragoman_media::{DropReason, SubscribeOutcome};

/// The publisher answers no keyframe request by itself: the test decides when keyframes come.
const MANUAL_KEYFRAMES: KeyframePolicy = KeyframePolicy {
    first: true,
    every: None,
    on_request: false,
};

#[test]
fn resume_continues_sequence_and_time_after_a_pause() {
    let mut sim = Sim::new();
    let publisher = sim.av_publisher(
        "publisher",
        SourceSpec::audio(),
        SourceSpec::video().keyframes(MANUAL_KEYFRAMES),
    );
    let audio = publisher.audio;
    let video = publisher.video;
    // The subscriber missed the first keyframe: send one now that it is there.
    let subscriber = sim.connected_subscriber("subscriber", &[audio, video]);
    sim.force_keyframe(publisher.client, publisher.video_mid);
    sim.run_for(Duration::from_secs(2));
    let n = sim.client(subscriber).received_for(video).len();
    assert!(n > 80, "video flows before the pause: {n}");
    assert_eq!(sim.engine.counts().active_subscriptions, 2);

    // Pause both tracks.
    let paused_at = sim.now;
    let paused_before = sim.drops(DropReason::Paused);
    sim.unsubscribe(subscriber, audio);
    sim.unsubscribe(subscriber, video);
    assert_eq!(sim.engine.counts().active_subscriptions, 0);
    let pause = Duration::from_secs(3);
    sim.run_for(pause);

    // Nothing that the publisher sent after the pause reached the subscriber.
    let before_audio = sim.client(subscriber).received_for(audio);
    let before_video = sim.client(subscriber).received_for(video);
    let pub_client = sim.client(publisher.client);
    let sent_while_paused = |mid| {
        pub_client
            .source(mid)
            .sent_since(paused_at)
            .map(|s| s.index)
            .collect::<Vec<_>>()
    };
    let audio_while_paused = sent_while_paused(publisher.audio_mid);
    let video_while_paused = sent_while_paused(publisher.video_mid);
    assert!(
        audio_while_paused.len() >= 145,
        "the publisher kept sending audio"
    );
    assert!(
        video_while_paused.len() >= 145,
        "the publisher kept sending video"
    );
    for (what, received, paused) in [
        ("audio", &before_audio, &audio_while_paused),
        ("video", &before_video, &video_while_paused),
    ] {
        let leaked: Vec<_> = received
            .iter()
            .filter(|r| paused.contains(&r.index))
            .collect();
        assert!(
            leaked.is_empty(),
            "{what} sent while paused arrived: {leaked:?}"
        );
    }
    // Every packet that arrived at the engine while paused was dropped as Paused (one subscriber, so
    // one drop per packet); the last few ms of sends may still be on the way.
    let paused_drops = sim.drops(DropReason::Paused) - paused_before;
    let sent_count = (audio_while_paused.len() + video_while_paused.len()) as u64;
    assert!(
        paused_drops <= sent_count && paused_drops + 4 >= sent_count,
        "paused drops {paused_drops}, sent while paused {sent_count}"
    );
    let last_audio = before_audio.last().expect("audio before the pause").clone();
    let last_video = before_video.last().expect("video before the pause").clone();

    // Resume: no renegotiation.
    let pli_before = sim
        .client(publisher.client)
        .keyframe_requests_for(publisher.video_mid)
        .len();
    assert_eq!(
        sim.subscribe(subscriber, &[audio, video]),
        vec![SubscribeOutcome::Resumed; 2]
    );
    assert_eq!(
        sim.offer_to(subscriber),
        None,
        "a resume needs no new offer"
    );
    assert_eq!(sim.engine.counts().active_subscriptions, 2);
    let resumed_at = sim.now;

    // Audio is back within a packet interval (plus the network); video waits for a keyframe,
    // which the engine asked the publisher for.
    let waiting_before = sim.drops(DropReason::WaitingForKeyframe);
    sim.run_for(Duration::from_millis(300));
    let sub = sim.client(subscriber);
    let resumed_audio = after(&sub.received_for(audio), resumed_at);
    assert!(
        resumed_audio
            .first()
            .is_some_and(|r| r.at <= resumed_at + Duration::from_millis(30)),
        "audio resumes at once: {:?}",
        resumed_audio.first()
    );
    assert!(
        after(&sub.received_for(video), resumed_at).is_empty(),
        "no video before a keyframe"
    );
    assert!(sim.drops(DropReason::WaitingForKeyframe) > waiting_before);
    let plis = sim
        .client(publisher.client)
        .keyframe_requests_for(publisher.video_mid);
    assert!(
        plis.len() > pli_before,
        "the resume asked the publisher for a keyframe"
    );
    assert!(
        plis[pli_before] <= resumed_at + Duration::from_millis(20),
        "asked at once: {plis:?}"
    );

    // The keyframe comes; video resumes exactly with it.
    sim.force_keyframe(publisher.client, publisher.video_mid);
    sim.run_for(Duration::from_millis(500));
    let sub = sim.client(subscriber);
    let resumed_video = after(&sub.received_for(video), resumed_at);
    let first_video = resumed_video.first().expect("video resumed");
    assert!(
        first_video.keyframe,
        "video resumes on a keyframe: {first_video:?}"
    );
    let keyframe_sent = sim
        .client(publisher.client)
        .source(publisher.video_mid)
        .sent_since(resumed_at)
        .find(|s| s.keyframe)
        .expect("the publisher sent a keyframe")
        .index;
    assert_eq!(first_video.index, keyframe_sent);

    // Sequence numbers continue exactly +1 across the pause; timestamps advance by the pause length.
    let first_audio = &resumed_audio[0];
    assert_resumed_after(&last_audio, first_audio, 48_000);
    assert_resumed_after(&last_video, first_video, 90_000);
    let all_audio = sub.received_for(audio);
    let all_video = sub.received_for(video);
    assert_continuous("audio", &all_audio);
    assert_continuous("video", &all_video);
    assert!(all_audio.len() > before_audio.len() + 30);
    assert!(all_video.len() > before_video.len() + 20);
}

#[test]
fn pause_and_resume_before_any_packet_was_forwarded_starts_cleanly() {
    let mut sim = Sim::new();
    let publisher = sim.av_publisher("publisher", SourceSpec::audio(), SourceSpec::video());
    let subscriber = sim.add_subscriber("subscriber");
    sim.subscribe(subscriber, &[publisher.audio]);
    sim.unsubscribe(subscriber, publisher.audio);
    sim.negotiate(subscriber);
    sim.connect(subscriber);
    sim.run_for(Duration::from_millis(500));
    assert!(
        sim.client(subscriber).received.is_empty(),
        "paused before negotiation: nothing"
    );
    assert!(sim.drops(DropReason::Paused) > 15);

    assert_eq!(
        sim.subscribe(subscriber, &[publisher.audio]),
        vec![SubscribeOutcome::Resumed]
    );
    sim.run_for(Duration::from_secs(1));
    let audio = sim.client(subscriber).received_for(publisher.audio);
    assert!(
        audio.len() >= 45,
        "audio flows after the resume: {}",
        audio.len()
    );
    assert!(audio[0].seq < 0x8000);
    assert_continuous("audio", &audio);
}

fn after(packets: &[Received], at: Instant) -> Vec<Received> {
    packets.iter().filter(|r| r.at > at).cloned().collect()
}

/// `first` continues `last` after a pause: sequence +1, and the timestamp moved on by the time
/// between the two arrivals (within 5 ms: both crossed the same network, the engine's clock ticks
/// in milliseconds).
fn assert_resumed_after(last: &Received, first: &Received, clock_rate: u64) {
    assert_eq!(first.seq, last.seq.wrapping_add(1), "{last:?} -> {first:?}");
    assert_eq!(first.ext_seq, last.ext_seq + 1, "{last:?} -> {first:?}");
    let gap = first.at - last.at;
    let expected = gap.as_micros() as u64 * clock_rate / 1_000_000;
    let actual = u64::from(first.timestamp.wrapping_sub(last.timestamp));
    let tolerance = 5 * clock_rate / 1000;
    assert!(
        actual.abs_diff(expected) <= tolerance,
        "timestamp moved {actual} ticks over a {gap:?} gap (expected about {expected}): {last:?} -> {first:?}"
    );
}
