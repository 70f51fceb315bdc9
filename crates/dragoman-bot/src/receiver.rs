//! Reading one remote track of the subscriber transport: find the mid it arrives on, then account
//! every RTP packet to the publication the server said that mid carries.

use std::sync::Arc;

use dragoman_signal::protocol::TrackKind;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tracing::{debug, info};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::state::Shared;
use crate::synthetic;

fn track_kind(kind: RtpCodecKind) -> Option<TrackKind> {
    match kind {
        RtpCodecKind::Audio => Some(TrackKind::Audio),
        RtpCodecKind::Video => Some(TrackKind::Video),
        _ => None,
    }
}

/// Read `track` until it ends.
///
/// webrtc-rs does not say which transceiver (mid) an `on_track` belongs to, so the mid comes from
/// the server's SDP: the track's SSRC (`a=ssrc`), else its msid, else the `sdes:mid` header
/// extension of its packets.
pub(crate) async fn read_track(shared: Arc<Shared>, track: Arc<dyn TrackRemote>) {
    let ssrc = track.ssrcs().await.first().copied();
    let track_id = track.track_id().await;
    let kind = track_kind(track.kind().await);
    let mut mid = shared.lock().routing.mid_for(ssrc, &track_id);
    info!(?ssrc, %track_id, ?kind, ?mid, "remote track");
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let now_ns = synthetic::clock_ns();
                let now = shared.now_ms();
                let mut state = shared.lock();
                if let Some(rx) = state.synthetic_rx.as_mut() {
                    rx.on_payload(kind, &packet.payload, now_ns);
                }
                if mid.is_none() {
                    mid = state
                        .routing
                        .mid_from_packet(&packet)
                        .or_else(|| state.routing.mid_for(Some(packet.header.ssrc), &track_id));
                }
                state.on_rtp(mid.as_deref(), kind, &packet, now);
            }
            TrackRemoteEvent::OnEnded => break,
            other => debug!(?mid, "remote track event {other:?}"),
        }
    }
    debug!(?mid, "remote track ended");
}
