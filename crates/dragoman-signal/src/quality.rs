//! The network-quality badge of a participant, from what the SFU measures on their links.
//! A simple policy for now: packet loss and round-trip time thresholds.

use crate::protocol::Quality;

/// What the SFU knows of one participant's links.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkFigures {
    /// Any of the participant's transports has ICE and DTLS up.
    pub connected: bool,
    /// Share of the participant's packets lost on the way to the SFU (0.0–1.0).
    pub uplink_loss: Option<f64>,
    /// Share of the SFU's packets lost on the way to the participant (0.0–1.0).
    pub downlink_loss: Option<f64>,
    pub rtt_ms: Option<u32>,
}

impl LinkFigures {
    /// The worse of the two directions' loss, 0.0–1.0.
    pub fn worst_loss(&self) -> f64 {
        self.uplink_loss
            .unwrap_or(0.0)
            .max(self.downlink_loss.unwrap_or(0.0))
            .clamp(0.0, 1.0)
    }
}

/// Badge thresholds: loss above `POOR_LOSS` or round trips above `POOR_RTT_MS` are poor; above
/// `GOOD_LOSS` / `GOOD_RTT_MS` only good.
pub const POOR_LOSS: f64 = 0.08;
pub const GOOD_LOSS: f64 = 0.02;
pub const POOR_RTT_MS: u32 = 400;
pub const GOOD_RTT_MS: u32 = 150;

/// The badge for a participant's links.
pub fn classify(figures: &LinkFigures) -> Quality {
    if !figures.connected {
        return Quality::Lost;
    }
    let loss = figures.worst_loss();
    let rtt = figures.rtt_ms.unwrap_or(0);
    if loss > POOR_LOSS || rtt > POOR_RTT_MS {
        Quality::Poor
    } else if loss > GOOD_LOSS || rtt > GOOD_RTT_MS {
        Quality::Good
    } else {
        Quality::Excellent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(loss: f64, rtt_ms: u32) -> LinkFigures {
        LinkFigures {
            connected: true,
            uplink_loss: Some(loss),
            downlink_loss: None,
            rtt_ms: Some(rtt_ms),
        }
    }

    #[test]
    fn thresholds() {
        let cases = [
            (figures(0.0, 20), Quality::Excellent),
            (figures(0.03, 20), Quality::Good),
            (figures(0.0, 200), Quality::Good),
            (figures(0.2, 20), Quality::Poor),
            (figures(0.0, 600), Quality::Poor),
            (LinkFigures::default(), Quality::Lost),
        ];
        for (input, expected) in cases {
            assert_eq!(classify(&input), expected, "{input:?}");
        }
    }

    #[test]
    fn worst_direction_counts() {
        let f = LinkFigures {
            connected: true,
            uplink_loss: Some(0.01),
            downlink_loss: Some(0.12),
            rtt_ms: None,
        };
        assert_eq!(f.worst_loss(), 0.12);
        assert_eq!(classify(&f), Quality::Poor);
    }
}

/// A mean opinion score (1.0–4.5) for a voice stream with this loss, jitter and round-trip time: the
/// E-model of ITU-T G.107 in its common simplified form (delay impairment from one-way delay plus a
/// jitter buffer, and a loss impairment of 2.5 R-points per percent for Opus-like codecs with
/// concealment).
pub fn mean_opinion_score(loss_percent: f64, jitter_ms: f64, rtt_ms: f64) -> f64 {
    let effective_latency = rtt_ms.max(0.0) / 2.0 + 2.0 * jitter_ms.max(0.0) + 10.0;
    let mut r = if effective_latency < 160.0 {
        93.2 - effective_latency / 40.0
    } else {
        93.2 - (effective_latency - 120.0) / 10.0
    };
    r -= 2.5 * loss_percent.clamp(0.0, 100.0);
    let r = r.clamp(0.0, 100.0);
    let mos = 1.0 + 0.035 * r + 0.000_007 * r * (r - 60.0) * (100.0 - r);
    mos.clamp(1.0, 4.5)
}

#[cfg(test)]
mod mos_tests {
    use super::mean_opinion_score;

    #[test]
    fn a_clean_link_scores_high_and_loss_brings_it_down() {
        let clean = mean_opinion_score(0.0, 2.0, 20.0);
        assert!(clean > 4.3, "{clean}");
        let lossy = mean_opinion_score(20.0, 2.0, 20.0);
        assert!(lossy < 3.0, "{lossy}");
        let slow = mean_opinion_score(0.0, 30.0, 600.0);
        assert!(slow < clean && slow > lossy, "{slow}");
        assert!(mean_opinion_score(100.0, 0.0, 0.0) >= 1.0);
        // Monotonic in loss.
        let mut last = 5.0;
        for loss in 0..30 {
            let mos = mean_opinion_score(f64::from(loss), 5.0, 50.0);
            assert!(mos <= last);
            last = mos;
        }
    }
}
