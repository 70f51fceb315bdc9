//! The `dragoman-bot` command: join a call, publish and subscribe for a while, write a report.
//!
//! ```text
//! dragoman-bot --url ws://127.0.0.1:7880/v1/signal --token T --publish audio,video \
//!     --subscribe all --duration 10s --report out.json
//! ```
//! Logs go to stderr (`RUST_LOG` filters them). Ctrl-C leaves the call gracefully and still writes
//! the report. A failure prints one clear line and exits non-zero.
//!
//! `dragoman-bot load` runs many synthetic four-party calls against a server on loopback and
//! measures it (see `dragoman_bot::load`):
//! ```text
//! dragoman-bot load --url ws://127.0.0.1:7880/v1/signal --secret S --calls 10 --rate 2 \
//!     --duration 20s --sfu-pid 1234 --report load.json
//! ```

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use dragoman_bot::load::{self, LoadConfig, Target};
use dragoman_bot::synthetic::SyntheticMedia;
use dragoman_bot::{Bot, BotConfig, BotError, PublishSpec, SubscribeSpec};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

/// A synthetic Dragoman participant: publishes a test clip, subscribes, reports what it received.
///
/// Without a subcommand it joins one call; `load` runs a measured load of many calls.
#[derive(Debug, Parser)]
#[command(
    name = "dragoman-bot",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    join: JoinArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run N synthetic four-party calls against a server on loopback and measure it: SFU CPU per
    /// forwarded packet, loss, forwarding latency, memory per participant, join to first packet.
    Load(Box<LoadArgs>),
    /// The load generator's own floor: bots connected in pairs straight to each other (no SFU),
    /// sending the same synthetic media; their latency and CPU per packet.
    Baseline(BaselineArgs),
    /// The side-by-side table of Janus and Dragoman load reports taken at the same load (see
    /// crates/dragoman-bot/load/compare-janus.sh).
    Compare(CompareArgs),
}

/// Pairs of load reports to compare, matched in the order given.
#[derive(Debug, Args)]
struct CompareArgs {
    /// A Janus load report (repeat, one per load).
    #[arg(long, required = true)]
    janus: Vec<PathBuf>,
    /// The Dragoman load report of the same load (repeat, in the same order).
    #[arg(long, required = true)]
    dragoman: Vec<PathBuf>,
    /// Write the comparison as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// A baseline run: direct pairs, no server.
#[derive(Debug, Args)]
struct BaselineArgs {
    /// Publisher→subscriber pairs (each pair sends audio + video one way).
    #[arg(long, default_value_t = 4)]
    pairs: usize,
    /// Length of the measurement window.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Wait after connecting before the window opens.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Video bit rate per pair, in kbit/s of RTP payload.
    #[arg(long, default_value_t = 1500)]
    video_kbps: u64,
    /// Video frames per second.
    #[arg(long, default_value_t = 30)]
    video_fps: u32,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// Joining one call (the command without a subcommand).
#[derive(Debug, Args)]
struct JoinArgs {
    /// Signaling WebSocket URL.
    #[arg(
        long,
        env = "DRAGOMAN_URL",
        default_value = "ws://127.0.0.1:7880/v1/signal"
    )]
    url: String,
    /// Join token (JWT).
    #[arg(long, env = "DRAGOMAN_TOKEN", required = true)]
    token: Option<String>,
    /// What to publish: audio,video | audio | video | none.
    #[arg(long, default_value = "audio,video")]
    publish: PublishSpec,
    /// What to subscribe to: all | none | PUBLICATION_ID,…
    #[arg(long, default_value = "all")]
    subscribe: SubscribeSpec,
    /// How long to stay in the call (e.g. 10s, 2m).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Write the JSON report here (otherwise it is printed to stdout).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Share of outgoing RTP packets to drop on purpose, in [0, 1).
    #[arg(long, default_value_t = 0.0)]
    uplink_loss: f64,
    /// Seed for the deliberate loss.
    #[arg(long)]
    loss_seed: Option<u64>,
    /// Local address for the peer connections.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Language channel of the audio track.
    #[arg(long, default_value = "floor")]
    channel: String,
}

