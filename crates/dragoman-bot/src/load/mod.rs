//! `dragoman-bot load`: N concurrent four-party calls of synthetic bots against a server on
//! loopback, ramped at a rate, measured over a steady-state window, bounded by a hard deadline.
//!
//! Each call has a company, an interpreter (languages `ko`,`en`), an office and a buyer; each
//! publishes audio (50 packets/s) and video (~1.5 Mbit/s at 30 fps) of [synthetic
//! media](crate::synthetic) and subscribes to everything (the server routes the audio: everyone
//! hears everyone in a consecutive call). The tokens are minted here with the server's secret.
//!
//! The target is Dragoman (the default) or, for the side-by-side comparison only, a Janus
//! VideoRoom ([`Target::Janus`], signaling in [`janus`]): the bots, their media and every
//! measurement below are the same for both.
//!
//! What is measured, and how:
//! - **SFU CPU per forwarded packet**: user + system time of the SFU process (`/proc/<pid>/stat`)
//!   between the window's start and end, divided by the increase of the server's
//!   `dragoman_rtp_packets_forwarded_total` over the same moments (or, without `/metrics`, by
//!   the packets the bots received).
//! - **SFU CPU per delivered packet**: the same CPU time divided by the packets the bots received
//!   in the window (sent in it, duplicates included). Counted by the bots, it does not depend on
//!   the server's own counters, so it is the figure that compares two servers.
//! - **Loss**: for every (publication, subscriber) pair of a call, the packets the publisher sent
//!   with a send time in the window against the distinct ones of those the subscriber received
//!   (counted by the stamps, after a drain, so nothing in flight at the edges counts). Loopback
//!   has no network loss; the kernel's socket drops are reported beside it, separately for the
//!   SFU's sockets and the generator's, so a full buffer on the bots' side is not blamed on the
//!   SFU.
//! - **Latency**: receipt time minus the stamp's send time, same process, same monotonic clock.
//! - **Memory per participant**: SFU resident memory before the first join and at the window's
//!   end, the difference divided by the bots that joined.
//! - **Join to first packet**: from the bot's start (just before it opens the WebSocket) to its
//!   first media packet, its first keyframe, and the first packet of all six publications of the
//!   others.

pub mod compare;
pub mod direct;
pub mod janus;
pub mod metrics;
pub mod procfs;
pub mod report;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dragoman_signal::Role;
use dragoman_signal::protocol::TrackKind;
use dragoman_signal::token::{JoinClaims, TokenKey, unix_now};
use futures_util::future::join_all;
use tracing::warn;

use crate::config::{BotConfig, PublishSpec, SubscribeSpec, Timeouts};
use crate::error::BotError;
use crate::stats::Histogram;
use crate::synthetic::{self, Probe, SyntheticMedia, SyntheticStats};
use crate::{Bot, Report};

use self::janus::{JanusBot, JoinSettings};

use self::metrics::Scrape;
use self::procfs::{ProcSample, SystemCpu, UdpCounters};
use self::report::{
    Batching, DeliveryReport, GeneratorReport, JoinReport, LatencyReport, LoadReport, LoadSettings,
    MachineReport, Percentiles, RampReport, ServerTimings, SfuReport, WindowReport,
};

/// Most calls one run may start.
pub const MAX_CALLS: usize = 250;
/// The parties of every call: identity, role, token languages.
pub const PARTIES: [(&str, Role, &[&str]); 4] = [
    ("company", Role::Company, &[]),
    ("interpreter", Role::Interpreter, &["ko", "en"]),
    ("office", Role::Office, &[]),
    ("buyer", Role::Buyer, &[]),
];

/// The server a load run targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Dragoman: its signaling WebSocket and the token secret the bots' tokens are minted with.
    Dragoman { url: String, secret: String },
    /// A Janus gateway's WebSocket API (VideoRoom plugin), for the comparison only.
    Janus { url: String },
}

impl Target {
    pub fn dragoman(url: impl Into<String>, secret: impl Into<String>) -> Target {
        Target::Dragoman {
            url: url.into(),
            secret: secret.into(),
        }
    }

    pub fn janus(url: impl Into<String>) -> Target {
        Target::Janus { url: url.into() }
    }

    /// The signaling WebSocket URL.
    pub fn url(&self) -> &str {
        match self {
            Target::Dragoman { url, .. } | Target::Janus { url } => url,
        }
    }

    /// `dragoman` or `janus`.
    pub fn server(&self) -> &'static str {
        match self {
            Target::Dragoman { .. } => "dragoman",
            Target::Janus { .. } => "janus",
        }
    }
}

/// A load run's settings.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server under test, on loopback.
    pub target: Target,
    pub calls: usize,
    /// Calls started per second.
    pub rate: f64,
    /// After the last join, before the window opens.
    pub settle: Duration,
    /// The measurement window.
    pub duration: Duration,
    /// After the window, before the counts are read (packets in flight arrive).
    pub drain: Duration,
    /// Hard bound on the whole run; `None`: ramp + settle + window + drain + 60 s.
    pub deadline: Option<Duration>,
    /// The SFU process; `None`: the process listening on the URL's port.
    pub sfu_pid: Option<u32>,
    /// `None`: `http://<host>:<port>/metrics` of the URL's address on Dragoman, none on Janus.
    /// `Some("")`: no metrics.
    pub metrics_url: Option<String>,
    /// Call ids are `<prefix>-<n>`.
    pub call_prefix: String,
    pub bind_ip: IpAddr,
    pub audio_payload_bytes: usize,
    pub video_bitrate_bps: u64,
    pub video_fps: u32,
    pub video_max_payload_bytes: usize,
    pub keyframe_interval: Option<Duration>,
    /// Print progress lines to stderr.
    pub progress: bool,
}

