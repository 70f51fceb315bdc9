//! The interpretation routing policy: who hears which audio, at which gain.
//!
//! [`compute_routing`] is a pure function of a call's [`InterpretationState`] (mode, participants,
//! interpreter booths, audio publications, who is live on each language channel) and a
//! [`RoutingConfig`]. It returns, for every participant, the audio publications the SFU forwards to them
//! and the gain their client applies to each ([`SubscriberRouting`]). A publication that is not in a
//! participant's routes is **not forwarded at all** (the media plane pauses it); a gain of 0 is never
//! used to mean "not routed".
//!
//! The `InterpretationState` methods are the state transitions the server calls on signaling messages
//! (join, leave, publish, set listening language, switch direction, choose relay input, hand over, go on
//! or off air). They validate first and change nothing when they fail; the error says why with a stable
//! code ([`RoutingError::code`]). After any successful transition the server recomputes the routing and
//! pushes a `routing` message to each participant whose routing changed ([`Routing::changed_since`]).
//!
//! # Words
//!
//! - **Channel**: `floor` (a speaker's own voice) or a language code (`en`, `th`, …).
//! - **Booth**: what makes a participant an interpreter: a language pair, the current **output** (the
//!   language they speak into), the **input** (the floor, or in relay another language channel) and
//!   whether they are **on air** (on duty for their booth). Participants with the same pair (in either
//!   order) are **booth partners**.
//! - **Live**: the one interpreter who holds a language channel. Listeners of that channel hear them.
//!   Kept in [`InterpretationState::live`]; at most one per channel.
//!
//! # The rules
//!
//! **Consecutive mode.** Everyone except hidden operators receives every other participant's audio
//! publications at gain 1.0, interpreters' included. Booth state (output, on air, live) is kept so that
//! switching to simultaneous mode picks it up, but it does not change the routes.
//!
//! **Simultaneous mode, a listener** (a participant without a booth) whose listening language `L` has a
//! live interpreter who publishes: every other participant's *floor* audio at the duck gain (default
//! 0.2), plus the live interpreter's booth output at 1.0. Otherwise: floor at 1.0 and no interpretation.
//! A listener never receives a booth output in any language other than the one they picked (none if they
//! picked no language, which means "original sound only").
//!
//! **Simultaneous mode, an interpreter.** Input `floor`: every other participant's floor audio at 1.0.
//! Input `Channel(r)` (relay) while `r` has a live interpreter who publishes: that interpreter at 1.0 and
//! the floor ducked (decision: the relay interpreter still hears the floor quietly, to notice when the
//! floor switches to a language they take directly and to keep the speaker's tone); when `r` has nobody
//! live, the floor at 1.0 (relay falls back to the floor). An interpreter who is on air never receives any
//! publication in the channel they speak into, neither their own nor anyone else's. A **passive** booth
//! partner (not on air) additionally hears the live partner at 1.0, whatever channel that partner speaks
//! into: they are not speaking, and must follow the partner to take over.
//!
//! **Everyone**: never their own publication. Hidden participants (operators) receive nothing
//! (decision: the operator's job is call health, which the quality stats give; a hidden party silently
//! hearing a confidential negotiation would surprise the parties. Monitoring, if wanted, should be an
//! explicit and announced action, not a default). Publications of hidden participants are never routed.
//!
//! **Priority.** Every route says whether it carries interpretation (a booth output, or in consecutive
//! mode any audio of an interpreter) or floor: [`RoutePriority::Interpretation`] >
//! [`RoutePriority::Floor`]. When bandwidth is short the media plane protects interpretation first.
//!
//! # Decisions where the issue is silent
//!
//! - **Who is an interpreter** is a capability, not only a role: role `interpreter` (its token must carry
//!   exactly two distinct languages: its pair), or role `office` whose token carries exactly two distinct
//!   languages (the agency office relaying `en`↔`th`). `company` and `buyer` never interpret, even when
//!   bilingual; an `office` token with one language is a listener.
//! - A new booth's output starts on the pair's **second** language (a `ko`↔`en` interpreter starts
//!   speaking into `en`); its input starts on the floor.
//! - **Which publication is the booth output**: an interpreter's audio publication declared with a
//!   language channel. Its effective channel is always the interpreter's *current* output, whatever
//!   language it was declared with, so a direction switch re-routes the same track. An interpreter's audio
//!   declared `floor` stays floor (the office may speak for itself on a second microphone track). A
//!   language channel declared by someone without a booth is treated as floor (and
//!   [`InterpretationState::publish`] refuses it).
//! - **On air and live.** At most one partner of a booth is on air. The first interpreter of a booth to
//!   join goes on air by itself; partners who join later are passive. An on-air interpreter holds
//!   (is live on) their output channel when nobody else holds it. If another booth holds it (the relay
//!   case: both booths speak into `en` for a moment), the newcomer **waits** (interlock, as on booth
//!   consoles): no double audio, and the waiting interpreter becomes live by itself the moment the channel
//!   is free (several waiters: join order).
//! - **A channel counts as live for listeners only when its interpreter publishes a booth output**;
//!   before that, listeners keep the floor at 1.0 (no ducking onto silence).
//! - **Direction switch** is allowed only between the pair's two languages, for on-air and passive
//!   partners alike (a passive partner may prepare the direction). An on-air interpreter leaves the old
//!   channel at once (its listeners fall back to the floor) and takes the new one (or waits for it). If
//!   their relay input was the new output language, the input resets to the floor.
//! - **Relay input** may be any language channel except the interpreter's current output.
//! - **Handover**: either partner may ask (the passive one "let me take over", the live one "please take
//!   over"); the other accepts or declines, and the asker may withdraw. On accept, the partner who was
//!   not on air takes over the *same* output channel in one step (no gap, no overlap) and the other
//!   becomes passive. Requests that no longer make sense (a partner left, both went off air) vanish.
//! - **An interpreter leaving** frees their channel: its listeners fall back to the floor at 1.0, and an
//!   interpreter of another booth waiting for that channel takes it. A passive partner is **not** put on
//!   air by itself (their microphone would go out to listeners without a deliberate action); they take
//!   over with [`InterpretationState::go_on_air`], naming the channel to speak into (the console offers
//!   the one the partner was speaking into). An interpreter may also step off air
//!   ([`InterpretationState::go_off_air`]), e.g. for a break with no partner.
//! - A rejoining interpreter (after a dropped connection that outlived the resume grace) is on air
//!   again unless a partner took over meanwhile.
//! - An interpreter's listening language is not used; they choose an input instead. Operators may not
//!   choose a listening language.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::call::FLOOR_CHANNEL;
use crate::error::{ErrorCode, SignalError};
use crate::role::Role;
use crate::token::is_language_code;

/// Default gain of the floor while a listener hears live interpretation.
pub const DEFAULT_DUCK_GAIN: f64 = 0.2;
/// Default duration of the client's gain ramp, in milliseconds.
pub const DEFAULT_RAMP_MS: u32 = 300;
/// Longest gain ramp a configuration may ask for, in milliseconds.
pub const MAX_RAMP_MS: u32 = 5_000;

/// How a call is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterpretationMode {
    /// Everyone hears everyone; the interpreter speaks after each party.
    #[default]
    Consecutive,
    /// Interpreters speak at the same time as the floor, into language channels.
    Simultaneous,
}

/// An audio channel: a speaker's own voice (`floor`) or a language channel. On the wire it is a plain
/// string: `"floor"` or the language code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Channel {
    Floor,
    Language(String),
}

impl Channel {
    /// A language channel; the code must look like a language code.
    pub fn language(code: &str) -> Result<Channel, RoutingError> {
        check_language(code)?;
        Ok(Channel::Language(code.to_owned()))
    }

    /// `"floor"` or a language code.
    pub fn parse(text: &str) -> Result<Channel, RoutingError> {
        if text == FLOOR_CHANNEL {
            Ok(Channel::Floor)
        } else {
            Channel::language(text)
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Channel::Floor => FLOOR_CHANNEL,
            Channel::Language(code) => code,
        }
    }

    /// The language code of a language channel.
    pub fn language_code(&self) -> Option<&str> {
        match self {
            Channel::Floor => None,
            Channel::Language(code) => Some(code),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Channel> for String {
    fn from(channel: Channel) -> String {
        match channel {
            Channel::Floor => FLOOR_CHANNEL.to_owned(),
            Channel::Language(code) => code,
        }
    }
}

impl TryFrom<String> for Channel {
    type Error = RoutingError;

    fn try_from(text: String) -> Result<Channel, RoutingError> {
        Channel::parse(&text)
    }
}

/// An interpreter's two languages, in the order the token gave them. Serialized as `["ko", "en"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "[String; 2]")]
pub struct LanguagePair([String; 2]);

impl LanguagePair {
    /// Two different language codes.
    pub fn new(first: &str, second: &str) -> Result<LanguagePair, RoutingError> {
        check_language(first)?;
        check_language(second)?;
        if first == second {
            return Err(RoutingError::InvalidPair {
                languages: vec![first.to_owned(), second.to_owned()],
            });
        }
        Ok(LanguagePair([first.to_owned(), second.to_owned()]))
    }

    pub fn first(&self) -> &str {
        &self.0[0]
    }

    pub fn second(&self) -> &str {
        &self.0[1]
    }

    pub fn contains(&self, language: &str) -> bool {
        self.0.iter().any(|l| l == language)
    }

    /// The pair's other language: what a one-key direction switch goes to.
    pub fn other(&self, language: &str) -> Option<&str> {
        match language {
            l if l == self.first() => Some(self.second()),
            l if l == self.second() => Some(self.first()),
            _ => None,
        }
    }

    /// The same two languages in either order: booth partners.
    pub fn same_booth(&self, other: &LanguagePair) -> bool {
        self.contains(other.first()) && self.contains(other.second())
    }
}

impl TryFrom<[String; 2]> for LanguagePair {
    type Error = RoutingError;

    fn try_from([first, second]: [String; 2]) -> Result<LanguagePair, RoutingError> {
        LanguagePair::new(&first, &second)
    }
}

impl fmt::Display for LanguagePair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}↔{}", self.first(), self.second())
    }
}

