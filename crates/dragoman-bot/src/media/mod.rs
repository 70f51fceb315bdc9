//! Test media: the embedded clips, the codec facts the bot needs about them, and packetization.
//!
//! The clips in `media/` beside `Cargo.toml` are made by `media/generate.sh` (ffmpeg) and committed,
//! so nothing here needs ffmpeg at run time.

pub mod clip;
pub mod opus;
pub mod packetizer;
pub mod vp8;

pub use clip::{Clip, Frame};
pub use packetizer::FramePacketizer;
