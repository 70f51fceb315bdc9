//! A Janus VideoRoom signaling adapter, **only for the side-by-side load comparison** (issue 5,
//! point 3): it lets `dragoman-bot load --server janus` run the very same synthetic four-party
//! calls against a Janus gateway (Debian's `janus` 1.1, VideoRoom plugin) as against Dragoman, so
//! that the same measurement code counts CPU per delivered packet, loss and latency for both.
//! Nothing else in the bot uses it, and Dragoman does not depend on Janus.
//!
//! It speaks the Janus API over Janus's WebSocket transport (subprotocol `janus-protocol`): one
//! WebSocket and one Janus session per party, kept alive every [`KEEPALIVE`].
//!
//! - **Per call**, one VideoRoom room, created through the API ([`create_room`]) on a short-lived
//!   session of its own before the parties join.
//! - **Per party**, a publisher handle (`join` as `publisher`, then `publish` with the bot's SDP
//!   offer of one Opus and one VP8 track; Janus answers) and, once the other three parties have
//!   published, one subscriber handle (Janus 1.x multistream: `join` as `subscriber` with
//!   `streams: [{feed}, …]`, Janus offers every stream of those feeds, the bot answers with
//!   `start`).
//!
//! The bots' peer connections, synthetic senders and receivers are the ones a Dragoman load run
//! uses; only the signaling differs. The SDPs carry all candidates (the bots gather before they
//! send; Janus answers half-trickle, with its candidates in the SDP), and an end-of-candidates
//! trickle follows each SDP the bot sends.
//!
//! Every reply is parsed into typed results ([`JanusMessage`], [`VideoRoomReply`]); an `error`
//! reply of the core or an `error_code` of the plugin becomes a [`JanusError`]. Nothing panics on
//! what Janus sends.
//!
//! The code: `protocol` holds the typed messages and their parsing, `client` the WebSocket,
//! its transactions and the Janus session, `bot` the party ([`JanusBot`]) and the rooms.

mod bot;
mod client;
mod protocol;

pub use bot::{JanusBot, JoinSettings, create_room, room_settings};
pub use protocol::{
    Feed, JanusError, JanusMessage, Jsep, KEEPALIVE, SUBPROTOCOL, SubscriberStream, VIDEOROOM,
    VideoRoomReply,
};
