//! Server configuration: built-in defaults, then a TOML file (`--config`), then `DRAGOMAN_*`
//! environment variables, then command-line flags; each later source overrides the earlier ones.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dragoman_signal::protocol::{DEFAULT_MAX_MESSAGE_BYTES, IceServer};
use serde::Deserialize;

/// The largest `limits.max_message_bytes` allowed; frames above it close the socket outright.
pub const MAX_MESSAGE_BYTES_CEILING: usize = 1024 * 1024;

/// Default HTTP (signaling, health, metrics) address.
pub const DEFAULT_HTTP: &str = "127.0.0.1:7880";
/// Default UDP media address: one port for every peer.
pub const DEFAULT_MEDIA: &str = "127.0.0.1:7881";

/// Limits that protect the server from one client. All explicit, all with defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest signaling message accepted, in bytes; larger ones get `message_too_large`.
    pub max_message_bytes: usize,
    /// Signaling messages per second per connection (with a burst of the same size).
    pub max_messages_per_second: u32,
    /// Participants in one call, operators included.
    pub max_participants_per_call: usize,
    /// Publications one participant may hold.
    pub max_publications_per_participant: usize,
    /// Calls at once on this server.
    pub max_calls: usize,
    /// Seconds a connection may stay open without sending `join`.
    pub join_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_messages_per_second: 50,
            max_participants_per_call: 8,
            max_publications_per_participant: 4,
            max_calls: 500,
            join_timeout_secs: 10,
        }
    }
}

impl Limits {
    pub fn join_timeout(&self) -> Duration {
        Duration::from_secs(self.join_timeout_secs)
    }
}

/// Most media workers a server may run.
pub const MAX_MEDIA_WORKERS: usize = 256;

