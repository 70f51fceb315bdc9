//! What a bot does: where it connects, what it publishes and subscribes to, and how long it waits.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use dragoman_signal::protocol::PublicationInfo;

use crate::error::BotError;
use crate::synthetic::SyntheticMedia;

/// Which tracks the bot publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishSpec {
    /// An Opus microphone track on the `floor` channel (or [`BotConfig::audio_channel`]).
    pub audio: bool,
    /// A VP8 camera track.
    pub video: bool,
}

impl PublishSpec {
    pub const NONE: PublishSpec = PublishSpec {
        audio: false,
        video: false,
    };
    pub const AUDIO: PublishSpec = PublishSpec {
        audio: true,
        video: false,
    };
    pub const VIDEO: PublishSpec = PublishSpec {
        audio: false,
        video: true,
    };
    pub const AUDIO_VIDEO: PublishSpec = PublishSpec {
        audio: true,
        video: true,
    };

    /// Whether anything is published (and so a publisher transport is needed).
    pub fn any(&self) -> bool {
        self.audio || self.video
    }
}

impl FromStr for PublishSpec {
    type Err = BotError;

    /// `audio,video`, `audio`, `video` or `none`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = PublishSpec::NONE;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "audio" => spec.audio = true,
                "video" => spec.video = true,
                "none" => {}
                other => {
                    return Err(BotError::Config(format!(
                        "unknown track {other:?} in --publish (use audio, video or none)"
                    )));
                }
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for PublishSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.audio, self.video) {
            (true, true) => f.write_str("audio,video"),
            (true, false) => f.write_str("audio"),
            (false, true) => f.write_str("video"),
            (false, false) => f.write_str("none"),
        }
    }
}

/// Which publications of others the bot subscribes to on its own.
///
/// The Dragoman server routes audio itself (see the `routing` messages in the report) and accepts
/// audio ids in `subscribe` without effect, so audio arrives whatever this says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeSpec {
    /// Every publication of others present at join, and every one added later.
    All,
    /// These publication ids, as soon as each exists (at join or when announced).
    Ids(Vec<String>),
    /// Nothing automatically; call [`Bot::subscribe`](crate::Bot::subscribe).
    None,
}

impl SubscribeSpec {
    /// Whether the bot should subscribe to `publication` when it appears.
    pub fn wants(&self, publication: &PublicationInfo) -> bool {
        match self {
            SubscribeSpec::All => true,
            SubscribeSpec::Ids(ids) => ids.contains(&publication.id),
            SubscribeSpec::None => false,
        }
    }
}

impl FromStr for SubscribeSpec {
    type Err = BotError;

    /// `all`, `none`, or a comma-separated list of publication ids.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "all" => Ok(SubscribeSpec::All),
            "none" | "" => Ok(SubscribeSpec::None),
            list => Ok(SubscribeSpec::Ids(
                list.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect(),
            )),
        }
    }
}

/// What the published tracks carry.
#[derive(Debug, Clone, Default)]
pub enum MediaMode {
    /// The embedded Opus and VP8 clips, looped (decodable by a browser).
    #[default]
    Clip,
    /// Generated packets stamped with their send time, for load measurement (see
    /// [`crate::synthetic`]); received stamps are measured too.
    Synthetic(SyntheticMedia),
}

/// Upper bounds of the bot's waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the WebSocket.
    pub connect: Duration,
    /// One signaling request until its reply.
    pub request: Duration,
    /// ICE candidate gathering after a local description is set.
    pub gathering: Duration,
    /// A peer connection reaching `connected`.
    pub media_connect: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(5),
            gathering: Duration::from_secs(5),
            media_connect: Duration::from_secs(10),
        }
    }
}

/// Everything a bot needs to join a call.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Signaling WebSocket URL, e.g. `ws://127.0.0.1:7880/v1/signal`.
    pub url: String,
    /// The join token (JWT) sent in `join`.
    pub token: String,
    pub publish: PublishSpec,
    pub subscribe: SubscribeSpec,
    /// Share of outgoing RTP packets dropped on purpose before they reach the network, in
    /// `[0, 1)`. Sequence numbers are still consumed, so the SFU sees real loss.
    pub uplink_loss: f64,
    /// Seed for the loss decisions; `None` draws one from the OS.
    pub loss_seed: Option<u64>,
    /// Local address the peer connections bind to (one UDP socket each, ephemeral port). Tests
    /// use loopback only.
    pub bind_ip: IpAddr,
    /// Channel announced for the audio track: `floor` (the default) or, for an interpreter, a
    /// language code (the booth output; the server re-routes it on a direction switch).
    pub audio_channel: String,
    /// Clips (the default) or synthetic, time-stamped media.
    pub media: MediaMode,
    /// Keep-alive `ping` period on the signaling socket; `None` sends none.
    pub ping_interval: Option<Duration>,
    pub timeouts: Timeouts,
}

