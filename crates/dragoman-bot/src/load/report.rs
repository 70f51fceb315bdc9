//! The load run's report (JSON) and its human summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::procfs::UdpCounters;
use crate::stats::Summary;

/// Everything one load run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    pub tool: String,
    pub version: String,
    pub started_unix_ms: u64,
    pub config: LoadSettings,
    pub ramp: RampReport,
    /// The steady-state measurement window (send times of the packets measured).
    pub window: WindowReport,
    pub sfu: SfuReport,
    pub delivery: DeliveryReport,
    /// Forwarding latency: send stamp (just before the sending bot's `write_rtp`) to the receiving
    /// bot's read of the packet, in µs; packets sent in the window only. Includes both bots' own
    /// webrtc-rs send and receive paths, so it bounds the SFU's share from above.
    pub latency_us: LatencyReport,
    pub join: JoinReport,
    pub generator: GeneratorReport,
    pub machine: MachineReport,
    /// What looked wrong, in words (empty when nothing did).
    pub warnings: Vec<String>,
}

fn dragoman() -> String {
    "dragoman".to_owned()
}

/// The settings the run used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadSettings {
    /// `dragoman` or `janus`.
    #[serde(default = "dragoman")]
    pub server: String,
    pub url: String,
    pub metrics_url: Option<String>,
    pub calls: usize,
    pub parties_per_call: usize,
    /// Calls started per second.
    pub rate: f64,
    pub settle_s: f64,
    pub duration_s: f64,
    pub deadline_s: f64,
    pub call_prefix: String,
    pub audio_payload_bytes: usize,
    pub audio_packets_per_second: f64,
    pub video_bitrate_bps: u64,
    pub video_fps: u32,
    pub video_packets_per_frame: usize,
    pub video_payload_bytes: usize,
    pub keyframe_interval_s: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RampReport {
    pub calls_started: usize,
    /// Calls whose four bots all joined.
    pub calls_complete: usize,
    pub bots_joined: usize,
    pub bots_failed: usize,
    /// From the first call's start to the last call's last join.
    pub seconds: f64,
    /// The first few join errors.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WindowReport {
    /// Planned length.
    pub seconds: f64,
    /// Time between the CPU/metrics samples at its start and end.
    pub sampled_seconds: f64,
    /// Window start relative to the run's start.
    pub starts_after_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SfuReport {
    pub pid: Option<u32>,
    pub threads: Option<u64>,
    /// How many CPUs the SFU may run on (`taskset`).
    pub allowed_cpus: Option<usize>,
    pub cpu_seconds: Option<f64>,
    /// CPU seconds per second of the window (1.0 = one core busy).
    pub cpu_cores: Option<f64>,
    /// RTP packets the SFU forwarded in the window, from `/metrics`.
    pub forwarded_packets: Option<u64>,
    pub forwarded_per_second: Option<f64>,
    /// RTP packets the SFU received in the window, from `/metrics`.
    pub received_packets: Option<u64>,
    /// SFU CPU per forwarded packet; what it was divided by is `cpu_per_packet_basis`.
    pub cpu_us_per_forwarded_packet: Option<f64>,
    /// `metrics` (the server's forwarded counter) or `bots` (packets the bots received).
    pub cpu_per_packet_basis: Option<String>,
    /// Packets the bots received of those sent in the window (duplicates included): what the SFU
    /// delivered, counted the same way whatever the server.
    #[serde(default)]
    pub delivered_packets: u64,
    /// `delivered_packets` per second of the window.
    #[serde(default)]
    pub delivered_per_second: f64,
    /// SFU CPU per delivered packet: the figure to compare servers by.
    #[serde(default)]
    pub cpu_us_per_delivered_packet: Option<f64>,
    pub rss_before_kib: Option<u64>,
    pub rss_steady_kib: Option<u64>,
    /// (steady − before) / bots joined.
    pub rss_per_participant_kib: Option<f64>,
    /// `dragoman_packets_dropped_total` by reason, increase in the window (non-zero ones).
    pub dropped_in_window: BTreeMap<String, u64>,
    pub udp_send_errors_in_window: Option<u64>,
    /// Datagrams the kernel dropped at the SFU's UDP sockets (receive buffer full) in the window.
    pub socket_drops_in_window: Option<u64>,
    /// CPU seconds per second of the SFU's threads in the window, by thread name (threads that
    /// lived through the whole window; a name shared by several threads is summed).
    pub thread_cores: BTreeMap<String, f64>,
    /// Dragoman only (`dragoman_media_batch_seconds`): how long the media workers took from
    /// reading a batch of datagrams to having sent all it produced, in the window, µs. The delay
    /// the server itself adds, without the generator's.
    #[serde(default)]
    pub worker_batch_us: Option<ServerTimings>,
    /// Dragoman only (`dragoman_media_forward_seconds`): from each datagram's arrival at the
    /// SFU's socket (kernel timestamp) to the worker having sent all its round produced, in the
    /// window, µs. The whole delay the server adds, socket wait included.
    #[serde(default)]
    pub worker_forward_us: Option<ServerTimings>,
    /// Dragoman only (`dragoman_media_job_seconds`): control jobs run on the media workers
    /// (media waits meanwhile), in the window, µs.
    #[serde(default)]
    pub worker_job_us: Option<ServerTimings>,
    /// Dragoman only: how many datagrams each system call and message carried in the window.
    #[serde(default)]
    pub batching: Option<Batching>,
}

/// How well the SFU's socket work was batched in the window, from its `dragoman_udp_*`
/// counters. Fuller batches cost less CPU per packet; how full they get depends on how the
/// traffic arrives, so it explains part of the spread between runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Batching {
    /// Datagrams per `recvmmsg` call that returned some.
    pub datagrams_per_receive_call: Option<f64>,
    /// Datagrams per `sendmmsg` call.
    pub datagrams_per_send_call: Option<f64>,
    /// Datagrams per message sent: above 1 when UDP GSO joined datagrams to one peer.
    pub datagrams_per_message: Option<f64>,
}