impl LoadConfig {
    pub fn new(target: Target) -> Self {
        let defaults = SyntheticMedia::new(Probe::new());
        LoadConfig {
            target,
            calls: 2,
            rate: 1.0,
            settle: Duration::from_secs(3),
            duration: Duration::from_secs(20),
            drain: Duration::from_secs(1),
            deadline: None,
            sfu_pid: None,
            metrics_url: None,
            call_prefix: format!("load-{}", unix_now()),
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            audio_payload_bytes: defaults.audio_payload_bytes,
            video_bitrate_bps: defaults.video_bitrate_bps,
            video_fps: defaults.video_fps,
            video_max_payload_bytes: defaults.video_max_payload_bytes,
            keyframe_interval: defaults.keyframe_interval,
            progress: true,
        }
    }

    fn media(&self, probe: Arc<Probe>) -> SyntheticMedia {
        SyntheticMedia {
            audio_payload_bytes: self.audio_payload_bytes,
            video_bitrate_bps: self.video_bitrate_bps,
            video_fps: self.video_fps,
            video_max_payload_bytes: self.video_max_payload_bytes,
            keyframe_interval: self.keyframe_interval,
            probe,
        }
    }

    fn ramp_time(&self) -> Duration {
        Duration::from_secs_f64(self.calls.saturating_sub(1) as f64 / self.rate)
    }

    /// The hard bound on the run.
    pub fn deadline(&self) -> Duration {
        self.deadline.unwrap_or_else(|| {
            self.ramp_time() + self.settle + self.duration + self.drain + Duration::from_secs(60)
        })
    }

    /// Check the settings; on loopback only.
    pub fn validate(&self) -> Result<(), BotError> {
        let url = self.target.url();
        let (host, _) = ws_address(url)?;
        require_loopback(&host, url)?;
        if let Some(metrics) = self.metrics_url.as_deref().filter(|m| !m.is_empty()) {
            let (host, _, _) = metrics::split_http_url(metrics)?;
            require_loopback(&host, metrics)?;
        }
        if !self.bind_ip.is_loopback() {
            return Err(BotError::Config(format!(
                "the load tool binds to loopback only, not {}",
                self.bind_ip
            )));
        }
        if matches!(&self.target, Target::Dragoman { secret, .. } if secret.is_empty()) {
            return Err(BotError::Config(
                "the server's token secret is needed (--secret)".into(),
            ));
        }
        if !(1..=MAX_CALLS).contains(&self.calls) {
            return Err(BotError::Config(format!("calls must be 1 to {MAX_CALLS}")));
        }
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 100.0) {
            return Err(BotError::Config(
                "the ramp rate must be above 0 and at most 100 calls/s".into(),
            ));
        }
        if self.duration < Duration::from_secs(1) || self.duration > Duration::from_secs(3600) {
            return Err(BotError::Config(
                "the window must be 1 s to 1 h long".into(),
            ));
        }
        if self.settle > Duration::from_secs(600) || self.drain > Duration::from_secs(60) {
            return Err(BotError::Config("settle ≤ 10 min and drain ≤ 1 min".into()));
        }
        let needed = self.ramp_time() + self.settle + self.duration + self.drain;
        if self.deadline() <= needed {
            return Err(BotError::Config(format!(
                "the deadline ({:?}) leaves no time after ramp, settle, window and drain ({needed:?})",
                self.deadline()
            )));
        }
        self.media(Probe::new()).validate()
    }
}

/// Split `host:port` (or `[v6]:port`), with a default port.
pub(crate) fn split_authority(
    authority: &str,
    default_port: u16,
) -> Result<(String, u16), BotError> {
    let bad = || BotError::Config(format!("cannot read the address {authority:?}"));
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => default_port,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_owned(), port.parse().map_err(|_| bad())?)),
        None => Ok((authority.to_owned(), default_port)),
    }
}

/// Host and port of a `ws://` URL.
pub fn ws_address(url: &str) -> Result<(String, u16), BotError> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| BotError::Config(format!("the load tool needs a ws:// URL, not {url:?}")))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    split_authority(authority, 80)
}

/// Whether `host` is a loopback address (or `localhost`).
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn require_loopback(host: &str, url: &str) -> Result<(), BotError> {
    if is_loopback_host(host) {
        Ok(())
    } else {
        Err(BotError::Config(format!(
            "{url} is not on loopback: the load tool only targets 127.0.0.0/8, ::1 or localhost"
        )))
    }
}

