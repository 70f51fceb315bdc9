//! `dragoman-bot baseline`: the load generator's own floor. Pairs of bot peer connections in
//! this process, each publisher connected straight to its subscriber (webrtc-rs to webrtc-rs over
//! loopback, no SFU), send the same synthetic media as a load run. What they measure (latency,
//! CPU per packet) is what the bots add to a load run's figures by themselves.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use dragoman_signal::protocol::{TrackKind, TransportKind};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use webrtc::peer_connection::RTCSessionDescription;

use super::procfs::{self, ProcSample};
use super::report::DeliveryCounts;
use crate::error::BotError;
use crate::peer::Peer;
use crate::publisher::{self, SendOptions, TrackMedia};
use crate::state::Shared;
use crate::stats::{Histogram, Summary};
use crate::synthetic::{self, Probe, SyntheticMedia, SyntheticReceive};

/// Most pairs one baseline may run.
pub const MAX_PAIRS: usize = 200;

/// What the baseline measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineReport {
    pub pairs: usize,
    pub seconds: f64,
    /// Packets per second sent by all publishers (each also received once).
    pub packets_per_second: f64,
    pub delivery: DeliveryCounts,
    /// Send stamp to receipt, µs, in-order arrivals.
    pub latency_us: Summary,
    pub cpu_cores: Option<f64>,
    /// This process's CPU per packet sent or received.
    pub cpu_us_per_packet: Option<f64>,
    pub allowed_cpus: Option<usize>,
}

impl BaselineReport {
    pub fn summary(&self) -> String {
        let l = &self.latency_us;
        format!(
            "dragoman-bot baseline: {} direct publisher→subscriber pairs (no SFU), {:.0} packets/s each way, {:.1} s\n  \
             latency p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs ({} packets)\n  \
             loss {} of {} ({:.4} %)\n  \
             generator: {} cores of {} allowed, {} µs per packet sent or received\n",
            self.pairs,
            self.packets_per_second,
            self.seconds,
            l.p50,
            l.p99,
            l.p999,
            l.max,
            l.count,
            self.delivery.lost,
            self.delivery.expected,
            self.delivery.loss_ratio * 100.0,
            self.cpu_cores.map_or("n/a".into(), |c| format!("{c:.3}")),
            self.allowed_cpus.map_or("n/a".into(), |c| c.to_string()),
            self.cpu_us_per_packet
                .map_or("n/a".into(), |c| format!("{c:.2}")),
        )
    }
}

/// One connected pair.
struct Pair {
    publisher: Arc<Peer>,
    subscriber: Arc<Peer>,
    sent: Arc<Shared>,
    received: Arc<Shared>,
    senders: Vec<JoinHandle<()>>,
}

async fn connect_pair(
    media: &SyntheticMedia,
    stop: &watch::Sender<bool>,
    timeout: Duration,
) -> Result<Pair, BotError> {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let sent = Shared::new();
    let received = Shared::new();
    received.lock().synthetic_rx = Some(SyntheticReceive::new(Arc::clone(&media.probe)));
    let publisher =
        Arc::new(Peer::build(TransportKind::Publisher, ip, Arc::clone(&sent), None).await?);
    let subscriber =
        Arc::new(Peer::build(TransportKind::Subscriber, ip, Arc::clone(&received), None).await?);
    let mut tracks = Vec::new();
    for kind in [TrackKind::Audio, TrackKind::Video] {
        let track_media = TrackMedia::Synthetic {
            media: media.clone(),
            track_id: media.probe.next_track_id(),
        };
        tracks.push(publisher::add_track(&publisher, kind, track_media, &sent).await?);
    }
    let offer = publisher
        .pc
        .create_offer(None)
        .await
        .map_err(|e| BotError::webrtc("baseline create_offer", e))?;
    let offer = publisher.set_local_and_gather(offer, timeout).await?;
    subscriber
        .pc
        .set_remote_description(offer)
        .await
        .map_err(|e| BotError::webrtc("baseline set_remote_description (offer)", e))?;
    let answer = subscriber
        .pc
        .create_answer(None)
        .await
        .map_err(|e| BotError::webrtc("baseline create_answer", e))?;
    let answer = subscriber.set_local_and_gather(answer, timeout).await?;
    let answer = RTCSessionDescription::answer(answer.sdp)
        .map_err(|e| BotError::Protocol(format!("the baseline answer: {e}")))?;
    publisher
        .pc
        .set_remote_description(answer)
        .await
        .map_err(|e| BotError::webrtc("baseline set_remote_description (answer)", e))?;
    for track in &mut tracks {
        publisher::learn_negotiated(track, &sent).await?;
    }
    publisher.wait_connected(timeout).await?;
    subscriber.wait_connected(timeout).await?;
    let (_, loss) = watch::channel(0.0);
    let senders = tracks
        .into_iter()
        .enumerate()
        .map(|(i, track)| {
            tokio::spawn(publisher::run_sender(
                Arc::clone(&sent),
                track,
                SendOptions {
                    uplink_loss: loss.clone(),
                    seed: i as u64,
                },
                publisher.state_watch(),
                stop.subscribe(),
            ))
        })
        .collect();
    Ok(Pair {
        publisher,
        subscriber,
        sent,
        received,
        senders,
    })
}

