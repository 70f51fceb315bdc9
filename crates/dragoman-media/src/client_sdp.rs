//! A client's SDP, parsed before it reaches the engine.
//!
//! Parsing a browser's offer or answer takes a few hundred microseconds (a 5 KB offer: ~250 µs,
//! over half of accepting it). The engine runs on a media thread shared by many calls, so the
//! server parses on its control threads and hands the engine the parsed form.

use str0m::change::{SdpAnswer, SdpOffer};

use crate::error::MediaError;

/// A client's offer on its publisher transport, parsed.
#[derive(Debug)]
pub struct ClientOffer(pub(crate) SdpOffer);

/// A client's answer on its subscriber transport, parsed.
#[derive(Debug)]
pub struct ClientAnswer(pub(crate) SdpAnswer);

impl ClientOffer {
    pub fn parse(sdp: &str) -> Result<Self, MediaError> {
        SdpOffer::from_sdp_string(sdp)
            .map(ClientOffer)
            .map_err(|e| MediaError::BadSdp(e.to_string()))
    }
}

impl ClientAnswer {
    pub fn parse(sdp: &str) -> Result<Self, MediaError> {
        SdpAnswer::from_sdp_string(sdp)
            .map(ClientAnswer)
            .map_err(|e| MediaError::BadSdp(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_bad_sdp_error() {
        assert!(matches!(
            ClientOffer::parse("not sdp"),
            Err(MediaError::BadSdp(_))
        ));
        assert!(matches!(
            ClientAnswer::parse(""),
            Err(MediaError::BadSdp(_))
        ));
    }

    #[test]
    fn parsed_forms_can_cross_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<ClientOffer>();
        assert_send::<ClientAnswer>();
    }
}
