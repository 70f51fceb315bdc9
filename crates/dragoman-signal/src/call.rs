//! One call's control state: who is in it, what they publish, who subscribes to what, and the
//! interpretation state that decides who hears which audio ([`crate::routing`]).
//!
//! Every operation checks permissions and limits and returns either a typed [`SignalError`] or the
//! [`Notice`]s the server must deliver. The media plane is told separately by the server; this module
//! only decides. After any change the server calls [`Call::update_routing`] and applies the audio
//! routes it returns.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{ErrorCode, SignalError};
use crate::protocol::{
    LeaveReason, ParticipantInfo, PublicationInfo, ServerMessage, TrackInfo, TrackKind, TrackSource,
};
use crate::role::Permissions;
use crate::routing::{
    AudioPublication, Channel, Handover, HandoverRequest, InterpretationMode, InterpretationState,
    ParticipantState, Routing, RoutingConfig, SubscriberRouting, compute_routing,
};
use crate::token::{JoinClaims, is_language_code};

/// The audio channel of a speaker's own voice.
pub const FLOOR_CHANNEL: &str = "floor";
/// Most simulcast layers one video publication may declare.
pub const MAX_LAYERS: usize = 3;

/// Limits of one call, from the server's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Participants at once, operators included.
    pub max_participants: usize,
    /// Publications one participant may hold at once.
    pub max_publications_per_participant: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            max_participants: 8,
            max_publications_per_participant: 4,
        }
    }
}

/// Who a notice goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every participant in the call except the one named.
    AllExcept(String),
    /// One participant.
    Only(String),
}

/// A message the server must deliver as the result of an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub to: Audience,
    pub message: ServerMessage,
}

/// A participant as the call sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub info: ParticipantInfo,
    pub permissions: Permissions,
    /// Publications this participant subscribes to.
    pub subscriptions: BTreeSet<String>,
}

/// A publication with the `mid` it arrives on from its publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub info: PublicationInfo,
    pub mid: String,
}

/// The result of a join.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The same identity was already in the call; its old session must be closed and its media removed.
    pub replaced: Option<Left>,
    pub notices: Vec<Notice>,
}

/// The result of a participant leaving.
#[derive(Debug, Clone, PartialEq)]
pub struct Left {
    pub participant: String,
    /// Publications that ended with the participant.
    pub removed_publications: Vec<String>,
    pub notices: Vec<Notice>,
}

/// The control state of one call.
#[derive(Debug, Clone)]
pub struct Call {
    id: String,
    limits: CallLimits,
    participants: BTreeMap<String, Participant>,
    publications: BTreeMap<String, Publication>,
    next_publication: u64,
    /// Who hears which audio: participants, booths, audio publications, live channels.
    interpretation: InterpretationState,
    /// The mode was set with [`Call::set_mode`] (a booking); join tokens no longer choose it.
    mode_fixed: bool,
    /// The routing as of the last [`Call::update_routing`].
    routing: Routing,
}

