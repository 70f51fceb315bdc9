//! The live calls on this server: for each, the control state from `dragoman-signal`, the connected
//! members with their media peers and outboxes, and which media track carries each publication.

use std::collections::HashMap;
use std::sync::Arc;

use dashmap::DashMap;
use dragoman_media::{PeerId, TrackId};
use dragoman_signal::call::{Audience, Call, CallLimits, Notice};
use dragoman_signal::negotiation::SubscriberNegotiation;
use dragoman_signal::protocol::ServerMessage;
use dragoman_signal::{ErrorCode, SignalError};
use tokio::sync::{Mutex, mpsc};

/// What a connection's writer task sends.
#[derive(Debug, Clone)]
pub enum Outbound {
    Message(Box<ServerMessage>),
    /// Send a close frame with this code and reason, then stop.
    Close {
        code: u16,
        reason: String,
    },
}

/// Close codes the server uses (4000–4999 is the application range).
pub mod close_code {
    /// The join token was refused.
    pub const TOKEN_REFUSED: u16 = 4001;
    /// The same identity joined from another connection.
    pub const REPLACED: u16 = 4002;
    /// No `join` within the join timeout.
    pub const JOIN_TIMEOUT: u16 = 4003;
    /// The participant sent `leave`.
    pub const LEFT: u16 = 4004;
    /// An operator asked the client to reconnect its signaling (the membership is kept).
    pub const RECONNECT: u16 = 4005;
    /// An operator ended the call.
    pub const CALL_ENDED: u16 = 4006;
    /// An operator removed the participant from the call.
    pub const REMOVED: u16 = 4007;
    /// The server is shutting down (same as WebSocket "going away").
    pub const SHUTDOWN: u16 = 1001;
}

/// A participant in a call, with or without a signaling connection at the moment.
#[derive(Debug)]
pub struct Member {
    /// The connection that owns this membership (0 while detached); a newer connection of the same
    /// identity replaces or resumes it.
    pub connection: u64,
    /// `None` while detached: the signaling socket dropped and the membership waits, for the
    /// reconnect grace period, for the same identity to join again and resume it.
    pub outbox: Option<mpsc::UnboundedSender<Outbound>>,
    /// When the membership was detached; identifies the detachment its expiry timer belongs to.
    pub detached_at: Option<std::time::Instant>,
    pub publisher: PeerId,
    pub subscriber: PeerId,
    pub negotiation: SubscriberNegotiation,
}

impl Member {
    /// Send a message, if the member has a connection now (a detached member misses it and gets a
    /// fresh snapshot when it resumes).
    pub fn send(&self, message: ServerMessage) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(Outbound::Message(Box::new(message)));
        }
    }

    /// Close the member's signaling socket, if it has one.
    pub fn close(&self, code: u16, reason: &str) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(Outbound::Close {
                code,
                reason: reason.into(),
            });
        }
    }

    pub fn is_detached(&self) -> bool {
        self.outbox.is_none()
    }
}

/// One call on this server.
#[derive(Debug)]
pub struct Room {
    pub call: Call,
    pub members: HashMap<String, Member>,
    /// Publication id → media track.
    pub tracks: HashMap<String, TrackId>,
    /// Set when the room was removed from the registry; a joiner that finds it closed retries.
    pub closed: bool,
    /// Identities an operator removed: they may not join this call again.
    pub removed: std::collections::HashSet<String>,
    /// The media worker that runs this call's peers (all of them: forwarding stays on one thread).
    pub worker: usize,
}

impl Room {
    /// Deliver notices to their audiences.
    pub fn deliver(&self, notices: Vec<Notice>) {
        for notice in notices {
            match &notice.to {
                Audience::AllExcept(skip) => {
                    for (id, member) in &self.members {
                        if id != skip {
                            member.send(notice.message.clone());
                        }
                    }
                }
                Audience::Only(id) => {
                    if let Some(member) = self.members.get(id) {
                        member.send(notice.message);
                    }
                }
            }
        }
    }

    /// The publication a media track carries.
    pub fn publication_of(&self, track: TrackId) -> Option<&str> {
        self.tracks
            .iter()
            .find(|(_, t)| **t == track)
            .map(|(id, _)| id.as_str())
    }
}

/// All calls, by id.
#[derive(Debug)]
pub struct Registry {
    rooms: DashMap<String, Arc<Mutex<Room>>>,
    limits: CallLimits,
    max_calls: usize,
    /// Calls placed on each media worker. A lock, not atomics: choosing the least loaded worker
    /// and counting the call on it must be one step, or two calls starting together both pick
    /// the same worker (and this is taken once per call, not per packet).
    calls_per_worker: std::sync::Mutex<Vec<usize>>,
}

