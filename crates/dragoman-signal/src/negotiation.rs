//! Glare-free renegotiation of the subscriber transport.
//!
//! Each participant has two transports. On `publisher` only the client offers; on `subscriber` only the
//! server offers. So glare cannot happen, but the server must never have two offers in flight: changes
//! that arrive while an offer is outstanding are folded into one follow-up offer after the answer.

use crate::error::{ErrorCode, SignalError};

/// The server side of offer/answer on one participant's subscriber transport.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberNegotiation {
    offer_in_flight: bool,
    changes_waiting: bool,
}

/// What the server should do after a negotiation step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Create and send an offer now.
    SendOffer,
    /// Nothing to do (an offer is in flight, or nothing changed).
    Wait,
}

impl SubscriberNegotiation {
    /// The set of tracks to send changed (a new subscription needs a new `mid`).
    pub fn tracks_changed(&mut self) -> NextStep {
        if self.offer_in_flight {
            self.changes_waiting = true;
            NextStep::Wait
        } else {
            self.offer_in_flight = true;
            NextStep::SendOffer
        }
    }

    /// Creating the offer failed or was not needed after all; allow the next change to offer again.
    pub fn offer_abandoned(&mut self) {
        self.offer_in_flight = false;
    }

    /// Is an offer waiting for its answer?
    pub fn offer_in_flight(&self) -> bool {
        self.offer_in_flight
    }

    /// The client answered. Tells whether changes that arrived meanwhile need another offer.
    pub fn answer_received(&mut self) -> Result<NextStep, SignalError> {
        if !self.offer_in_flight {
            return Err(SignalError::new(
                ErrorCode::NegotiationState,
                "an answer on the subscriber transport, but the server has no offer outstanding",
            ));
        }
        if std::mem::take(&mut self.changes_waiting) {
            Ok(NextStep::SendOffer)
        } else {
            self.offer_in_flight = false;
            Ok(NextStep::Wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_offer_at_a_time_with_changes_folded() {
        let mut n = SubscriberNegotiation::default();
        assert_eq!(n.tracks_changed(), NextStep::SendOffer);
        assert_eq!(n.tracks_changed(), NextStep::Wait);
        assert_eq!(n.tracks_changed(), NextStep::Wait);
        // The answer to the first offer arrives: the two waiting changes go in one more offer.
        assert_eq!(n.answer_received().unwrap(), NextStep::SendOffer);
        assert!(n.offer_in_flight());
        assert_eq!(n.answer_received().unwrap(), NextStep::Wait);
        assert!(!n.offer_in_flight());
    }

    #[test]
    fn unexpected_answer_is_a_state_error() {
        let mut n = SubscriberNegotiation::default();
        let err = n.answer_received().unwrap_err();
        assert_eq!(err.code, ErrorCode::NegotiationState);
    }

    #[test]
    fn abandoned_offer_frees_the_slot() {
        let mut n = SubscriberNegotiation::default();
        assert_eq!(n.tracks_changed(), NextStep::SendOffer);
        n.offer_abandoned();
        assert_eq!(n.tracks_changed(), NextStep::SendOffer);
    }
}
