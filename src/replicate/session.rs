//! One replication session with one peer, as a state machine: messages and local events in,
//! actions out. The driver (the peer connection actor) sends what it is told to send, reads the
//! entries it is told to serve, and ingests what it is told to ingest.

use std::collections::BTreeMap;

use crate::identity::FeedId;
use crate::limits::{CLOCK_NOTES_MAX, REPLICATION_BATCH_MAX, RESEND_FULL_MAX};
use crate::replicate::clock::{apply, delta, digest, full};
use crate::replicate::{Clock, Msg, PeerMemory, WireEntry};

/// What the session needs to know about this node, asked at the moment of deciding.
pub trait Local {
    /// Latest sequence of `feed` held here (0: none).
    fn seq(&self, feed: &FeedId) -> u64;
    /// Whether this node may serve `feed` to this peer (consent policy, blocks).
    fn may_serve(&self, feed: &FeedId) -> bool;
}

/// What the driver must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this message to the peer.
    Send(Msg),
    /// Read entries `after + 1 ..= upto` of `feed` from the store and send them, in order.
    Serve {
        /// The feed.
        feed: FeedId,
        /// The peer holds up to here.
        after: u64,
        /// Send up to here.
        upto: u64,
    },
    /// Verify and store these entries (they are for a feed this node wants).
    Ingest {
        /// The feed.
        feed: FeedId,
        /// The entries, in order.
        entries: Vec<WireEntry>,
    },
    /// Persist this memory of the exchange with the peer.
    Remember(PeerMemory),
}

/// Why the session must end; each maps to a connection close code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The peer sent entries of a feed this node did not ask for.
    #[error("peer sent entries of {0}, which this node did not ask for")]
    Unsolicited(FeedId),
    /// A message breaks a size bound.
    #[error("peer sent {got} {what}; the most allowed is {max}")]
    TooLarge {
        /// What.
        what: &'static str,
        /// How many.
        got: usize,
        /// The bound.
        max: usize,
    },
    /// The peer keeps asking for the full clock.
    #[error("peer asked for the full clock more than {RESEND_FULL_MAX} times")]
    ResendLoop,
    /// Entries arrived before the peer's clock.
    #[error("peer sent entries before its clock")]
    OutOfOrder,
}

/// A replication session.
#[derive(Debug)]
pub struct Session {
    mine: Clock,
    memory: PeerMemory,
    served: BTreeMap<FeedId, u64>,
    heard: bool,
    resends: u32,
}

impl Session {
    /// A session that will announce `mine` to a peer we remember as `memory`.
    pub fn new(mine: Clock, memory: PeerMemory) -> Self {
        Session {
            mine,
            memory,
            served: BTreeMap::new(),
            heard: false,
            resends: 0,
        }
    }

    /// The opening clock: full if we remember nothing of this peer, else only what changed.
    pub fn start(&mut self) -> Vec<Action> {
        let fresh = self.memory.sent.is_empty() && self.memory.received.is_empty();
        self.announce(fresh)
    }

    /// What we remember of the exchange so far.
    pub fn memory(&self) -> &PeerMemory {
        &self.memory
    }

    /// The feeds being served to the peer and how far.
    pub fn served(&self) -> &BTreeMap<FeedId, u64> {
        &self.served
    }

    /// Our clock as the session knows it.
    pub fn mine(&self) -> &Clock {
        &self.mine
    }

    /// Handle one message from the peer.
    pub fn handle(&mut self, msg: Msg, local: &impl Local) -> Result<Vec<Action>, SessionError> {
        match msg {
            Msg::Clock {
                full,
                notes,
                digest,
            } => self.on_clock(full, &notes, digest, local),
            Msg::ResendFull => {
                self.resends += 1;
                if self.resends > RESEND_FULL_MAX {
                    return Err(SessionError::ResendLoop);
                }
                Ok(self.announce(true))
            }
            Msg::Entries { feed, entries } => self.on_entries(feed, entries),
            // Presence, not replication: taken by the connection before it gets here.
            Msg::StatusKey { .. } => Ok(Vec::new()),
        }
    }