/// A join token for party `p` of call `call`.
fn mint(
    key: &TokenKey,
    call: &str,
    identity: &str,
    role: Role,
    languages: &[&str],
) -> Result<String, BotError> {
    let claims = JoinClaims {
        call: call.to_owned(),
        identity: identity.to_owned(),
        name: identity.to_owned(),
        role,
        languages: languages.iter().map(|l| (*l).to_owned()).collect(),
        exp: unix_now() + 3 * 3600,
        nbf: None,
        mode: None,
    };
    key.sign(&claims)
        .map_err(|e| BotError::Config(format!("minting a token: {e}")))
}

/// One party of the run, on whichever server: the measurement only needs what both kinds have.
enum Participant {
    Dragoman(Box<Bot>),
    Janus(JanusBot),
}

impl Participant {
    fn now_ms(&self) -> u64 {
        match self {
            Participant::Dragoman(bot) => bot.now_ms(),
            Participant::Janus(bot) => bot.now_ms(),
        }
    }

    fn synthetic_stats(&self) -> Option<SyntheticStats> {
        match self {
            Participant::Dragoman(bot) => bot.synthetic_stats(),
            Participant::Janus(bot) => bot.synthetic_stats(),
        }
    }

    fn report(&self) -> Report {
        match self {
            Participant::Dragoman(bot) => bot.report(),
            Participant::Janus(bot) => bot.report(),
        }
    }

    async fn leave(&mut self) -> Result<Report, BotError> {
        match self {
            Participant::Dragoman(bot) => bot.leave().await,
            Participant::Janus(bot) => bot.leave().await,
        }
    }
}

/// A bot of the run.
struct LoadBot {
    call: usize,
    bot: Participant,
    joined_ms: u64,
}

#[derive(Debug, Default)]
struct Progress {
    calls_started: AtomicUsize,
    calls_complete: AtomicUsize,
    bots_joined: AtomicUsize,
    bots_failed: AtomicUsize,
}

/// The bots' waits.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(10),
    request: Duration::from_secs(10),
    gathering: Duration::from_secs(5),
    media_connect: Duration::from_secs(15),
};

/// Join one party on Dragoman.
async fn join_dragoman(
    config: &LoadConfig,
    url: &str,
    key: &TokenKey,
    call: &str,
    party: (&str, Role, &[&str]),
    media: SyntheticMedia,
) -> Result<Participant, BotError> {
    let (identity, role, languages) = party;
    let token = mint(key, call, identity, role, languages)?;
    let mut bot_config = BotConfig::new(url, token)
        .with_publish(PublishSpec::AUDIO_VIDEO)
        .with_subscribe(SubscribeSpec::All)
        .with_synthetic_media(media)
        .with_timeouts(TIMEOUTS);
    bot_config.bind_ip = config.bind_ip;
    Ok(Participant::Dragoman(Box::new(
        Bot::join(bot_config).await?,
    )))
}

/// Join one party on Janus, in `room`.
async fn join_janus(
    config: &LoadConfig,
    url: &str,
    room: u64,
    identity: &str,
    media: SyntheticMedia,
) -> Result<Participant, BotError> {
    let bot = JanusBot::join(JoinSettings {
        url: url.to_owned(),
        room,
        display: identity.to_owned(),
        bind_ip: config.bind_ip,
        media,
        timeouts: TIMEOUTS,
        others: PARTIES.len() - 1,
        others_timeout: Duration::from_secs(20),
    })
    .await?;
    Ok(Participant::Janus(bot))
}

/// Start one call's four bots at once (on Janus, after creating the call's room).
async fn run_call(
    index: usize,
    config: Arc<LoadConfig>,
    media: SyntheticMedia,
    key: Arc<TokenKey>,
    progress: Arc<Progress>,
) -> (Vec<LoadBot>, Vec<String>) {
    progress.calls_started.fetch_add(1, Ordering::Relaxed);
    let call = format!("{}-{index}", config.call_prefix);
    let room = match &config.target {
        Target::Janus { url } => match janus::create_room(url, &call, TIMEOUTS.request).await {
            Ok(room) => Some(room),
            Err(e) => {
                progress
                    .bots_failed
                    .fetch_add(PARTIES.len(), Ordering::Relaxed);
                let error = format!("{call}: creating the Janus room: {e}");
                return (Vec::new(), vec![error; PARTIES.len()]);
            }
        },
        Target::Dragoman { .. } => None,
    };
    let joins = PARTIES.iter().map(|&party| {
        let config = Arc::clone(&config);
        let media = media.clone();
        let key = Arc::clone(&key);
        let call = call.clone();
        async move {
            let identity = party.0;
            let joined = match (&config.target, room) {
                (Target::Janus { url }, Some(room)) => {
                    join_janus(&config, url, room, identity, media).await
                }
                (target, _) => {
                    join_dragoman(&config, target.url(), &key, &call, party, media).await
                }
            };
            let bot = joined.map_err(|e| BotError::Protocol(format!("{call} {identity}: {e}")))?;
            let joined_ms = bot.now_ms();
            Ok::<_, BotError>(LoadBot {
                call: index,
                bot,
                joined_ms,
            })
        }
    });
    let mut bots = Vec::new();
    let mut errors = Vec::new();
    for result in join_all(joins).await {
        match result {
            Ok(bot) => {
                progress.bots_joined.fetch_add(1, Ordering::Relaxed);
                bots.push(bot);
            }
            Err(e) => {
                progress.bots_failed.fetch_add(1, Ordering::Relaxed);
                errors.push(e.to_string());
            }
        }
    }
    if bots.len() == PARTIES.len() {
        progress.calls_complete.fetch_add(1, Ordering::Relaxed);
    }
    (bots, errors)
}

