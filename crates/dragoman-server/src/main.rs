//! The `dragoman` command: `dragoman serve` runs the SFU, `dragoman token` mints a join token.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use dragoman_server::Config;
use dragoman_signal::Role;
use dragoman_signal::routing::InterpretationMode;
use dragoman_signal::token::{JoinClaims, TokenKey, unix_now};

#[derive(Debug, Parser)]
#[command(
    name = "dragoman",
    version,
    about = "WebRTC SFU for interpreted business calls"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (defaults: HTTP on 127.0.0.1:7880, UDP media on 127.0.0.1:7881).
    Serve(ServeArgs),
    /// Print a join token for a call, identity and role.
    Token(TokenArgs),
}

/// Settings shared by both commands. Flags override `DRAGOMAN_*` variables, which override the file.
#[derive(Debug, Args)]
struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, env = "DRAGOMAN_CONFIG")]
    config: Option<PathBuf>,
    /// HS256 secret for join tokens (default: generated at start, printed).
    #[arg(long, env = "DRAGOMAN_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// HTTP address for signaling, health and metrics.
    #[arg(long, env = "DRAGOMAN_HTTP")]
    http: Option<SocketAddr>,
    /// UDP address for media; every peer shares this one port.
    #[arg(long, env = "DRAGOMAN_MEDIA")]
    media: Option<SocketAddr>,
    /// SQLite file for the call history.
    #[arg(long, env = "DRAGOMAN_HISTORY")]
    history: Option<PathBuf>,
    /// Address(es) to advertise to clients as ICE candidates, when `--media` is a wildcard.
    #[arg(long, env = "DRAGOMAN_MEDIA_PUBLIC_ADDRESSES", value_delimiter = ',')]
    media_public_address: Vec<SocketAddr>,
    /// Media worker threads (0: one per CPU core).
    #[arg(long, env = "DRAGOMAN_MEDIA_WORKERS")]
    media_workers: Option<usize>,
}

#[derive(Debug, Args)]
struct TokenArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The call to join.
    #[arg(long)]
    call: String,
    /// The participant's stable identity within the call.
    #[arg(long)]
    identity: String,
    /// company, interpreter, office, buyer or operator.
    #[arg(long)]
    role: Role,
    /// Display name (default: the identity).
    #[arg(long)]
    name: Option<String>,
    /// Languages spoken, comma separated (e.g. ko,en).
    #[arg(long, value_delimiter = ',')]
    languages: Vec<String>,
    /// Interpretation mode of the call (consecutive or simultaneous), applied when this token's
    /// join creates the call.
    #[arg(long, value_parser = parse_mode)]
    mode: Option<InterpretationMode>,
    /// How long the token stays valid (e.g. 90m, 2h).
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    ttl: Duration,
}

fn parse_mode(text: &str) -> Result<InterpretationMode, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| format!("unknown mode {text:?}; expected consecutive or simultaneous"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Token(args) => token(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dragoman: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(common: &CommonArgs) -> anyhow::Result<Config> {
    let mut config = match &common.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(secret) = &common.secret {
        config.secret = secret.clone();
    }
    Ok(config)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DRAGOMAN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = load_config(&args.common)?;
    if let Some(http) = args.http {
        config.http = http;
    }
    if let Some(media) = args.media {
        config.media = media;
    }
    if let Some(history) = args.history {
        config.history_path = history;
    }
    if let Some(workers) = args.media_workers {
        config.media_workers = workers;
    }
    if !args.media_public_address.is_empty() {
        config.media_public_addresses = args.media_public_address;
    }
    let generated = config.secret.is_empty();
    if generated {
        config.secret = dragoman_server::random_key();
    }
    let generated_key = config.operator_api_key.is_empty();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let server = dragoman_server::start(config).await?;
        let (http, media) = (server.http_addr, server.media_addr);
        let secret = server.state.config.secret.clone();
        let demo = demo_token(&secret)?;
        println!("dragoman ready: http={http} media={media}");
        println!("  open       http://{http}/join?token={demo}");
        println!("             (a 12-hour join link for call \"demo\" as the company; mint more below)");
        println!("  signaling  ws://{http}/v1/signal");
        println!("  metrics    http://{http}/metrics");
        if generated {
            println!("  secret     {secret}  (generated for development; set DRAGOMAN_SECRET to keep one)");
        }
        if generated_key {
            println!(
                "  operator   API key {}  (generated; set operator_api_key in the config to keep one)",
                server.state.config.operator_api_key
            );
        }
        println!(
            "  token      dragoman token --secret {} --call demo --identity buyer --role buyer",
            if generated { secret.as_str() } else { "$DRAGOMAN_SECRET" }
        );
        wait_for_signal().await;
        server.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A join token for trying the server out: call "demo", identity "company".
fn demo_token(secret: &str) -> anyhow::Result<String> {
    let claims = JoinClaims {
        call: "demo".into(),
        identity: "company".into(),
        name: "Company".into(),
        role: Role::Company,
        languages: vec![],
        exp: unix_now() + 12 * 3600,
        nbf: None,
        mode: None,
    };
    Ok(TokenKey::new(secret.as_bytes()).sign(&claims)?)
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let config = load_config(&args.common)?;
    if config.secret.is_empty() {
        anyhow::bail!(
            "no secret: pass --secret (the one `dragoman serve` printed), set DRAGOMAN_SECRET, \
             or give a --config with `secret`"
        );
    }
    let claims = JoinClaims {
        call: args.call,
        name: args.name.unwrap_or_else(|| args.identity.clone()),
        identity: args.identity,
        role: args.role,
        languages: args.languages,
        exp: unix_now() + args.ttl.as_secs(),
        nbf: None,
        mode: args.mode,
    };
    let token = TokenKey::new(config.secret.as_bytes()).sign(&claims)?;
    println!("{token}");
    Ok(())
}
