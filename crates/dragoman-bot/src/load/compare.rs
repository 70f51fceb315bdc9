//! `dragoman-bot compare`: the side-by-side table of load reports of Janus and Dragoman taken at
//! the same load (`crates/dragoman-bot/load/compare-janus.sh` runs both and calls it).
//!
//! The CPU figure compared is the SFU's CPU per packet **delivered to the bots**
//! ([`SfuReport::cpu_us_per_delivered_packet`](super::report::SfuReport)): the bots count what
//! they received the same way whatever the server, while Janus has no forwarded-packet counter
//! to set against Dragoman's.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::report::LoadReport;
use crate::error::BotError;

/// One server at one load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub server: String,
    pub calls: usize,
    pub bots_joined: usize,
    pub delivered_per_second: f64,
    pub sfu_cpu_cores: Option<f64>,
    pub cpu_us_per_delivered_packet: Option<f64>,
    pub lost: u64,
    pub expected: u64,
    pub loss_ratio: f64,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_p999_us: u64,
    pub rss_per_participant_kib: Option<f64>,
    /// The generator was at its limit: latency and loss may be its own.
    pub generator_saturated: bool,
    /// Other processes' CPU during the window, in cores.
    pub other_cpu_cores: Option<f64>,
}

impl Side {
    pub fn of(report: &LoadReport) -> Side {
        let d = &report.delivery.total;
        let l = &report.latency_us.all;
        Side {
            server: report.config.server.clone(),
            calls: report.config.calls,
            bots_joined: report.ramp.bots_joined,
            delivered_per_second: report.sfu.delivered_per_second,
            sfu_cpu_cores: report.sfu.cpu_cores,
            cpu_us_per_delivered_packet: report.sfu.cpu_us_per_delivered_packet,
            lost: d.lost,
            expected: d.expected,
            loss_ratio: d.loss_ratio,
            latency_p50_us: l.p50,
            latency_p99_us: l.p99,
            latency_p999_us: l.p999,
            rss_per_participant_kib: report.sfu.rss_per_participant_kib,
            generator_saturated: report.generator.saturated,
            other_cpu_cores: report.machine.other_cpu_cores,
        }
    }
}

/// Janus and Dragoman at the same load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub calls: usize,
    pub janus: Side,
    pub dragoman: Side,
    /// Janus's CPU per delivered packet over Dragoman's (issue 5 target: at least 3).
    pub cpu_ratio: Option<f64>,
    /// Whether this load meets the target: ratio ≥ 3, Dragoman lost nothing, Dragoman's p99
    /// under 1 ms.
    pub target_met: bool,
}

/// All the rounds taken at one load. On a shared machine one round's ratio moves by ±20 %
/// (the same binaries, minutes apart), so the verdict rests on the median of several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rounds {
    pub calls: usize,
    /// Pairs with a ratio (both servers' CPU known).
    pub rounds: usize,
    pub median_ratio: Option<f64>,
    pub min_ratio: Option<f64>,
    pub max_ratio: Option<f64>,
    /// Dragoman's loss over all rounds.
    pub dragoman_lost: u64,
    pub dragoman_expected: u64,
    /// The median of Dragoman's p99 latencies (the upper middle one for an even count).
    pub dragoman_median_p99_us: u64,
    /// Median ratio ≥ 3, Dragoman lost nothing in any round, median p99 under 1 ms.
    pub target_met: bool,
}