/// Everything sampled at one edge of the window.
#[derive(Debug, Clone)]
struct Sample {
    at_ns: u64,
    sfu: Option<ProcSample>,
    sfu_threads: std::collections::BTreeMap<u32, (String, u64)>,
    sfu_socket_drops: Option<u64>,
    me: Option<ProcSample>,
    my_socket_drops: Option<u64>,
    udp: Option<UdpCounters>,
    system: Option<SystemCpu>,
    load_average: Option<f64>,
    scrape: Option<Scrape>,
}

async fn sample(sfu_pid: Option<u32>, metrics_url: Option<&str>) -> (Sample, Option<String>) {
    let me = std::process::id();
    let at_ns = synthetic::clock_ns();
    let sfu = sfu_pid.and_then(ProcSample::read);
    let me_sample = ProcSample::read(me);
    let (scrape, error) = match metrics_url {
        Some(url) => match metrics::http_get(url, Duration::from_secs(5)).await {
            Ok(body) => (Some(Scrape::parse(&body)), None),
            Err(e) => (None, Some(format!("reading {url}: {e}"))),
        },
        None => (None, None),
    };
    (
        Sample {
            at_ns,
            sfu,
            sfu_threads: sfu_pid.map(procfs::thread_ticks).unwrap_or_default(),
            sfu_socket_drops: sfu_pid.and_then(procfs::udp_drops),
            me: me_sample,
            my_socket_drops: procfs::udp_drops(me),
            udp: UdpCounters::read(),
            system: SystemCpu::read(),
            load_average: procfs::load_average(),
            scrape,
        },
        error,
    )
}

async fn sleep_until_ns(target_ns: u64) {
    let now = synthetic::clock_ns();
    if target_ns > now {
        tokio::time::sleep(Duration::from_nanos(target_ns - now)).await;
    }
}

/// Run the load, bounded by the config's deadline.
pub async fn run(config: LoadConfig) -> Result<LoadReport, BotError> {
    config.validate()?;
    let deadline = config.deadline();
    match tokio::time::timeout(deadline, run_inner(config)).await {
        Ok(result) => result,
        Err(_) => Err(BotError::timeout(
            "the load run (its hard deadline)",
            deadline,
        )),
    }
}