impl Batching {
    /// From the window's increases of the counters; a ratio is `None` when its divisor is 0 or
    /// unknown (an older server without the counter).
    pub fn of(
        received: Option<u64>,
        receive_calls: Option<u64>,
        sent: Option<u64>,
        send_calls: Option<u64>,
        messages: Option<u64>,
    ) -> Option<Batching> {
        let ratio = |n: Option<u64>, d: Option<u64>| match (n, d) {
            (Some(n), Some(d)) if d > 0 => Some(n as f64 / d as f64),
            _ => None,
        };
        let batching = Batching {
            datagrams_per_receive_call: ratio(received, receive_calls),
            datagrams_per_send_call: ratio(sent, send_calls),
            datagrams_per_message: ratio(sent, messages),
        };
        (batching != Batching::default()).then_some(batching)
    }
}

/// Quantiles of a server-side timing histogram over the window (bucket-interpolated), µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerTimings {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
}

/// Per kind or in total: what the subscribers should have received and what they did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryCounts {
    /// Σ over (publication, subscriber) pairs of the packets the publisher sent in the window.
    pub expected: u64,
    /// Σ over the same pairs of the distinct ones the subscriber received.
    pub received: u64,
    pub lost: u64,
    pub loss_ratio: f64,
    pub duplicates: u64,
}

