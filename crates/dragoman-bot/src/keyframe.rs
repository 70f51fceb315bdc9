//! Keyframe requests: an interceptor on the publisher connection that sees every inbound RTCP
//! packet and reports each PLI and FIR, with the SSRC it names, to the bot.
//!
//! Tapping the chain (rather than waiting for `TrackLocal::poll`) matters: webrtc-rs routes a
//! compound RTCP packet to the track of its *first* packet's SSRC, so a PLI for the video track
//! behind a receiver report about the audio track would reach the wrong track. The tap reads the
//! SSRC each request names. It is placed nearest the wire so no other interceptor can consume a
//! request before it is seen; packets pass on untouched.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use tokio::sync::mpsc::UnboundedSender;

/// Which kind of keyframe request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Pli,
    Fir,
}

/// One keyframe request for the media source `ssrc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyframeRequest {
    pub ssrc: u32,
    pub kind: RequestKind,
}

/// The keyframe requests in a batch of RTCP packets.
pub fn requests_in(packets: &[Box<dyn rtc::rtcp::Packet>]) -> Vec<KeyframeRequest> {
    let mut out = Vec::new();
    for packet in packets {
        let any = packet.as_any();
        if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
            out.push(KeyframeRequest {
                ssrc: pli.media_ssrc,
                kind: RequestKind::Pli,
            });
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            for entry in &fir.fir {
                out.push(KeyframeRequest {
                    ssrc: entry.ssrc,
                    kind: RequestKind::Fir,
                });
            }
        }
    }
    out
}

/// The interceptor: reports keyframe requests to `tx`, passes everything through.
pub(crate) struct KeyframeRequestTap {
    tx: UnboundedSender<KeyframeRequest>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl KeyframeRequestTap {
    pub fn new(tx: UnboundedSender<KeyframeRequest>) -> Self {
        KeyframeRequestTap {
            tx,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for request in requests_in(packets) {
                // The bot may be shutting down; a request then has nobody to serve.
                let _ = self.tx.send(request);
            }
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for KeyframeRequestTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::payload_feedbacks::full_intra_request::FirEntry;
    use rtc::rtcp::receiver_report::ReceiverReport;

    #[test]
    fn finds_pli_and_fir_in_a_compound_packet() {
        let packets: Vec<Box<dyn rtc::rtcp::Packet>> = vec![
            Box::new(ReceiverReport::default()),
            Box::new(PictureLossIndication {
                sender_ssrc: 1,
                media_ssrc: 42,
            }),
            Box::new(FullIntraRequest {
                sender_ssrc: 1,
                media_ssrc: 0,
                fir: vec![
                    FirEntry {
                        ssrc: 42,
                        sequence_number: 1,
                    },
                    FirEntry {
                        ssrc: 43,
                        sequence_number: 1,
                    },
                ],
            }),
        ];
        assert_eq!(
            requests_in(&packets),
            vec![
                KeyframeRequest {
                    ssrc: 42,
                    kind: RequestKind::Pli
                },
                KeyframeRequest {
                    ssrc: 42,
                    kind: RequestKind::Fir
                },
                KeyframeRequest {
                    ssrc: 43,
                    kind: RequestKind::Fir
                },
            ]
        );
    }
}
