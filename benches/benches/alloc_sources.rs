//! Where the heap allocations of a forwarded packet come from.
//!
//! For a few configurations: set up the engine with 3 subscribers, forward a few thousand packets to
//! reach the steady state, count the allocations of 200 more, then capture a backtrace of every
//! allocation made while the engine takes in **one** packet and fans it out (`handle_datagram` +
//! `poll_output` drained, no socket), and print the allocation sites: the first frame outside the
//! standard library, with two callers. A site hit 3 times is per output packet (once per
//! subscriber); once, per incoming packet.
//!
//! `cargo bench -p dragoman-benches --bench alloc_sources`

use std::backtrace::Backtrace;
use std::collections::BTreeMap;

use dragoman_benches::alloc::{self, CountingAlloc};
use dragoman_benches::fixture::{Discard, Fixture, Setup};
use dragoman_benches::profile::{self, Profile};

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

const SUBSCRIBERS: usize = 3;

/// Frames that are the allocator's plumbing or the standard library, skipped to find the site.
const PLUMBING: &[&str] = &[
    "dragoman_benches::alloc::",
    "<dragoman_benches::alloc::",
    "__rust",
    "__rdl",
    "std::",
    "<std::",
    "core::",
    "<core::",
    "alloc::",
    "<alloc::",
    "<T as alloc::",
    "<T as core::",
    "<[T] as",
    "<Q as",
    "hashbrown::",
];

#[derive(Debug)]
struct Frame {
    function: String,
    location: String,
}

fn frames(trace: &Backtrace) -> Vec<Frame> {
    let text = trace.to_string();
    let mut frames: Vec<Frame> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(at) = line.strip_prefix("at ") {
            if let Some(last) = frames.last_mut() {
                last.location = shorten(at);
            }
        } else if let Some((index, function)) = line.split_once(": ")
            && index.chars().all(|c| c.is_ascii_digit())
        {
            frames.push(Frame {
                function: function.to_string(),
                location: String::new(),
            });
        }
    }
    frames
}

/// Paths relative to the crate they are in (`str0m-0.25.0/src/…`, `crates/…`).
fn shorten(path: &str) -> String {
    for marker in ["/registry/src/", "/work/main/"] {
        if let Some((_, rest)) = path.split_once(marker) {
            return rest
                .split_once('/')
                .filter(|_| marker == "/registry/src/")
                .map_or(rest, |(_, r)| r)
                .to_string();
        }
    }
    path.to_string()
}

/// The first frame outside the plumbing, with two callers.
fn site(trace: &Backtrace) -> String {
    let frames = frames(trace);
    let first = frames
        .iter()
        .position(|f| !PLUMBING.iter().any(|p| f.function.starts_with(p)))
        .unwrap_or(0);
    // The standard-library frame just inside the site says what was allocated (Vec, Arc, …).
    let what = first
        .checked_sub(1)
        .and_then(|i| frames.get(i))
        .map(|f| f.function.as_str())
        .unwrap_or("?");
    let mut lines = vec![format!("allocated by {what}")];
    for f in frames.iter().skip(first).take(3) {
        lines.push(format!("{}  ({})", f.function, f.location));
    }
    lines.join("\n      ")
}

fn report(title: &str, traces: &[Backtrace]) {
    let mut sites: BTreeMap<String, usize> = BTreeMap::new();
    for trace in traces {
        *sites.entry(site(trace)).or_default() += 1;
    }
    let mut sites: Vec<(String, usize)> = sites.into_iter().collect();
    sites.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("\n### {title}: {} allocations\n", traces.len());
    for (site, count) in sites {
        println!("  {count:>3} × {site}");
    }
}

fn main() {
    assert!(
        alloc::is_installed(),
        "the counting allocator is not installed"
    );
    // `cargo test --benches` runs this binary too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    profile::install();
    let setups = [
        Setup::video(Profile::AeadAes128Gcm, SUBSCRIBERS),
        Setup::audio(Profile::AeadAes128Gcm, SUBSCRIBERS),
        Setup::video(Profile::AesCm128HmacSha1_80, SUBSCRIBERS),
        Setup::video(Profile::AeadAes256Gcm, SUBSCRIBERS),
        // Issue 5's target configuration.
        Setup::video(Profile::AeadAes128Gcm, 10),
    ];
    let setups = if quick { &setups[..1] } else { &setups[..] };
    for &setup in setups {
        let mut fixture = Fixture::new(setup).unwrap_or_else(|e| panic!("{setup:?}: {e}"));
        // One for all, so that its own list of sent buffers has grown in the warm-up.
        let mut discard = Discard::default();
        fixture.measure(if quick { 10 } else { 3000 }, &mut discard);
        let steady = fixture.measure(if quick { 10 } else { 200 }, &mut discard);
        let kind = format!(
            "{} {} B {:?}, {} subscribers",
            setup.profile.name(),
            setup.payload_len,
            setup.kind,
            setup.subscribers
        );
        println!(
            "\n## {kind}\n\nsteady state over {} incoming packets: {:.2} allocations per incoming packet, {:.2} per output packet",
            steady.incoming,
            steady.allocations as f64 / steady.incoming as f64,
            steady.allocations as f64 / steady.outputs.max(1) as f64,
        );
        let singles: Vec<String> = (0..12)
            .map(|_| {
                let m = fixture.measure(1, &mut discard);
                format!("{} ({} forwarded)", m.allocations, m.outputs)
            })
            .collect();
        println!(
            "allocations of 12 single packets in a row: {}",
            singles.join(", ")
        );
        fixture.prepare(1);
        let (_, traces) = alloc::trace(|| fixture.feed(&mut discard));
        report("one incoming packet, fanned out", &traces);
        fixture.between_chunks();
        // A whole chunk, to catch what happens only every few packets (timers, RTCP).
        let chunk = 64;
        fixture.prepare(chunk);
        let (_, traces) = alloc::trace(|| fixture.feed(&mut discard));
        report(&format!("{chunk} incoming packets in a row"), &traces);
        fixture.between_chunks();
    }
}
