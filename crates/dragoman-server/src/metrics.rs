//! Prometheus metrics. Aggregates only: no call or participant ids as labels (those belong to the
//! per-call API). Media counters are read from the media worker at scrape time.

use dragoman_media::{DropReason, EngineCounts, MediaStats};
use dragoman_signal::ErrorCode;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::media_worker::SocketStats;

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: IntGauge,
    participants: IntGauge,
    publications: IntGauge,
    subscriptions: IntGauge,
    peers: IntGauge,
    worker_peers: IntGaugeVec,
    video_layers: IntGauge,
    signaling_connections: IntGauge,
    signaling_errors: IntCounterVec,
    rtp_packets_in: IntCounter,
    rtp_bytes_in: IntCounter,
    rtp_packets_out: IntCounter,
    rtp_bytes_out: IntCounter,
    rtp_packets_queued: IntCounter,
    udp_datagrams_in: IntCounter,
    udp_bytes_in: IntCounter,
    udp_datagrams_out: IntCounter,
    udp_bytes_out: IntCounter,
    udp_send_errors: IntCounter,
    udp_send_calls: IntCounter,
    udp_messages_out: IntCounter,
    udp_segmented: IntCounter,
    udp_receive_calls: IntCounter,
    udp_handed_over: IntCounter,
    udp_handover_refused: IntCounter,
    keyframe_requests_sent: IntCounter,
    keyframe_requests_received: IntCounter,
    dropped: IntCounterVec,
    rtt: Histogram,
    /// Observed by the media workers themselves (cloned into each; observing is a few atomics).
    pub media_batch: Histogram,
    pub media_forward: Histogram,
    pub media_job: Histogram,
    jitter: Histogram,
    loss: Histogram,
    nacks: IntCounterVec,
    plis: IntCounterVec,
}

/// Buckets for the media workers' own timings, 5 µs to 100 ms.
const WORKER_BUCKETS: [f64; 17] = [
    0.000_005, 0.000_01, 0.000_02, 0.000_05, 0.000_1, 0.000_2, 0.000_3, 0.000_5, 0.000_75, 0.001,
    0.001_5, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
];

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), &[label])
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

fn counter_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label])
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(h.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    h
}