async fn run_inner(config: LoadConfig) -> Result<LoadReport, BotError> {
    let started_unix_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(0);
    let run_start = synthetic::clock_ns();
    let (host, port) = ws_address(config.target.url())?;
    let mut warnings = Vec::new();
    let metrics_url = match config.metrics_url.as_deref() {
        Some("") => None,
        Some(url) => Some(url.to_owned()),
        None if matches!(config.target, Target::Janus { .. }) => None,
        None => Some(if host.contains(':') {
            format!("http://[{host}]:{port}/metrics")
        } else {
            format!("http://{host}:{port}/metrics")
        }),
    };
    let sfu_pid = config.sfu_pid.or_else(|| procfs::find_listener(port));
    match (config.sfu_pid, sfu_pid) {
        (_, None) => warnings.push(format!(
            "no SFU process found (none listens on port {port} that this user can see); CPU and memory are not measured"
        )),
        (None, Some(pid)) => eprintln!("load: SFU process {pid} (listening on port {port})"),
        _ => {}
    }
    let sfu_before = sfu_pid.and_then(ProcSample::read);
    if sfu_pid.is_some() && sfu_before.is_none() {
        warnings.push("cannot read the SFU's /proc entry".into());
    }

    let probe = Probe::new();
    let media = config.media(Arc::clone(&probe));
    let key = Arc::new(TokenKey::new(match &config.target {
        Target::Dragoman { secret, .. } => secret.as_bytes(),
        Target::Janus { .. } => b"unused",
    }));
    let progress = Arc::new(Progress::default());
    let config = Arc::new(config);
    let parties = PARTIES.len();

    // Ramp: call i starts at i / rate.
    let mut calls = Vec::with_capacity(config.calls);
    let ramp_start = tokio::time::Instant::now();
    let reporter = config.progress.then(|| {
        let progress = Arc::clone(&progress);
        let total = config.calls;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!(
                    "ramp {:5.1} s: {}/{} calls started, {} complete, {}/{} bots joined, {} failed",
                    ramp_start.elapsed().as_secs_f64(),
                    progress.calls_started.load(Ordering::Relaxed),
                    total,
                    progress.calls_complete.load(Ordering::Relaxed),
                    progress.bots_joined.load(Ordering::Relaxed),
                    total * parties,
                    progress.bots_failed.load(Ordering::Relaxed),
                );
            }
        })
    });
    for index in 0..config.calls {
        let at = ramp_start + Duration::from_secs_f64(index as f64 / config.rate);
        tokio::time::sleep_until(at).await;
        calls.push(tokio::spawn(run_call(
            index,
            Arc::clone(&config),
            media.clone(),
            Arc::clone(&key),
            Arc::clone(&progress),
        )));
    }
    let mut bots: Vec<LoadBot> = Vec::new();
    let mut errors = Vec::new();
    for call in calls {
        match call.await {
            Ok((joined, failed)) => {
                bots.extend(joined);
                errors.extend(failed);
            }
            Err(e) => errors.push(format!("a call task ended: {e}")),
        }
    }
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    let ramp = RampReport {
        calls_started: progress.calls_started.load(Ordering::Relaxed),
        calls_complete: progress.calls_complete.load(Ordering::Relaxed),
        bots_joined: bots.len(),
        bots_failed: errors.len(),
        seconds: ramp_start.elapsed().as_secs_f64(),
        errors: errors.iter().take(20).cloned().collect(),
    };
    if config.progress {
        eprintln!(
            "ramp done in {:.1} s: {} calls complete, {} bots joined, {} failed",
            ramp.seconds, ramp.calls_complete, ramp.bots_joined, ramp.bots_failed
        );
        for e in errors.iter().take(5) {
            eprintln!("  join failed: {e}");
        }
    }
    if bots.is_empty() {
        return Err(BotError::Protocol(format!(
            "no bot could join; first error: {}",
            errors.first().map_or("none", String::as_str)
        )));
    }

    // The window: both edges set while still in the future.
    let window_start = synthetic::clock_ns() + duration_ns(config.settle);
    let window_end = window_start + duration_ns(config.duration);
    probe.set_window(window_start, window_end);
    sleep_until_ns(window_start).await;
    let (first, error) = sample(sfu_pid, metrics_url.as_deref()).await;
    if let Some(e) = error {
        warnings.push(e);
    }
    let delays = Arc::new(std::sync::Mutex::new(Histogram::new()));
    let delay_probe = tokio::spawn(measure_scheduling_delay(Arc::clone(&delays)));
    if config.progress {
        eprintln!(
            "measuring for {:.1} s ({} bots)…",
            config.duration.as_secs_f64(),
            bots.len()
        );
    }
    sleep_until_ns(window_end).await;
    delay_probe.abort();
    let (last, error) = sample(sfu_pid, metrics_url.as_deref()).await;
    if let Some(e) = error {
        warnings.push(e);
    }
    tokio::time::sleep(config.drain).await;
    let stats: Vec<Option<SyntheticStats>> = bots.iter().map(|b| b.bot.synthetic_stats()).collect();
    let reports: Vec<Report> = bots.iter().map(|b| b.bot.report()).collect();

    // Leave, bounded; the report does not depend on it.
    let leaving = join_all(bots.iter_mut().map(|b| b.bot.leave()));
    match tokio::time::timeout(Duration::from_secs(15), leaving).await {
        Ok(results) => {
            let failed = results.iter().filter(|r| r.is_err()).count();
            if failed > 0 {
                warn!("{failed} bots did not leave cleanly");
            }
        }
        Err(_) => warnings.push("not every bot had left after 15 s".into()),
    }

    let sampled_s = (last.at_ns.saturating_sub(first.at_ns)) as f64 / 1e9;
    let (delivery, mut latency, handled) = delivery(&bots, &stats);
    latency.timeline_max_us = probe
        .latency_timeline()
        .into_iter()
        .map(|ns| ns / 1000)
        .collect();
    let mut worst: Vec<(f64, u64)> = latency
        .timeline_max_us
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as f64 * synthetic::TIMELINE_SLOT.as_secs_f64(), v))
        .collect();
    worst.sort_by_key(|w| std::cmp::Reverse(w.1));
    worst.truncate(5);
    latency.worst_slots = worst;
    let mut delivery = delivery;
    delivery.generator_socket_drops = diff(first.my_socket_drops, last.my_socket_drops);
    delivery.udp_system = match (first.udp, last.udp) {
        (Some(a), Some(b)) => Some(b.since(&a)),
        _ => None,
    };

    // SFU figures.
    let tck = procfs::clock_ticks_per_second() as f64;
    let sfu_cpu = match (first.sfu, last.sfu) {
        (Some(a), Some(b)) => Some(b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / tck),
        _ => None,
    };
    let counter = |name: &str| -> Option<u64> {
        let a = first.scrape.as_ref()?.total(name)?;
        let b = last.scrape.as_ref()?.total(name)?;
        Some((b - a).max(0.0) as u64)
    };
    let forwarded = counter("dragoman_rtp_packets_forwarded_total");
    // What the bots received of the packets sent in the window, duplicates included: the count
    // that does not depend on the server's own counters.
    let delivered = delivery.total.received + delivery.total.duplicates;
    let (basis, per_packet_count) = match forwarded {
        Some(n) if n > 0 => ("metrics", n),
        _ => ("bots", delivered),
    };
    let mut dropped_in_window = std::collections::BTreeMap::new();
    if let (Some(a), Some(b)) = (&first.scrape, &last.scrape) {
        let before = a.by_label("dragoman_packets_dropped_total", "reason");
        for (reason, after) in b.by_label("dragoman_packets_dropped_total", "reason") {
            let n = (after - before.get(&reason).copied().unwrap_or(0.0)).max(0.0) as u64;
            if n > 0 {
                dropped_in_window.insert(reason, n);
            }
        }
    }
    let rss_before = sfu_before.map(|s| s.rss_kib);
    let rss_steady = last.sfu.map(|s| s.rss_kib);
    let sfu = SfuReport {
        pid: sfu_pid,
        threads: last.sfu.map(|s| s.threads),
        allowed_cpus: sfu_pid.and_then(procfs::allowed_cpus),
        cpu_seconds: sfu_cpu,
        cpu_cores: sfu_cpu.map(|c| c / sampled_s.max(1e-9)),
        forwarded_packets: forwarded,
        forwarded_per_second: forwarded.map(|n| n as f64 / sampled_s.max(1e-9)),
        received_packets: counter("dragoman_rtp_packets_received_total"),
        cpu_us_per_forwarded_packet: sfu_cpu
            .filter(|_| per_packet_count > 0)
            .map(|c| c * 1e6 / per_packet_count as f64),
        cpu_per_packet_basis: sfu_cpu.map(|_| basis.to_owned()),
        delivered_packets: delivered,
        delivered_per_second: delivered as f64 / config.duration.as_secs_f64().max(1e-9),
        cpu_us_per_delivered_packet: sfu_cpu
            .filter(|_| delivered > 0)
            .map(|c| c * 1e6 / delivered as f64),
        rss_before_kib: rss_before,
        rss_steady_kib: rss_steady,
        rss_per_participant_kib: match (rss_before, rss_steady) {
            (Some(a), Some(b)) => Some((b as f64 - a as f64) / bots.len() as f64),
            _ => None,
        },
        dropped_in_window,
        udp_send_errors_in_window: counter("dragoman_udp_send_errors_total"),
        socket_drops_in_window: diff(first.sfu_socket_drops, last.sfu_socket_drops),
        thread_cores: thread_cores(&first.sfu_threads, &last.sfu_threads, tck, sampled_s),
        worker_batch_us: server_timings(
            &first.scrape,
            &last.scrape,
            "dragoman_media_batch_seconds",
        ),
        worker_forward_us: server_timings(
            &first.scrape,
            &last.scrape,
            "dragoman_media_forward_seconds",
        ),
        batching: Batching::of(
            counter("dragoman_udp_datagrams_received_total"),
            counter("dragoman_udp_receive_calls_total"),
            counter("dragoman_udp_datagrams_sent_total"),
            counter("dragoman_udp_send_calls_total"),
            counter("dragoman_udp_messages_sent_total"),
        ),
        worker_job_us: server_timings(&first.scrape, &last.scrape, "dragoman_media_job_seconds"),
    };

    // The generator.
    let gen_cpu = match (first.me, last.me) {
        (Some(a), Some(b)) => Some(b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / tck),
        _ => None,
    };
    let allowed = procfs::allowed_cpus(std::process::id());
    let gen_cores = gen_cpu.map(|c| c / sampled_s.max(1e-9));
    let generator = GeneratorReport {
        pid: std::process::id(),
        allowed_cpus: allowed,
        cpu_seconds: gen_cpu,
        cpu_cores: gen_cores,
        packets_handled: handled,
        cpu_us_per_packet: gen_cpu
            .filter(|_| handled > 0)
            .map(|c| c * 1e6 / handled as f64),
        saturated: match (gen_cores, allowed) {
            (Some(cores), Some(n)) => cores > 0.85 * n as f64,
            _ => false,
        },
        scheduling_delay_us: delays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .summary_in(1000),
        send_lag_us: probe.send_lag().summary_in(1000),
    };
    let other_cpu_cores = match (first.system, last.system) {
        (Some(a), Some(b)) => {
            let busy = b.busy_ticks.saturating_sub(a.busy_ticks) as f64 / tck;
            Some(
                ((busy - sfu_cpu.unwrap_or(0.0) - gen_cpu.unwrap_or(0.0)) / sampled_s.max(1e-9))
                    .max(0.0),
            )
        }
        _ => None,
    };
    let steal_cores = match (first.system, last.system) {
        (Some(a), Some(b)) => {
            Some(b.steal_ticks.saturating_sub(a.steal_ticks) as f64 / tck / sampled_s.max(1e-9))
        }
        _ => None,
    };
    let machine = MachineReport {
        steal_cores,
        cpus: procfs::machine_cpus(),
        load_average_before: first.load_average,
        load_average_after: last.load_average,
        other_cpu_cores,
    };
    if let Some(other) = other_cpu_cores.filter(|&o| o > 0.2) {
        warnings.push(format!(
            "other processes used {other:.2} cores during the window: latency and CPU figures are disturbed"
        ));
    }
    if generator.saturated {
        warnings.push(format!(
            "the generator used {:.2} of its {} CPUs: latency and loss may be the generator's",
            gen_cores.unwrap_or(0.0),
            allowed.unwrap_or(0)
        ));
    }
    if delivery.total.lost > 0 && delivery.generator_socket_drops.unwrap_or(0) > 0 {
        warnings.push("some loss is the generator's own socket drops".into());
    }
    if delivery.pairs_without_packets > 0 {
        warnings.push(format!(
            "{} (publication, subscriber) pairs received nothing in the window",
            delivery.pairs_without_packets
        ));
    }
    if let (Some(cores), Some(n)) = (sfu.cpu_cores, sfu.allowed_cpus)
        && cores > 0.9 * n as f64
    {
        warnings.push(format!(
            "the SFU used {cores:.2} of its {n} CPUs: it is at its limit at this load"
        ));
    }

    let join = join_report(&bots, &reports);
    let (packets_per_frame, payload) = media.video_packets();
    Ok(LoadReport {
        tool: "dragoman-bot load".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        started_unix_ms,
        config: LoadSettings {
            server: config.target.server().to_owned(),
            url: config.target.url().to_owned(),
            metrics_url,
            calls: config.calls,
            parties_per_call: parties,
            rate: config.rate,
            settle_s: config.settle.as_secs_f64(),
            duration_s: config.duration.as_secs_f64(),
            deadline_s: config.deadline().as_secs_f64(),
            call_prefix: config.call_prefix.clone(),
            audio_payload_bytes: config.audio_payload_bytes,
            audio_packets_per_second: 1.0 / synthetic::AUDIO_FRAME.as_secs_f64(),
            video_bitrate_bps: config.video_bitrate_bps,
            video_fps: config.video_fps,
            video_packets_per_frame: packets_per_frame,
            video_payload_bytes: payload,
            keyframe_interval_s: config.keyframe_interval.map(|d| d.as_secs_f64()),
        },
        ramp,
        window: WindowReport {
            seconds: config.duration.as_secs_f64(),
            sampled_seconds: sampled_s,
            starts_after_s: window_start.saturating_sub(run_start) as f64 / 1e9,
        },
        sfu,
        delivery,
        latency_us: latency,
        join,
        generator,
        machine,
        warnings,
    })
}

