//! Receive-side accounting: what arrived of each RTP stream, and what did not.

pub mod sequence;

pub use sequence::{SequenceCounts, SequenceTracker};