impl Rounds {
    /// Group the pairs by load, in the order loads first appear.
    pub fn of(pairs: &[Pair]) -> Vec<Rounds> {
        let mut loads: Vec<usize> = Vec::new();
        for pair in pairs {
            if !loads.contains(&pair.calls) {
                loads.push(pair.calls);
            }
        }
        loads
            .into_iter()
            .map(|calls| {
                let at: Vec<&Pair> = pairs.iter().filter(|p| p.calls == calls).collect();
                let mut ratios: Vec<f64> = at.iter().filter_map(|p| p.cpu_ratio).collect();
                ratios.sort_by(f64::total_cmp);
                let mut p99s: Vec<u64> = at.iter().map(|p| p.dragoman.latency_p99_us).collect();
                p99s.sort_unstable();
                let dragoman_lost = at.iter().map(|p| p.dragoman.lost).sum();
                let dragoman_expected = at.iter().map(|p| p.dragoman.expected).sum();
                let median_ratio = median(&ratios);
                let dragoman_median_p99_us = p99s.get(p99s.len() / 2).copied().unwrap_or(0);
                Rounds {
                    calls,
                    rounds: ratios.len(),
                    median_ratio,
                    min_ratio: ratios.first().copied(),
                    max_ratio: ratios.last().copied(),
                    dragoman_lost,
                    dragoman_expected,
                    dragoman_median_p99_us,
                    target_met: median_ratio.is_some_and(|r| r >= TARGET_RATIO)
                        && dragoman_lost == 0
                        && dragoman_expected > 0
                        && dragoman_median_p99_us < TARGET_P99_US,
                }
            })
            .collect()
    }
}

/// The median of sorted values (the mean of the middle two when their count is even).
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// How the CPU figures were counted (the same for both servers).
    pub basis: String,
    /// One pair per round and load, in the order run.
    pub pairs: Vec<Pair>,
    /// Per load, over its rounds.
    pub by_load: Vec<Rounds>,
}

/// The CPU ratio Dragoman must reach against Janus (Janus / Dragoman).
pub const TARGET_RATIO: f64 = 3.0;
/// Dragoman's p99 forwarding latency must be under this.
pub const TARGET_P99_US: u64 = 1000;

