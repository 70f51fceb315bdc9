//! Benchmarks of Dragoman's forwarding hot path (issue 5), and what they need: an in-memory
//! engine with one publisher and N subscribers ([`fixture`]), a way to pick the SRTP profile of
//! in-memory str0m peers ([`profile`]), the crypto floor ([`floor`]), loopback `sendmmsg` ([`udp`])
//! a counting global allocator ([`alloc`]) and a thread-CPU-time clock ([`clock`]).
//!
//! The benchmarks themselves are in `benches/`; `docs/performance.md` explains the method and
//! holds the latest figures.

pub mod alloc;
pub mod clock;
pub mod fixture;
pub mod floor;
pub mod profile;
pub mod udp;
