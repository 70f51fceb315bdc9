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
