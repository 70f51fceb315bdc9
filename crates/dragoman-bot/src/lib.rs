//! `dragoman-bot`: a synthetic Dragoman participant on an independent WebRTC stack (webrtc-rs).
//!
//! A [`Bot`] joins a call over the v1 signaling WebSocket, publishes a looped Opus and/or VP8 clip
//! on its publisher transport, answers the server's offers on its subscriber transport, subscribes
//! to others' publications (the server routes audio by itself), and counts everything: packets sent and
//! deliberately dropped, keyframe requests received, and per received publication packets, bytes,
//! sequence gaps, duplicates, reordering, first-packet latency and receive spans. It records every
//! `routing` message and can send the interpretation requests (listening language, direction
//! switch, relay input, handover, on/off air). [`Bot::report`] snapshots it as a serde [`Report`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), dragoman_bot::BotError> {
//! use dragoman_bot::{Bot, BotConfig, PublishSpec, SubscribeSpec};
//! use std::time::Duration;
//!
//! let config = BotConfig::new("ws://127.0.0.1:7880/v1/signal", "<join token>")
//!     .with_publish(PublishSpec::AUDIO_VIDEO)
//!     .with_subscribe(SubscribeSpec::All);
//! let mut bot = Bot::join(config).await?;
//! bot.wait_until("audio from someone", Duration::from_secs(5), |r| r.packets_received() > 50)
//!     .await?;
//! let report = bot.leave().await?;
//! println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
//! # Ok(())
//! # }
//! ```
//!
//! Everything binds to 127.0.0.1 by default with host candidates only (no mDNS, no STUN).

mod bot;
pub mod config;
pub mod error;
pub mod keyframe;
pub mod load;
pub mod media;
mod peer;
mod publisher;
mod receiver;
pub mod report;
pub mod sdp;
mod signaling;
mod state;
pub mod stats;
pub mod synthetic;

pub use bot::Bot;
pub use config::{BotConfig, MediaMode, PublishSpec, SubscribeSpec, Timeouts};
pub use error::BotError;
pub use report::{
    PublishedTrackReport, ReceiveSpan, ReceivedPublicationReport, Report, RoutingRecord,
    SPAN_GAP_MS, SignalEvent, SignalEventKind, SubscriptionWindow, TransportReport,
};
