//! Every peer of an engine presents the engine's one DTLS certificate: generating a certificate per
//! peer would stall forwarding for milliseconds on every join.

// Tests stop at the first surprise; unwrap is the clearest way to say so.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use dragoman_media::{EngineConfig, MediaEngine, TransportRole};
use str0m::Rtc;
use str0m::media::{Direction, MediaKind};

/// The `a=fingerprint` line of the engine's answer to a fresh client's audio offer.
fn answer_fingerprint(engine: &mut MediaEngine, now: Instant) -> String {
    let peer = engine.add_peer(TransportRole::Publisher, now).unwrap();
    let mut client = Rtc::new(now);
    let mut sdp = client.sdp_api();
    sdp.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, _pending) = sdp.apply().unwrap();
    let answer = engine.accept_offer(peer, &offer.to_sdp_string()).unwrap();
    answer
        .lines()
        .find(|l| l.starts_with("a=fingerprint:"))
        .unwrap()
        .to_owned()
}

#[test]
fn every_peer_of_an_engine_presents_the_same_certificate() {
    let now = Instant::now();
    let config = EngineConfig {
        local_addresses: vec!["127.0.0.1:5000".parse().unwrap()],
        ..EngineConfig::default()
    };
    let mut engine = MediaEngine::new(config.clone(), now);
    let first = answer_fingerprint(&mut engine, now);
    let second = answer_fingerprint(&mut engine, now);
    assert_eq!(first, second);
    // Another engine (another worker) has its own.
    let mut other = MediaEngine::new(config, now);
    assert_ne!(answer_fingerprint(&mut other, now), first);
}
