//! Typed drops: every packet the engine does not forward is counted under the reason why, in
//! `engine.stats().drops`.
//!
//! - `NotNegotiated`: media for a subscriber whose answer has not arrived, or that is not connected.
//! - `WaitingForKeyframe`: video for a subscriber before the first keyframe.
//! - `UnknownSource`: a datagram from an address no peer knows.
//! - `Malformed`: bytes that are neither STUN, DTLS nor RTP/RTCP.
//! - `Unpublished`: media on a negotiated `mid` that is not (or no longer) a published track.
//! - `Oversize`: a payload longer than the engine forwards (str0m would panic on some).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{AvPublisher, ClientId, KeyframePolicy, Sim, SourceSpec};
use dragoman_media::{DropReason, MAX_FORWARDED_PAYLOAD, MediaKind};

#[test]
fn media_before_the_subscribers_answer_or_connection_is_not_negotiated() {
    let mut sim = Sim::new();
    let publisher = sim.av_publisher("publisher", SourceSpec::audio(), SourceSpec::video());
    sim.run_for(Duration::from_millis(500));
    assert_eq!(
        sim.drops(DropReason::NotNegotiated),
        0,
        "no subscriber yet, nothing to drop"
    );

    let subscriber = sim.add_subscriber("subscriber");
    sim.subscribe(subscriber, &[publisher.audio, publisher.video]);
    let answer = sim.offer_to(subscriber).expect("an offer");

    // Offer out, answer not delivered: one drop per packet and track.
    let before = sim.engine.stats().rtp_packets_in;
    sim.run_for(Duration::from_secs(1));
    let arrived = sim.engine.stats().rtp_packets_in - before;
    assert!(arrived >= 95, "{arrived}");
    assert_eq!(sim.drops(DropReason::NotNegotiated), arrived);

    // Answer delivered: still not connected, still not negotiated.
    sim.deliver_answer(subscriber, &answer);
    assert!(!sim.engine.is_connected(sim.client(subscriber).peer));
    let dropped = sim.drops(DropReason::NotNegotiated);
    let before = sim.engine.stats().rtp_packets_in;
    sim.connect(subscriber);
    let arrived = sim.engine.stats().rtp_packets_in - before;
    assert!(
        sim.drops(DropReason::NotNegotiated) > dropped,
        "dropped while connecting"
    );
    assert!(sim.drops(DropReason::NotNegotiated) <= dropped + arrived);

    // Connected: it flows, and nothing more is dropped as not negotiated.
    let dropped = sim.drops(DropReason::NotNegotiated);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.drops(DropReason::NotNegotiated), dropped);
    let sub = sim.client(subscriber);
    assert!(sub.received_for(publisher.audio).len() >= 45);
    assert!(!sub.received_for(publisher.video).is_empty());
    assert_eq!(sim.drops(DropReason::Malformed), 0);
    assert_eq!(sim.drops(DropReason::UnknownSource), 0);
}

#[test]
fn video_before_a_keyframe_waits_for_it() {
    let mut sim = Sim::new();
    let no_keyframes = KeyframePolicy {
        first: false,
        every: None,
        on_request: false,
    };
    let publisher = sim.av_publisher(
        "publisher",
        SourceSpec::audio(),
        SourceSpec::video().keyframes(no_keyframes),
    );
    let subscriber = sim.connected_subscriber("subscriber", &[publisher.audio, publisher.video]);
    let waiting = sim.drops(DropReason::WaitingForKeyframe);
    let stats = sim.engine.stats().clone();
    sim.run_for(Duration::from_secs(1));

    // Every video packet that arrived was dropped while waiting; every audio packet was forwarded.
    let arrived = sim.engine.stats().rtp_packets_in - stats.rtp_packets_in;
    let forwarded = sim.engine.stats().rtp_packets_forwarded - stats.rtp_packets_forwarded;
    assert!(
        arrived >= 95 && forwarded >= 48,
        "{arrived} in, {forwarded} forwarded"
    );
    assert_eq!(
        sim.drops(DropReason::WaitingForKeyframe) - waiting,
        arrived - forwarded
    );
    let sub = sim.client(subscriber);
    assert!(sub.received_for(publisher.video).is_empty());
    assert!(sub.received_for(publisher.audio).len() >= 45);
    // The publisher was asked for one (more than once: nothing answered).
    assert!(
        sim.client(publisher.client)
            .keyframe_requests_for(publisher.video_mid)
            .len()
            >= 2
    );

    // The keyframe arrives: video starts with it, and the waiting is over.
    sim.force_keyframe(publisher.client, publisher.video_mid);
    sim.run_for(Duration::from_millis(200));
    let waiting = sim.drops(DropReason::WaitingForKeyframe);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.drops(DropReason::WaitingForKeyframe), waiting);
    let video = sim.client(subscriber).received_for(publisher.video);
    assert!(video[0].keyframe, "{:?}", video[0]);
    assert!(video.len() >= 50);
}