/// A measured load run (loopback only).
#[derive(Debug, Args)]
struct LoadArgs {
    /// The server under test: `dragoman`, or `janus` (a Janus VideoRoom over Janus's WebSocket
    /// API, for the side-by-side comparison; see crates/dragoman-bot/load/compare-janus.sh).
    #[arg(long, default_value = "dragoman", value_parser = ["dragoman", "janus"])]
    server: String,
    /// Signaling WebSocket URL of the server under test (for Janus: its WebSocket transport,
    /// e.g. ws://127.0.0.1:8188); loopback addresses only.
    #[arg(
        long,
        env = "DRAGOMAN_URL",
        default_value = "ws://127.0.0.1:7880/v1/signal"
    )]
    url: String,
    /// The server's token secret (the bots' join tokens are minted with it); Dragoman only.
    #[arg(long, env = "DRAGOMAN_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Concurrent four-party calls.
    #[arg(long, default_value_t = 2)]
    calls: usize,
    /// Calls started per second during the ramp.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Length of the steady-state measurement window.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Wait after the ramp before the window opens.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Wait after the window before counting (packets in flight arrive).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    drain: Duration,
    /// Hard bound on the whole run (default: ramp + settle + duration + drain + 60 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    deadline: Option<Duration>,
    /// PID of the SFU process (default: the process listening on the URL's port).
    #[arg(long)]
    sfu_pid: Option<u32>,
    /// The server's Prometheus endpoint (default: /metrics on the URL's address; "" for none).
    #[arg(long)]
    metrics_url: Option<String>,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Call ids are PREFIX-0, PREFIX-1, … (default: load-<unix time>).
    #[arg(long)]
    call_prefix: Option<String>,
    /// Local address for the bots' peer connections (loopback).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Video bit rate per party, in kbit/s of RTP payload.
    #[arg(long, default_value_t = 1500)]
    video_kbps: u64,
    /// Video frames per second.
    #[arg(long, default_value_t = 30)]
    video_fps: u32,
    /// Largest video RTP payload in bytes.
    #[arg(long, default_value_t = 1100)]
    video_packet_bytes: usize,
    /// Audio RTP payload in bytes (one packet per 20 ms).
    #[arg(long, default_value_t = 120)]
    audio_bytes: usize,
    /// A video keyframe at least this often (besides answers to PLI); "0s" for on request only.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    keyframe_interval: Duration,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // A load run has many bots: only their warnings are of interest.
    let default_filter = match cli.command {
        Some(Command::Load(_) | Command::Baseline(_) | Command::Compare(_)) => {
            "warn,rtc=error,rtc_ice=error,rtc_dtls=error"
        }
        None => "warn,dragoman_bot=info,rtc_ice=error,rtc_dtls=error",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Some(Command::Load(args)) => run_load(*args).await,
        Some(Command::Baseline(args)) => run_baseline(args).await,
        Some(Command::Compare(args)) => run_compare(args),
        None => run(cli.join).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dragoman-bot: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_baseline(args: BaselineArgs) -> Result<(), BotError> {
    let report = load::direct::run(args.pairs, args.settle, args.duration, |probe| {
        let mut media = SyntheticMedia::new(probe);
        media.video_bitrate_bps = args.video_kbps.saturating_mul(1000);
        media.video_fps = args.video_fps;
        media
    })
    .await?;
    print!("{}", report.summary());
    write_json(args.report.as_deref(), &report)
}

fn run_compare(args: CompareArgs) -> Result<(), BotError> {
    if args.janus.len() != args.dragoman.len() {
        return Err(BotError::Config(format!(
            "{} Janus reports and {} Dragoman reports: give one of each per load",
            args.janus.len(),
            args.dragoman.len()
        )));
    }
    let read = |path: &std::path::Path| -> Result<load::report::LoadReport, BotError> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text)
            .map_err(|e| BotError::Config(format!("{} is not a load report: {e}", path.display())))
    };
    let mut pairs = Vec::new();
    for (janus, dragoman) in args.janus.iter().zip(&args.dragoman) {
        pairs.push(load::compare::Pair::new(&read(janus)?, &read(dragoman)?)?);
    }
    let comparison = load::compare::Comparison::new(pairs);
    print!("{}", comparison.table());
    write_json(args.report.as_deref(), &comparison)
}

