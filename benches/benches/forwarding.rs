//! The forwarding hot path against its floors, all in one run (issue 5).
//!
//! For each SRTP profile (AEAD_AES_128_GCM, AES_CM_128_HMAC_SHA1_80, and AEAD_AES_256_GCM, which is
//! what str0m negotiates when left alone) and each payload (1200-byte VP8 video, 100-byte Opus
//! audio), one criterion group measures, **per output packet**:
//!
//! - `floor/crypto`: header copy + payload copy + raw seal (aws-lc-rs, keys set up once);
//! - `floor/crypto+sendmmsg`: the same plus `sendmmsg` in batches of 32 to a UDP sink on 127.0.0.1;
//! - `fanout/N` (N = 3, 10, 50 subscribers): one fresh publisher packet into `MediaEngine::
//!   handle_datagram`, then `poll_output` drained (unprotect, forwarding decisions, rewrite and
//!   SRTP protect for each subscriber), the transmits dropped;
//! - `fanout+sendmmsg/N`: the same, every transmit sent with `sendmmsg`, batches of 32, one
//!   datagram per message, each subscriber's to a sink socket of its own on 127.0.0.1;
//! - `fanout+gso/N`: the same with the media workers' send queue as it runs in the server: the
//!   datagrams of a batch that go to the same subscriber are joined into one UDP GSO message.
//!
//! Time is this thread's CPU time (the machine is shared; see `dragoman_benches::clock`), wall-clock
//! time is recorded beside it. Criterion's time per iteration is the CPU time per output packet (its
//! throughput line is output packets per CPU-second). At the end a summary table gives each fan-out
//! as a ratio to its floor, and heap allocations per output packet (counting global allocator).
//! `docs/performance.md` has the method and the latest figures.
//!
//! `cargo bench -p dragoman-benches --bench forwarding [-- FILTER]`, e.g. `-- GCM128-1200B`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use dragoman_benches::alloc::{self, CountingAlloc};
use dragoman_benches::clock::Stopwatch;
use dragoman_benches::fixture::{Discard, Egress, Fixture, Loopback, Measured, Setup};
use dragoman_benches::floor::CryptoFloor;
use dragoman_benches::profile::{self, Profile};
use dragoman_benches::udp::{BATCH, MmsgSender, UdpSink};
use dragoman_media::MediaKind;

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

const SUBSCRIBERS: [usize; 3] = [3, 10, 50];

/// Floor packets per timed chunk (the sink is drained between chunks).
const FLOOR_CHUNK: u64 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Row {
    FloorCrypto,
    FloorSendmmsg,
    Fanout(usize),
    FanoutSend(usize),
    FanoutGso(usize),
}

type Key = (usize, Profile, Row);

/// Every timed chunk of every benchmark (warm-up and samples), summed.
static RESULTS: Mutex<BTreeMap<Key, Measured>> = Mutex::new(BTreeMap::new());
/// (datagrams sent, `sendmmsg` calls, GSO messages, datagrams the sinks received).
type SinkCounts = (u64, u64, u64, u64);
/// Per group and GSO or not, the counts of the fan-out's sends.
static SINKS: Mutex<BTreeMap<(usize, Profile, bool), SinkCounts>> = Mutex::new(BTreeMap::new());

fn record(key: Key, measured: Measured) {
    if let Ok(mut results) = RESULTS.lock() {
        results.entry(key).or_default().add(measured);
    }
}

fn group_name(setup: Setup) -> String {
    format!("{}-{}B", setup.profile.name(), setup.payload_len)
}

fn forwarding(c: &mut Criterion) {
    profile::install();
    for kind in [MediaKind::Video, MediaKind::Audio] {
        for profile in Profile::ALL {
            let base = match kind {
                MediaKind::Video => Setup::video(profile, 0),
                MediaKind::Audio => Setup::audio(profile, 0),
            };
            bench_group(c, base);
        }
    }
}

