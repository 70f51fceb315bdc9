//! Helpers for the end-to-end tests: a real server on loopback with ephemeral ports, join tokens,
//! and a raw signaling client. Every wait is bounded.

use std::time::Duration;

use anyhow::{Context, bail};
use dragoman_server::{Config, RunningServer};
use dragoman_signal::Role;
use dragoman_signal::token::{JoinClaims, TokenKey, unix_now};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// The secret every test server signs with.
pub const SECRET: &str = "test-secret-not-for-production";
/// Default bound on a single wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server on 127.0.0.1 with ephemeral HTTP and UDP ports.
pub async fn start_server() -> anyhow::Result<RunningServer> {
    start_server_with(|_| {}).await
}

/// A server like [`start_server`], with settings changed by `adjust`. Its history database lives
/// in a fresh temporary file unless `adjust` points it elsewhere.
pub async fn start_server_with(adjust: impl FnOnce(&mut Config)) -> anyhow::Result<RunningServer> {
    let mut config = Config {
        http: "127.0.0.1:0".parse()?,
        media: "127.0.0.1:0".parse()?,
        secret: SECRET.into(),
        history_path: temp_path("history.sqlite"),
        ..Config::default()
    };
    adjust(&mut config);
    Ok(dragoman_server::start(config).await?)
}

/// A path in a fresh directory under the system temp dir (unique per call in this process).
pub fn temp_path(file: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dragoman-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::create_dir_all(&dir);
    dir.join(file)
}

/// The signaling URL of a running server.
pub fn signal_url(server: &RunningServer) -> String {
    format!("ws://{}/v1/signal", server.http_addr)
}

/// A join token valid for an hour.
pub fn token(call: &str, identity: &str, role: Role) -> String {
    token_with(call, identity, role, unix_now() + 3600, SECRET)
}

/// A join token with a chosen expiry and secret.
pub fn token_with(call: &str, identity: &str, role: Role, exp: u64, secret: &str) -> String {
    let claims = JoinClaims {
        exp,
        ..claims(call, identity, role)
    };
    TokenKey::new(secret.as_bytes())
        .sign(&claims)
        .unwrap_or_else(|e| panic!("signing a test token: {e}"))
}

/// Claims valid for an hour, with no languages, except that an interpreter gets the pair `ko`, `en`
/// (an interpreter token must carry exactly two languages).
pub fn claims(call: &str, identity: &str, role: Role) -> JoinClaims {
    let languages = match role {
        Role::Interpreter => vec!["ko".into(), "en".into()],
        _ => vec![],
    };
    JoinClaims {
        call: call.into(),
        identity: identity.into(),
        name: identity.into(),
        role,
        languages,
        exp: unix_now() + 3600,
        nbf: None,
        mode: None,
    }
}

/// Sign claims with the test secret.
pub fn sign(claims: &JoinClaims) -> String {
    TokenKey::new(SECRET.as_bytes())
        .sign(claims)
        .unwrap_or_else(|e| panic!("signing a test token: {e}"))
}

/// A bare signaling client speaking JSON over the WebSocket.
#[derive(Debug)]
pub struct SignalClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl SignalClient {
    pub async fn connect(url: &str) -> anyhow::Result<SignalClient> {
        let (socket, _) = tokio::time::timeout(WAIT, connect_async(url))
            .await
            .context("connect timed out")??;
        Ok(SignalClient { socket })
    }

    /// Connect and join; returns the client and the `joined` message.
    pub async fn join(url: &str, token: &str) -> anyhow::Result<(SignalClient, Value)> {
        let mut client = SignalClient::connect(url).await?;
        client
            .send(&serde_json::json!({"type": "join", "id": 1, "token": token}))
            .await?;
        let joined = client.expect("joined").await?;
        Ok((client, joined))
    }

    pub async fn send(&mut self, message: &Value) -> anyhow::Result<()> {
        self.send_text(message.to_string()).await
    }

    pub async fn send_text(&mut self, text: String) -> anyhow::Result<()> {
        self.socket.send(Message::Text(text.into())).await?;
        Ok(())
    }

    /// The next JSON message, or an error on close or timeout.
    pub async fn recv(&mut self) -> anyhow::Result<Value> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .context("no message within the wait")?;
            match frame {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str())?),
                Some(Ok(Message::Close(frame))) => bail!("closed: {frame:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("socket error: {e}"),
                None => bail!("socket ended"),
            }
        }
    }

    /// Skip messages until one of the given type arrives.
    pub async fn expect(&mut self, kind: &str) -> anyhow::Result<Value> {
        loop {
            let message = self.recv().await?;
            if message["type"] == kind {
                return Ok(message);
            }
            if message["type"] == "error" && kind != "error" {
                bail!("expected {kind}, got error {message}");
            }
        }
    }

    /// Wait for the server's close frame.
    pub async fn expect_close(&mut self) -> anyhow::Result<Option<CloseFrame>> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .context("no close within the wait")?;
            match frame {
                Some(Ok(Message::Close(frame))) => return Ok(frame),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("socket error before close: {e}"),
                None => return Ok(None),
            }
        }
    }

    /// Check the connection still answers.
    pub async fn assert_alive(&mut self) -> anyhow::Result<()> {
        self.send(&serde_json::json!({"type": "ping", "id": "alive"}))
            .await?;
        let pong = self.expect("pong").await?;
        anyhow::ensure!(pong["id"] == "alive", "pong for the wrong request: {pong}");
        Ok(())
    }
}

/// A minimal HTTP/1.1 POST over loopback (the tests need no HTTP client crate for one request).
/// Returns the status code and body.
pub async fn http_post(
    addr: std::net::SocketAddr,
    path: &str,
    bearer: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    http_request("POST", addr, path, bearer).await
}

/// A minimal HTTP/1.1 GET over loopback.
pub async fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    bearer: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    http_request("GET", addr, path, bearer).await
}

async fn http_request(
    method: &str,
    addr: std::net::SocketAddr,
    path: &str,
    bearer: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::time::timeout(WAIT, TcpStream::connect(addr)).await??;
    let auth = bearer.map_or(String::new(), |key| {
        format!("Authorization: Bearer {key}\r\n")
    });
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await??;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
