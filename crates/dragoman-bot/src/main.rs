//! The `dragoman-bot` command: join a call, publish and subscribe for a while, write a report.
//!
//! ```text
//! dragoman-bot --url ws://127.0.0.1:7880/v1/signal --token T --publish audio,video \
//!     --subscribe all --duration 10s --report out.json
//! ```
//! Logs go to stderr (`RUST_LOG` filters them). Ctrl-C leaves the call gracefully and still writes
//! the report. A failure prints one clear line and exits non-zero.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dragoman_bot::{Bot, BotConfig, BotError, PublishSpec, SubscribeSpec};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

/// A synthetic Dragoman participant: publishes a test clip, subscribes, reports what it received.
#[derive(Debug, Parser)]
#[command(name = "dragoman-bot", version)]
struct Cli {
    /// Signaling WebSocket URL.
    #[arg(
        long,
        env = "DRAGOMAN_URL",
        default_value = "ws://127.0.0.1:7880/v1/signal"
    )]
    url: String,
    /// Join token (JWT).
    #[arg(long, env = "DRAGOMAN_TOKEN")]
    token: String,
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

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new("warn,dragoman_bot=info,rtc_ice=error,rtc_dtls=error")
        }))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dragoman-bot: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), BotError> {
    let mut config = BotConfig::new(cli.url, cli.token)
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