fn bench_group(c: &mut Criterion, base: Setup) {
    let payload = base.payload_len;
    let profile = base.profile;
    let mut group = c.benchmark_group(group_name(base));
    group.throughput(Throughput::Elements(1));

    let mut floor = CryptoFloor::new(profile, payload);
    let mut buffers = vec![vec![0u8; floor.packet_len()]; BATCH];
    group.bench_function("floor/crypto", |b| {
        b.iter_custom(|iters| {
            let allocations = alloc::allocations();
            let stopwatch = Stopwatch::start();
            for i in 0..iters {
                let buf = &mut buffers[i as usize % BATCH];
                std::hint::black_box(floor.protect(buf));
            }
            let (cpu, wall) = stopwatch.stop();
            record(
                (payload, profile, Row::FloorCrypto),
                Measured {
                    cpu,
                    wall,
                    incoming: iters,
                    outputs: iters,
                    transmits: iters,
                    allocations: alloc::allocations() - allocations,
                },
            );
            cpu
        })
    });

    let mut sink = UdpSink::new().expect("sink socket");
    let mut sender = MmsgSender::new(sink.addr()).expect("sender socket");
    group.bench_function("floor/crypto+sendmmsg", |b| {
        b.iter_custom(|iters| {
            let mut total = Measured::default();
            let mut remaining = iters;
            while remaining > 0 {
                let n = remaining.min(FLOOR_CHUNK);
                let allocations = alloc::allocations();
                let stopwatch = Stopwatch::start();
                let mut done = 0;
                while done < n {
                    let k = (n - done).min(BATCH as u64) as usize;
                    let mut lens = [0usize; BATCH];
                    for (len, buf) in lens.iter_mut().zip(&mut buffers).take(k) {
                        *len = floor.protect(buf);
                    }
                    let datagrams: [&[u8]; BATCH] = std::array::from_fn(|j| &buffers[j][..lens[j]]);
                    sender.send(&datagrams[..k]).expect("sendmmsg");
                    done += k as u64;
                }
                let (cpu, wall) = stopwatch.stop();
                total.add(Measured {
                    cpu,
                    wall,
                    incoming: n,
                    outputs: n,
                    transmits: n,
                    allocations: alloc::allocations() - allocations,
                });
                sink.drain();
                remaining -= n;
            }
            record((payload, profile, Row::FloorSendmmsg), total);
            total.cpu
        })
    });
    drop((sink, sender));

    let mut discard = Discard::default();
    let mut loopback = Loopback::new(false).expect("loopback sockets");
    let mut segmenting = Loopback::new(true).expect("loopback sockets");
    for subscribers in SUBSCRIBERS {
        let setup = Setup {
            subscribers,
            ..base
        };
        // Built on first use, so a filtered-out benchmark costs nothing; shared by both variants.
        // Built outside `iter_custom`: criterion sizes its runs by the wall time of each
        // `iter_custom` call, which must not include this setup.
        let mut fixture: Option<Fixture> = None;
        let build = || Fixture::new(setup).unwrap_or_else(|e| panic!("{}: {e}", group_name(setup)));
        group.bench_function(BenchmarkId::new("fanout", subscribers), |b| {
            let fixture = fixture.get_or_insert_with(build);
            let key = (payload, profile, Row::Fanout(subscribers));
            b.iter_custom(|iters| measure_fanout(fixture, iters, key, &mut discard))
        });
        group.bench_function(BenchmarkId::new("fanout+sendmmsg", subscribers), |b| {
            let fixture = fixture.get_or_insert_with(build);
            let key = (payload, profile, Row::FanoutSend(subscribers));
            b.iter_custom(|iters| measure_fanout(fixture, iters, key, &mut loopback))
        });
        group.bench_function(BenchmarkId::new("fanout+gso", subscribers), |b| {
            let fixture = fixture.get_or_insert_with(build);
            let key = (payload, profile, Row::FanoutGso(subscribers));
            b.iter_custom(|iters| measure_fanout(fixture, iters, key, &mut segmenting))
        });
    }
    if let Ok(mut sinks) = SINKS.lock() {
        sinks.insert((payload, profile, false), loopback.counts());
        sinks.insert((payload, profile, true), segmenting.counts());
    }
    group.finish();
}

/// Forward enough fresh packets for `iters` output packets; returns the CPU time scaled to exactly
/// `iters` output packets (one criterion iteration is one output packet).
fn measure_fanout(
    fixture: &mut Fixture,
    iters: u64,
    key: Key,
    egress: &mut impl Egress,
) -> Duration {
    let subscribers = fixture.setup().subscribers as u64;
    let measured = fixture.measure(iters.div_ceil(subscribers), egress);
    record(key, measured);
    measured
        .cpu
        .mul_f64(iters as f64 / measured.outputs.max(1) as f64)
}

/// Per output packet: (CPU ns, wall ns, allocations).
#[derive(Debug, Clone, Copy)]
struct PerPacket {
    cpu: f64,
    wall: f64,
    allocations: f64,
}

fn per_packet(m: &Measured) -> Option<PerPacket> {
    let n = m.outputs as f64;
    (m.outputs > 0).then(|| PerPacket {
        cpu: m.cpu.as_nanos() as f64 / n,
        wall: m.wall.as_nanos() as f64 / n,
        allocations: m.allocations as f64 / n,
    })
}