/// What makes a participant an interpreter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Booth {
    pub pair: LanguagePair,
    /// The language they speak into now; always one of the pair.
    pub output: String,
    /// What they listen to: the floor, or in relay another language channel (never their output).
    pub input: Channel,
    /// On duty for the booth: at most one partner of a booth is on air.
    pub on_air: bool,
}

impl Booth {
    /// A booth speaking into the pair's second language, listening to the floor, not yet on air.
    pub fn new(pair: LanguagePair) -> Booth {
        Booth {
            output: pair.second().to_owned(),
            pair,
            input: Channel::Floor,
            on_air: false,
        }
    }
}

/// One participant as the routing policy sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParticipantState {
    pub id: String,
    pub role: Role,
    /// Hidden participants (operators) receive nothing and their publications are never routed.
    pub hidden: bool,
    /// The language a listener picked; `None` is the original sound only. Unused for interpreters.
    pub listening: Option<String>,
    /// Set for interpreters (including a relaying office).
    pub booth: Option<Booth>,
    /// Audio publications this participant chose not to hear (a client `unsubscribe`), whatever the
    /// policy would route; a later `subscribe` hears them again.
    pub muted: BTreeSet<String>,
}

impl ParticipantState {
    /// A participant from verified token claims.
    ///
    /// - `interpreter`: a booth on its two languages (exactly two distinct ones, else
    ///   [`RoutingError::InvalidPair`]).
    /// - `office` with exactly two distinct languages: a booth (the relaying office); otherwise a listener.
    /// - `company`, `buyer`, `office` without a pair: a listener, listening to their first language.
    /// - `operator`: hidden, no booth, no listening language.
    pub fn from_token(
        id: &str,
        role: Role,
        languages: &[String],
    ) -> Result<ParticipantState, RoutingError> {
        let hidden = role.permissions().hidden;
        let mut distinct: Vec<&str> = Vec::new();
        for language in languages {
            check_language(language)?;
            if !distinct.contains(&language.as_str()) {
                distinct.push(language);
            }
        }
        let pair = match (role, distinct.as_slice()) {
            (Role::Interpreter | Role::Office, [first, second]) => {
                Some(LanguagePair::new(first, second)?)
            }
            (Role::Interpreter, _) => {
                return Err(RoutingError::InvalidPair {
                    languages: languages.to_vec(),
                });
            }
            _ => None,
        };
        let listening = match (&pair, hidden) {
            (None, false) => distinct.first().map(|l| (*l).to_owned()),
            _ => None,
        };
        Ok(ParticipantState {
            id: id.to_owned(),
            role,
            hidden,
            listening,
            booth: pair.map(Booth::new),
            muted: BTreeSet::new(),
        })
    }

    fn booth_on_air(&self) -> Option<&Booth> {
        self.booth.as_ref().filter(|b| b.on_air)
    }

    fn is_partner_of(&self, other: &ParticipantState) -> bool {
        match (&self.booth, &other.booth) {
            (Some(a), Some(b)) => self.id != other.id && a.pair.same_booth(&b.pair),
            _ => false,
        }
    }
}

/// An audio publication as the routing policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudioPublication {
    pub id: String,
    /// The participant who publishes it.
    pub owner: String,
    /// The channel it was published with. For an interpreter, any language channel means "my booth
    /// output", whose effective channel is their current output.
    pub channel: Channel,
}

/// A pending request between two booth partners to swap who is on air.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverRequest {
    /// Who asked.
    pub from: String,
    /// Who must accept or decline.
    pub to: String,
}

/// A completed handover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handover {
    /// The partner who was on air and is now passive.
    pub off_air: String,
    /// The partner who now is on air.
    pub on_air: String,
    /// The channel the new on-air partner speaks into (the one the other was speaking into).
    pub output: String,
    /// Whether the new on-air partner holds that channel (false when it was held by another booth).
    pub live: bool,
}

/// The interpretation state of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InterpretationState {
    pub mode: InterpretationMode,
    /// In join order (which also orders interpreters waiting for the same channel).
    pub participants: Vec<ParticipantState>,
    /// Audio publications only; video is not this policy's business.
    pub publications: Vec<AudioPublication>,
    /// Language channel → the interpreter live on it.
    pub live: BTreeMap<String, String>,
    pub handovers: Vec<HandoverRequest>,
}

/// Configuration of the policy, from the server's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RoutingConfig {
    /// Gain of the floor, 0.0–1.0, while a listener hears live interpretation.
    pub duck_gain: f64,
    /// How long the client ramps a gain change, in milliseconds.
    pub ramp_ms: u32,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            duck_gain: DEFAULT_DUCK_GAIN,
            ramp_ms: DEFAULT_RAMP_MS,
        }
    }
}

impl RoutingConfig {
    /// A checked configuration: `duck_gain` in 0.0–1.0, `ramp_ms` at most [`MAX_RAMP_MS`].
    pub fn new(duck_gain: f64, ramp_ms: u32) -> Result<RoutingConfig, String> {
        if !(0.0..=1.0).contains(&duck_gain) {
            return Err(format!("duck gain must be 0.0 to 1.0, not {duck_gain}"));
        }
        if ramp_ms > MAX_RAMP_MS {
            return Err(format!(
                "ramp must be at most {MAX_RAMP_MS} ms, not {ramp_ms}"
            ));
        }
        Ok(RoutingConfig { duck_gain, ramp_ms })
    }

    /// The duck gain, forced into 0.0–1.0 (the default when it is not a number).
    fn duck(&self) -> f64 {
        if self.duck_gain.is_nan() {
            DEFAULT_DUCK_GAIN
        } else {
            self.duck_gain.clamp(0.0, 1.0)
        }
    }
}

/// Whether a route carries interpretation or the floor; the media plane protects interpretation first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutePriority {
    Floor,
    Interpretation,
}

/// One audio publication a participant receives, and the gain their client applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioRoute {
    pub publication: String,
    /// The publication's owner.
    pub participant: String,
    /// The publication's effective channel (an interpreter's booth output: their current output).
    pub channel: Channel,
    /// 0.0–1.0.
    pub gain: f64,
    pub priority: RoutePriority,
}

/// An interpreter's own booth, as their console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoothSummary {
    pub pair: LanguagePair,
    pub output: String,
    pub input: Channel,
    pub on_air: bool,
    /// Listeners of `output` hear this interpreter now: on air, holding the channel, publishing.
    pub live: bool,
    /// Another interpreter holds `output` (an on-air interpreter then waits for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_held_by: Option<String>,
    /// Pending handover requests this interpreter is part of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handovers: Vec<HandoverRequest>,
}

/// What a participant hears, in a few words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteSummary {
    /// The listening language they picked (listeners only).
    pub listening: Option<String>,
    /// The language channel they hear: a listener's interpretation, or an interpreter's relay input.
    pub live_channel: Option<String>,
    /// The gain applied to the floor.
    pub floor_gain: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booth: Option<BoothSummary>,
}

/// One participant's routing: the body of their `routing` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriberRouting {
    pub participant: String,
    pub mode: InterpretationMode,
    /// How long the client ramps from the previous gains to these.
    pub ramp_ms: u32,
    /// In the order of the state's publications. Anything not listed is not forwarded.
    pub routes: Vec<AudioRoute>,
    pub summary: RouteSummary,
}

impl SubscriberRouting {
    /// The route of `publication`, if this participant receives it.
    pub fn route(&self, publication: &str) -> Option<&AudioRoute> {
        self.routes.iter().find(|r| r.publication == publication)
    }
}

/// The routing of a whole call, one entry per participant in the state's order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    pub subscribers: Vec<SubscriberRouting>,
}

impl Routing {
    pub fn for_participant(&self, participant: &str) -> Option<&SubscriberRouting> {
        self.subscribers
            .iter()
            .find(|s| s.participant == participant)
    }

    /// The participants whose routing differs from `before` (new ones included): those who need a fresh
    /// `routing` message.
    pub fn changed_since<'a>(&'a self, before: &Routing) -> Vec<&'a SubscriberRouting> {
        self.subscribers
            .iter()
            .filter(|s| before.for_participant(&s.participant) != Some(*s))
            .collect()
    }
}

/// A refused state transition. [`RoutingError::code`] is the stable wire code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("{participant:?} is not a participant of this call")]
    NotJoined { participant: String },
    #[error("no participant {participant:?} in this call")]
    UnknownParticipant { participant: String },
    #[error("the {role} role may not {action}: {reason}")]
    Forbidden {
        role: Role,
        action: &'static str,
        reason: &'static str,
    },
    #[error("{from:?} and {to:?} are not partners of one interpreter booth")]
    NotBoothPartners { from: String, to: String },
    #[error("{language:?} is not a language code")]
    InvalidLanguage { language: String },
    #[error("an interpreter needs exactly two different languages, not {languages:?}")]
    InvalidPair { languages: Vec<String> },
    #[error("{language:?} is not one of the pair {pair}")]
    NotInPair {
        language: String,
        pair: LanguagePair,
    },
    #[error("you speak into {language}; you cannot also listen to it")]
    InputIsOutput { language: String },
    #[error("a handover needs two different interpreters")]
    SelfHandover,
    #[error("no handover request from {from:?} to {to:?}")]
    NoHandoverRequest { from: String, to: String },
    #[error("a handover needs exactly one of {from:?} and {to:?} on air")]
    HandoverNeedsOneOnAir { from: String, to: String },
    #[error("{participant:?} is already on air")]
    AlreadyOnAir { participant: String },
    #[error("your booth partner {partner:?} is on air; ask them to hand over")]
    PartnerOnAir { partner: String },
}