impl Registry {
    /// A registry placing calls on `workers` media workers.
    pub fn new(limits: CallLimits, max_calls: usize, workers: usize) -> Self {
        Registry {
            rooms: DashMap::new(),
            limits,
            max_calls,
            calls_per_worker: std::sync::Mutex::new(vec![0; workers.max(1)]),
        }
    }

    /// The worker with the fewest calls, now counted as having one more.
    fn place_call(&self) -> usize {
        let mut calls = self.calls_per_worker();
        let worker = (0..calls.len())
            .min_by_key(|&w| calls[w])
            .unwrap_or_else(|| unreachable!("at least one worker"));
        calls[worker] += 1;
        worker
    }

    fn calls_per_worker(&self) -> std::sync::MutexGuard<'_, Vec<usize>> {
        // The counts stay consistent even if a holder panicked: each update is one statement.
        self.calls_per_worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The room of a call, created on first use.
    pub fn room(&self, call: &str) -> Result<Arc<Mutex<Room>>, SignalError> {
        if let Some(room) = self.rooms.get(call) {
            return Ok(room.clone());
        }
        if self.rooms.len() >= self.max_calls {
            return Err(SignalError::new(
                ErrorCode::CallFull,
                format!(
                    "this server already runs its maximum of {} calls",
                    self.max_calls
                ),
            ));
        }
        let room = self
            .rooms
            .entry(call.to_owned())
            .or_insert_with(|| {
                Arc::new(Mutex::new(Room {
                    call: Call::new(call, self.limits),
                    members: HashMap::new(),
                    tracks: HashMap::new(),
                    closed: false,
                    removed: Default::default(),
                    worker: self.place_call(),
                }))
            })
            .clone();
        Ok(room)
    }

    /// Look up a room without creating it.
    pub fn get(&self, call: &str) -> Option<Arc<Mutex<Room>>> {
        self.rooms.get(call).map(|r| r.clone())
    }

    /// Remove an empty room. The caller holds its lock and has marked it closed.
    pub fn remove(&self, call: &str, worker: usize) {
        if self.rooms.remove(call).is_some()
            && let Some(calls) = self.calls_per_worker().get_mut(worker)
        {
            *calls = calls.saturating_sub(1);
        }
    }

    pub fn call_count(&self) -> usize {
        self.rooms.len()
    }

    /// Every room, for shutdown.
    pub fn all(&self) -> Vec<Arc<Mutex<Room>>> {
        self.rooms.iter().map(|r| r.value().clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn registry(workers: usize) -> Registry {
        let limits = CallLimits {
            max_participants: 4,
            max_publications_per_participant: 4,
        };
        Registry::new(limits, 10, workers)
    }

    async fn worker_of(registry: &Registry, call: &str) -> usize {
        registry.room(call).unwrap().lock().await.worker
    }

    #[tokio::test]
    async fn calls_started_together_are_spread_evenly() {
        let limits = CallLimits {
            max_participants: 4,
            max_publications_per_participant: 4,
        };
        let registry = Arc::new(Registry::new(limits, 1000, 4));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let registry = registry.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        registry.room(&format!("call-{t}-{i}")).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let mut per_worker = [0; 4];
        for t in 0..8 {
            for i in 0..50 {
                per_worker[worker_of(&registry, &format!("call-{t}-{i}")).await] += 1;
            }
        }
        assert_eq!(per_worker, [100; 4]);
    }

    #[tokio::test]
    async fn calls_go_to_the_worker_with_the_fewest() {
        let registry = registry(2);
        assert_eq!(worker_of(&registry, "a").await, 0);
        assert_eq!(worker_of(&registry, "b").await, 1);
        assert_eq!(
            worker_of(&registry, "a").await,
            0,
            "a call keeps its worker"
        );
        assert_eq!(worker_of(&registry, "c").await, 0);
        // Worker 0 has two calls, worker 1 one; when "a" and "c" end, the next goes to 0 again,
        // and on a tie the first worker wins.
        registry.remove("a", 0);
        registry.remove("c", 0);
        assert_eq!(worker_of(&registry, "d").await, 0);
        assert_eq!(worker_of(&registry, "e").await, 0);
        // Removing a call twice does not count twice: worker 1 is empty now, worker 0 has two.
        registry.remove("b", 1);
        registry.remove("b", 1);
        assert_eq!(worker_of(&registry, "f").await, 1);
        assert_eq!(worker_of(&registry, "g").await, 1);
        assert_eq!(worker_of(&registry, "h").await, 0);
        assert_eq!(registry.call_count(), 5);
    }
}
