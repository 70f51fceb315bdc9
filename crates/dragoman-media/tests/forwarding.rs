//! Forwarding through the engine.
//!
//! - A publisher with audio and video, two subscribers with different subscriptions: each gets
//!   exactly the tracks it subscribed to, every packet once, as one continuous stream per track
//!   (sequence numbers +1, timestamps moving on by the frame interval), with markers and payloads
//!   as the publisher sent them.
//! - A subscription added after the subscriber connected renegotiates (the engine offers again) and
//!   starts flowing without disturbing the tracks already flowing.
//! - Datagrams fed to the engine in one batch, without polling in between (as a server's receive
//!   loop does), are all forwarded.
//! - One `handle_timeout` after a receive round releases that round's packets: the drain right
//!   after it sends them all, and nothing is left due at once. The drain sends them even with no
//!   time handed out (the direct send).
//! - A forward str0m cannot send at once (here: on a stream created by an answer that arrived
//!   with no time handed to the engine since) is queued, makes the engine due at once, and goes
//!   out at the next timeout, first in its stream.
//! - Forwarded audio stops carrying the mid header extension once the subscriber has reported;
//!   video, which has RTX, keeps it (Firefox needs it).

mod common;

use std::time::Duration;

use common::{ClientId, LATENCY, Received, Sim, SourceSpec, WorkerRound, assert_continuous};
use dragoman_media::{DropReason, MediaKind, SubscribeOutcome, TrackId};

#[test]
fn each_subscriber_gets_exactly_its_subscriptions() {
    let mut sim = Sim::new();
    let publisher = sim.add_publisher("publisher", &[MediaKind::Audio, MediaKind::Video]);
    sim.connect(publisher);
    let audio = sim.publish(publisher, MediaKind::Audio);
    let video = sim.publish(publisher, MediaKind::Video);

    let both = sim.add_subscriber("both");
    let audio_only = sim.add_subscriber("audio-only");
    assert_eq!(
        sim.subscribe(both, &[audio, video]),
        vec![SubscribeOutcome::NeedsNegotiation; 2]
    );
    assert_eq!(
        sim.subscribe(audio_only, &[audio]),
        vec![SubscribeOutcome::NeedsNegotiation]
    );
    sim.negotiate(both);
    sim.negotiate(audio_only);
    sim.connect(both);
    sim.connect(audio_only);

    let audio_mid = sim.start_source(publisher, MediaKind::Audio, SourceSpec::audio());
    let video_mid = sim.start_source(publisher, MediaKind::Video, SourceSpec::video());
    sim.run_for(Duration::from_secs(3));
    // Stop the sources and let the network drain, so sent and received can be compared whole.
    sim.set_source_running(publisher, audio_mid, false);
    sim.set_source_running(publisher, video_mid, false);
    sim.run_for(Duration::from_millis(500));
    let pub_client = sim.client(publisher);
    let audio_source = pub_client.source(audio_mid);
    let video_source = pub_client.source(video_mid);
    let audio_sent = audio_source.sent.len();
    let video_sent = video_source.sent.len();
    assert!(audio_sent >= 140, "audio sent: {audio_sent}");
    assert!(video_sent >= 140, "video sent: {video_sent}");

    // The subscriber of both: all audio and all video, each on its own mid, continuous.
    let b = sim.client(both);
    let b_audio = b.received_for(audio);
    let b_video = b.received_for(video);
    assert_eq!(
        b.received.len(),
        b_audio.len() + b_video.len(),
        "nothing on other mids"
    );
    assert!(b_audio.iter().all(|r| r.source == audio_source.id));
    assert!(b_video.iter().all(|r| r.source == video_source.id));
    // Every packet sent arrived, once, in order.
    let expected_audio: Vec<u64> = audio_source.sent.iter().map(|s| s.index).collect();
    assert_eq!(indices(&b_audio), expected_audio);
    // Video starts with the first keyframe (the source's first frame), then follows every packet.
    assert!(
        b_video[0].keyframe,
        "video starts on a keyframe: {:?}",
        b_video[0]
    );
    let expected_video: Vec<u64> = video_source.sent.iter().map(|s| s.index).collect();
    assert_eq!(indices(&b_video), expected_video);
    assert_continuous("both/audio", &b_audio);
    assert_continuous("both/video", &b_video);
    assert_timestamps_follow_the_publisher(
        "both/audio",
        &b_audio,
        audio_source.spec.frame_interval,
        48_000,
    );
    assert_timestamps_follow_the_publisher(
        "both/video",
        &b_video,
        video_source.spec.frame_interval,
        90_000,
    );
    // Audio levels pass through; video carries none.
    for r in &b_audio {
        assert_eq!(
            (r.audio_level, r.voice_activity),
            common::audio_level(r.index),
            "{r:?}"
        );
    }
    assert!(b_video.iter().all(|r| r.audio_level.is_none()));
    // Video orientation (CVO) passes through on each frame's last packet, where the source put
    // it (a phone's rotation: without it the subscriber shows the picture on its side).
    for r in &b_video {
        let expected = r.marker.then(|| common::video_orientation(r.frame));
        assert_eq!(r.video_orientation, expected, "{r:?}");
    }
    assert!(b_audio.iter().all(|r| r.video_orientation.is_none()));
    // Markers pass through: the last packet of each video frame.
    assert!(b_video.iter().all(|r| r.marker == (r.index % 2 == 1)));
    // Output sequences start below 2^15 (no SRTP rollover counter to signal).
    assert!(b_audio[0].seq < 0x8000 && b_video[0].seq < 0x8000);

    // The audio-only subscriber: the same audio, no video at all.
    let a = sim.client(audio_only);
    let a_audio = a.received_for(audio);
    assert_eq!(
        a.received.len(),
        a_audio.len(),
        "audio-only received something else: {:?}",
        a.received.iter().find(|r| r.source != audio_source.id)
    );
    assert_eq!(indices(&a_audio), expected_audio);
    assert_continuous("audio-only/audio", &a_audio);

    // The engine counted what it forwarded, and dropped nothing once everyone was connected.
    let stats = sim.engine.stats();
    assert_eq!(stats.rtp_packets_in, (audio_sent + video_sent) as u64);
    assert_eq!(
        stats.rtp_packets_forwarded,
        (b.received.len() + a.received.len()) as u64
    );
    for reason in DropReason::ALL {
        assert_eq!(stats.drops.get(reason), 0, "no {reason:?} drops");
    }
    assert_eq!(sim.engine.counts().active_subscriptions, 3);
}