impl RoutingError {
    /// The stable wire code: `not_joined`, `forbidden`, `invalid_message`, `invalid_token`,
    /// `unknown_participant` (a message names someone not in the call) or `handover_state` (the booth
    /// is not in a state where this handover step makes sense).
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// The [`ErrorCode`] sent in the `error` reply.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            RoutingError::NotJoined { .. } => ErrorCode::NotJoined,
            RoutingError::UnknownParticipant { .. } => ErrorCode::UnknownParticipant,
            RoutingError::Forbidden { .. } | RoutingError::NotBoothPartners { .. } => {
                ErrorCode::Forbidden
            }
            RoutingError::InvalidPair { .. } => ErrorCode::InvalidToken,
            RoutingError::NoHandoverRequest { .. }
            | RoutingError::HandoverNeedsOneOnAir { .. }
            | RoutingError::AlreadyOnAir { .. }
            | RoutingError::PartnerOnAir { .. } => ErrorCode::HandoverState,
            RoutingError::InvalidLanguage { .. }
            | RoutingError::NotInPair { .. }
            | RoutingError::InputIsOutput { .. }
            | RoutingError::SelfHandover => ErrorCode::InvalidMessage,
        }
    }
}

impl From<RoutingError> for SignalError {
    fn from(err: RoutingError) -> Self {
        SignalError::new(err.error_code(), err.to_string())
    }
}

fn check_language(code: &str) -> Result<(), RoutingError> {
    if code != FLOOR_CHANNEL && is_language_code(code) {
        Ok(())
    } else {
        Err(RoutingError::InvalidLanguage {
            language: code.to_owned(),
        })
    }
}

// ---------------------------------------------------------------------------------------------------
// The policy
// ---------------------------------------------------------------------------------------------------

/// The routing of every participant of the call. Pure and deterministic.
pub fn compute_routing(state: &InterpretationState, config: &RoutingConfig) -> Routing {
    let view = View::new(state);
    Routing {
        subscribers: state
            .participants
            .iter()
            .map(|p| view.subscriber(p, config))
            .collect(),
    }
}

/// The state, resolved once: effective channels and who is really live.
struct View<'a> {
    state: &'a InterpretationState,
    /// Per publication, in state order: its effective channel, or `None` when it is never routed.
    channels: Vec<Option<Channel>>,
    /// Language channel → its live interpreter, for entries that hold (holder present, not hidden, on
    /// air, speaking into that channel).
    live: BTreeMap<&'a str, &'a str>,
}

/// What one subscriber hears, before it is turned into routes.
struct Plan<'a> {
    floor_gain: f64,
    /// Hear every booth output (consecutive mode).
    all_booths: bool,
    /// Interpreters whose booth output this subscriber hears at 1.0.
    booths: Vec<&'a str>,
    /// Never route this language channel (an on-air interpreter's output).
    excluded: Option<&'a str>,
    live_channel: Option<String>,
}

impl<'a> View<'a> {
    fn new(state: &'a InterpretationState) -> View<'a> {
        let channels = state
            .publications
            .iter()
            .map(|publication| {
                let owner = state.participant(&publication.owner)?;
                if owner.hidden {
                    return None;
                }
                Some(match (&publication.channel, &owner.booth) {
                    (Channel::Language(_), Some(booth)) => Channel::Language(booth.output.clone()),
                    _ => Channel::Floor,
                })
            })
            .collect();
        let live = state
            .live
            .iter()
            .filter(|(channel, holder)| state.holds(channel, holder))
            .map(|(channel, holder)| (channel.as_str(), holder.as_str()))
            .collect();
        View {
            state,
            channels,
            live,
        }
    }

    fn publishes_booth_output(&self, participant: &str) -> bool {
        self.state
            .publications
            .iter()
            .zip(&self.channels)
            .any(|(p, c)| p.owner == participant && matches!(c, Some(Channel::Language(_))))
    }

    /// The interpreter listeners of `channel` hear, if any: live and publishing.
    fn audible(&self, channel: &str) -> Option<&'a str> {
        self.live
            .get(channel)
            .copied()
            .filter(|holder| self.publishes_booth_output(holder))
    }