#[test]
fn datagrams_from_unknown_sources_and_garbage_are_refused() {
    let mut sim = Sim::new();
    let publisher = sim.av_publisher("publisher", SourceSpec::audio(), SourceSpec::video());
    let subscriber = sim.connected_subscriber("subscriber", &[publisher.audio]);
    sim.run_for(Duration::from_millis(500));
    assert!(
        sim.refused.is_empty(),
        "the clients' own traffic is all accepted: {:?}",
        sim.refused
    );

    let stranger = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 7999);
    // An RTP-looking datagram, a DTLS-looking one and a STUN binding request with a ufrag nobody
    // has, from an address no peer knows.
    let rtp = rtp_like_bytes();
    let dtls = [22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let stun = stun_binding_request("nobody:knows");
    for bytes in [&rtp[..], &dtls[..], &stun[..]] {
        assert_eq!(
            sim.inject(stranger, bytes),
            Err(DropReason::UnknownSource),
            "{bytes:02x?}"
        );
    }
    assert_eq!(sim.drops(DropReason::UnknownSource), 3);

    // Bytes that are no protocol at all are malformed, whoever sends them.
    let publisher_addr = sim.client(publisher.client).addr;
    for source in [stranger, publisher_addr] {
        assert_eq!(sim.inject(source, &[0xff; 40]), Err(DropReason::Malformed));
        assert_eq!(sim.inject(source, &[]), Err(DropReason::Malformed));
    }
    assert_eq!(sim.drops(DropReason::Malformed), 4);

    // RTP-looking garbage from a known peer reaches its stack, which discards it (SRTP fails); the
    // peer is unharmed either way.
    let result = sim.inject(publisher_addr, &rtp);
    assert!(
        matches!(result, Ok(()) | Err(DropReason::Malformed)),
        "{result:?}"
    );
    let received = sim.client(subscriber).received.len();
    sim.run_for(Duration::from_secs(1));
    assert!(
        sim.client(subscriber).received.len() >= received + 45,
        "audio still flows"
    );
    assert_eq!(sim.drops(DropReason::UnknownSource), 3);
}

#[test]
fn media_on_an_unpublished_mid_is_dropped() {
    let mut sim = Sim::new();
    let publisher = sim.add_publisher("publisher", &[MediaKind::Audio, MediaKind::Video]);
    sim.connect(publisher);
    // Only the audio becomes a track; the client sends on both mids anyway.
    let audio = sim.publish(publisher, MediaKind::Audio);
    let audio_mid = sim.start_source(publisher, MediaKind::Audio, SourceSpec::audio());
    let video_mid = sim.start_source(publisher, MediaKind::Video, SourceSpec::video());
    let subscriber = sim.connected_subscriber("subscriber", &[audio]);
    sim.run_for(Duration::from_secs(1));
    sim.set_source_running(publisher, video_mid, false);
    sim.run_for(Duration::from_millis(100));
    let video_sent = sim.client(publisher).source(video_mid).sent.len() as u64;
    assert_eq!(
        sim.drops(DropReason::Unpublished),
        video_sent,
        "every video packet"
    );
    assert!(
        sim.client(subscriber)
            .received
            .iter()
            .all(|r| r.mid == Some(sim.client(subscriber).mid_for(audio)))
    );

    // Ending the audio track: its packets are unpublished too, and the subscriber hears nothing more.
    sim.engine.remove_track(audio);
    let audio_in = sim.engine.stats().rtp_packets_in;
    let received = sim.client(subscriber).received.len();
    sim.run_for(Duration::from_secs(1));
    let arrived = sim.engine.stats().rtp_packets_in - audio_in;
    assert!(arrived >= 48);
    assert_eq!(sim.drops(DropReason::Unpublished), video_sent + arrived);
    // (At most a packet or two forwarded before the removal may still have been on the way.)
    assert!(sim.client(subscriber).received.len() <= received + 2);
    assert!(sim.client(publisher).source(audio_mid).sent.len() > 90);
    assert_eq!(sim.engine.counts().tracks, 0);
    assert_eq!(sim.engine.counts().active_subscriptions, 0);
}