fn indices(packets: &[Received]) -> Vec<u64> {
    packets.iter().map(|r| r.index).collect()
}

/// Each new frame's timestamp moves on by one frame interval at the codec's clock rate.
fn assert_timestamps_follow_the_publisher(
    what: &str,
    packets: &[Received],
    interval: Duration,
    clock_rate: u64,
) {
    let per_frame = (interval.as_micros() as u64 * clock_rate / 1_000_000) as u32;
    for pair in packets.windows(2) {
        let frames = (pair[1].frame - pair[0].frame) as u32;
        assert_eq!(
            pair[1].timestamp.wrapping_sub(pair[0].timestamp),
            frames * per_frame,
            "{what}: {:?} -> {:?}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn a_batch_of_datagrams_fed_without_polling_is_all_forwarded() {
    let mut sim = Sim::new();
    let publisher = sim.add_publisher("publisher", &[MediaKind::Video]);
    sim.connect(publisher);
    let video = sim.publish(publisher, MediaKind::Video);
    let subscriber = sim.connected_subscriber("subscriber", &[video]);
    // Twelve packets a frame, written at the same instant: they reach the engine together and the
    // harness hands them over back to back before polling it.
    let mid = sim.start_source(
        publisher,
        MediaKind::Video,
        SourceSpec::video().packets_per_frame(12),
    );
    sim.run_for(Duration::from_secs(1));
    sim.set_source_running(publisher, mid, false);
    sim.run_for(Duration::from_millis(200));

    let sent = sim.client(publisher).source(mid).sent.len();
    assert!(sent >= 12 * 25, "{sent}");
    assert_eq!(sim.engine.stats().rtp_packets_in, sent as u64);
    let received = sim.client(subscriber).received_for(video);
    assert_eq!(received.len(), sent);
    assert_continuous("video", &received);
}

/// A video publisher with two connected subscribers, a quiet network after a second of 5-packet
/// frames, and then the next frame's five packets on their way to the engine together.
struct FrameInFlight {
    sim: Sim,
    video: TrackId,
    subscribers: [ClientId; 2],
}

fn a_frame_in_flight_to_two_subscribers() -> FrameInFlight {
    let mut sim = Sim::new();
    let publisher = sim.add_publisher("publisher", &[MediaKind::Video]);
    sim.connect(publisher);
    let video = sim.publish(publisher, MediaKind::Video);
    let first = sim.connected_subscriber("first", &[video]);
    let second = sim.connected_subscriber("second", &[video]);
    let mid = sim.start_source(
        publisher,
        MediaKind::Video,
        SourceSpec::video().packets_per_frame(5),
    );
    sim.run_for(Duration::from_secs(1));
    sim.set_source_running(publisher, mid, false);
    sim.run_for(Duration::from_millis(200));
    assert!(!sim.engine_bound_in_flight(), "the network is quiet");

    sim.set_source_running(publisher, mid, true);
    sim.run_until(Duration::from_millis(100), "a frame in flight", |s| {
        s.engine_bound_in_flight()
    });
    FrameInFlight {
        sim,
        video,
        subscribers: [first, second],
    }
}

/// Every subscriber got all five packets of the frame in `round`.
fn assert_frame_sent_to_each(frame: &FrameInFlight, round: &WorkerRound) {
    assert_eq!(round.fed, 5, "the frame's packets, in one round");
    for subscriber in frame.subscribers {
        let addr = frame.sim.client(subscriber).addr;
        let copies = round.rtp_to.iter().filter(|to| **to == addr).count();
        assert_eq!(copies, 5, "every packet to {addr}, in the same round");
    }
}

#[test]
fn the_packets_of_a_receive_round_go_out_in_that_round() {
    let mut frame = a_frame_in_flight_to_two_subscribers();
    let round = frame.sim.worker_round();
    assert_frame_sent_to_each(&frame, &round);
    assert!(
        round.deadline > frame.sim.now,
        "nothing left due at once (a packet still held would make the deadline now)"
    );
}

#[test]
fn a_forward_goes_out_without_waiting_for_time() {
    let mut frame = a_frame_in_flight_to_two_subscribers();
    // The frame is fed and the engine drained, but no time handed to it: str0m's queue would hold
    // every copy until then; the direct send does not wait for it.
    let round = frame.sim.receive_round_without_time();
    assert_frame_sent_to_each(&frame, &round);
    // The copies are real: both subscribers get the whole stream, in order.
    frame.sim.run_for(Duration::from_millis(100));
    for subscriber in frame.subscribers {
        let received = frame.sim.client(subscriber).received_for(frame.video);
        assert_continuous("video", &received);
    }
}

#[test]
fn a_forward_str0m_cannot_send_at_once_is_queued_and_goes_out_at_the_next_timeout() {
    let mut sim = Sim::new();
    let speaker = sim.add_publisher("speaker", &[MediaKind::Audio]);
    sim.connect(speaker);
    let audio = sim.publish(speaker, MediaKind::Audio);
    let audio_mid = sim.start_source(speaker, MediaKind::Audio, SourceSpec::audio());
    let camera = sim.add_publisher("camera", &[MediaKind::Video]);
    sim.connect(camera);
    let video = sim.publish(camera, MediaKind::Video);
    let subscriber = sim.connected_subscriber("subscriber", &[video]);
    sim.run_for(Duration::from_millis(500));

    // The audio subscription's send stream is created when the answer arrives, with the
    // speaker's next packet already on its way and no time handed to the engine since: str0m
    // cannot send on a stream that has had no timeout yet, so the forward is queued instead.
    assert_eq!(
        sim.subscribe(subscriber, &[audio]),
        vec![SubscribeOutcome::NeedsNegotiation]
    );
    let answer = sim.offer_to(subscriber).expect("a new offer");
    sim.run_until(
        Duration::from_millis(100),
        "a speaker's packet on its way",
        |s| s.engine_bound_rtp_from(speaker) && !s.engine_bound_rtp_from(camera),
    );
    sim.deliver_answer(subscriber, &answer);
    let forwarded_before = sim.engine.stats().rtp_packets_forwarded;
    // Rounds without time until the speaker's packet is in (a client's RTCP may come first).
    let mut round = sim.receive_round_without_time();
    while sim.engine_bound_rtp_from(speaker) {
        round = sim.receive_round_without_time();
    }
    let queued_at = sim.now;
    assert_eq!(
        sim.engine.stats().rtp_packets_queued,
        1,
        "the first forward was queued"
    );
    assert_eq!(
        sim.engine.stats().rtp_packets_forwarded,
        forwarded_before + 1,
        "and counted as forwarded"
    );
    assert!(round.rtp_to.is_empty(), "nothing went out at once");
    assert!(round.deadline <= queued_at, "the subscriber is due at once");

    // The next timeout sends it; from then on the direct send carries the stream.
    sim.run_for(Duration::from_millis(500));
    sim.set_source_running(speaker, audio_mid, false);
    sim.run_for(Duration::from_millis(100));
    let received = sim.client(subscriber).received_for(audio);
    assert!(received.len() >= 20, "{}", received.len());
    assert!(
        received[0].at <= queued_at + LATENCY + Duration::from_millis(2),
        "the queued packet went out at the next timeout: {:?} after",
        received[0].at - queued_at
    );
    assert_continuous("audio", &received);
    let sent = &sim.client(speaker).source(audio_mid).sent;
    let queued = sent
        .iter()
        .rposition(|s| s.at + LATENCY <= queued_at)
        .expect("the packet fed in that round");
    assert_eq!(
        received[0].index, sent[queued].index,
        "the queued packet is the first the subscriber got"
    );
    assert_eq!(
        received.len(),
        sent.len() - queued,
        "every packet since, once"
    );
    assert_eq!(sim.engine.stats().rtp_packets_queued, 1);
}

#[test]
fn forwarded_audio_stops_carrying_mid_once_reported_and_video_keeps_it() {
    let mut sim = Sim::new();
    let publisher = sim.av_publisher("publisher", SourceSpec::audio(), SourceSpec::video());
    let subscriber = sim.connected_subscriber("subscriber", &[publisher.audio, publisher.video]);
    // Receiver reports: every second for video, every 5 s for audio (str0m's defaults).
    sim.run_for(Duration::from_secs(7));
    let since = sim.now - Duration::from_secs(1);
    let sub = sim.client(subscriber);
    let late = |track| -> Vec<Received> {
        let received = sub.received_for(track);
        assert!(
            received[0].mid_in_header,
            "the first packets name their mid"
        );
        received.into_iter().filter(|r| r.at >= since).collect()
    };
    let audio = late(publisher.audio);
    assert!(
        audio.len() >= 40,
        "{} audio packets in the last second",
        audio.len()
    );
    assert!(
        audio.iter().all(|r| !r.mid_in_header),
        "audio: mid once reported"
    );
    // A stream with RTX keeps mid: Firefox drops frames without it (str0m issue #938), so the
    // vendored str0m must keep str0m 0.25.0's behaviour here.
    let video = late(publisher.video);
    assert!(
        video.len() >= 40,
        "{} video packets in the last second",
        video.len()
    );
    assert!(video.iter().all(|r| r.mid_in_header), "video: mid kept");
}

#[test]
fn a_later_subscription_renegotiates_without_disturbing_the_first() {
    let mut sim = Sim::new();
    let publisher = sim.av_publisher("publisher", SourceSpec::audio(), SourceSpec::video());
    let subscriber = sim.connected_subscriber("subscriber", &[publisher.audio]);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.client(subscriber).received_for(publisher.audio).len() >= 45);

    // Video too, now: a new mid, so a new offer from the engine on the connected transport.
    let added_at = sim.now;
    assert_eq!(
        sim.subscribe(subscriber, &[publisher.video]),
        vec![SubscribeOutcome::NeedsNegotiation]
    );
    let answer = sim.offer_to(subscriber).expect("a new offer");
    // While the answer is outstanding, a second offer is refused.
    let peer = sim.client(subscriber).peer;
    assert_eq!(
        sim.engine.create_offer(peer),
        Err(dragoman_media::MediaError::OfferPending)
    );
    sim.run_for(Duration::from_millis(200));
    sim.deliver_answer(subscriber, &answer);
    sim.run_for(Duration::from_secs(2));

    let sub = sim.client(subscriber);
    let video = sub.received_for(publisher.video);
    assert!(
        video.len() >= 80,
        "video flows after the renegotiation: {}",
        video.len()
    );
    assert!(video[0].keyframe && video[0].at > added_at);
    assert_continuous("video", &video);
    // Audio went on through the renegotiation without a gap.
    let audio = sub.received_for(publisher.audio);
    assert!(
        audio
            .iter()
            .any(|r| r.at > added_at + Duration::from_millis(2100))
    );
    let sent: Vec<u64> = sim
        .client(publisher.client)
        .source(publisher.audio_mid)
        .sent
        .iter()
        .map(|s| s.index)
        .collect();
    let first = sent
        .iter()
        .position(|i| *i == audio[0].index)
        .expect("first audio was sent");
    let got: Vec<u64> = audio.iter().map(|r| r.index).collect();
    assert_eq!(got[..], sent[first..first + got.len()]);
    assert_continuous("audio", &audio);
    assert_eq!(sim.drops(DropReason::CodecMismatch), 0);
}