    fn plan(&self, who: &'a ParticipantState, config: &RoutingConfig) -> Plan<'a> {
        let mut plan = Plan {
            floor_gain: 1.0,
            all_booths: false,
            booths: Vec::new(),
            excluded: None,
            live_channel: None,
        };
        if who.hidden {
            plan.floor_gain = 0.0;
            return plan;
        }
        if self.state.mode == InterpretationMode::Consecutive {
            plan.all_booths = true;
            return plan;
        }
        let heard = match &who.booth {
            Some(booth) => match &booth.input {
                Channel::Language(relay) if *relay != booth.output => Some(relay.as_str()),
                _ => None,
            },
            None => who.listening.as_deref(),
        };
        if let Some((channel, interpreter)) = heard
            .and_then(|channel| Some((channel, self.audible(channel)?)))
            .filter(|(_, interpreter)| *interpreter != who.id)
        {
            plan.floor_gain = config.duck();
            plan.booths.push(interpreter);
            plan.live_channel = Some(channel.to_owned());
        }
        if let Some(booth) = &who.booth {
            if booth.on_air {
                plan.excluded = Some(booth.output.as_str());
            } else {
                for partner in &self.state.participants {
                    if partner.is_partner_of(who)
                        && !partner.hidden
                        && self.live.values().any(|holder| *holder == partner.id)
                        && !plan.booths.contains(&partner.id.as_str())
                    {
                        plan.booths.push(&partner.id);
                    }
                }
            }
        }
        plan
    }

    fn subscriber(&self, who: &'a ParticipantState, config: &RoutingConfig) -> SubscriberRouting {
        let plan = self.plan(who, config);
        let mut routes = Vec::new();
        if !who.hidden {
            for (publication, channel) in self.state.publications.iter().zip(&self.channels) {
                let Some(channel) = channel else { continue };
                if publication.owner == who.id || who.muted.contains(&publication.id) {
                    continue;
                }
                let gain = match channel {
                    Channel::Floor => plan.floor_gain,
                    Channel::Language(language) => {
                        if plan.excluded == Some(language.as_str())
                            || !(plan.all_booths
                                || plan.booths.contains(&publication.owner.as_str()))
                        {
                            continue;
                        }
                        1.0
                    }
                };
                let interpreter_voice = matches!(channel, Channel::Language(_))
                    || (plan.all_booths
                        && self
                            .state
                            .participant(&publication.owner)
                            .is_some_and(|o| o.booth.is_some()));
                routes.push(AudioRoute {
                    publication: publication.id.clone(),
                    participant: publication.owner.clone(),
                    channel: channel.clone(),
                    gain,
                    priority: if interpreter_voice {
                        RoutePriority::Interpretation
                    } else {
                        RoutePriority::Floor
                    },
                });
            }
        }
        let booth = who.booth.as_ref().map(|booth| {
            let holder = self.live.get(booth.output.as_str()).copied();
            BoothSummary {
                pair: booth.pair.clone(),
                output: booth.output.clone(),
                input: booth.input.clone(),
                on_air: booth.on_air,
                live: holder == Some(who.id.as_str()) && self.publishes_booth_output(&who.id),
                output_held_by: holder.filter(|h| *h != who.id).map(str::to_owned),
                handovers: self
                    .state
                    .handovers
                    .iter()
                    .filter(|r| r.from == who.id || r.to == who.id)
                    .cloned()
                    .collect(),
            }
        });
        SubscriberRouting {
            participant: who.id.clone(),
            mode: self.state.mode,
            ramp_ms: config.ramp_ms,
            routes,
            summary: RouteSummary {
                listening: if who.booth.is_none() {
                    who.listening.clone()
                } else {
                    None
                },
                live_channel: plan.live_channel,
                floor_gain: plan.floor_gain,
                booth,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// State transitions
// ---------------------------------------------------------------------------------------------------

impl InterpretationState {
    pub fn new(mode: InterpretationMode) -> InterpretationState {
        InterpretationState {
            mode,
            ..InterpretationState::default()
        }
    }

    pub fn participant(&self, id: &str) -> Option<&ParticipantState> {
        self.participants.iter().find(|p| p.id == id)
    }

    /// The interpreter live on a language channel.
    pub fn live_interpreter(&self, channel: &str) -> Option<&str> {
        self.live
            .get(channel)
            .filter(|holder| self.holds(channel, holder))
            .map(String::as_str)
    }

    pub fn set_mode(&mut self, mode: InterpretationMode) {
        self.mode = mode;
    }

    /// Add a participant (replacing one with the same id, as a rejoin does). An interpreter goes on air
    /// when no booth partner is on air, and takes their output channel if it is free.
    pub fn join(&mut self, mut participant: ParticipantState) {
        self.leave(&participant.id);
        let partner_on_air = self
            .participants
            .iter()
            .any(|p| p.is_partner_of(&participant) && p.booth_on_air().is_some());
        if let Some(booth) = &mut participant.booth {
            booth.on_air = !participant.hidden && !partner_on_air;
        }
        self.participants.push(participant);
        self.normalize();
    }

    /// Remove a participant and their publications; their channel goes to an interpreter waiting for it,
    /// or its listeners fall back to the floor. Returns whether they were there.
    pub fn leave(&mut self, participant: &str) -> bool {
        let before = self.participants.len();
        self.participants.retain(|p| p.id != participant);
        self.publications.retain(|p| p.owner != participant);
        self.normalize();
        self.participants.len() != before
    }

    /// Add (or replace) an audio publication. Hidden participants never publish; a language channel
    /// needs an interpreter booth.
    pub fn publish(&mut self, publication: AudioPublication) -> Result<(), RoutingError> {
        let owner = self.member(&publication.owner)?;
        if owner.hidden {
            return Err(forbidden(
                owner,
                "publish audio",
                "hidden participants never publish",
            ));
        }
        if let Channel::Language(language) = &publication.channel {
            check_language(language)?;
            if owner.booth.is_none() {
                return Err(forbidden(
                    owner,
                    "publish into a language channel",
                    "only interpreters publish into language channels",
                ));
            }
        }
        self.publications.retain(|p| p.id != publication.id);
        self.publications.push(publication);
        Ok(())
    }

    /// Remove a publication. Returns whether it was there.
    pub fn unpublish(&mut self, publication: &str) -> bool {
        let before = self.publications.len();
        self.publications.retain(|p| p.id != publication);
        self.publications.len() != before
    }

    /// A listener picks the language they want to hear (`None`: the original sound only).
    /// A participant stops (`muted = true`) or resumes hearing one audio publication. The policy
    /// still decides whether it is routed at all; this only removes it for this participant.
    pub fn set_muted(
        &mut self,
        participant: &str,
        publication: &str,
        muted: bool,
    ) -> Result<(), RoutingError> {
        let who = self.member_mut(participant)?;
        if muted {
            who.muted.insert(publication.to_owned());
        } else {
            who.muted.remove(publication);
        }
        Ok(())
    }

    pub fn set_listening_language(
        &mut self,
        participant: &str,
        language: Option<&str>,
    ) -> Result<(), RoutingError> {
        let who = self.member(participant)?;
        if who.hidden {
            return Err(forbidden(
                who,
                "pick a listening language",
                "hidden participants receive no audio",
            ));
        }
        if who.booth.is_some() {
            return Err(forbidden(
                who,
                "pick a listening language",
                "an interpreter chooses an input (floor or relay) instead",
            ));
        }
        if let Some(language) = language {
            check_language(language)?;
        }
        self.member_mut(participant)?.listening = language.map(str::to_owned);
        Ok(())
    }

    /// An interpreter switches the language they speak into, between their pair's two languages. The same
    /// publication is re-routed; no renegotiation.
    pub fn switch_direction(
        &mut self,
        participant: &str,
        output: &str,
    ) -> Result<(), RoutingError> {
        let booth = self.booth_of(participant, "switch interpretation direction")?;
        if !booth.pair.contains(output) {
            return Err(RoutingError::NotInPair {
                language: output.to_owned(),
                pair: booth.pair.clone(),
            });
        }
        if booth.output == output {
            return Ok(());
        }
        self.live.retain(|_, holder| holder != participant);
        if let Some(booth) = self.member_mut(participant)?.booth.as_mut() {
            booth.output = output.to_owned();
            if booth.input.language_code() == Some(output) {
                booth.input = Channel::Floor;
            }
        }
        self.normalize();
        Ok(())
    }

    /// An interpreter chooses what they listen to: the floor, or (relay) another language channel.
    pub fn set_input(&mut self, participant: &str, input: Channel) -> Result<(), RoutingError> {
        let booth = self.booth_of(participant, "choose an interpretation input")?;
        if let Channel::Language(language) = &input {
            check_language(language)?;
            if *language == booth.output {
                return Err(RoutingError::InputIsOutput {
                    language: language.clone(),
                });
            }
        }
        if let Some(booth) = self.member_mut(participant)?.booth.as_mut() {
            booth.input = input;
        }
        Ok(())
    }

    /// One booth partner asks another to swap who is on air. Exactly one of the two must be on air.
    pub fn request_handover(
        &mut self,
        from: &str,
        to: &str,
    ) -> Result<HandoverRequest, RoutingError> {
        self.check_handover_pair(from, to)?;
        let request = HandoverRequest {
            from: from.to_owned(),
            to: to.to_owned(),
        };
        if !self.handovers.contains(&request) {
            self.handovers.push(request.clone());
        }
        Ok(request)
    }

    /// `by` accepts the request `from` made: the partner who was not on air takes over the same output
    /// channel in one step; the other becomes passive.
    pub fn accept_handover(&mut self, by: &str, from: &str) -> Result<Handover, RoutingError> {
        self.member(by)?;
        self.pending(from, by)?;
        self.check_handover_pair(from, by)?;
        let (leaving, taking) = if self.member(from)?.booth_on_air().is_some() {
            (from, by)
        } else {
            (by, from)
        };
        let output = self
            .member(leaving)?
            .booth
            .as_ref()
            .map(|b| b.output.clone())
            .unwrap_or_default();
        let was_live = self.live.get(&output).is_some_and(|h| h == leaving);
        if let Some(booth) = self.member_mut(leaving)?.booth.as_mut() {
            booth.on_air = false;
        }
        if let Some(booth) = self.member_mut(taking)?.booth.as_mut() {
            booth.on_air = true;
            booth.output = output.clone();
            if booth.input.language_code() == Some(output.as_str()) {
                booth.input = Channel::Floor;
            }
        }
        self.live
            .retain(|_, holder| holder != leaving && holder != taking);
        if was_live {
            self.live.insert(output.clone(), taking.to_owned());
        }
        self.handovers.retain(|r| {
            ![&r.from, &r.to]
                .iter()
                .any(|p| *p == leaving || *p == taking)
        });
        self.normalize();
        Ok(Handover {
            off_air: leaving.to_owned(),
            on_air: taking.to_owned(),
            live: self.live.get(&output).is_some_and(|h| h == taking),
            output,
        })
    }

    /// `by` declines the request `from` made.
    pub fn decline_handover(
        &mut self,
        by: &str,
        from: &str,
    ) -> Result<HandoverRequest, RoutingError> {
        self.member(by)?;
        self.remove_request(from, by)
    }

    /// `from` withdraws their request to `to`.
    pub fn withdraw_handover(
        &mut self,
        from: &str,
        to: &str,
    ) -> Result<HandoverRequest, RoutingError> {
        self.member(from)?;
        self.remove_request(from, to)
    }

    /// An interpreter goes on air when no booth partner is (taking over from a partner who dropped out,
    /// or coming back from a break), speaking into `output` (one of their pair) or, when `None`, into
    /// their current output. They take that channel if it is free, or wait for it.
    pub fn go_on_air(
        &mut self,
        participant: &str,
        output: Option<&str>,
    ) -> Result<(), RoutingError> {
        let booth = self.booth_of(participant, "go on air")?;
        if booth.on_air {
            return Err(RoutingError::AlreadyOnAir {
                participant: participant.to_owned(),
            });
        }
        if let Some(output) = output.filter(|o| !booth.pair.contains(o)) {
            return Err(RoutingError::NotInPair {
                language: output.to_owned(),
                pair: booth.pair.clone(),
            });
        }
        let who = self.member(participant)?;
        if let Some(partner) = self
            .participants
            .iter()
            .find(|p| p.is_partner_of(who) && p.booth_on_air().is_some())
        {
            return Err(RoutingError::PartnerOnAir {
                partner: partner.id.clone(),
            });
        }
        if let Some(booth) = self.member_mut(participant)?.booth.as_mut() {
            booth.on_air = true;
            if let Some(output) = output {
                booth.output = output.to_owned();
                if booth.input.language_code() == Some(output) {
                    booth.input = Channel::Floor;
                }
            }
        }
        self.normalize();
        Ok(())
    }

    /// An interpreter steps off air: their channel's listeners fall back to the floor (or an interpreter
    /// of another booth waiting for the channel takes it). Off air already: nothing changes.
    pub fn go_off_air(&mut self, participant: &str) -> Result<(), RoutingError> {
        self.booth_of(participant, "go off air")?;
        if let Some(booth) = self.member_mut(participant)?.booth.as_mut() {
            booth.on_air = false;
        }
        self.normalize();
        Ok(())
    }

    /// Whether `holder` really holds `channel`: present, not hidden, on air, speaking into it.
    fn holds(&self, channel: &str, holder: &str) -> bool {
        self.participant(holder)
            .is_some_and(|p| !p.hidden && p.booth_on_air().is_some_and(|b| b.output == channel))
    }

    /// Restore the invariants after a change: live entries that no longer hold are dropped, handover
    /// requests that no longer make sense vanish, and on-air interpreters take their free channels (in
    /// join order).
    fn normalize(&mut self) {
        let stale: Vec<String> = self
            .live
            .iter()
            .filter(|(channel, holder)| !self.holds(channel, holder))
            .map(|(channel, _)| channel.clone())
            .collect();
        for channel in stale {
            self.live.remove(&channel);
        }
        let valid: Vec<bool> = self
            .handovers
            .iter()
            .map(|r| self.check_handover_pair(&r.from, &r.to).is_ok())
            .collect();
        let mut valid = valid.into_iter();
        self.handovers.retain(|_| valid.next().unwrap_or(false));
        for p in &self.participants {
            if let Some(booth) = p.booth_on_air().filter(|_| !p.hidden) {
                let holding = self.live.values().any(|h| *h == p.id);
                if !holding && !self.live.contains_key(&booth.output) {
                    self.live.insert(booth.output.clone(), p.id.clone());
                }
            }
        }
    }

    fn check_handover_pair(&self, from: &str, to: &str) -> Result<(), RoutingError> {
        let asker = self.member(from)?;
        let asker_booth = asker
            .booth
            .as_ref()
            .ok_or_else(|| forbidden(asker, "hand over", "only interpreters hand over"))?;
        if from == to {
            return Err(RoutingError::SelfHandover);
        }
        let partner = self
            .participant(to)
            .ok_or_else(|| RoutingError::UnknownParticipant {
                participant: to.to_owned(),
            })?;
        if !partner
            .booth
            .as_ref()
            .is_some_and(|b| b.pair.same_booth(&asker_booth.pair))
        {
            return Err(RoutingError::NotBoothPartners {
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
        if asker_booth.on_air == partner.booth_on_air().is_some() {
            return Err(RoutingError::HandoverNeedsOneOnAir {
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
        Ok(())
    }

    fn pending(&self, from: &str, to: &str) -> Result<(), RoutingError> {
        if self.handovers.iter().any(|r| r.from == from && r.to == to) {
            Ok(())
        } else {
            Err(RoutingError::NoHandoverRequest {
                from: from.to_owned(),
                to: to.to_owned(),
            })
        }
    }

    fn remove_request(&mut self, from: &str, to: &str) -> Result<HandoverRequest, RoutingError> {
        self.pending(from, to)?;
        self.handovers.retain(|r| !(r.from == from && r.to == to));
        Ok(HandoverRequest {
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }

    fn booth_of(&self, participant: &str, action: &'static str) -> Result<&Booth, RoutingError> {
        let who = self.member(participant)?;
        who.booth
            .as_ref()
            .ok_or_else(|| forbidden(who, action, "only interpreters have a booth"))
    }

    fn member(&self, participant: &str) -> Result<&ParticipantState, RoutingError> {
        self.participant(participant)
            .ok_or_else(|| RoutingError::NotJoined {
                participant: participant.to_owned(),
            })
    }

    fn member_mut(&mut self, participant: &str) -> Result<&mut ParticipantState, RoutingError> {
        self.participants
            .iter_mut()
            .find(|p| p.id == participant)
            .ok_or_else(|| RoutingError::NotJoined {
                participant: participant.to_owned(),
            })
    }
}

fn forbidden(who: &ParticipantState, action: &'static str, reason: &'static str) -> RoutingError {
    RoutingError::Forbidden {
        role: who.role,
        action,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUCK: f64 = DEFAULT_DUCK_GAIN;

    /// Routes `(publication, gain)` in order.
    type Routes = &'static [(&'static str, f64)];
    /// Per participant: the routes and the language channel heard.
    type Table = &'static [(&'static str, Routes, Option<&'static str>)];
    /// A named step and the whole call's routing after it.
    type Step = (
        &'static str,
        fn(&mut InterpretationState) -> Result<(), RoutingError>,
        Table,
    );

    fn person(id: &str, role: Role, languages: &[&str]) -> ParticipantState {
        let languages: Vec<String> = languages.iter().map(|l| (*l).to_owned()).collect();
        ParticipantState::from_token(id, role, &languages).unwrap()
    }

    fn audio(id: &str, owner: &str, channel: &str) -> AudioPublication {
        AudioPublication {
            id: id.into(),
            owner: owner.into(),
            channel: Channel::parse(channel).unwrap(),
        }
    }

    /// The four-party relay call of the issue, simultaneous mode, first phase: the Korean company
    /// speaks; the interpreter (`ko`↔`en`) speaks into `en`; the office (`en`↔`th`) relays from `en`
    /// into `th`; the Thai buyer listens in `th`. A hidden operator watches.
    fn relay_call() -> InterpretationState {
        let mut s = InterpretationState::new(InterpretationMode::Simultaneous);
        s.join(person("company", Role::Company, &["ko"]));
        s.join(person("interp", Role::Interpreter, &["ko", "en"]));
        s.join(person("office", Role::Office, &["en", "th"]));
        s.join(person("buyer", Role::Buyer, &["th"]));
        s.join(person("op", Role::Operator, &[]));
        for p in [
            audio("PB_C", "company", "floor"),
            audio("PB_I", "interp", "en"),
            audio("PB_O", "office", "th"),
            audio("PB_B", "buyer", "floor"),
        ] {
            s.publish(p).unwrap();
        }
        s.set_input("office", Channel::language("en").unwrap())
            .unwrap();
        s
    }

    /// Company `ko`, buyer `en`, and a booth of two `ko`↔`en` interpreters: Anna (on air, into `en`)
    /// and Bora (joined later, passive; her token lists the pair the other way round).
    fn booth_call() -> InterpretationState {
        let mut s = InterpretationState::new(InterpretationMode::Simultaneous);
        s.join(person("company", Role::Company, &["ko"]));
        s.join(person("buyer", Role::Buyer, &["en"]));
        s.join(person("anna", Role::Interpreter, &["ko", "en"]));
        s.join(person("bora", Role::Interpreter, &["en", "ko"]));
        for p in [
            audio("PB_C", "company", "floor"),
            audio("PB_Y", "buyer", "floor"),
            audio("PB_A", "anna", "en"),
            audio("PB_R", "bora", "ko"),
        ] {
            s.publish(p).unwrap();
        }
        s
    }

    const RELAY_PHASE_1: Table = &[
        ("company", &[("PB_B", 1.0)], None),
        ("interp", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
        (
            "office",
            &[("PB_C", DUCK), ("PB_I", 1.0), ("PB_B", DUCK)],
            Some("en"),
        ),
        ("buyer", &[("PB_C", DUCK), ("PB_O", 1.0)], Some("th")),
        ("op", &[], None),
    ];

    const RELAY_PHASE_2: Table = &[
        ("company", &[("PB_I", 1.0), ("PB_B", DUCK)], Some("ko")),
        (
            "interp",
            &[("PB_C", DUCK), ("PB_O", 1.0), ("PB_B", DUCK)],
            Some("en"),
        ),
        ("office", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
        ("buyer", &[("PB_C", 1.0)], None),
        ("op", &[], None),
    ];

    /// Every rule that must hold whatever the state.
    fn check_invariants(state: &InterpretationState, routing: &Routing) {
        let mut holders: Vec<&String> = state.live.values().collect();
        holders.sort();
        holders.dedup();
        assert_eq!(
            holders.len(),
            state.live.len(),
            "one channel per interpreter"
        );
        for (channel, holder) in &state.live {
            assert!(
                state.holds(channel, holder),
                "{holder} does not hold {channel}"
            );
        }
        for sub in &routing.subscribers {
            let who = state.participant(&sub.participant).unwrap();
            let name = &sub.participant;
            if who.hidden {
                assert!(
                    sub.routes.is_empty(),
                    "{name}: hidden participants hear nothing"
                );
            }
            let mut channels = BTreeMap::new();
            for route in &sub.routes {
                assert_ne!(
                    route.participant, *name,
                    "{name} receives their own publication"
                );
                assert!(
                    (0.0..=1.0).contains(&route.gain),
                    "{name}: gain {}",
                    route.gain
                );
                let Channel::Language(language) = &route.channel else {
                    continue;
                };
                assert_eq!(route.priority, RoutePriority::Interpretation);
                if state.mode == InterpretationMode::Consecutive {
                    continue;
                }
                let owners = channels.entry(language.clone()).or_insert(Vec::new());
                owners.push(route.participant.clone());
                owners.dedup();
                assert_eq!(owners.len(), 1, "{name}: double audio on {language}");
                match who.booth.as_ref() {
                    Some(booth) if booth.on_air => assert_ne!(
                        *language, booth.output,
                        "{name} receives the channel they speak into"
                    ),
                    Some(_) => {}
                    None => assert_eq!(
                        Some(language),
                        who.listening.as_ref(),
                        "{name} receives a language they did not pick"
                    ),
                }
            }
        }
    }

    fn assert_table(label: &str, state: &InterpretationState, table: Table) {
        let routing = compute_routing(state, &RoutingConfig::default());
        check_invariants(state, &routing);
        let ids: Vec<&str> = routing
            .subscribers
            .iter()
            .map(|s| s.participant.as_str())
            .collect();
        let expected_ids: Vec<&str> = table.iter().map(|(id, _, _)| *id).collect();
        assert_eq!(ids, expected_ids, "{label}: participants");
        for (id, routes, live_channel) in table {
            let sub = routing.for_participant(id).unwrap();
            let got: Vec<(&str, f64)> = sub
                .routes
                .iter()
                .map(|r| (r.publication.as_str(), r.gain))
                .collect();
            assert_eq!(got, *routes, "{label}: routes of {id}");
            assert_eq!(
                sub.summary.live_channel.as_deref(),
                *live_channel,
                "{label}: live channel of {id}"
            );
        }
    }

    fn run_steps(
        label: &str,
        mut state: InterpretationState,
        steps: &[Step],
    ) -> InterpretationState {
        for (name, step, table) in steps {
            step(&mut state).unwrap_or_else(|e| panic!("{label} / {name}: {e}"));
            assert_table(&format!("{label} / {name}"), &state, table);
        }
        state
    }

    fn live(state: &InterpretationState) -> Vec<(&str, &str)> {
        state
            .live
            .iter()
            .map(|(c, h)| (c.as_str(), h.as_str()))
            .collect()
    }

    fn booth_summary(state: &InterpretationState, id: &str) -> BoothSummary {
        compute_routing(state, &RoutingConfig::default())
            .for_participant(id)
            .and_then(|s| s.summary.booth.clone())
            .unwrap()
    }

    #[test]
    fn both_modes_on_the_relay_call() {
        let cases: &[(&str, InterpretationMode, Table)] = &[
            (
                "consecutive: everyone hears every other participant at 1.0",
                InterpretationMode::Consecutive,
                &[
                    (
                        "company",
                        &[("PB_I", 1.0), ("PB_O", 1.0), ("PB_B", 1.0)],
                        None,
                    ),
                    (
                        "interp",
                        &[("PB_C", 1.0), ("PB_O", 1.0), ("PB_B", 1.0)],
                        None,
                    ),
                    (
                        "office",
                        &[("PB_C", 1.0), ("PB_I", 1.0), ("PB_B", 1.0)],
                        None,
                    ),
                    (
                        "buyer",
                        &[("PB_C", 1.0), ("PB_I", 1.0), ("PB_O", 1.0)],
                        None,
                    ),
                    ("op", &[], None),
                ],
            ),
            (
                "simultaneous, the company speaks",
                InterpretationMode::Simultaneous,
                RELAY_PHASE_1,
            ),
        ];
        for (label, mode, table) in cases {
            let mut state = relay_call();
            state.set_mode(*mode);
            assert_table(label, &state, table);
        }
    }

    #[test]
    fn direction_switch_in_the_relay_call() {
        let state = relay_call();
        assert_eq!(live(&state), vec![("en", "interp"), ("th", "office")]);
        assert_table("start", &state, RELAY_PHASE_1);
        let steps: &[Step] = &[
            (
                "the interpreter switches into ko: en listeners (the office) fall back to the floor",
                |s| s.switch_direction("interp", "ko"),
                &[
                    ("company", &[("PB_I", 1.0), ("PB_B", DUCK)], Some("ko")),
                    ("interp", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
                    ("office", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
                    ("buyer", &[("PB_C", DUCK), ("PB_O", 1.0)], Some("th")),
                    ("op", &[], None),
                ],
            ),
            (
                "the office switches into en; its relay input resets to the floor",
                |s| s.switch_direction("office", "en"),
                &[
                    ("company", &[("PB_I", 1.0), ("PB_B", DUCK)], Some("ko")),
                    ("interp", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
                    ("office", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
                    ("buyer", &[("PB_C", 1.0)], None),
                    ("op", &[], None),
                ],
            ),
            (
                "the interpreter takes relay from en",
                |s| s.set_input("interp", Channel::language("en")?),
                RELAY_PHASE_2,
            ),
            (
                "back: the office switches into th (the interpreter's relay still on en, now silent)",
                |s| s.switch_direction("office", "th"),
                &[
                    ("company", &[("PB_I", 1.0), ("PB_B", DUCK)], Some("ko")),
                    ("interp", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
                    ("office", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
                    ("buyer", &[("PB_C", DUCK), ("PB_O", 1.0)], Some("th")),
                    ("op", &[], None),
                ],
            ),
            (
                "the interpreter switches into en: input resets to floor, the office hears it again",
                |s| {
                    s.switch_direction("interp", "en")?;
                    s.set_input("office", Channel::language("en")?)
                },
                RELAY_PHASE_1,
            ),
        ];
        let end = run_steps("relay", state, steps);
        assert_eq!(
            end.participant("interp")
                .unwrap()
                .booth
                .as_ref()
                .unwrap()
                .input,
            Channel::Floor
        );
    }

    #[test]
    fn switching_into_a_held_channel_waits_without_double_audio() {
        let mut state = relay_call();
        state.switch_direction("office", "en").unwrap();
        assert_eq!(
            live(&state),
            vec![("en", "interp")],
            "the office waits for en"
        );
        assert_table(
            "office waits",
            &state,
            &[
                ("company", &[("PB_B", 1.0)], None),
                ("interp", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
                ("office", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
                ("buyer", &[("PB_C", 1.0)], None),
                ("op", &[], None),
            ],
        );
        let office = booth_summary(&state, "office");
        assert!(office.on_air && !office.live);
        assert_eq!(office.output_held_by.as_deref(), Some("interp"));

        state.switch_direction("interp", "ko").unwrap();
        assert_eq!(live(&state), vec![("en", "office"), ("ko", "interp")]);
        assert!(booth_summary(&state, "office").live);
        state
            .set_input("interp", Channel::language("en").unwrap())
            .unwrap();
        assert_table("phase 2", &state, RELAY_PHASE_2);
    }

    #[test]
    fn direction_switch_re_routes_the_same_publication() {
        let mut state = booth_call();
        state.leave("bora");
        let en: Table = &[
            ("company", &[("PB_Y", 1.0)], None),
            ("buyer", &[("PB_C", DUCK), ("PB_A", 1.0)], Some("en")),
            ("anna", &[("PB_C", 1.0), ("PB_Y", 1.0)], None),
        ];
        assert_table("into en", &state, en);
        let before = compute_routing(&state, &RoutingConfig::default());

        state.switch_direction("anna", "ko").unwrap();
        assert_table(
            "into ko",
            &state,
            &[
                ("company", &[("PB_Y", DUCK), ("PB_A", 1.0)], Some("ko")),
                ("buyer", &[("PB_C", 1.0)], None),
                ("anna", &[("PB_C", 1.0), ("PB_Y", 1.0)], None),
            ],
        );
        let after = compute_routing(&state, &RoutingConfig::default());
        let company = after.for_participant("company").unwrap();
        assert_eq!(company.routes[1].channel, Channel::Language("ko".into()));
        let changed: Vec<&str> = after
            .changed_since(&before)
            .iter()
            .map(|s| s.participant.as_str())
            .collect();
        assert_eq!(changed, vec!["company", "buyer", "anna"]);

        state.switch_direction("anna", "ko").unwrap();
        assert_eq!(
            compute_routing(&state, &RoutingConfig::default()),
            after,
            "idempotent"
        );
        state.switch_direction("anna", "en").unwrap();
        assert_table("back into en", &state, en);
    }

    #[test]
    fn handover_between_booth_partners() {
        let state = booth_call();
        assert_eq!(live(&state), vec![("en", "anna")]);
        let anna_live: Table = &[
            ("company", &[("PB_Y", 1.0)], None),
            ("buyer", &[("PB_C", DUCK), ("PB_A", 1.0)], Some("en")),
            ("anna", &[("PB_C", 1.0), ("PB_Y", 1.0)], None),
            ("bora", &[("PB_C", 1.0), ("PB_Y", 1.0), ("PB_A", 1.0)], None),
        ];
        assert_table("anna live, bora passive", &state, anna_live);
        let bora_live: Table = &[
            ("company", &[("PB_Y", 1.0)], None),
            ("buyer", &[("PB_C", DUCK), ("PB_R", 1.0)], Some("en")),
            ("anna", &[("PB_C", 1.0), ("PB_Y", 1.0), ("PB_R", 1.0)], None),
            ("bora", &[("PB_C", 1.0), ("PB_Y", 1.0)], None),
        ];
        let steps: &[Step] = &[
            (
                "bora asks to take over: nothing moves yet",
                |s| s.request_handover("bora", "anna").map(drop),
                anna_live,
            ),
            (
                "anna accepts: bora takes over en in one step",
                |s| {
                    let done = s.accept_handover("anna", "bora")?;
                    assert_eq!(
                        done,
                        Handover {
                            off_air: "anna".into(),
                            on_air: "bora".into(),
                            output: "en".into(),
                            live: true
                        }
                    );
                    Ok(())
                },
                bora_live,
            ),
            (
                "bora asks anna to take over; anna declines",
                |s| {
                    s.request_handover("bora", "anna")?;
                    s.decline_handover("anna", "bora").map(drop)
                },
                bora_live,
            ),
            (
                "anna, passive, prepares ko and takes relay from en (her partner): one route",
                |s| {
                    s.switch_direction("anna", "ko")?;
                    s.set_input("anna", Channel::language("en")?)
                },
                &[
                    ("company", &[("PB_Y", 1.0)], None),
                    ("buyer", &[("PB_C", DUCK), ("PB_R", 1.0)], Some("en")),
                    (
                        "anna",
                        &[("PB_C", DUCK), ("PB_Y", DUCK), ("PB_R", 1.0)],
                        Some("en"),
                    ),
                    ("bora", &[("PB_C", 1.0), ("PB_Y", 1.0)], None),
                ],
            ),
            (
                "bora asks again; anna accepts: anna's input resets to the floor",
                |s| {
                    s.request_handover("bora", "anna")?;
                    s.accept_handover("anna", "bora").map(drop)
                },
                anna_live,
            ),
        ];
        let end = run_steps("handover", state, steps);
        assert!(end.handovers.is_empty());
        assert_eq!(live(&end), vec![("en", "anna")]);
    }

    #[test]
    fn handover_requests_are_shown_to_both_partners_and_vanish_when_stale() {
        let mut state = booth_call();
        state.request_handover("bora", "anna").unwrap();
        state.request_handover("bora", "anna").unwrap();
        assert_eq!(
            state.handovers.len(),
            1,
            "a repeated request is one request"
        );
        let request = HandoverRequest {
            from: "bora".into(),
            to: "anna".into(),
        };
        assert_eq!(
            booth_summary(&state, "anna").handovers,
            vec![request.clone()]
        );
        assert_eq!(booth_summary(&state, "bora").handovers, vec![request]);
        state.withdraw_handover("bora", "anna").unwrap();
        assert!(state.handovers.is_empty());

        state.request_handover("bora", "anna").unwrap();
        state.go_off_air("anna").unwrap();
        assert!(
            state.handovers.is_empty(),
            "nobody on air: nothing to hand over"
        );
        assert_eq!(
            state.accept_handover("anna", "bora").unwrap_err().code(),
            "handover_state"
        );
    }

    #[test]
    fn an_interpreter_leaving_mid_call() {
        let steps: &[Step] = &[
            (
                "the interpreter drops: en falls back to the floor; the office relays the floor",
                |s| {
                    assert!(s.leave("interp"));
                    Ok(())
                },
                &[
                    ("company", &[("PB_B", 1.0)], None),
                    ("office", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
                    ("buyer", &[("PB_C", DUCK), ("PB_O", 1.0)], Some("th")),
                    ("op", &[], None),
                ],
            ),
            (
                "the office drops too: the buyer gets the floor at full level",
                |s| {
                    assert!(s.leave("office"));
                    Ok(())
                },
                &[
                    ("company", &[("PB_B", 1.0)], None),
                    ("buyer", &[("PB_C", 1.0)], None),
                    ("op", &[], None),
                ],
            ),
            (
                "the interpreter rejoins and publishes: on air again, into en",
                |s| {
                    s.join(person("interp", Role::Interpreter, &["ko", "en"]));
                    s.publish(audio("PB_I2", "interp", "en"))
                },
                &[
                    ("company", &[("PB_B", 1.0)], None),
                    ("buyer", &[("PB_C", 1.0)], None),
                    ("op", &[], None),
                    ("interp", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
                ],
            ),
        ];
        let end = run_steps("leave", relay_call(), steps);
        assert_eq!(live(&end), vec![("en", "interp")]);
    }

    #[test]
    fn a_live_partner_leaving_does_not_put_the_passive_partner_on_air() {
        let steps: &[Step] = &[
            (
                "anna drops: the en listener falls back to the floor; bora stays passive",
                |s| {
                    s.leave("anna");
                    Ok(())
                },
                &[
                    ("company", &[("PB_Y", 1.0)], None),
                    ("buyer", &[("PB_C", 1.0)], None),
                    ("bora", &[("PB_C", 1.0), ("PB_Y", 1.0)], None),
                ],
            ),
            (
                "bora takes over into en",
                |s| s.go_on_air("bora", Some("en")),
                &[
                    ("company", &[("PB_Y", 1.0)], None),
                    ("buyer", &[("PB_C", DUCK), ("PB_R", 1.0)], Some("en")),
                    ("bora", &[("PB_C", 1.0), ("PB_Y", 1.0)], None),
                ],
            ),
            (
                "anna rejoins: passive, she hears the floor and bora",
                |s| {
                    s.join(person("anna", Role::Interpreter, &["ko", "en"]));
                    s.publish(audio("PB_A2", "anna", "en"))
                },
                &[
                    ("company", &[("PB_Y", 1.0)], None),
                    ("buyer", &[("PB_C", DUCK), ("PB_R", 1.0)], Some("en")),
                    ("bora", &[("PB_C", 1.0), ("PB_Y", 1.0)], None),
                    ("anna", &[("PB_C", 1.0), ("PB_Y", 1.0), ("PB_R", 1.0)], None),
                ],
            ),
        ];
        let end = run_steps("partner leaves", booth_call(), steps);
        assert_eq!(live(&end), vec![("en", "bora")]);
        assert!(!booth_summary(&end, "anna").on_air);
    }

    #[test]
    fn an_interpreter_leaving_hands_the_channel_to_one_waiting_for_it() {
        let mut state = relay_call();
        state.switch_direction("office", "en").unwrap();
        assert_eq!(live(&state), vec![("en", "interp")]);
        state.leave("interp");
        assert_eq!(live(&state), vec![("en", "office")]);
    }

    #[test]
    fn listeners_only_hear_the_language_they_picked() {
        let mut base = relay_call();
        base.join(person("guest", Role::Buyer, &["ja"]));
        let cases: &[(&str, Option<&str>, Routes, Option<&str>)] = &[
            (
                "no ja interpreter: the floor at full level",
                Some("ja"),
                &[("PB_C", 1.0), ("PB_B", 1.0)],
                None,
            ),
            (
                "original sound only",
                None,
                &[("PB_C", 1.0), ("PB_B", 1.0)],
                None,
            ),
            (
                "th",
                Some("th"),
                &[("PB_C", DUCK), ("PB_O", 1.0), ("PB_B", DUCK)],
                Some("th"),
            ),
            (
                "en",
                Some("en"),
                &[("PB_C", DUCK), ("PB_I", 1.0), ("PB_B", DUCK)],
                Some("en"),
            ),
            (
                "ko, nobody speaks into ko now",
                Some("ko"),
                &[("PB_C", 1.0), ("PB_B", 1.0)],
                None,
            ),
        ];
        for (label, language, routes, live_channel) in cases {
            let mut state = base.clone();
            state.set_listening_language("guest", *language).unwrap();
            let routing = compute_routing(&state, &RoutingConfig::default());
            check_invariants(&state, &routing);
            let guest = routing.for_participant("guest").unwrap();
            let got: Vec<(&str, f64)> = guest
                .routes
                .iter()
                .map(|r| (r.publication.as_str(), r.gain))
                .collect();
            assert_eq!(got, *routes, "{label}");
            assert_eq!(
                guest.summary.live_channel.as_deref(),
                *live_channel,
                "{label}"
            );
            assert_eq!(guest.summary.listening.as_deref(), *language, "{label}");
        }
    }

    #[test]
    fn a_live_interpreter_who_does_not_publish_yet_ducks_nobody() {
        let mut state = relay_call();
        state.unpublish("PB_I");
        assert_eq!(live(&state), vec![("en", "interp"), ("th", "office")]);
        assert_table(
            "no booth output yet",
            &state,
            &[
                ("company", &[("PB_B", 1.0)], None),
                ("interp", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
                ("office", &[("PB_C", 1.0), ("PB_B", 1.0)], None),
                ("buyer", &[("PB_C", DUCK), ("PB_O", 1.0)], Some("th")),
                ("op", &[], None),
            ],
        );
        assert!(!booth_summary(&state, "interp").live);
        assert!(booth_summary(&state, "interp").on_air);
    }

    #[test]
    fn routing_ignores_live_entries_that_do_not_hold() {
        let mut state = relay_call();
        // Built by hand, without the transitions: the interpreter is gone but still named live.
        state.participants.retain(|p| p.id != "interp");
        state.publications.retain(|p| p.owner != "interp");
        state.live.insert("ko".into(), "buyer".into());
        let routing = compute_routing(&state, &RoutingConfig::default());
        let office = routing.for_participant("office").unwrap();
        assert_eq!(office.summary.live_channel, None);
        assert!(office.routes.iter().all(|r| r.gain == 1.0));
        let company = routing.for_participant("company").unwrap();
        assert_eq!(company.summary.floor_gain, 1.0);
    }

    #[test]
    fn a_declared_channel_never_overrides_the_booth() {
        let mut state = relay_call();
        // The office publishes a second microphone on the floor, to speak for itself.
        state.publish(audio("PB_O2", "office", "floor")).unwrap();
        // A language channel from someone with no booth (refused by `publish`) counts as floor.
        state.publications.push(audio("PB_X", "company", "th"));
        let routing = compute_routing(&state, &RoutingConfig::default());
        check_invariants(&state, &routing);
        let buyer: Vec<(&str, f64, &str)> = routing
            .for_participant("buyer")
            .unwrap()
            .routes
            .iter()
            .map(|r| (r.publication.as_str(), r.gain, r.channel.as_str()))
            .collect();
        assert_eq!(
            buyer,
            vec![
                ("PB_C", DUCK, "floor"),
                ("PB_O", 1.0, "th"),
                ("PB_O2", DUCK, "floor"),
                ("PB_X", DUCK, "floor"),
            ]
        );
    }

    #[test]
    fn refused_transitions_have_stable_codes_and_change_nothing() {
        let mut base = relay_call();
        base.join(person("bora", Role::Interpreter, &["en", "ko"]));
        type Action = fn(&mut InterpretationState) -> Result<(), RoutingError>;
        let cases: &[(&str, Action, &str, ErrorCode)] = &[
            (
                "a buyer switches direction",
                |s| s.switch_direction("buyer", "th"),
                "forbidden",
                ErrorCode::Forbidden,
            ),
            (
                "an operator switches direction",
                |s| s.switch_direction("op", "en"),
                "forbidden",
                ErrorCode::Forbidden,
            ),
            (
                "an interpreter switches out of the pair",
                |s| s.switch_direction("interp", "th"),
                "invalid_message",
                ErrorCode::InvalidMessage,
            ),
            (
                "a stranger switches direction",
                |s| s.switch_direction("ghost", "en"),
                "not_joined",
                ErrorCode::NotJoined,
            ),
            (
                "relay from the own output",
                |s| s.set_input("interp", Channel::language("en")?),
                "invalid_message",
                ErrorCode::InvalidMessage,
            ),
            (
                "relay from a non-language",
                |s| s.set_input("interp", Channel::Language("Thai please".into())),
                "invalid_message",
                ErrorCode::InvalidMessage,
            ),
            (
                "a buyer chooses a relay",
                |s| s.set_input("buyer", Channel::Floor),
                "forbidden",
                ErrorCode::Forbidden,
            ),
            (
                "an operator picks a language",
                |s| s.set_listening_language("op", Some("en")),
                "forbidden",
                ErrorCode::Forbidden,
            ),
            (
                "an interpreter picks a language",
                |s| s.set_listening_language("interp", Some("th")),
                "forbidden",
                ErrorCode::Forbidden,
            ),
            (
                "a listener picks a non-language",
                |s| s.set_listening_language("buyer", Some("floor")),
                "invalid_message",
                ErrorCode::InvalidMessage,
            ),
            (
                "a buyer asks for a handover",
                |s| s.request_handover("buyer", "interp").map(drop),
                "forbidden",
                ErrorCode::Forbidden,
            ),
            (
                "a handover to a buyer",
                |s| s.request_handover("bora", "buyer").map(drop),
                "forbidden",
                ErrorCode::Forbidden,
            ),
            (
                "a handover across booths",
                |s| s.request_handover("office", "interp").map(drop),
                "forbidden",
                ErrorCode::Forbidden,
            ),
            (
                "a handover to nobody",
                |s| s.request_handover("bora", "ghost").map(drop),
                "unknown_participant",
                ErrorCode::UnknownParticipant,
            ),
            (
                "a handover to oneself",
                |s| s.request_handover("bora", "bora").map(drop),
                "invalid_message",
                ErrorCode::InvalidMessage,
            ),
            (
                "accept with no request",
                |s| s.accept_handover("interp", "bora").map(drop),
                "handover_state",
                ErrorCode::HandoverState,
            ),
            (
                "decline with no request",
                |s| s.decline_handover("interp", "bora").map(drop),
                "handover_state",
                ErrorCode::HandoverState,
            ),
            (
                "a passive partner goes on air over the live one",
                |s| s.go_on_air("bora", None),
                "handover_state",
                ErrorCode::HandoverState,
            ),
            (
                "on air twice",
                |s| s.go_on_air("interp", None),
                "handover_state",
                ErrorCode::HandoverState,
            ),
            (
                "a buyer publishes into th",
                |s| s.publish(audio("PB_Z", "buyer", "th")),
                "forbidden",
                ErrorCode::Forbidden,
            ),
            (
                "an operator publishes",
                |s| s.publish(audio("PB_Z", "op", "floor")),
                "forbidden",
                ErrorCode::Forbidden,
            ),
        ];
        for (label, action, code, error_code) in cases {
            let mut state = base.clone();
            let err = action(&mut state).unwrap_err();
            assert_eq!(err.code(), *code, "{label}: {err}");
            assert_eq!(err.error_code(), *error_code, "{label}");
            assert_eq!(SignalError::from(err).code, *error_code, "{label}");
            assert_eq!(state, base, "{label}: the state changed");
        }
        let mut state = base.clone();
        state.go_off_air("interp").unwrap();
        assert_eq!(
            state.request_handover("bora", "interp").unwrap_err().code(),
            "handover_state",
            "nobody on air"
        );
    }

    #[test]
    fn participants_from_tokens() {
        /// `Ok((listening, (output, the other language of the pair)))` or the error code.
        type Expected =
            Result<(Option<&'static str>, Option<(&'static str, &'static str)>), &'static str>;
        let cases: &[(Role, &[&str], Expected)] = &[
            (
                Role::Interpreter,
                &["ko", "en"],
                Ok((None, Some(("en", "ko")))),
            ),
            (Role::Interpreter, &["ko"], Err("invalid_token")),
            (Role::Interpreter, &["ko", "ko"], Err("invalid_token")),
            (Role::Interpreter, &["ko", "en", "th"], Err("invalid_token")),
            (Role::Office, &["en", "th"], Ok((None, Some(("th", "en"))))),
            (Role::Office, &["en"], Ok((Some("en"), None))),
            (Role::Office, &["en", "th", "ko"], Ok((Some("en"), None))),
            (Role::Company, &["ko", "en"], Ok((Some("ko"), None))),
            (Role::Buyer, &[], Ok((None, None))),
            (Role::Operator, &["en"], Ok((None, None))),
        ];
        for (role, languages, expected) in cases {
            let languages: Vec<String> = languages.iter().map(|l| (*l).to_owned()).collect();
            let got = ParticipantState::from_token("p", *role, &languages);
            match (got, expected) {
                (Ok(p), Ok((listening, booth))) => {
                    assert_eq!(p.listening.as_deref(), *listening, "{role} {languages:?}");
                    let booth_got = p.booth.as_ref().map(|b| {
                        assert_eq!(b.input, Channel::Floor);
                        (b.output.as_str(), b.pair.other(&b.output).unwrap())
                    });
                    assert_eq!(booth_got, *booth, "{role} {languages:?}");
                    assert_eq!(p.hidden, *role == Role::Operator);
                }
                (Err(e), Err(code)) => assert_eq!(e.code(), *code, "{role} {languages:?}"),
                (got, _) => panic!("{role} {languages:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn booths_are_the_same_pair_in_either_order() {
        let ko_en = LanguagePair::new("ko", "en").unwrap();
        let en_ko = LanguagePair::new("en", "ko").unwrap();
        let en_th = LanguagePair::new("en", "th").unwrap();
        assert!(ko_en.same_booth(&en_ko));
        assert!(!ko_en.same_booth(&en_th));
        assert_eq!(ko_en.other("ko"), Some("en"));
        assert_eq!(ko_en.other("th"), None);
        assert_eq!(ko_en.to_string(), "ko↔en");
        assert!(LanguagePair::new("ko", "ko").is_err());
        assert!(LanguagePair::new("ko", "floor").is_err());
    }

    #[test]
    fn a_second_booth_partner_joins_passive_and_never_doubles_the_channel() {
        let mut state = booth_call();
        state.switch_direction("bora", "en").unwrap();
        assert_eq!(
            live(&state),
            vec![("en", "anna")],
            "a passive partner never goes live"
        );
        assert_table(
            "bora prepared en",
            &state,
            &[
                ("company", &[("PB_Y", 1.0)], None),
                ("buyer", &[("PB_C", DUCK), ("PB_A", 1.0)], Some("en")),
                ("anna", &[("PB_C", 1.0), ("PB_Y", 1.0)], None),
                ("bora", &[("PB_C", 1.0), ("PB_Y", 1.0), ("PB_A", 1.0)], None),
            ],
        );
    }

    #[test]
    fn duck_gain_and_ramp_come_from_the_configuration() {
        let state = relay_call();
        let config = RoutingConfig::new(0.35, 500).unwrap();
        let routing = compute_routing(&state, &config);
        let buyer = routing.for_participant("buyer").unwrap();
        assert_eq!(buyer.ramp_ms, 500);
        assert_eq!(buyer.summary.floor_gain, 0.35);
        assert_eq!(buyer.routes[0].gain, 0.35);
        assert!(RoutingConfig::new(1.5, 300).is_err());
        assert!(RoutingConfig::new(-0.1, 300).is_err());
        assert!(RoutingConfig::new(f64::NAN, 300).is_err());
        assert!(RoutingConfig::new(0.2, MAX_RAMP_MS + 1).is_err());
        let odd = RoutingConfig {
            duck_gain: f64::NAN,
            ramp_ms: 0,
        };
        assert_eq!(
            compute_routing(&state, &odd)
                .for_participant("buyer")
                .unwrap()
                .summary
                .floor_gain,
            DEFAULT_DUCK_GAIN
        );
    }

    #[test]
    fn a_mode_change_reaches_everyone() {
        let mut state = relay_call();
        let before = compute_routing(&state, &RoutingConfig::default());
        state.set_mode(InterpretationMode::Consecutive);
        let after = compute_routing(&state, &RoutingConfig::default());
        assert_eq!(after.changed_since(&before).len(), 5);
        assert!(after.changed_since(&after).is_empty());
    }

    #[test]
    fn routing_messages_serialize_compactly() {
        let routing = compute_routing(&relay_call(), &RoutingConfig::default());
        let buyer = serde_json::to_value(routing.for_participant("buyer").unwrap()).unwrap();
        assert_eq!(
            buyer,
            serde_json::json!({
                "participant": "buyer",
                "mode": "simultaneous",
                "ramp_ms": 300,
                "routes": [
                    {"publication": "PB_C", "participant": "company", "channel": "floor",
                     "gain": 0.2, "priority": "floor"},
                    {"publication": "PB_O", "participant": "office", "channel": "th",
                     "gain": 1.0, "priority": "interpretation"},
                ],
                "summary": {"listening": "th", "live_channel": "th", "floor_gain": 0.2},
            })
        );
        let office = serde_json::to_value(routing.for_participant("office").unwrap()).unwrap();
        assert_eq!(
            office["summary"],
            serde_json::json!({
                "listening": null, "live_channel": "en", "floor_gain": 0.2,
                "booth": {"pair": ["en", "th"], "output": "th", "input": "en",
                          "on_air": true, "live": true},
            })
        );
        assert_eq!(
            serde_json::from_str::<Channel>("\"floor\"").unwrap(),
            Channel::Floor
        );
        assert!(serde_json::from_str::<Channel>("\"not a language\"").is_err());
        // Clients (and the bot) read routing messages back.
        for subscriber in &routing.subscribers {
            let text = serde_json::to_string(subscriber).unwrap();
            let back: SubscriberRouting = serde_json::from_str(&text).unwrap();
            assert_eq!(&back, subscriber);
        }
        assert!(serde_json::from_str::<LanguagePair>(r#"["en", "en"]"#).is_err());
        assert_eq!(
            routing
                .for_participant("buyer")
                .unwrap()
                .route("PB_O")
                .map(|r| r.gain),
            Some(1.0)
        );
        assert!(RoutePriority::Interpretation > RoutePriority::Floor);
    }
}