/// The summary table: fan-outs per output packet, as ratios to the floors of the same group.
fn summary() -> String {
    let Ok(results) = RESULTS.lock() else {
        return String::new();
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Summary: per output packet, this thread's CPU time (wall clock in the last column)\n"
    );
    let _ = writeln!(
        out,
        "Means over every timed chunk (criterion's warm-up and samples). Floors: crypto = header copy + seal; sendmmsg = the same + sendmmsg, 32 per call. GSO: the fan-out through the workers' send queue, which joins a batch's datagrams to one subscriber into one GSO message (compared with the same sendmmsg floor).\n"
    );
    let _ = writeln!(
        out,
        "| profile | payload | subscribers | fan-out ns | × crypto floor | allocs | fan-out + sendmmsg ns | × sendmmsg floor | allocs | output pkt/s | fan-out + GSO ns | × sendmmsg floor | output pkt/s | wall: × crypto, × sendmmsg |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let mut groups: Vec<(usize, Profile)> = results.keys().map(|(p, f, _)| (*p, *f)).collect();
    groups.dedup();
    for (payload, profile) in groups {
        let get = |row| results.get(&(payload, profile, row)).and_then(per_packet);
        let crypto = get(Row::FloorCrypto);
        let sendmmsg = get(Row::FloorSendmmsg);
        let floor_cell = |f: Option<PerPacket>| {
            f.map_or("–".to_string(), |f| {
                format!("{:.0} (wall {:.0})", f.cpu, f.wall)
            })
        };
        let floor_allocs =
            |f: Option<PerPacket>| f.map_or("–".to_string(), |f| format!("{:.2}", f.allocations));
        let _ = writeln!(
            out,
            "| {} | {payload} B | floors | {} | 1× | {} | {} | 1× | {} | {} | | | | |",
            profile.name(),
            floor_cell(crypto),
            floor_allocs(crypto),
            floor_cell(sendmmsg),
            floor_allocs(sendmmsg),
            sendmmsg.map_or("–".to_string(), |f| format!("{:.0}k", 1e6 / f.cpu)),
        );
        let ratio = |m: Option<PerPacket>, f: Option<PerPacket>, wall: bool| match (m, f) {
            (Some(m), Some(f)) if wall => format!("{:.2}×", m.wall / f.wall),
            (Some(m), Some(f)) => format!("{:.2}×", m.cpu / f.cpu),
            _ => "–".to_string(),
        };
        for n in SUBSCRIBERS {
            let fan = get(Row::Fanout(n));
            let send = get(Row::FanoutSend(n));
            let gso = get(Row::FanoutGso(n));
            if fan.is_none() && send.is_none() && gso.is_none() {
                continue;
            }
            let ns =
                |m: Option<PerPacket>| m.map_or("–".to_string(), |m| format!("{:.0}", m.cpu));
            let allocs = |m: Option<PerPacket>| {
                m.map_or("–".to_string(), |m| format!("{:.2}", m.allocations))
            };
            let _ = writeln!(
                out,
                "| {} | {payload} B | {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}, {} |",
                profile.name(),
                ns(fan),
                ratio(fan, crypto, false),
                allocs(fan),
                ns(send),
                ratio(send, sendmmsg, false),
                allocs(send),
                send.map_or("–".to_string(), |m| format!("{:.0}k", 1e6 / m.cpu)),
                ns(gso),
                ratio(gso, sendmmsg, false),
                gso.map_or("–".to_string(), |m| format!("{:.0}k", 1e6 / m.cpu)),
                ratio(fan, crypto, true),
                ratio(send, sendmmsg, true),
            );
        }
    }
    let _ = writeln!(out);
    if let Ok(sinks) = SINKS.lock() {
        for ((payload, profile, gso), (sent, calls, segmented, received)) in sinks.iter() {
            if *sent > 0 {
                let _ = writeln!(
                    out,
                    "{} {payload} B {}: sent {sent} datagrams in {calls} sendmmsg calls ({:.1} per call, {segmented} GSO messages); the sinks received {received} ({:.2} %).",
                    profile.name(),
                    if *gso {
                        "fan-out + GSO"
                    } else {
                        "fan-out + sendmmsg"
                    },
                    *sent as f64 / *calls as f64,
                    100.0 * *received as f64 / *sent as f64,
                );
            }
        }
    }
    for ((payload, profile, row), m) in results.iter() {
        let n = match row {
            Row::Fanout(n) | Row::FanoutSend(n) | Row::FanoutGso(n) => *n as u64,
            _ => continue,
        };
        let expected = m.incoming * n;
        let _ = writeln!(
            out,
            "{} {payload} B {row:?}: {} incoming, {} of {expected} forwarded{}, {} datagrams out ({:.3} per forwarded packet)",
            profile.name(),
            m.incoming,
            m.outputs,
            if m.outputs == expected {
                ""
            } else {
                " (MISSING SOME)"
            },
            m.transmits,
            m.transmits as f64 / m.outputs.max(1) as f64
        );
    }
    let natively: Vec<String> = Profile::ALL
        .iter()
        .filter(|p| profile::negotiated(**p) > 0)
        .map(|p| format!("{} ×{}", p.name(), profile::negotiated(*p)))
        .collect();
    let _ = writeln!(
        out,
        "\nDTLS handshakes negotiated (before the benchmark's profile choice): {}",
        natively.join(", ")
    );
    out
}

fn main() {
    assert!(
        alloc::is_installed(),
        "the counting allocator is not installed"
    );
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    forwarding(&mut c);
    c.final_summary();
    println!("{}", summary());
}