/// Every 10 ms, spawn a task and record how long it waits to run.
async fn measure_scheduling_delay(into: Arc<std::sync::Mutex<Histogram>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        let spawned = synthetic::clock_ns();
        let into = Arc::clone(&into);
        tokio::spawn(async move {
            let delay = synthetic::clock_ns().saturating_sub(spawned);
            into.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record(delay);
        });
    }
}

/// Per thread name, CPU cores used between two samples by the threads present in both.
fn thread_cores(
    before: &std::collections::BTreeMap<u32, (String, u64)>,
    after: &std::collections::BTreeMap<u32, (String, u64)>,
    ticks_per_second: f64,
    seconds: f64,
) -> std::collections::BTreeMap<String, f64> {
    let mut cores = std::collections::BTreeMap::new();
    for (tid, (name, ticks)) in after {
        if let Some((_, earlier)) = before.get(tid) {
            *cores.entry(name.clone()).or_insert(0.0) +=
                ticks.saturating_sub(*earlier) as f64 / ticks_per_second / seconds.max(1e-9);
        }
    }
    cores
}

/// Quantiles (µs) of a server histogram over the window between two scrapes.
fn server_timings(
    first: &Option<Scrape>,
    last: &Option<Scrape>,
    name: &str,
) -> Option<ServerTimings> {
    let (first, last) = (first.as_ref()?, last.as_ref()?);
    let quantile = |q| last.histogram_quantile(first, name, q);
    let (p50, count) = quantile(0.5)?;
    Some(ServerTimings {
        count,
        p50: p50 * 1e6,
        p99: quantile(0.99)?.0 * 1e6,
        p999: quantile(0.999)?.0 * 1e6,
    })
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn diff(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

/// Loss per (publication, subscriber) pair within each call, latency over all bots, and the
/// packets the bots handled (sent + received) in the window.
fn delivery(
    bots: &[LoadBot],
    stats: &[Option<SyntheticStats>],
) -> (DeliveryReport, LatencyReport, u64) {
    use std::collections::HashMap;
    let mut report = DeliveryReport::default();
    // track id → (call, bot index, kind, packets sent in the window)
    let mut tracks: HashMap<u32, (usize, usize, TrackKind, u64)> = HashMap::new();
    let mut handled = 0;
    for (i, (bot, stats)) in bots.iter().zip(stats).enumerate() {
        for sent in stats.iter().flat_map(|s| &s.sent) {
            tracks.insert(
                sent.track_id,
                (bot.call, i, sent.kind, sent.packets_in_window),
            );
            handled += sent.packets_in_window;
        }
    }
    let (mut audio, mut video, mut late) = (Histogram::new(), Histogram::new(), Histogram::new());
    for (i, (bot, stats)) in bots.iter().zip(stats).enumerate() {
        let Some(stats) = stats else {
            continue;
        };
        audio.merge(&stats.latency_audio);
        video.merge(&stats.latency_video);
        late.merge(&stats.latency_late);
        report.unstamped += stats.unstamped;
        let received: HashMap<u32, _> = stats.received.iter().map(|r| (r.track_id, r)).collect();
        for r in &stats.received {
            handled += r.packets_in_window;
            if tracks.get(&r.track_id).is_none_or(|t| t.0 != bot.call) {
                report.misrouted += r.packets_in_window;
            }
        }
        for (track_id, &(call, publisher, kind, expected)) in &tracks {
            if call != bot.call || publisher == i {
                continue;
            }
            let (got, duplicates) = received
                .get(track_id)
                .map_or((0, 0), |r| (r.unique_in_window, r.duplicates_in_window));
            report.pairs += 1;
            if expected > 0 && got == 0 {
                report.pairs_without_packets += 1;
            }
            report.total.add(expected, got, duplicates);
            match kind {
                TrackKind::Audio => report.audio.add(expected, got, duplicates),
                TrackKind::Video => report.video.add(expected, got, duplicates),
            }
        }
    }
    let mut all = audio.clone();
    all.merge(&video);
    let latency = LatencyReport {
        all: all.summary_in(1000),
        audio: audio.summary_in(1000),
        video: video.summary_in(1000),
        late: late.summary_in(1000),
        timeline_max_us: Vec::new(),
        worst_slots: Vec::new(),
    };
    (report, latency, handled)
}

fn join_report(bots: &[LoadBot], reports: &[Report]) -> JoinReport {
    let mut joined = Vec::new();
    let mut first_packet = Vec::new();
    let mut first_keyframe = Vec::new();
    let mut all_media = Vec::new();
    let expected = (PARTIES.len() - 1) * 2;
    for (bot, report) in bots.iter().zip(reports) {
        joined.push(bot.joined_ms);
        let firsts: Vec<u64> = report
            .received
            .iter()
            .filter_map(|r| r.first_packet_ms)
            .collect();
        if let Some(&t) = firsts.iter().min() {
            first_packet.push(t);
        }
        if let Some(t) = report
            .received
            .iter()
            .filter_map(|r| r.first_keyframe_ms)
            .min()
        {
            first_keyframe.push(t);
        }
        if firsts.len() >= expected
            && let Some(&t) = firsts.iter().max()
        {
            all_media.push(t);
        }
    }
    JoinReport {
        joined_ms: Percentiles::of(joined),
        first_packet_ms: Percentiles::of(first_packet),
        first_keyframe_ms: Percentiles::of(first_keyframe),
        all_media_ms: Percentiles::of(all_media),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        let ok = |url: &str| LoadConfig::new(Target::dragoman(url, "s")).validate();
        assert!(ok("ws://127.0.0.1:7880/v1/signal").is_ok());
        assert!(ok("ws://127.1.2.3:7880/v1/signal").is_ok());
        assert!(ok("ws://localhost:7880/v1/signal").is_ok());
        assert!(ok("ws://[::1]:7880/v1/signal").is_ok());
        assert!(ok("ws://10.0.0.1:7880/v1/signal").is_err());
        assert!(ok("ws://example.com/v1/signal").is_err());
        assert!(ok("wss://127.0.0.1/v1/signal").is_err());
        let mut remote_metrics =
            LoadConfig::new(Target::dragoman("ws://127.0.0.1:1/v1/signal", "s"));
        remote_metrics.metrics_url = Some("http://192.168.1.1:9/metrics".into());
        assert!(remote_metrics.validate().is_err());
        let mut remote_bind = LoadConfig::new(Target::dragoman("ws://127.0.0.1:1/v1/signal", "s"));
        remote_bind.bind_ip = "192.168.1.2".parse().unwrap();
        assert!(remote_bind.validate().is_err());
    }

    #[test]
    fn bounds_are_checked() {
        let base = || LoadConfig::new(Target::dragoman("ws://127.0.0.1:1/v1/signal", "s"));
        let mut c = base();
        c.calls = MAX_CALLS + 1;
        assert!(c.validate().is_err());
        let mut c = base();
        c.rate = 0.0;
        assert!(c.validate().is_err());
        let mut c = base();
        c.target = Target::dragoman("ws://127.0.0.1:1/v1/signal", "");
        assert!(c.validate().is_err());
        // Janus needs no secret, and is on loopback only too.
        c.target = Target::janus("ws://127.0.0.1:8188");
        assert!(c.validate().is_ok());
        c.target = Target::janus("ws://10.1.1.1:8188");
        assert!(c.validate().is_err());
        let mut c = base();
        c.deadline = Some(Duration::from_secs(5));
        assert!(c.validate().is_err());
        let mut c = base();
        c.calls = 10;
        c.rate = 2.0;
        // 4.5 s of ramp + 3 settle + 20 window + 1 drain + 60
        assert_eq!(c.deadline(), Duration::from_millis(88_500));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn addresses_split() {
        assert_eq!(
            ws_address("ws://127.0.0.1:7880/v1/signal").unwrap(),
            ("127.0.0.1".into(), 7880)
        );
        assert_eq!(ws_address("ws://[::1]:9/x").unwrap(), ("::1".into(), 9));
        assert_eq!(
            ws_address("ws://localhost/x").unwrap(),
            ("localhost".into(), 80)
        );
    }

    #[test]
    fn tokens_carry_the_parties() {
        let key = TokenKey::new(b"secret");
        for (identity, role, languages) in PARTIES {
            let token = mint(&key, "c-1", identity, role, languages).unwrap();
            let claims = key.verify(&token, unix_now()).unwrap();
            assert_eq!((claims.role, claims.identity.as_str()), (role, identity));
        }
        let interpreter = mint(&key, "c", "i", Role::Interpreter, &["ko", "en"]).unwrap();
        assert_eq!(
            key.verify(&interpreter, unix_now()).unwrap().languages,
            vec!["ko", "en"]
        );
    }
}