/// `resend_window_ms` bounds: shorter than a round trip makes every resend too late; the cache
/// holds at most 1000 packets per stream whatever the window.
pub const MIN_RESEND_WINDOW_MS: u64 = 100;
pub const MAX_RESEND_WINDOW_MS: u64 = 10_000;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP listen address.
    pub http: SocketAddr,
    /// UDP media listen address.
    pub media: SocketAddr,
    /// Addresses to advertise as ICE host candidates; empty means the media address itself (with
    /// the port actually bound). Needed when `media` is a wildcard like 0.0.0.0.
    pub media_public_addresses: Vec<SocketAddr>,
    /// Media worker threads, each owning whole calls and its own socket on the media port; 0 means
    /// one per CPU core the process may use.
    pub media_workers: usize,
    /// HS256 secret for join tokens. When empty, a development secret is generated at start.
    pub secret: String,
    /// STUN/TURN servers handed to clients in `joined`.
    pub ice_servers: Vec<IceServer>,
    /// Minimum time between keyframe requests to one publisher layer, in milliseconds.
    pub keyframe_request_interval_ms: u64,
    /// How long forwarded video is kept to answer a subscriber's NACK with a resend, in
    /// milliseconds.
    pub resend_window_ms: u64,
    /// Seconds a participant whose signaling socket dropped stays in the call (media flowing) for
    /// the same identity to join again and resume; 0 removes them at once.
    pub reconnect_grace_secs: u64,
    /// A participant whose signaling socket dropped is removed before the grace period ends when no
    /// datagram from their client has arrived for this many milliseconds (their process is gone).
    pub media_timeout_ms: u64,
    /// How often participants get the `quality` badges of the call, in milliseconds.
    pub quality_interval_ms: u64,
    /// Bearer key for the operator API under `/v1/calls`. Empty: generated at start and printed.
    pub operator_api_key: String,
    /// In simultaneous interpretation, the gain the floor is ducked to while a listener's language
    /// channel is live (0.0–1.0).
    pub floor_duck_gain: f64,
    /// How long clients ramp a gain change, in milliseconds.
    pub gain_ramp_ms: u32,
    /// A direction's voice score (MOS, 1.0–4.5) below which the call health marks it degraded.
    pub health_degraded_score: f64,
    /// SQLite file holding the call history (created if missing).
    pub history_path: std::path::PathBuf,
    /// Base URL of join links handed out by the operator API; empty means `http://<http address>`.
    pub public_url: String,
    /// A booked call's join links work from this many seconds before its slot starts...
    pub join_window_before_secs: u64,
    /// ...until this many seconds after its slot ends.
    pub join_window_after_secs: u64,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: DEFAULT_HTTP
                .parse()
                .unwrap_or_else(|_| unreachable!("valid literal")),
            media: DEFAULT_MEDIA
                .parse()
                .unwrap_or_else(|_| unreachable!("valid literal")),
            media_public_addresses: Vec::new(),
            media_workers: 0,
            secret: String::new(),
            ice_servers: Vec::new(),
            keyframe_request_interval_ms: 500,
            resend_window_ms: 1000,
            reconnect_grace_secs: 20,
            media_timeout_ms: 3000,
            quality_interval_ms: 2000,
            operator_api_key: String::new(),
            history_path: "dragoman-history.sqlite".into(),
            health_degraded_score: 3.5,
            floor_duck_gain: 0.2,
            gain_ramp_ms: 300,
            public_url: String::new(),
            join_window_before_secs: 15 * 60,
            join_window_after_secs: 30 * 60,
            limits: Limits::default(),
        }
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    pub fn reconnect_grace(&self) -> Duration {
        Duration::from_secs(self.reconnect_grace_secs)
    }

    /// The base URL for join links.
    pub fn public_base_url(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}", self.http)
        } else {
            self.public_url.trim_end_matches('/').to_owned()
        }
    }

    pub fn media_timeout(&self) -> Duration {
        Duration::from_millis(self.media_timeout_ms)
    }

    pub fn quality_interval(&self) -> Duration {
        Duration::from_millis(self.quality_interval_ms)
    }

    /// Load a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parse TOML text over the defaults.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Check values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let checks = [
            (
                l.max_message_bytes >= 1024,
                "limits.max_message_bytes must be at least 1024",
            ),
            (
                l.max_messages_per_second >= 1,
                "limits.max_messages_per_second must be at least 1",
            ),
            (
                l.max_participants_per_call >= 1,
                "limits.max_participants_per_call must be at least 1",
            ),
            (l.max_calls >= 1, "limits.max_calls must be at least 1"),
            (
                l.join_timeout_secs >= 1,
                "limits.join_timeout_secs must be at least 1",
            ),
            (
                self.media_workers <= MAX_MEDIA_WORKERS,
                "media_workers must be at most 256 (0 = one per core)",
            ),
            (
                self.keyframe_request_interval_ms >= 10,
                "keyframe_request_interval_ms must be at least 10",
            ),
            (
                (MIN_RESEND_WINDOW_MS..=MAX_RESEND_WINDOW_MS).contains(&self.resend_window_ms),
                "resend_window_ms must be between 100 and 10000",
            ),
            (
                self.media_public_addresses
                    .iter()
                    .all(|a| !a.ip().is_unspecified()),
                "media_public_addresses must be concrete addresses, not 0.0.0.0 or ::",
            ),
        ];
        for (ok, message) in checks {
            if !ok {
                return Err(ConfigError::Invalid(message.into()));
            }
        }
        if self.media.ip().is_unspecified() && self.media_public_addresses.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "media listens on {} (all interfaces): set media_public_addresses \
                 (or DRAGOMAN_MEDIA_PUBLIC_ADDRESSES) to the address clients reach",
                self.media
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_valid() {
        let config = Config::default();
        assert!(config.http.ip().is_loopback());
        assert!(config.media.ip().is_loopback());
        config.validate().unwrap();
    }

    #[test]
    fn file_values_override_defaults() {
        let config = Config::from_toml(
            r#"
            http = "127.0.0.1:9000"
            [limits]
            max_participants_per_call = 5
            "#,
        )
        .unwrap();
        assert_eq!(config.http.port(), 9000);
        assert_eq!(config.limits.max_participants_per_call, 5);
        assert_eq!(config.limits.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
    }

    #[test]
    fn the_example_config_documents_every_default() {
        let example = include_str!("../../../deploy/dragoman.example.toml");
        let parsed = Config::from_toml(example).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_clearly() {
        let err = Config::from_toml("htpp = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.contains("htpp"), "{err}");
        let err = Config::from_toml("http = \"not an address\"").unwrap_err();
        assert!(err.contains("http"), "{err}");
        let mut config = Config::default();
        config.limits.max_calls = 0;
        assert!(config.validate().is_err());
        config = Config::default();
        config.media = "0.0.0.0:7881".parse().unwrap();
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("media_public_addresses")
        );
        config = Config::default();
        config.media_workers = MAX_MEDIA_WORKERS + 1;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("media_workers"), "{err}");
        config.media_workers = MAX_MEDIA_WORKERS;
        assert!(config.validate().is_ok());
        for bad in [MIN_RESEND_WINDOW_MS - 1, MAX_RESEND_WINDOW_MS + 1] {
            config.resend_window_ms = bad;
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("resend_window_ms"), "{err}");
        }
    }
}