impl BotConfig {
    /// A bot that publishes audio and video and subscribes to everything, on 127.0.0.1.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        BotConfig {
            url: url.into(),
            token: token.into(),
            publish: PublishSpec::AUDIO_VIDEO,
            subscribe: SubscribeSpec::All,
            uplink_loss: 0.0,
            loss_seed: None,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            audio_channel: "floor".into(),
            media: MediaMode::Clip,
            ping_interval: Some(Duration::from_secs(15)),
            timeouts: Timeouts::default(),
        }
    }

    pub fn with_publish(mut self, publish: PublishSpec) -> Self {
        self.publish = publish;
        self
    }

    pub fn with_subscribe(mut self, subscribe: SubscribeSpec) -> Self {
        self.subscribe = subscribe;
        self
    }

    pub fn with_uplink_loss(mut self, share: f64) -> Self {
        self.uplink_loss = share;
        self
    }

    pub fn with_loss_seed(mut self, seed: u64) -> Self {
        self.loss_seed = Some(seed);
        self
    }

    /// Publish the audio track on this channel (`floor` or a language code).
    pub fn with_audio_channel(mut self, channel: impl Into<String>) -> Self {
        self.audio_channel = channel.into();
        self
    }

    /// Publish synthetic, time-stamped media instead of the clips, and measure what arrives.
    pub fn with_synthetic_media(mut self, media: SyntheticMedia) -> Self {
        self.media = MediaMode::Synthetic(media);
        self
    }

    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Check the configuration before anything is opened.
    pub fn validate(&self) -> Result<(), BotError> {
        if !(self.url.starts_with("ws://") || self.url.starts_with("wss://")) {
            return Err(BotError::Config(format!(
                "the signaling URL must start with ws:// or wss://, got {:?}",
                self.url
            )));
        }
        if !(0.0..1.0).contains(&self.uplink_loss) {
            return Err(BotError::Config(format!(
                "uplink loss must be in [0, 1), got {}",
                self.uplink_loss
            )));
        }
        if self.bind_ip.is_unspecified() {
            return Err(BotError::Config(
                "bind to a concrete address (webrtc-rs skips loopback when expanding a wildcard)"
                    .into(),
            ));
        }
        if let MediaMode::Synthetic(media) = &self.media {
            media.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_publish_specs() {
        assert_eq!(
            "audio,video".parse::<PublishSpec>().unwrap(),
            PublishSpec::AUDIO_VIDEO
        );
        assert_eq!("video".parse::<PublishSpec>().unwrap(), PublishSpec::VIDEO);
        assert_eq!("none".parse::<PublishSpec>().unwrap(), PublishSpec::NONE);
        assert!("smell".parse::<PublishSpec>().is_err());
        assert_eq!(PublishSpec::AUDIO.to_string(), "audio");
    }

    #[test]
    fn parses_subscribe_specs() {
        assert_eq!("all".parse::<SubscribeSpec>().unwrap(), SubscribeSpec::All);
        assert_eq!(
            "none".parse::<SubscribeSpec>().unwrap(),
            SubscribeSpec::None
        );
        assert_eq!(
            "PB_1, PB_2".parse::<SubscribeSpec>().unwrap(),
            SubscribeSpec::Ids(vec!["PB_1".into(), "PB_2".into()])
        );
    }

    #[test]
    fn wanted_publications() {
        use dragoman_signal::protocol::TrackKind;
        let publication = |id: &str, kind| PublicationInfo {
            id: id.into(),
            participant: "p".into(),
            kind,
            source: match kind {
                TrackKind::Audio => dragoman_signal::protocol::TrackSource::Microphone,
                TrackKind::Video => dragoman_signal::protocol::TrackSource::Camera,
            },
            channel: None,
            layers: vec![],
        };
        let (audio, video) = (
            publication("PB_1", TrackKind::Audio),
            publication("PB_2", TrackKind::Video),
        );
        assert!(SubscribeSpec::All.wants(&audio) && SubscribeSpec::All.wants(&video));
        let ids = SubscribeSpec::Ids(vec!["PB_1".into()]);
        assert!(ids.wants(&audio) && !ids.wants(&video));
        assert!(!SubscribeSpec::None.wants(&video));
    }

    #[test]
    fn validates() {
        assert!(
            BotConfig::new("ws://127.0.0.1:1/v1/signal", "t")
                .validate()
                .is_ok()
        );
        assert!(BotConfig::new("http://x", "t").validate().is_err());
        assert!(
            BotConfig::new("ws://x", "t")
                .with_uplink_loss(1.0)
                .validate()
                .is_err()
        );
    }
}
