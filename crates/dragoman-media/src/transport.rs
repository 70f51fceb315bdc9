//! Building a peer's transport: a str0m `Rtc` in RTP mode, ICE-lite, with the engine's DTLS
//! certificate, codecs and host candidates.
//!
//! Building one costs about 1 ms of CPU (the DTLS stack generates its ephemeral key shares then),
//! so the server builds transports on its control threads with a [`TransportBuilder`] and hands
//! the finished [`Transport`] to the engine, whose thread forwards media for other calls
//! meanwhile.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::config::DtlsCert;
use str0m::{Candidate, Rtc, RtcConfig};

use crate::error::MediaError;

/// How often str0m reports peer statistics (loss, round-trip time, jitter).
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Builds transports for one engine: same certificate, same candidates. Cheap to clone, and
/// usable from any thread.
#[derive(Clone)]
pub struct TransportBuilder {
    dtls_cert: Option<DtlsCert>,
    local_addresses: Vec<SocketAddr>,
}

impl std::fmt::Debug for TransportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportBuilder")
            .field("local_addresses", &self.local_addresses)
            .finish_non_exhaustive()
    }
}

/// A built peer transport, not yet given to an engine (see [`crate::MediaEngine::add_peer_with`]).
pub struct Transport {
    pub(crate) rtc: Rtc,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl TransportBuilder {
    pub(crate) fn new(dtls_cert: Option<DtlsCert>, local_addresses: Vec<SocketAddr>) -> Self {
        TransportBuilder {
            dtls_cert,
            local_addresses,
        }
    }

    /// A new transport, its clock starting at `now`.
    pub fn build(&self, now: Instant) -> Result<Transport, MediaError> {
        let mut config = RtcConfig::new();
        if let Some(cert) = &self.dtls_cert {
            config = config.set_dtls_cert(cert.clone());
        }
        let mut rtc = config
            .set_rtp_mode(true)
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true)
            .set_stats_interval(Some(STATS_INTERVAL))
            .build(now);
        for addr in &self.local_addresses {
            let candidate = Candidate::host(*addr, "udp")
                .map_err(|e| MediaError::BadLocalAddress(*addr, e.to_string()))?;
            rtc.add_local_candidate(candidate);
        }
        Ok(Transport { rtc })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn transports_can_be_built_on_one_thread_and_used_on_another() {
        assert_send::<TransportBuilder>();
        assert_send::<Transport>();
        let builder = TransportBuilder::new(None, vec!["127.0.0.1:5000".parse().unwrap()]);
        let built = std::thread::spawn(move || builder.build(Instant::now()))
            .join()
            .unwrap();
        assert!(built.is_ok());
    }
}