impl Pair {
    /// Pair two reports of the same load; they must be one of each server, same calls.
    pub fn new(janus: &LoadReport, dragoman: &LoadReport) -> Result<Pair, BotError> {
        if janus.config.server != "janus" || dragoman.config.server != "dragoman" {
            return Err(BotError::Config(format!(
                "expected a Janus and a Dragoman report, got {} and {}",
                janus.config.server, dragoman.config.server
            )));
        }
        if janus.config.calls != dragoman.config.calls {
            return Err(BotError::Config(format!(
                "the reports are of different loads ({} and {} calls)",
                janus.config.calls, dragoman.config.calls
            )));
        }
        let janus = Side::of(janus);
        let dragoman = Side::of(dragoman);
        let cpu_ratio = match (
            janus.cpu_us_per_delivered_packet,
            dragoman.cpu_us_per_delivered_packet,
        ) {
            (Some(j), Some(d)) if d > 0.0 => Some(j / d),
            _ => None,
        };
        let target_met = cpu_ratio.is_some_and(|r| r >= TARGET_RATIO)
            && dragoman.lost == 0
            && dragoman.expected > 0
            && dragoman.latency_p99_us < TARGET_P99_US;
        Ok(Pair {
            calls: janus.calls,
            janus,
            dragoman,
            cpu_ratio,
            target_met,
        })
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

impl Comparison {
    pub fn new(pairs: Vec<Pair>) -> Comparison {
        let by_load = Rounds::of(&pairs);
        Comparison {
            basis: "SFU process CPU (user + system, /proc/<pid>/stat) over the window, divided by \
                    the packets the bots received of those sent in the window (duplicates \
                    included), for both servers"
                .into(),
            pairs,
            by_load,
        }
    }

    /// A Markdown table, one row per server and load, and a line per load on the target.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| calls | server | bots | delivered pkt/s | SFU cores | CPU µs / delivered pkt | Janus / Dragoman | loss | latency p50 / p99 / p99.9 ms | RSS / participant |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
        for pair in &self.pairs {
            for side in [&pair.janus, &pair.dragoman] {
                let ratio = if side.server == "dragoman" {
                    opt(pair.cpu_ratio, 2).replace("n/a", "—") + "×"
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.0} | {} | {} | {} | {} of {} ({:.3} %) | {} / {} / {} | {} MB |",
                    side.calls,
                    side.server,
                    side.bots_joined,
                    side.delivered_per_second,
                    opt(side.sfu_cpu_cores, 3),
                    opt(side.cpu_us_per_delivered_packet, 2),
                    ratio,
                    side.lost,
                    side.expected,
                    side.loss_ratio * 100.0,
                    ms(side.latency_p50_us),
                    ms(side.latency_p99_us),
                    ms(side.latency_p999_us),
                    opt(side.rss_per_participant_kib.map(|k| k / 1024.0), 2),
                );
            }
        }
        let _ = writeln!(s);
        for pair in &self.pairs {
            let _ = writeln!(
                s,
                "{} calls: Janus uses {}× Dragoman's CPU per delivered packet (target ≥ {TARGET_RATIO}×); Dragoman loss {} of {}, p99 {} ms (target 0 and < {} ms): target {}",
                pair.calls,
                opt(pair.cpu_ratio, 2),
                pair.dragoman.lost,
                pair.dragoman.expected,
                ms(pair.dragoman.latency_p99_us),
                ms(TARGET_P99_US),
                if pair.target_met { "met" } else { "not met" },
            );
            for side in [&pair.janus, &pair.dragoman] {
                if side.generator_saturated {
                    let _ = writeln!(
                        s,
                        "  warning: the generator was saturated during the {} run",
                        side.server
                    );
                }
                if let Some(other) = side.other_cpu_cores.filter(|&o| o > 0.2) {
                    let _ = writeln!(
                        s,
                        "  warning: other processes used {other:.2} cores during the {} run",
                        side.server
                    );
                }
            }
        }
        for load in self.by_load.iter().filter(|l| l.rounds > 1) {
            let _ = writeln!(
                s,
                "{} calls over {} rounds: Janus / Dragoman median {}× (range {}–{}×); Dragoman loss {} of {}, median p99 {} ms: target {}",
                load.calls,
                load.rounds,
                opt(load.median_ratio, 2),
                opt(load.min_ratio, 2),
                opt(load.max_ratio, 2),
                load.dragoman_lost,
                load.dragoman_expected,
                ms(load.dragoman_median_p99_us),
                if load.target_met { "met" } else { "not met" },
            );
        }
        let _ = writeln!(s, "CPU basis: {}.", self.basis);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::report::*;
    use crate::stats::Summary;

    fn report(server: &str, calls: usize, cpu: f64, lost: u64, p99: u64) -> LoadReport {
        let json = serde_json::json!({
            "tool": "dragoman-bot load", "version": "0", "started_unix_ms": 0,
            "config": {
                "server": server, "url": "ws://127.0.0.1:1", "metrics_url": null, "calls": calls,
                "parties_per_call": 4, "rate": 2.0, "settle_s": 3.0, "duration_s": 20.0,
                "deadline_s": 90.0, "call_prefix": "x", "audio_payload_bytes": 120,
                "audio_packets_per_second": 50.0, "video_bitrate_bps": 1500000, "video_fps": 30,
                "video_packets_per_frame": 6, "video_payload_bytes": 1042,
                "keyframe_interval_s": 5.0
            },
            "ramp": RampReport { bots_joined: calls * 4, ..RampReport::default() },
            "window": WindowReport::default(),
            "sfu": SfuReport {
                cpu_cores: Some(0.5),
                delivered_per_second: 1000.0,
                cpu_us_per_delivered_packet: Some(cpu),
                rss_per_participant_kib: Some(2048.0),
                ..SfuReport::default()
            },
            "delivery": DeliveryReport {
                total: DeliveryCounts { expected: 1000, received: 1000 - lost, lost,
                    loss_ratio: lost as f64 / 1000.0, duplicates: 0 },
                ..DeliveryReport::default()
            },
            "latency_us": LatencyReport {
                all: Summary { p50: 400, p99, p999: p99 * 2, ..Summary::default() },
                ..LatencyReport::default()
            },
            "join": JoinReport::default(),
            "generator": GeneratorReport::default(),
            "machine": MachineReport::default(),
            "warnings": []
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn pairs_compute_the_ratio_and_the_target() {
        let pair = Pair::new(
            &report("janus", 5, 30.0, 0, 2000),
            &report("dragoman", 5, 10.0, 0, 900),
        )
        .unwrap();
        assert!((pair.cpu_ratio.unwrap() - 3.0).abs() < 1e-9);
        assert!(pair.target_met);
        let lossy = Pair::new(
            &report("janus", 5, 30.0, 0, 2000),
            &report("dragoman", 5, 10.0, 1, 900),
        )
        .unwrap();
        assert!(!lossy.target_met);
        let slow = Pair::new(
            &report("janus", 5, 30.0, 0, 2000),
            &report("dragoman", 5, 10.0, 0, 1000),
        )
        .unwrap();
        assert!(!slow.target_met);
        let close = Pair::new(
            &report("janus", 5, 20.0, 0, 2000),
            &report("dragoman", 5, 10.0, 0, 500),
        )
        .unwrap();
        assert!(!close.target_met);
    }

    #[test]
    fn mismatched_reports_are_refused() {
        assert!(
            Pair::new(
                &report("janus", 5, 1.0, 0, 1),
                &report("dragoman", 2, 1.0, 0, 1)
            )
            .is_err()
        );
        assert!(
            Pair::new(
                &report("dragoman", 5, 1.0, 0, 1),
                &report("janus", 5, 1.0, 0, 1)
            )
            .is_err()
        );
    }

    #[test]
    fn rounds_at_one_load_are_judged_on_their_median() {
        let round = |janus_cpu: f64, lost: u64, p99: u64| {
            Pair::new(
                &report("janus", 10, janus_cpu, 0, 2000),
                &report("dragoman", 10, 10.0, lost, p99),
            )
            .unwrap()
        };
        // Ratios 2.5, 3.2 and 3.1: one round short, the median over.
        let comparison = Comparison::new(vec![
            round(25.0, 0, 900),
            round(32.0, 0, 800),
            round(31.0, 0, 1200),
            Pair::new(
                &report("janus", 5, 20.0, 0, 2000),
                &report("dragoman", 5, 10.0, 0, 500),
            )
            .unwrap(),
        ]);
        let [ten, five] = comparison.by_load.as_slice() else {
            panic!("two loads: {:?}", comparison.by_load);
        };
        assert_eq!(
            (ten.calls, ten.rounds, five.calls, five.rounds),
            (10, 3, 5, 1)
        );
        assert!((ten.median_ratio.unwrap() - 3.1).abs() < 1e-9);
        assert!((ten.min_ratio.unwrap() - 2.5).abs() < 1e-9);
        assert!((ten.max_ratio.unwrap() - 3.2).abs() < 1e-9);
        assert_eq!(ten.dragoman_median_p99_us, 900);
        assert!(ten.target_met);
        assert!(!five.target_met, "ratio 2");
        let table = comparison.table();
        assert!(
            table.contains(
                "10 calls over 3 rounds: Janus / Dragoman median 3.10× (range 2.50–3.20×)"
            ),
            "{table}"
        );
        assert!(
            !table.contains("5 calls over"),
            "one round has no summary: {table}"
        );

        // One lossy round fails the load, whatever the median.
        let lossy = Comparison::new(vec![round(32.0, 0, 800), round(32.0, 3, 800)]);
        assert!(!lossy.by_load[0].target_met);
        assert_eq!(lossy.by_load[0].dragoman_lost, 3);
        // Two rounds: the median is the mean of both.
        assert!((lossy.by_load[0].median_ratio.unwrap() - 3.2).abs() < 1e-9);
    }

    #[test]
    fn the_table_has_a_row_per_server() {
        let comparison = Comparison::new(vec![
            Pair::new(
                &report("janus", 5, 30.0, 0, 2000),
                &report("dragoman", 5, 10.0, 0, 900),
            )
            .unwrap(),
        ]);
        let table = comparison.table();
        assert!(
            table.contains("| 5 | janus | 20 | 1000 | 0.500 | 30.00 |  |"),
            "{table}"
        );
        assert!(
            table.contains("| 5 | dragoman | 20 | 1000 | 0.500 | 10.00 | 3.00× |"),
            "{table}"
        );
        assert!(table.contains("target met"), "{table}");
        assert!(table.contains("CPU basis"), "{table}");
    }
}