impl DeliveryCounts {
    pub fn add(&mut self, expected: u64, received: u64, duplicates: u64) {
        self.expected += expected;
        self.received += received;
        self.duplicates += duplicates;
        self.lost = self.expected.saturating_sub(self.received);
        self.loss_ratio = if self.expected == 0 {
            0.0
        } else {
            self.lost as f64 / self.expected as f64
        };
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeliveryReport {
    pub pairs: u64,
    /// Pairs that expected packets and got none (a subscription that never worked, not loss in
    /// forwarding).
    pub pairs_without_packets: u64,
    pub total: DeliveryCounts,
    pub audio: DeliveryCounts,
    pub video: DeliveryCounts,
    /// Window packets the bots received from tracks of another call (must be 0).
    pub misrouted: u64,
    /// Packets without a stamp (must be 0 in a synthetic run).
    pub unstamped: u64,
    /// Datagrams the kernel dropped at the generator's own UDP sockets in the window: loss the
    /// SFU did not cause.
    pub generator_socket_drops: Option<u64>,
    /// System-wide UDP counters' increase in the window (loopback: everything is ours or noise).
    pub udp_system: Option<UdpCounters>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencyReport {
    /// Packets that arrived in order (first transmissions), audio and video.
    pub all: Summary,
    pub audio: Summary,
    pub video: Summary,
    /// Packets that arrived behind a later one of their track: repaired by a retransmission
    /// (NACK) or reordered. Its count is how many; duplicates are in no summary.
    pub late: Summary,
    /// The highest in-order latency (µs) of the packets sent in each 100 ms of the window: a
    /// periodic stall shows as a regular pattern.
    pub timeline_max_us: Vec<u64>,
    /// The five worst 100 ms slots: (seconds into the window, µs).
    pub worst_slots: Vec<(f64, u64)>,
}

/// Over bots, in ms since the bot started joining.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JoinReport {
    /// `Bot::join`: WebSocket, join, publisher negotiation and ICE/DTLS, publish, subscribe.
    pub joined_ms: Percentiles,
    /// The first media packet from anyone.
    pub first_packet_ms: Percentiles,
    /// The first video keyframe from anyone.
    pub first_keyframe_ms: Percentiles,
    /// The first packet of every one of the other parties' publications (6 in a full call).
    pub all_media_ms: Percentiles,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values`.
    pub fn of(mut values: Vec<u64>) -> Percentiles {
        values.sort_unstable();
        let at = |q: f64| -> Option<u64> {
            if values.is_empty() {
                return None;
            }
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            values.get(rank - 1).copied()
        };
        Percentiles {
            count: values.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: values.last().copied(),
        }
    }
}

/// The load generator itself (this process).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GeneratorReport {
    pub pid: u32,
    pub allowed_cpus: Option<usize>,
    pub cpu_seconds: Option<f64>,
    pub cpu_cores: Option<f64>,
    /// Packets the bots sent plus packets they received, in the window.
    pub packets_handled: u64,
    pub cpu_us_per_packet: Option<f64>,
    /// Busier than 85 % of its allowed CPUs: the figures may be the generator's, not the SFU's.
    pub saturated: bool,
    /// How late a task spawned on the generator's runtime starts running (sampled every 10 ms in
    /// the window), in µs: the generator's own share of the latency tail.
    pub scheduling_delay_us: Summary,
    /// How late the bots sent their frames against the schedule, in µs (window only). When it
    /// grows, the generator catches up in bursts that the SFU's socket buffer must absorb.
    pub send_lag_us: Summary,
}

/// The machine during the window: how much else was running.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MachineReport {
    pub cpus: usize,
    pub load_average_before: Option<f64>,
    pub load_average_after: Option<f64>,
    /// CPU used by everything but the SFU and the generator during the window, in cores. Above
    /// about 0.2 the latency tail and CPU figures are disturbed by other work on the machine.
    pub other_cpu_cores: Option<f64>,
    /// CPU time the hypervisor took from this VM during the window, in cores.
    pub steal_cores: Option<f64>,
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| v.to_string())
}

fn us(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1} ms", v as f64 / 1000.0)
    } else {
        format!("{v} µs")
    }
}

impl LoadReport {
    /// A few lines for people.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let c = &self.config;
        let _ = writeln!(
            s,
            "dragoman-bot load ({}): {} four-party calls ({} of {} bots joined), ramp {} calls/s, window {:.1} s",
            c.server,
            c.calls,
            self.ramp.bots_joined,
            c.calls * c.parties_per_call,
            c.rate,
            self.window.sampled_seconds
        );
        let sfu = &self.sfu;
        let _ = writeln!(
            s,
            "  SFU pid {} ({} threads, {} CPUs allowed): {} cores, {} µs CPU per forwarded packet ({} forwarded/s, basis {})",
            opt(sfu.pid),
            opt(sfu.threads),
            opt(sfu.allowed_cpus),
            opt(sfu.cpu_cores.map(|v| format!("{v:.3}"))),
            opt(sfu.cpu_us_per_forwarded_packet.map(|v| format!("{v:.2}"))),
            opt(sfu.forwarded_per_second.map(|v| format!("{v:.0}"))),
            opt(sfu.cpu_per_packet_basis.clone()),
        );
        let _ = writeln!(
            s,
            "  delivered to the bots: {:.0} packets/s, {} µs SFU CPU per delivered packet",
            sfu.delivered_per_second,
            opt(sfu.cpu_us_per_delivered_packet.map(|v| format!("{v:.2}"))),
        );
        if !sfu.thread_cores.is_empty() {
            let mut threads: Vec<(&String, &f64)> = sfu.thread_cores.iter().collect();
            threads.sort_by(|a, b| b.1.total_cmp(a.1));
            let list: Vec<String> = threads
                .iter()
                .filter(|(_, c)| **c >= 0.001)
                .map(|(n, c)| format!("{n} {c:.3}"))
                .collect();
            let _ = writeln!(s, "  SFU threads (cores): {}", list.join(", "));
        }
        let d = &self.delivery;
        let _ = writeln!(
            s,
            "  loss: {} of {} packets ({:.4} %; audio {:.4} %, video {:.4} %), {} of {} pairs got nothing, {} duplicates, {} misrouted",
            d.total.lost,
            d.total.expected,
            d.total.loss_ratio * 100.0,
            d.audio.loss_ratio * 100.0,
            d.video.loss_ratio * 100.0,
            d.pairs_without_packets,
            d.pairs,
            d.total.duplicates,
            d.misrouted,
        );
        let drops: Vec<String> = sfu
            .dropped_in_window
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "  drops in window: SFU {}; SFU socket {}, generator sockets {}, system UDP rcvbuf errors {}",
            if drops.is_empty() {
                "none".to_owned()
            } else {
                drops.join(", ")
            },
            opt(sfu.socket_drops_in_window),
            opt(d.generator_socket_drops),
            opt(d.udp_system.map(|u| u.rcvbuf_errors)),
        );
        for (what, timings) in [
            ("socket arrival → sent", sfu.worker_forward_us),
            ("receive batch → sent", sfu.worker_batch_us),
            ("control job", sfu.worker_job_us),
        ] {
            if let Some(t) = timings {
                let _ = writeln!(
                    s,
                    "  SFU media worker, {what}: p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs ({} in window)",
                    t.p50, t.p99, t.p999, t.count
                );
            }
        }
        if let Some(b) = sfu.batching {
            let ratio = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"));
            let _ = writeln!(
                s,
                "  SFU batching: {} datagrams per recvmmsg, {} per sendmmsg, {} per message (GSO)",
                ratio(b.datagrams_per_receive_call),
                ratio(b.datagrams_per_send_call),
                ratio(b.datagrams_per_message),
            );
        }
        let l = &self.latency_us;
        let _ = writeln!(
            s,
            "  forwarding latency: p50 {}, p99 {}, p99.9 {}, max {} (audio p50/p99 {}/{}, video {}/{}; {} packets in order; {} late, p50 {})",
            us(l.all.p50),
            us(l.all.p99),
            us(l.all.p999),
            us(l.all.max),
            us(l.audio.p50),
            us(l.audio.p99),
            us(l.video.p50),
            us(l.video.p99),
            l.all.count,
            l.late.count,
            us(l.late.p50),
        );
        if l.worst_slots.first().is_some_and(|w| w.1 >= 5_000) {
            let worst: Vec<String> = l
                .worst_slots
                .iter()
                .map(|(at, v)| format!("+{at:.1} s {}", us(*v)))
                .collect();
            let _ = writeln!(s, "  latency spikes (100 ms slots): {}", worst.join(", "));
        }
        let _ = writeln!(
            s,
            "  memory: SFU RSS {} → {} KiB, {} KiB per participant",
            opt(sfu.rss_before_kib),
            opt(sfu.rss_steady_kib),
            opt(sfu.rss_per_participant_kib.map(|v| format!("{v:.0}"))),
        );
        let j = &self.join;
        let _ = writeln!(
            s,
            "  join → joined p50/p99 {}/{} ms; → first packet {}/{} ms; → first keyframe {}/{} ms; → all media {}/{} ms",
            opt(j.joined_ms.p50),
            opt(j.joined_ms.p99),
            opt(j.first_packet_ms.p50),
            opt(j.first_packet_ms.p99),
            opt(j.first_keyframe_ms.p50),
            opt(j.first_keyframe_ms.p99),
            opt(j.all_media_ms.p50),
            opt(j.all_media_ms.p99),
        );
        let g = &self.generator;
        let _ = writeln!(
            s,
            "  generator: {} cores of {} allowed, {} µs per packet sent or received, task start delay p50/p99 {}/{}, frame send lag p99/max {}/{}{}",
            opt(g.cpu_cores.map(|v| format!("{v:.3}"))),
            opt(g.allowed_cpus),
            opt(g.cpu_us_per_packet.map(|v| format!("{v:.2}"))),
            us(g.scheduling_delay_us.p50),
            us(g.scheduling_delay_us.p99),
            us(g.send_lag_us.p99),
            us(g.send_lag_us.max),
            if g.saturated { " — SATURATED" } else { "" },
        );
        let m = &self.machine;
        let _ = writeln!(
            s,
            "  machine: {} CPUs, load average {} → {}, other processes {} cores and hypervisor steal {} cores during the window",
            m.cpus,
            opt(m.load_average_before),
            opt(m.load_average_after),
            opt(m.other_cpu_cores.map(|v| format!("{v:.2}"))),
            opt(m.steal_cores.map(|v| format!("{v:.3}"))),
        );
        for w in &self.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let p = Percentiles::of((1..=100).rev().collect());
        assert_eq!(
            (p.count, p.p50, p.p99, p.max),
            (100, Some(50), Some(99), Some(100))
        );
        assert_eq!(Percentiles::of(vec![]).p50, None);
        assert_eq!(Percentiles::of(vec![7]).p99, Some(7));
    }

    #[test]
    fn delivery_counts_add_up() {
        let mut d = DeliveryCounts::default();
        d.add(100, 100, 0);
        d.add(100, 98, 1);
        assert_eq!(
            (d.expected, d.received, d.lost, d.duplicates),
            (200, 198, 2, 1)
        );
        assert!((d.loss_ratio - 0.01).abs() < 1e-12);
    }

    #[test]
    fn batching_ratios_come_from_the_window_counters() {
        let b = Batching::of(Some(100), Some(25), Some(300), Some(30), Some(200)).unwrap();
        assert_eq!(b.datagrams_per_receive_call, Some(4.0));
        assert_eq!(b.datagrams_per_send_call, Some(10.0));
        assert_eq!(b.datagrams_per_message, Some(1.5));
        // A server without the messages counter, and one that sent nothing.
        let older = Batching::of(Some(100), Some(25), Some(300), Some(30), None).unwrap();
        assert_eq!(older.datagrams_per_message, None);
        let idle = Batching::of(Some(0), Some(0), Some(0), Some(0), Some(0));
        assert_eq!(idle, None);
        assert_eq!(Batching::of(None, None, None, None, None), None);
    }
}