/// Version 2, payload type 111, some sequence number, timestamp and SSRC, and a payload.
fn rtp_like_bytes() -> Vec<u8> {
    let mut bytes = vec![0x80, 111, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef];
    bytes.extend_from_slice(&[0x55; 60]);
    bytes
}

/// A STUN binding request (RFC 8445) as an ICE agent would send it: USERNAME, PRIORITY and a
/// MESSAGE-INTEGRITY attribute (whose value nobody could check, since nobody has the password).
fn stun_binding_request(username: &str) -> Vec<u8> {
    fn attribute(bytes: &mut Vec<u8>, kind: u16, value: &[u8]) {
        bytes.extend_from_slice(&kind.to_be_bytes());
        bytes.extend_from_slice(&(value.len() as u16).to_be_bytes());
        bytes.extend_from_slice(value);
        bytes.resize(bytes.len().div_ceil(4) * 4, 0);
    }
    let mut bytes = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    bytes.extend_from_slice(&[7; 12]);
    attribute(&mut bytes, 0x0006, username.as_bytes());
    attribute(&mut bytes, 0x0024, &[0x6e, 0x7f, 0x1e, 0xff]);
    attribute(&mut bytes, 0x0008, &[0; 20]);
    let length = (bytes.len() - 20) as u16;
    bytes[2..4].copy_from_slice(&length.to_be_bytes());
    bytes
}

/// A second of media from a publisher whose video payloads are `video_payload_len` bytes long,
/// to a subscriber of both its tracks; also the oversize drops counted before it.
fn a_second_with_video_payloads_of(video_payload_len: usize) -> (Sim, AvPublisher, ClientId, u64) {
    let mut sim = Sim::new();
    let publisher = sim.av_publisher(
        "publisher",
        SourceSpec::audio(),
        SourceSpec::video().payload_len(video_payload_len),
    );
    let subscriber = sim.connected_subscriber("subscriber", &[publisher.audio, publisher.video]);
    let dropped = sim.drops(DropReason::Oversize);
    sim.run_for(Duration::from_secs(1));
    (sim, publisher, subscriber, dropped)
}

#[test]
fn a_payload_longer_than_the_engine_forwards_is_dropped_and_the_rest_flows() {
    let (sim, publisher, subscriber, dropped) =
        a_second_with_video_payloads_of(MAX_FORWARDED_PAYLOAD + 1);
    let sub = sim.client(subscriber);
    assert!(
        sub.received_for(publisher.video).is_empty(),
        "no oversize video forwarded"
    );
    assert!(sub.received_for(publisher.audio).len() >= 45, "audio flows");
    // Two video packets per frame at 25 fps.
    assert!(sim.drops(DropReason::Oversize) - dropped >= 45);
    assert_eq!(sim.drops(DropReason::Malformed), 0);
}

#[test]
fn a_payload_of_the_longest_forwarded_length_goes_through() {
    let (sim, publisher, subscriber, _) = a_second_with_video_payloads_of(MAX_FORWARDED_PAYLOAD);
    let video = sim.client(subscriber).received_for(publisher.video);
    assert!(video.len() >= 45, "{}", video.len());
    assert_eq!(sim.drops(DropReason::Oversize), 0);
}