/// Raise a counter to a total kept elsewhere.
fn catch_up(counter: &IntCounter, total: u64) {
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Create and register every metric. Names and help texts are fixed literals, so registration
    /// cannot fail at run time.
    pub fn new() -> Self {
        let r = Registry::new();
        let metrics = Metrics {
            calls: gauge(&r, "dragoman_calls", "Calls with at least one participant."),
            participants: gauge(
                &r,
                "dragoman_participants",
                "Connected participants, operators included.",
            ),
            publications: gauge(&r, "dragoman_publications", "Published tracks."),
            subscriptions: gauge(
                &r,
                "dragoman_subscriptions",
                "Active (not paused) subscriptions.",
            ),
            peers: gauge(
                &r,
                "dragoman_media_peers",
                "WebRTC transports (two per participant).",
            ),
            worker_peers: gauge_vec(
                &r,
                "dragoman_media_worker_peers",
                "WebRTC transports on each media worker (a call's all run on one worker).",
                "worker",
            ),
            video_layers: gauge(
                &r,
                "dragoman_video_layers_receiving",
                "Video layers (simulcast layers count one each) with packets in the last 1.5 s.",
            ),
            signaling_connections: gauge(
                &r,
                "dragoman_signaling_connections",
                "Open signaling WebSockets.",
            ),
            signaling_errors: counter_vec(
                &r,
                "dragoman_signaling_errors_total",
                "Error replies sent to clients, by code.",
                "code",
            ),
            rtp_packets_in: counter(
                &r,
                "dragoman_rtp_packets_received_total",
                "RTP packets received from publishers.",
            ),
            rtp_bytes_in: counter(
                &r,
                "dragoman_rtp_payload_bytes_received_total",
                "RTP payload bytes received from publishers.",
            ),
            rtp_packets_out: counter(
                &r,
                "dragoman_rtp_packets_forwarded_total",
                "RTP packets forwarded to subscribers.",
            ),
            rtp_bytes_out: counter(
                &r,
                "dragoman_rtp_payload_bytes_forwarded_total",
                "RTP payload bytes forwarded to subscribers.",
            ),
            rtp_packets_queued: counter(
                &r,
                "dragoman_rtp_packets_queued_total",
                "Forwarded RTP packets that could not be sent at once and waited for the \
                 subscriber's next timer (a new stream, resends waiting): normally rare.",
            ),
            udp_datagrams_in: counter(
                &r,
                "dragoman_udp_datagrams_received_total",
                "UDP datagrams received on the media port.",
            ),
            udp_bytes_in: counter(
                &r,
                "dragoman_udp_bytes_received_total",
                "UDP bytes received on the media port.",
            ),
            udp_datagrams_out: counter(
                &r,
                "dragoman_udp_datagrams_sent_total",
                "UDP datagrams sent from the media port.",
            ),
            udp_bytes_out: counter(
                &r,
                "dragoman_udp_bytes_sent_total",
                "UDP bytes sent from the media port.",
            ),
            udp_send_errors: counter(
                &r,
                "dragoman_udp_send_errors_total",
                "UDP sends that failed.",
            ),
            udp_handover_refused: counter(
                &r,
                "dragoman_udp_handovers_refused_total",
                "Unknown senders' STUN Binding requests a media worker did not show the others: over \
                 its budget of 500 per second (a stranger spraying them).",
            ),
            udp_send_calls: counter(
                &r,
                "dragoman_udp_send_calls_total",
                "sendmmsg calls made by the media workers (datagrams sent / calls = batch size).",
            ),
            udp_messages_out: counter(
                &r,
                "dragoman_udp_messages_sent_total",
                "Messages the media workers sent: one per datagram, or one per UDP GSO batch to one \
                 peer (datagrams sent / messages = how much GSO joined).",
            ),
            udp_segmented: counter(
                &r,
                "dragoman_udp_segmented_messages_total",
                "Sent messages that carried several datagrams to one peer (UDP GSO).",
            ),
            udp_receive_calls: counter(
                &r,
                "dragoman_udp_receive_calls_total",
                "recvmmsg calls that returned datagrams.",
            ),
            udp_handed_over: counter(
                &r,
                "dragoman_udp_datagrams_handed_over_total",
                "Datagrams handed from one media worker to another: for a peer of the other worker, \
                 or copies of an unknown sender's STUN Binding request shown to every other worker \
                 (new peers connecting, or strangers; steady-state media arrives on its worker \
                 directly).",
            ),
            keyframe_requests_sent: counter(
                &r,
                "dragoman_keyframe_requests_sent_total",
                "Keyframe requests (PLI) sent to publishers.",
            ),
            keyframe_requests_received: counter(
                &r,
                "dragoman_keyframe_requests_received_total",
                "Keyframe requests received from subscribers.",
            ),
            dropped: counter_vec(
                &r,
                "dragoman_packets_dropped_total",
                "Packets not forwarded, by reason.",
                "reason",
            ),
            media_batch: histogram(
                &r,
                "dragoman_media_batch_seconds",
                "Time a media worker takes from reading a batch of datagrams to having sent all they \
                 produced: the delay the worker adds to the last packet of a batch.",
                WORKER_BUCKETS.to_vec(),
            ),
            media_forward: histogram(
                &r,
                "dragoman_media_forward_seconds",
                "Time from a datagram's arrival at a media socket (the kernel's timestamp) to the \
                 media worker having sent all that its receive round produced: the whole delay \
                 the server adds to a packet, time waiting in the socket included.",
                WORKER_BUCKETS.to_vec(),
            ),
            media_job: histogram(
                &r,
                "dragoman_media_job_seconds",
                "Time a media worker spends on one control job (joins, subscriptions, health \
                 samples); media waits meanwhile.",
                WORKER_BUCKETS.to_vec(),
            ),
            rtt: histogram(
                &r,
                "dragoman_participant_rtt_seconds",
                "Round-trip time between the SFU and a participant, sampled once a second per participant.",
                vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.0,
                ],
            ),
            jitter: histogram(
                &r,
                "dragoman_participant_jitter_seconds",
                "Interarrival jitter of a participant's media at the SFU, sampled once a second.",
                vec![0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16],
            ),
            loss: histogram(
                &r,
                "dragoman_participant_loss_ratio",
                "Packet loss of a participant's worse direction (0-1), sampled once a second.",
                vec![0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
            ),
            nacks: counter_vec(
                &r,
                "dragoman_nacks_total",
                "NACKs: sent to publishers about lost uplink packets, received from subscribers.",
                "direction",
            ),
            plis: counter_vec(
                &r,
                "dragoman_plis_total",
                "Picture loss indications: sent to publishers, received from subscribers.",
                "direction",
            ),
            registry: r,
        };
        for code in ErrorCode::ALL {
            metrics.signaling_errors.with_label_values(&[code.as_str()]);
        }
        for reason in DropReason::ALL {
            metrics.dropped.with_label_values(&[reason.as_str()]);
        }
        for direction in ["sent", "received"] {
            metrics.nacks.with_label_values(&[direction]);
            metrics.plis.with_label_values(&[direction]);
        }
        metrics
    }

    /// One participant's link sample (once a second): round trip and jitter in ms, loss in percent.
    pub fn observe_participant(
        &self,
        rtt_ms: Option<f64>,
        jitter_ms: Option<f64>,
        loss_percent: Option<f64>,
    ) {
        if let Some(rtt) = rtt_ms {
            self.rtt.observe(rtt / 1000.0);
        }
        if let Some(jitter) = jitter_ms {
            self.jitter.observe(jitter / 1000.0);
        }
        if let Some(loss) = loss_percent {
            self.loss.observe(loss / 100.0);
        }
    }

    /// NACKs and PLIs since the previous health sample of one participant.
    pub fn count_feedback(
        &self,
        nacks_sent: u64,
        plis_sent: u64,
        nacks_received: u64,
        plis_received: u64,
    ) {
        self.nacks.with_label_values(&["sent"]).inc_by(nacks_sent);
        self.plis.with_label_values(&["sent"]).inc_by(plis_sent);
        self.nacks
            .with_label_values(&["received"])
            .inc_by(nacks_received);
        self.plis
            .with_label_values(&["received"])
            .inc_by(plis_received);
    }

    pub fn signaling_error(&self, code: ErrorCode) {
        self.signaling_errors
            .with_label_values(&[code.as_str()])
            .inc();
    }

    pub fn connection_opened(&self) {
        self.signaling_connections.inc();
    }

    pub fn connection_closed(&self) {
        self.signaling_connections.dec();
    }

    pub fn participant_joined(&self) {
        self.participants.inc();
    }

    pub fn participant_left(&self) {
        self.participants.dec();
    }

    pub fn publication_added(&self) {
        self.publications.inc();
    }

    pub fn publication_removed(&self) {
        self.publications.dec();
    }

    /// The histograms the media workers observe themselves.
    pub fn worker_timings(&self) -> crate::media_worker::WorkerTimings {
        crate::media_worker::WorkerTimings {
            batch: self.media_batch.clone(),
            forward: self.media_forward.clone(),
            job: self.media_job.clone(),
        }
    }

    /// Peers on each media worker (how evenly calls are spread).
    pub fn update_workers(&self, peers_per_worker: &[usize]) {
        for (worker, peers) in peers_per_worker.iter().enumerate() {
            self.worker_peers
                .with_label_values(&[worker.to_string()])
                .set(*peers as i64);
        }
    }

    /// Bring the media-plane figures up to date (called at scrape time).
    pub fn update_media(
        &self,
        calls: usize,
        counts: EngineCounts,
        stats: &MediaStats,
        socket: SocketStats,
    ) {
        self.calls.set(calls as i64);
        self.video_layers.set(counts.video_layers_receiving as i64);
        self.subscriptions.set(counts.active_subscriptions as i64);
        self.peers.set(counts.peers as i64);
        catch_up(&self.rtp_packets_in, stats.rtp_packets_in);
        catch_up(&self.rtp_bytes_in, stats.rtp_bytes_in);
        catch_up(&self.rtp_packets_out, stats.rtp_packets_forwarded);
        catch_up(&self.rtp_bytes_out, stats.rtp_bytes_forwarded);
        catch_up(&self.rtp_packets_queued, stats.rtp_packets_queued);
        catch_up(&self.udp_datagrams_in, stats.datagrams_in);
        catch_up(&self.udp_bytes_in, stats.datagram_bytes_in);
        let sent = socket.sent;
        catch_up(&self.udp_datagrams_out, sent.datagrams);
        catch_up(&self.udp_bytes_out, sent.bytes);
        // Refused by the kernel, or dropped because the send buffer stayed full.
        catch_up(&self.udp_send_errors, sent.errors + sent.dropped_full);
        catch_up(&self.udp_send_calls, sent.calls);
        catch_up(&self.udp_messages_out, sent.messages);
        catch_up(&self.udp_segmented, sent.segmented_messages);
        catch_up(&self.udp_receive_calls, socket.receive_calls);
        catch_up(&self.udp_handed_over, socket.handed_over);
        catch_up(&self.udp_handover_refused, socket.handover_refused);
        catch_up(&self.keyframe_requests_sent, stats.keyframe_requests_sent);
        catch_up(
            &self.keyframe_requests_received,
            stats.keyframe_requests_received,
        );
        for (reason, count) in stats.drops.iter() {
            catch_up(&self.dropped.with_label_values(&[reason.as_str()]), count);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series_with_zero_before_traffic() {
        let metrics = Metrics::new();
        let text = metrics.render();
        assert!(text.contains("dragoman_packets_dropped_total{reason=\"paused\"} 0"));
        assert!(text.contains("dragoman_signaling_errors_total{code=\"bad_json\"} 0"));
        assert!(text.contains("dragoman_participants 0"));
    }

    #[test]
    fn media_totals_catch_up_monotonically() {
        let metrics = Metrics::new();
        let mut stats = MediaStats {
            rtp_packets_forwarded: 10,
            ..MediaStats::default()
        };
        stats.drops.add(DropReason::Paused);
        metrics.update_media(1, EngineCounts::default(), &stats, SocketStats::default());
        stats.rtp_packets_forwarded = 25;
        stats.rtp_packets_queued = 2;
        metrics.update_media(1, EngineCounts::default(), &stats, SocketStats::default());
        let text = metrics.render();
        assert!(
            text.contains("dragoman_rtp_packets_forwarded_total 25"),
            "{text}"
        );
        assert!(
            text.contains("dragoman_rtp_packets_queued_total 2"),
            "{text}"
        );
        assert!(text.contains("dragoman_packets_dropped_total{reason=\"paused\"} 1"));
    }
}