/// Run `pairs` direct pairs, measure over `duration` after `settle`.
pub async fn run(
    pairs: usize,
    settle: Duration,
    duration: Duration,
    configure: impl Fn(Arc<Probe>) -> SyntheticMedia,
) -> Result<BaselineReport, BotError> {
    if !(1..=MAX_PAIRS).contains(&pairs) {
        return Err(BotError::Config(format!("pairs must be 1 to {MAX_PAIRS}")));
    }
    let bound = settle + duration + Duration::from_secs(60);
    tokio::time::timeout(bound, run_inner(pairs, settle, duration, configure))
        .await
        .map_err(|_| BotError::timeout("the baseline run", bound))?
}

async fn run_inner(
    pairs: usize,
    settle: Duration,
    duration: Duration,
    configure: impl Fn(Arc<Probe>) -> SyntheticMedia,
) -> Result<BaselineReport, BotError> {
    let probe = Probe::new();
    let media = configure(Arc::clone(&probe));
    media.validate()?;
    let (stop, _) = watch::channel(false);
    let mut connected = Vec::new();
    for _ in 0..pairs {
        connected.push(connect_pair(&media, &stop, Duration::from_secs(10)).await?);
    }
    let start = synthetic::clock_ns() + u64::try_from(settle.as_nanos()).unwrap_or(u64::MAX);
    let end = start + u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    probe.set_window(start, end);
    let me = std::process::id();
    tokio::time::sleep(Duration::from_nanos(
        start.saturating_sub(synthetic::clock_ns()),
    ))
    .await;
    let (t0, cpu0) = (synthetic::clock_ns(), ProcSample::read(me));
    tokio::time::sleep(Duration::from_nanos(
        end.saturating_sub(synthetic::clock_ns()),
    ))
    .await;
    let (t1, cpu1) = (synthetic::clock_ns(), ProcSample::read(me));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut delivery = DeliveryCounts::default();
    let mut latency = Histogram::new();
    let mut handled = 0;
    for pair in &connected {
        let sent = pair.sent.lock().synthetic_sent();
        let Some(got) = pair.received.lock().synthetic_stats() else {
            continue;
        };
        latency.merge(&got.latency_audio);
        latency.merge(&got.latency_video);
        for (track_id, in_window) in sent {
            let (unique, duplicates, total) = got
                .received
                .iter()
                .find(|r| r.track_id == track_id)
                .map_or((0, 0, 0), |r| {
                    (
                        r.unique_in_window,
                        r.duplicates_in_window,
                        r.packets_in_window,
                    )
                });
            delivery.add(in_window, unique, duplicates);
            handled += in_window + total;
        }
    }
    stop.send_replace(true);
    for pair in connected {
        for sender in pair.senders {
            sender.abort();
        }
        pair.publisher.close().await;
        pair.subscriber.close().await;
    }
    let seconds = (t1.saturating_sub(t0)) as f64 / 1e9;
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(
            b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64
                / procfs::clock_ticks_per_second() as f64,
        ),
        _ => None,
    };
    Ok(BaselineReport {
        pairs,
        seconds,
        packets_per_second: delivery.expected as f64 / seconds.max(1e-9),
        delivery,
        latency_us: latency.summary_in(1000),
        cpu_cores: cpu.map(|c| c / seconds.max(1e-9)),
        cpu_us_per_packet: cpu
            .filter(|_| handled > 0)
            .map(|c| c * 1e6 / handled as f64),
        allowed_cpus: procfs::allowed_cpus(me),
    })
}
