//! Receive-side accounting: what arrived of each RTP stream, and what did not; and a histogram for
//! latencies.

pub mod histogram;
pub mod sequence;

pub use histogram::{Histogram, Summary};
pub use sequence::{SequenceCounts, SequenceTracker};
