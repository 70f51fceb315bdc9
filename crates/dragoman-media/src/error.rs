//! Errors of the media plane's control operations (the packet path never errors: it drops with a
//! [`DropReason`](crate::DropReason)).

use crate::ids::{PeerId, TrackId};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("no such peer: {0}")]
    UnknownPeer(PeerId),
    #[error("no such track: {0}")]
    UnknownTrack(TrackId),
    #[error("this operation needs a {expected} transport")]
    WrongTransport { expected: &'static str },
    #[error("the SDP could not be parsed: {0}")]
    BadSdp(String),
    #[error("the SDP was not acceptable: {0}")]
    SdpRejected(String),
    #[error("an answer arrived but no offer is outstanding")]
    NoOfferPending,
    #[error("an offer is already outstanding; wait for its answer")]
    OfferPending,
    #[error("mid {0:?} is not negotiated on this transport")]
    UnknownMid(String),
    #[error("mid {mid:?} carries {actual}, not {expected}")]
    KindMismatch {
        mid: String,
        expected: &'static str,
        actual: &'static str,
    },
    #[error("mid {0:?} does not receive media from the client")]
    NotReceiving(String),
    #[error("mid {0:?} is already published")]
    AlreadyPublished(String),
    #[error("the ICE candidate could not be parsed: {0}")]
    BadCandidate(String),
    #[error("the address {0} cannot be used as a local candidate: {1}")]
    BadLocalAddress(std::net::SocketAddr, String),
    #[error("the peer's transport could not be built: {0}")]
    TransportFailed(String),
}