impl Call {
    pub fn new(id: impl Into<String>, limits: CallLimits) -> Self {
        Call {
            id: id.into(),
            limits,
            participants: BTreeMap::new(),
            publications: BTreeMap::new(),
            next_publication: 1,
            interpretation: InterpretationState::default(),
            mode_fixed: false,
            routing: Routing::default(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    pub fn participant(&self, id: &str) -> Option<&Participant> {
        self.participants.get(id)
    }

    pub fn participants(&self) -> impl Iterator<Item = &Participant> {
        self.participants.values()
    }

    pub fn publication(&self, id: &str) -> Option<&Publication> {
        self.publications.get(id)
    }

    pub fn publications(&self) -> impl Iterator<Item = &Publication> {
        self.publications.values()
    }

    /// Participants the given one may see: everyone but themselves and hidden operators.
    pub fn visible_participants(&self, viewer: &str) -> Vec<ParticipantInfo> {
        self.participants
            .values()
            .filter(|p| p.info.id != viewer && !p.permissions.hidden)
            .map(|p| p.info.clone())
            .collect()
    }

    /// Publications of others the given participant may subscribe to.
    pub fn visible_publications(&self, viewer: &str) -> Vec<PublicationInfo> {
        self.publications
            .values()
            .filter(|p| p.info.participant != viewer)
            .map(|p| p.info.clone())
            .collect()
    }

    /// Add a participant from verified token claims.
    pub fn join(&mut self, claims: &JoinClaims) -> Result<Joined, SignalError> {
        if claims.call != self.id {
            return Err(SignalError::new(
                ErrorCode::InvalidToken,
                format!("the token is for call {:?}, not {:?}", claims.call, self.id),
            ));
        }
        let interpretation =
            ParticipantState::from_token(&claims.identity, claims.role, &claims.languages)?;
        let replaced = self
            .participants
            .contains_key(&claims.identity)
            .then(|| self.leave(&claims.identity, LeaveReason::Replaced));
        if self.participants.len() >= self.limits.max_participants {
            return Err(SignalError::new(
                ErrorCode::CallFull,
                format!(
                    "the call already has {} participants",
                    self.participants.len()
                ),
            ));
        }
        let info = ParticipantInfo {
            id: claims.identity.clone(),
            name: claims.name.clone(),
            role: claims.role,
            languages: claims.languages.clone(),
        };
        let permissions = claims.role.permissions();
        if self.participants.is_empty()
            && !self.mode_fixed
            && let Some(mode) = claims.mode
        {
            // The first participant's join creates the call: their token says how it is interpreted.
            self.interpretation.set_mode(mode);
        }
        self.interpretation.join(interpretation);
        let mut notices = Vec::new();
        if !permissions.hidden {
            notices.push(Notice {
                to: Audience::AllExcept(info.id.clone()),
                message: ServerMessage::ParticipantJoined {
                    participant: info.clone(),
                },
            });
        }
        self.participants.insert(
            info.id.clone(),
            Participant {
                info,
                permissions,
                subscriptions: BTreeSet::new(),
            },
        );
        Ok(Joined { replaced, notices })
    }

    /// Remove a participant, their publications and every subscription to those. Unknown ids are a no-op.
    pub fn leave(&mut self, participant: &str, reason: LeaveReason) -> Left {
        let Some(gone) = self.participants.remove(participant) else {
            return Left {
                participant: participant.to_owned(),
                removed_publications: Vec::new(),
                notices: Vec::new(),
            };
        };
        let removed: Vec<String> = self
            .publications
            .values()
            .filter(|p| p.info.participant == participant)
            .map(|p| p.info.id.clone())
            .collect();
        let mut notices = Vec::new();
        for publication in &removed {
            notices.extend(self.remove_publication(publication));
        }
        self.interpretation.leave(participant);
        if !gone.permissions.hidden {
            notices.push(Notice {
                to: Audience::AllExcept(participant.to_owned()),
                message: ServerMessage::ParticipantLeft {
                    participant: participant.to_owned(),
                    reason,
                },
            });
        }
        Left {
            participant: participant.to_owned(),
            removed_publications: removed,
            notices,
        }
    }

    /// Turn a negotiated track into a publication others can subscribe to.
    pub fn publish(
        &mut self,
        participant: &str,
        track: &TrackInfo,
    ) -> Result<(PublicationInfo, Vec<Notice>), SignalError> {
        let owner = self.member(participant)?;
        if !owner.permissions.publish {
            return Err(SignalError::new(
                ErrorCode::Forbidden,
                format!("the {} role may not publish media", owner.info.role),
            ));
        }
        let owned = self
            .publications
            .values()
            .filter(|p| p.info.participant == participant);
        let mut count = 0;
        for existing in owned {
            count += 1;
            if existing.mid == track.mid {
                return Err(SignalError::new(
                    ErrorCode::InvalidMessage,
                    format!(
                        "mid {:?} is already published as {}",
                        track.mid, existing.info.id
                    ),
                ));
            }
        }
        if count >= self.limits.max_publications_per_participant {
            return Err(SignalError::new(
                ErrorCode::TooManyTracks,
                format!(
                    "at most {} publications per participant",
                    self.limits.max_publications_per_participant
                ),
            ));
        }
        let interpreter = self
            .interpretation
            .participant(participant)
            .is_some_and(|p| p.booth.is_some());
        let channel = validate_track(track, interpreter)?;
        let audio_channel = match (track.kind, channel.as_deref()) {
            (TrackKind::Audio, Some(channel)) => Some(Channel::parse(channel)?),
            _ => None,
        };
        let id = format!("PB_{}", self.next_publication);
        self.next_publication += 1;
        let info = PublicationInfo {
            id: id.clone(),
            participant: participant.to_owned(),
            kind: track.kind,
            source: track.source,
            channel,
            layers: track.layers.clone(),
        };
        if let Some(channel) = audio_channel {
            self.interpretation.publish(AudioPublication {
                id: id.clone(),
                owner: participant.to_owned(),
                channel,
            })?;
        }
        self.publications.insert(
            id,
            Publication {
                info: info.clone(),
                mid: track.mid.clone(),
            },
        );
        let notice = Notice {
            to: Audience::AllExcept(participant.to_owned()),
            message: ServerMessage::PublicationAdded {
                publication: info.clone(),
            },
        };
        Ok((info, vec![notice]))
    }

    /// Withdraw one of the participant's own publications.
    pub fn unpublish(
        &mut self,
        participant: &str,
        publication: &str,
    ) -> Result<Vec<Notice>, SignalError> {
        self.member(participant)?;
        match self.publications.get(publication) {
            Some(p) if p.info.participant == participant => {
                Ok(self.remove_publication(publication))
            }
            _ => Err(unknown_publication(publication)),
        }
    }

    /// Subscribe to publications of others. All or nothing: one bad id fails the whole request.
    /// Returns the publications that were not subscribed before.
    ///
    /// Audio is routed by the server ([`Call::update_routing`]): a participant hears what the
    /// policy routes unless they muted it. Subscribing to an audio id unmutes it (it is not recorded
    /// or returned as a subscription); call [`Call::update_routing`] afterwards.
    pub fn subscribe(
        &mut self,
        participant: &str,
        publications: &[String],
    ) -> Result<Vec<String>, SignalError> {
        let subscriber = self.member(participant)?;
        if !subscriber.permissions.subscribe {
            return Err(SignalError::new(
                ErrorCode::Forbidden,
                "this role may not subscribe",
            ));
        }
        for id in publications {
            match self.publications.get(id) {
                None => return Err(unknown_publication(id)),
                Some(p) if p.info.participant == participant => {
                    return Err(SignalError::new(
                        ErrorCode::InvalidMessage,
                        format!("{id} is your own publication"),
                    ));
                }
                Some(_) => {}
            }
        }
        let (audio, wanted): (Vec<String>, Vec<String>) = publications
            .iter()
            .cloned()
            .partition(|id| self.is_audio(id));
        for id in &audio {
            self.set_muted(participant, id, false)?;
        }
        let subscriptions = &mut self.member_mut(participant)?.subscriptions;
        Ok(wanted
            .into_iter()
            .filter(|id| subscriptions.insert(id.clone()))
            .collect())
    }

    fn set_muted(
        &mut self,
        participant: &str,
        publication: &str,
        muted: bool,
    ) -> Result<(), SignalError> {
        self.interpretation
            .set_muted(participant, publication, muted)
            .map_err(SignalError::from)
    }

    /// Unsubscribe from publications. Unknown ids fail the request; ids not subscribed are ignored.
    /// Unsubscribing from an audio id mutes it for this participant (audio is routed by the server;
    /// call [`Call::update_routing`] afterwards). Returns the video publications that were
    /// subscribed before.
    pub fn unsubscribe(
        &mut self,
        participant: &str,
        publications: &[String],
    ) -> Result<Vec<String>, SignalError> {
        self.member(participant)?;
        if let Some(unknown) = publications
            .iter()
            .find(|id| !self.publications.contains_key(*id))
        {
            return Err(unknown_publication(unknown));
        }
        let audio: Vec<&String> = publications.iter().filter(|id| self.is_audio(id)).collect();
        for id in audio {
            self.set_muted(participant, id, true)?;
        }
        let subscriptions = &mut self.member_mut(participant)?.subscriptions;
        Ok(publications
            .iter()
            .filter(|id| subscriptions.remove(*id))
            .cloned()
            .collect())
    }

    /// Does the request name any audio publication (whose routing it changes)?
    pub fn names_audio(&self, publications: &[String]) -> bool {
        publications.iter().any(|id| self.is_audio(id))
    }

    fn is_audio(&self, publication: &str) -> bool {
        self.publications
            .get(publication)
            .is_some_and(|p| p.info.kind == TrackKind::Audio)
    }

    fn remove_publication(&mut self, publication: &str) -> Vec<Notice> {
        let Some(gone) = self.publications.remove(publication) else {
            return Vec::new();
        };
        self.interpretation.unpublish(publication);
        for p in self.participants.values_mut() {
            p.subscriptions.remove(publication);
        }
        vec![Notice {
            to: Audience::AllExcept(gone.info.participant.clone()),
            message: ServerMessage::PublicationRemoved {
                publication: publication.to_owned(),
            },
        }]
    }

    /// How the call is interpreted.
    pub fn mode(&self) -> InterpretationMode {
        self.interpretation.mode
    }

    /// Set the call's mode (from its booking). From then on join tokens no longer choose it.
    pub fn set_mode(&mut self, mode: InterpretationMode) {
        self.mode_fixed = true;
        self.interpretation.set_mode(mode);
    }

    /// The interpretation state the routing is computed from.
    pub fn interpretation(&self) -> &InterpretationState {
        &self.interpretation
    }

    /// Recompute who hears what; return the routing of each participant whose routing changed since
    /// the last call (new participants included), to be sent as `routing` messages. The whole routing
    /// is then [`Call::routing`].
    pub fn update_routing(&mut self, config: &RoutingConfig) -> Vec<SubscriberRouting> {
        let routing = compute_routing(&self.interpretation, config);
        let changed = routing
            .changed_since(&self.routing)
            .into_iter()
            .cloned()
            .collect();
        self.routing = routing;
        changed
    }

    /// The routing as of the last [`Call::update_routing`].
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// A listener picks the language they hear (`None`: the original sound only).
    pub fn set_listening_language(
        &mut self,
        participant: &str,
        language: Option<&str>,
    ) -> Result<(), SignalError> {
        Ok(self
            .interpretation
            .set_listening_language(participant, language)?)
    }

    /// An interpreter switches the language they speak into.
    pub fn switch_direction(&mut self, participant: &str, output: &str) -> Result<(), SignalError> {
        Ok(self.interpretation.switch_direction(participant, output)?)
    }

    /// An interpreter chooses their input: the floor, or a language channel (relay).
    pub fn set_input(&mut self, participant: &str, input: Channel) -> Result<(), SignalError> {
        Ok(self.interpretation.set_input(participant, input)?)
    }

    pub fn request_handover(
        &mut self,
        from: &str,
        to: &str,
    ) -> Result<HandoverRequest, SignalError> {
        Ok(self.interpretation.request_handover(from, to)?)
    }

    pub fn accept_handover(&mut self, by: &str, from: &str) -> Result<Handover, SignalError> {
        Ok(self.interpretation.accept_handover(by, from)?)
    }

    pub fn decline_handover(
        &mut self,
        by: &str,
        from: &str,
    ) -> Result<HandoverRequest, SignalError> {
        Ok(self.interpretation.decline_handover(by, from)?)
    }

    pub fn withdraw_handover(
        &mut self,
        from: &str,
        to: &str,
    ) -> Result<HandoverRequest, SignalError> {
        Ok(self.interpretation.withdraw_handover(from, to)?)
    }

    pub fn go_on_air(
        &mut self,
        participant: &str,
        output: Option<&str>,
    ) -> Result<(), SignalError> {
        Ok(self.interpretation.go_on_air(participant, output)?)
    }

    pub fn go_off_air(&mut self, participant: &str) -> Result<(), SignalError> {
        Ok(self.interpretation.go_off_air(participant)?)
    }

    fn member(&self, participant: &str) -> Result<&Participant, SignalError> {
        self.participants
            .get(participant)
            .ok_or_else(|| SignalError::new(ErrorCode::NotJoined, "not a participant of this call"))
    }

    fn member_mut(&mut self, participant: &str) -> Result<&mut Participant, SignalError> {
        self.participants
            .get_mut(participant)
            .ok_or_else(|| SignalError::new(ErrorCode::NotJoined, "not a participant of this call"))
    }
}

fn unknown_publication(id: &str) -> SignalError {
    SignalError::new(
        ErrorCode::UnknownPublication,
        format!("no publication {id:?} in this call"),
    )
}

/// Check a track's kind, source, channel and layers; return its channel. Only an interpreter may
/// publish audio into a language channel.
fn validate_track(track: &TrackInfo, interpreter: bool) -> Result<Option<String>, SignalError> {
    let invalid = |m: String| SignalError::new(ErrorCode::InvalidMessage, m);
    if track.mid.is_empty() || track.mid.len() > 32 {
        return Err(invalid("mid must be 1 to 32 bytes".into()));
    }
    match (track.kind, track.source) {
        (TrackKind::Audio, TrackSource::Microphone)
        | (TrackKind::Video, TrackSource::Camera | TrackSource::ScreenShare) => {}
        (kind, source) => {
            return Err(invalid(format!(
                "a {kind:?} track cannot have source {source:?}"
            )));
        }
    }
    if track.layers.len() > MAX_LAYERS {
        return Err(invalid(format!("at most {MAX_LAYERS} simulcast layers")));
    }
    if track.kind == TrackKind::Audio && !track.layers.is_empty() {
        return Err(invalid("audio has no simulcast layers".into()));
    }
    if let Some(rid) = track
        .layers
        .iter()
        .find(|r| r.is_empty() || r.len() > 16 || !r.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(invalid(format!("{rid:?} is not a valid rid")));
    }
    match (track.kind, track.channel.as_deref()) {
        (TrackKind::Video, None) => Ok(None),
        (TrackKind::Video, Some(_)) => Err(invalid("only audio tracks have a channel".into())),
        (TrackKind::Audio, None) => Ok(Some(FLOOR_CHANNEL.to_owned())),
        (TrackKind::Audio, Some(channel)) if channel == FLOOR_CHANNEL => {
            Ok(Some(channel.to_owned()))
        }
        (TrackKind::Audio, Some(channel)) if is_language_code(channel) => {
            if interpreter {
                Ok(Some(channel.to_owned()))
            } else {
                Err(SignalError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "only interpreters publish into a language channel; publish {channel:?} as \"floor\""
                    ),
                ))
            }
        }
        (TrackKind::Audio, Some(channel)) => Err(invalid(format!(
            "{channel:?} is neither \"floor\" nor a language code"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Role;

    fn claims(identity: &str, role: Role) -> JoinClaims {
        JoinClaims {
            call: "c1".into(),
            identity: identity.into(),
            name: identity.to_uppercase(),
            role,
            languages: vec!["en".into()],
            exp: u64::MAX,
            nbf: None,
            mode: None,
        }
    }

    fn interpreter(identity: &str, pair: [&str; 2]) -> JoinClaims {
        JoinClaims {
            languages: pair.iter().map(|l| (*l).to_owned()).collect(),
            ..claims(identity, Role::Interpreter)
        }
    }

    fn audio(mid: &str, channel: &str) -> TrackInfo {
        TrackInfo {
            channel: Some(channel.into()),
            ..track(mid, TrackKind::Audio)
        }
    }

    fn track(mid: &str, kind: TrackKind) -> TrackInfo {
        TrackInfo {
            mid: mid.into(),
            kind,
            source: match kind {
                TrackKind::Audio => TrackSource::Microphone,
                TrackKind::Video => TrackSource::Camera,
            },
            channel: None,
            layers: vec![],
        }
    }

    fn call_with(parties: &[(&str, Role)]) -> Call {
        let mut call = Call::new("c1", CallLimits::default());
        for (id, role) in parties {
            call.join(&claims(id, *role)).unwrap();
        }
        call
    }

    #[test]
    fn join_announces_visible_participants_only() {
        let mut call = call_with(&[("company", Role::Company)]);
        let joined = call.join(&claims("buyer", Role::Buyer)).unwrap();
        assert_eq!(joined.notices.len(), 1);
        let hidden = call.join(&claims("op", Role::Operator)).unwrap();
        assert!(hidden.notices.is_empty());
        let seen: Vec<_> = call
            .visible_participants("company")
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(seen, vec!["buyer"]);
    }

    #[test]
    fn join_with_a_token_for_another_call_fails() {
        let mut call = Call::new("other", CallLimits::default());
        let err = call.join(&claims("buyer", Role::Buyer)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidToken);
    }

    #[test]
    fn rejoin_replaces_the_old_participant() {
        let mut call = call_with(&[("company", Role::Company), ("buyer", Role::Buyer)]);
        call.publish("buyer", &track("0", TrackKind::Audio))
            .unwrap();
        let again = call.join(&claims("buyer", Role::Buyer)).unwrap();
        let replaced = again.replaced.expect("replaced");
        assert_eq!(replaced.removed_publications, vec!["PB_1"]);
        assert!(call.publication("PB_1").is_none());
    }

    #[test]
    fn call_full() {
        let mut call = Call::new(
            "c1",
            CallLimits {
                max_participants: 1,
                ..CallLimits::default()
            },
        );
        call.join(&claims("a", Role::Company)).unwrap();
        let err = call.join(&claims("b", Role::Buyer)).unwrap_err();
        assert_eq!(err.code, ErrorCode::CallFull);
    }

    #[test]
    fn operator_may_not_publish() {
        let mut call = call_with(&[("op", Role::Operator)]);
        let err = call
            .publish("op", &track("0", TrackKind::Audio))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden);
    }

    #[test]
    fn publish_validates_the_track() {
        let mut call = call_with(&[("company", Role::Company)]);
        let mut bad = track("0", TrackKind::Audio);
        bad.source = TrackSource::Camera;
        assert_eq!(
            call.publish("company", &bad).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        let mut bad = track("0", TrackKind::Audio);
        bad.channel = Some("klingon!".into());
        assert_eq!(
            call.publish("company", &bad).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        let mut bad = track("1", TrackKind::Video);
        bad.layers = vec!["a".into(), "b".into(), "c".into(), "d".into()];
        assert_eq!(
            call.publish("company", &bad).unwrap_err().code,
            ErrorCode::InvalidMessage
        );

        let (audio, _) = call
            .publish("company", &track("0", TrackKind::Audio))
            .unwrap();
        assert_eq!(audio.channel.as_deref(), Some(FLOOR_CHANNEL));
        let dup = call
            .publish("company", &track("0", TrackKind::Audio))
            .unwrap_err();
        assert_eq!(dup.code, ErrorCode::InvalidMessage);
    }

    #[test]
    fn publication_limit() {
        let mut call = call_with(&[("company", Role::Company)]);
        for mid in 0..4 {
            call.publish("company", &track(&mid.to_string(), TrackKind::Video))
                .unwrap();
        }
        let err = call
            .publish("company", &track("9", TrackKind::Video))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::TooManyTracks);
    }

    #[test]
    fn subscribe_is_all_or_nothing_and_reports_new_ones() {
        let mut call = call_with(&[("company", Role::Company), ("buyer", Role::Buyer)]);
        let (video, _) = call
            .publish("company", &track("1", TrackKind::Video))
            .unwrap();
        let err = call
            .subscribe("buyer", &[video.id.clone(), "PB_404".into()])
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownPublication);
        assert!(call.participant("buyer").unwrap().subscriptions.is_empty());

        assert_eq!(
            call.subscribe("buyer", std::slice::from_ref(&video.id))
                .unwrap(),
            vec![video.id.clone()]
        );
        assert!(
            call.subscribe("buyer", std::slice::from_ref(&video.id))
                .unwrap()
                .is_empty()
        );
        let own = call
            .subscribe("company", std::slice::from_ref(&video.id))
            .unwrap_err();
        assert_eq!(own.code, ErrorCode::InvalidMessage);

        assert_eq!(
            call.unsubscribe("buyer", std::slice::from_ref(&video.id))
                .unwrap(),
            vec![video.id.clone()]
        );
        assert!(
            call.unsubscribe("buyer", std::slice::from_ref(&video.id))
                .unwrap()
                .is_empty()
        );
        let unknown = call.unsubscribe("buyer", &["PB_404".into()]).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::UnknownPublication);
    }

    #[test]
    fn only_interpreters_publish_into_language_channels() {
        let mut call = call_with(&[("buyer", Role::Buyer)]);
        call.join(&interpreter("interp", ["ko", "en"])).unwrap();
        let err = call.publish("buyer", &audio("0", "en")).unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden, "{err}");
        assert!(call.interpretation().publications.is_empty());
        let (floor, _) = call.publish("buyer", &audio("0", "floor")).unwrap();
        let (booth, _) = call.publish("interp", &audio("0", "en")).unwrap();
        let channels: Vec<_> = call
            .interpretation()
            .publications
            .iter()
            .map(|p| (p.id.as_str(), p.channel.as_str()))
            .collect();
        assert_eq!(
            channels,
            vec![(floor.id.as_str(), "floor"), (booth.id.as_str(), "en")]
        );
        // Video never enters the routing.
        call.publish("buyer", &track("1", TrackKind::Video))
            .unwrap();
        assert_eq!(call.interpretation().publications.len(), 2);
        call.unpublish("buyer", &floor.id).unwrap();
        assert_eq!(call.interpretation().publications.len(), 1);
        call.leave("interp", LeaveReason::Left);
        assert!(call.interpretation().publications.is_empty());
        assert!(call.interpretation().participant("interp").is_none());
    }

    #[test]
    fn an_interpreter_without_a_pair_cannot_join() {
        let mut call = Call::new("c1", CallLimits::default());
        let err = call.join(&claims("interp", Role::Interpreter)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidToken);
        assert!(call.is_empty());
        assert!(call.interpretation().participants.is_empty());
    }

    #[test]
    fn the_first_token_sets_the_mode_unless_it_was_booked() {
        let simultaneous = |identity: &str, role| JoinClaims {
            mode: Some(InterpretationMode::Simultaneous),
            ..claims(identity, role)
        };
        let mut call = Call::new("c1", CallLimits::default());
        call.join(&simultaneous("company", Role::Company)).unwrap();
        assert_eq!(call.mode(), InterpretationMode::Simultaneous);
        // A later token does not change a running call.
        call.join(&JoinClaims {
            mode: Some(InterpretationMode::Consecutive),
            ..claims("buyer", Role::Buyer)
        })
        .unwrap();
        assert_eq!(call.mode(), InterpretationMode::Simultaneous);

        let mut booked = Call::new("c1", CallLimits::default());
        booked.set_mode(InterpretationMode::Consecutive);
        booked
            .join(&simultaneous("company", Role::Company))
            .unwrap();
        assert_eq!(booked.mode(), InterpretationMode::Consecutive);

        let plain = call_with(&[("company", Role::Company)]);
        assert_eq!(plain.mode(), InterpretationMode::Consecutive);
    }

    #[test]
    fn routing_updates_report_only_what_changed() {
        let mut call = call_with(&[("company", Role::Company), ("buyer", Role::Buyer)]);
        let config = RoutingConfig::default();
        let first = call.update_routing(&config);
        assert_eq!(first.len(), 2, "everyone's first routing");
        assert!(call.update_routing(&config).is_empty());
        let (company_audio, _) = call.publish("company", &audio("0", "floor")).unwrap();
        let changed = call.update_routing(&config);
        let who: Vec<_> = changed.iter().map(|r| r.participant.as_str()).collect();
        assert_eq!(who, vec!["buyer"], "the company's own routing is unchanged");
        assert_eq!(
            changed[0].route(&company_audio.id).map(|r| r.gain),
            Some(1.0)
        );
        assert!(
            call.routing()
                .for_participant("company")
                .unwrap()
                .routes
                .is_empty()
        );
        // Interpretation requests go through the policy, with its error codes.
        let err = call.switch_direction("buyer", "en").unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden);
        let err = call.request_handover("nobody", "buyer").unwrap_err();
        assert_eq!(err.code, ErrorCode::NotJoined);
        call.set_listening_language("buyer", Some("th")).unwrap();
        assert_eq!(
            call.interpretation()
                .participant("buyer")
                .unwrap()
                .listening
                .as_deref(),
            Some("th")
        );
    }

    #[test]
    fn audio_is_routed_and_each_listener_may_mute_it() {
        let mut call = call_with(&[("company", Role::Company), ("buyer", Role::Buyer)]);
        let (audio, _) = call
            .publish("company", &track("0", TrackKind::Audio))
            .unwrap();
        let (video, _) = call
            .publish("company", &track("1", TrackKind::Video))
            .unwrap();
        let config = crate::routing::RoutingConfig::default();
        let hears = |call: &mut Call| {
            call.update_routing(&config);
            call.routing()
                .for_participant("buyer")
                .is_some_and(|r| r.route(&audio.id).is_some())
        };
        // Routed by default; only video is a subscription.
        assert!(hears(&mut call));
        let both = vec![audio.id.clone(), video.id.clone()];
        assert_eq!(
            call.subscribe("buyer", &both).unwrap(),
            vec![video.id.clone()]
        );
        assert_eq!(
            call.participant("buyer").unwrap().subscriptions,
            BTreeSet::from([video.id.clone()])
        );
        // Unsubscribing from audio mutes it for this listener; subscribing unmutes it.
        assert!(
            call.unsubscribe("buyer", std::slice::from_ref(&audio.id))
                .unwrap()
                .is_empty()
        );
        assert!(!hears(&mut call));
        assert!(call.names_audio(std::slice::from_ref(&audio.id)));
        assert!(!call.names_audio(std::slice::from_ref(&video.id)));
        call.subscribe("buyer", std::slice::from_ref(&audio.id))
            .unwrap();
        assert!(hears(&mut call));
        // Audio ids are still checked: one's own is refused, as for video.
        let own = call
            .subscribe("company", std::slice::from_ref(&audio.id))
            .unwrap_err();
        assert_eq!(own.code, ErrorCode::InvalidMessage);
        assert_eq!(call.unsubscribe("buyer", &both).unwrap(), vec![video.id]);
    }

    #[test]
    fn leave_removes_publications_and_subscriptions() {
        let mut call = call_with(&[("company", Role::Company), ("buyer", Role::Buyer)]);
        let (video, _) = call
            .publish("company", &track("1", TrackKind::Video))
            .unwrap();
        call.subscribe("buyer", std::slice::from_ref(&video.id))
            .unwrap();
        let left = call.leave("company", LeaveReason::Left);
        assert_eq!(left.removed_publications, vec![video.id.clone()]);
        assert!(call.participant("buyer").unwrap().subscriptions.is_empty());
        let kinds: Vec<_> = left
            .notices
            .iter()
            .map(|n| match &n.message {
                ServerMessage::PublicationRemoved { .. } => "publication_removed",
                ServerMessage::ParticipantLeft { .. } => "participant_left",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, vec!["publication_removed", "participant_left"]);
    }
}