fn write_json(
    path: Option<&std::path::Path>,
    value: &impl serde::Serialize,
) -> Result<(), BotError> {
    let Some(path) = path else {
        return Ok(());
    };
    let json =
        serde_json::to_string_pretty(value).map_err(|e| BotError::Io(std::io::Error::other(e)))?;
    std::fs::write(path, json + "\n")?;
    println!("report: {}", path.display());
    Ok(())
}

async fn run_load(args: LoadArgs) -> Result<(), BotError> {
    let target = match args.server.as_str() {
        "janus" => Target::janus(args.url),
        _ => Target::dragoman(args.url, args.secret.unwrap_or_default()),
    };
    let mut config = LoadConfig::new(target);
    config.calls = args.calls;
    config.rate = args.rate;
    config.duration = args.duration;
    config.settle = args.settle;
    config.drain = args.drain;
    config.deadline = args.deadline;
    config.sfu_pid = args.sfu_pid;
    config.metrics_url = args.metrics_url;
    if let Some(prefix) = args.call_prefix {
        config.call_prefix = prefix;
    }
    config.bind_ip = args.bind;
    config.video_bitrate_bps = args.video_kbps.saturating_mul(1000);
    config.video_fps = args.video_fps;
    config.video_max_payload_bytes = args.video_packet_bytes;
    config.audio_payload_bytes = args.audio_bytes;
    config.keyframe_interval =
        (!args.keyframe_interval.is_zero()).then_some(args.keyframe_interval);
    config.progress = !args.quiet;
    config.validate()?;
    let report = tokio::select! {
        report = load::run(config) => report?,
        _ = tokio::signal::ctrl_c() => {
            return Err(BotError::Interrupted("during the load run"));
        }
    };
    print!("{}", report.summary());
    write_json(args.report.as_deref(), &report)
}

async fn run(cli: JoinArgs) -> Result<(), BotError> {
    let token = cli
        .token
        .ok_or_else(|| BotError::Config("--token is required".into()))?;
    let mut config = BotConfig::new(cli.url, token)
        .with_publish(cli.publish)
        .with_subscribe(cli.subscribe)
        .with_uplink_loss(cli.uplink_loss);
    config.loss_seed = cli.loss_seed;
    config.bind_ip = cli.bind;
    config.audio_channel = cli.channel;

    let mut bot = tokio::select! {
        bot = Bot::join(config) => bot?,
        _ = tokio::signal::ctrl_c() => {
            return Err(BotError::Interrupted("before the bot had joined"));
        }
    };
    info!(
        participant = bot.participant_id(),
        publications = ?bot.own_publications().iter().map(|p| &p.id).collect::<Vec<_>>(),
        "in the call for {:?}",
        cli.duration
    );
    tokio::select! {
        _ = tokio::time::sleep(cli.duration) => {}
        _ = tokio::signal::ctrl_c() => warn!("interrupted: leaving"),
    }
    let report = match bot.leave().await {
        Ok(report) => report,
        Err(e) => {
            warn!("leave was not acknowledged: {e}");
            bot.report()
        }
    };
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| BotError::Io(std::io::Error::other(e)))?;
    match cli.report {
        Some(path) => {
            std::fs::write(&path, json + "\n")?;
            println!("{}", path.display());
        }
        None => println!("{json}"),
    }
    Ok(())
}