    /// This node now holds `feed` up to `seq` (its own post, or an entry from any peer):
    /// push it to the peer if they want it.
    pub fn local_append(&mut self, feed: FeedId, seq: u64, local: &impl Local) -> Vec<Action> {
        if let Some(held) = self.mine.get_mut(&feed) {
            *held = (*held).max(seq);
        }
        let Some(sent) = self.served.get_mut(&feed) else {
            return Vec::new();
        };
        if seq <= *sent || !local.may_serve(&feed) {
            return Vec::new();
        }
        let after = std::mem::replace(sent, seq);
        vec![Action::Serve {
            feed,
            after,
            upto: seq,
        }]
    }

    /// Our wants changed (a follow, unfollow or block during the session): tell the peer.
    pub fn set_wants(&mut self, mine: Clock) -> Vec<Action> {
        self.mine = mine;
        self.announce(false)
    }

    fn announce(&mut self, full_clock: bool) -> Vec<Action> {
        let notes = if full_clock {
            full(&self.mine)
        } else {
            delta(&self.memory.sent, &self.mine)
        };
        self.memory.sent = self.mine.clone();
        let msg = Msg::Clock {
            full: full_clock,
            notes,
            digest: digest(&self.mine),
        };
        vec![Action::Send(msg), Action::Remember(self.memory.clone())]
    }

    fn on_clock(
        &mut self,
        full_clock: bool,
        notes: &[crate::replicate::Note],
        their_digest: [u8; 32],
        local: &impl Local,
    ) -> Result<Vec<Action>, SessionError> {
        if notes.len() > CLOCK_NOTES_MAX {
            return Err(SessionError::TooLarge {
                what: "clock notes",
                got: notes.len(),
                max: CLOCK_NOTES_MAX,
            });
        }
        if full_clock {
            self.memory.received.clear();
        }
        apply(&mut self.memory.received, notes);
        self.heard = true;
        if digest(&self.memory.received) != their_digest {
            // Our view of their clock is stale: serving from it could resend or skip entries.
            // Serve nothing until the full clock arrives.
            return Ok(vec![Action::Send(Msg::ResendFull)]);
        }
        self.served
            .retain(|feed, _| self.memory.received.contains_key(feed));
        let mut actions = self.serve_all(local);
        actions.push(Action::Remember(self.memory.clone()));
        Ok(actions)
    }

    /// Start serving every feed the peer wants and we may serve; catch up ones already served
    /// if the peer says it holds more than we sent.
    fn serve_all(&mut self, local: &impl Local) -> Vec<Action> {
        let mut actions = Vec::new();
        for (feed, theirs) in &self.memory.received {
            if !local.may_serve(feed) {
                continue;
            }
            let sent = self.served.entry(*feed).or_insert(*theirs);
            *sent = (*sent).max(*theirs);
            let held = local.seq(feed);
            if held > *sent {
                actions.push(Action::Serve {
                    feed: *feed,
                    after: *sent,
                    upto: held,
                });
                *sent = held;
            }
        }
        actions
    }

    fn on_entries(
        &mut self,
        feed: FeedId,
        entries: Vec<WireEntry>,
    ) -> Result<Vec<Action>, SessionError> {
        if !self.heard {
            return Err(SessionError::OutOfOrder);
        }
        if !self.mine.contains_key(&feed) {
            return Err(SessionError::Unsolicited(feed));
        }
        if entries.len() > REPLICATION_BATCH_MAX {
            return Err(SessionError::TooLarge {
                what: "entries",
                got: entries.len(),
                max: REPLICATION_BATCH_MAX,
            });
        }
        // The peer holds what it sends: never echo these entries back to it.
        let last = entries
            .last()
            .and_then(|e| e.entry.header().ok())
            .map(|h| h.seq);
        if let (Some(last), Some(sent)) = (last, self.served.get_mut(&feed)) {
            *sent = (*sent).max(last);
        }
        Ok(vec![Action::Ingest { feed, entries }])
    }
}
