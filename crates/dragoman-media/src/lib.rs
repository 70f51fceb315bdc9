//! Sans-IO media plane of the Dragoman SFU, built on str0m in RTP mode.
//!
//! The engine holds peers (one str0m `Rtc` per transport), published tracks and per-participant
//! subscriptions, and forwards every incoming RTP packet to each subscriber with its own sequence
//! number and timestamp rewriting. It knows nothing of sockets, threads, async runtimes or signaling:
//! it is driven by `handle_*(now, …)` and drained by `poll_output()`, so it runs the same in the server
//! and in tests on a virtual clock.
//!
//! The hot path is [`MediaEngine`]'s forwarding of one packet: a pure [`Forwarder`] decision per
//! subscriber (forward with a rewrite, or drop with a [`DropReason`]), then a write into the
//! subscriber's str0m send stream, sharing the payload, and out at once into a reused buffer.

mod client_sdp;
mod datagram_pool;
mod drop_reason;
mod engine;
mod error;
mod forwarder;
mod ids;
mod keyframe;
mod rewrite;
mod transport;

pub use client_sdp::{ClientAnswer, ClientOffer};
pub use drop_reason::{DropCounts, DropReason};
pub use engine::{
    DEFAULT_RESEND_WINDOW, EngineConfig, EngineCounts, EngineOutput, MAX_FORWARDED_PAYLOAD,
    MediaEngine, MediaEvent, MediaStats, PeerHealth, RemovedPeer, SubscribeOutcome,
    SubscriberOffer, TrackActivity, TrackLabel, TransportRole,
};
pub use error::MediaError;
pub use forwarder::{Decision, Forwarder, IncomingPacket, StartPolicy};
pub use ids::{PeerId, TrackId};
pub use keyframe::{KeyframeThrottle, VideoCodec, starts_keyframe};
pub use rewrite::{RtpPosition, StreamRewriter};
pub use transport::{Transport, TransportBuilder};

/// str0m types that appear in this crate's API.
pub use str0m::media::{MediaKind, Mid};
pub use str0m::net::Transmit;
