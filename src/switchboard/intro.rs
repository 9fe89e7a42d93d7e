//! The introduction policy of one switchboard session, sans-IO: what a session does when its peer
//! asks to be introduced, when another peer asks to reach its peer, and when its peer answers.
//!
//! Why apart from the session actor: the policy (a per-peer rate on introductions asked, a bound
//! on the introductions asked of the peer and not yet answered, the reasons for a refusal) is a
//! small state machine that can be tested without a connection, an actor or a clock. Time is
//! passed in as an [`Instant`]; each event returns a [`Decision`] that the session carries out
//! (casting to another session, sending a [`NodeMsg`](crate::wire::switchboard::NodeMsg),
//! opening a relay pair, counting). It is generic over the asker `A` (where an answer goes), so
//! that it knows nothing of actors.
//!
//! Addresses: a request is shown to the callee without the caller's address, and the callee
//! answers with one of three outcomes ([`IntroAnswer`]). Only a [`IntroAnswer::Direct`] answer
//! lets the addresses cross ([`Decision::Accept`] with `punch`); with
//! [`IntroAnswer::RelayOnly`] the pair is relayed and neither side learns where the other is.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use crate::identity::FeedId;
use crate::limits::{INTRODUCTIONS_PENDING_MAX, SB_INTRODUCTIONS_BURST, SB_INTRODUCTIONS_PER_SEC};
use crate::relay::bucket::{Rate, TokenBucket};
use crate::relay::RouterError;
use crate::wire::switchboard::IntroAnswer;

/// Why an introduction was refused; the message is what the asking peer is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntroError {
    /// The peer asked for more introductions than [`introduction_rate`] allows.
    #[error(
        "too many introductions asked: at most {} a second; try again later",
        SB_INTRODUCTIONS_PER_SEC
    )]
    OverRate,
    /// The peer asked to be introduced to itself.
    #[error("that is your own id")]
    SelfIntroduction,
    /// The id is not connected to this switchboard (or left before answering).
    #[error("{0} is not connected to this switchboard")]
    NotConnected(FeedId),
    /// The id is not connected to any node of this switchboard's cluster that was asked.
    #[error("{0} is not connected to this switchboard cluster")]
    NotInCluster(FeedId),
    /// The id is on another node of the cluster, whose link is down or full.
    #[error("{0} is on another switchboard node that cannot be reached now")]
    NodeUnreachable(FeedId),
    /// The id has [`INTRODUCTIONS_PENDING_MAX`] introductions asked of it and not answered.
    #[error("{0} has too many introductions pending; try again later")]
    TooManyPending(FeedId),
    /// The id's peer said no (its policy: it does not follow the caller).
    #[error("{0} refused the introduction: they do not follow you")]
    Declined(FeedId),
    /// Both agreed, but the relay pair could not be opened.
    #[error("the switchboard cannot relay between you: {0}")]
    CannotRelay(RelayError),
    /// A refusal another node of the cluster sent, as the text it sent.
    #[error("{0}")]
    Remote(String),
    /// The callee's own refusal ([`IntroError::Declined`]) relayed by another node of the
    /// cluster, as the text it sent.
    #[error("{0}")]
    RemoteDeclined(String),
}

/// Why the switchboard could not relay between two introduced peers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The cluster node the other peer is on has no link to this one.
    #[error("the other node is not linked")]
    NodeNotLinked,
    /// The relay hub refused the pair.
    #[error(transparent)]
    Router(#[from] RouterError),
}

/// The reasons an introduction is refused, one counter each on a switchboard's `kith status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// [`IntroError::OverRate`].
    OverRate,
    /// [`IntroError::SelfIntroduction`].
    SelfIntroduction,
    /// [`IntroError::NotConnected`] or [`IntroError::NotInCluster`].
    NotConnected,
    /// [`IntroError::NodeUnreachable`].
    NodeUnreachable,
    /// [`IntroError::TooManyPending`].
    TooManyPending,
    /// [`IntroError::Declined`].
    Declined,
    /// [`IntroError::CannotRelay`].
    CannotRelay,
    /// [`IntroError::Remote`]: another node's refusal, as text.
    Remote,
}

impl RefusalKind {
    /// Every kind, in counter order.
    pub const ALL: [RefusalKind; 8] = [
        Self::OverRate,
        Self::SelfIntroduction,
        Self::NotConnected,
        Self::NodeUnreachable,
        Self::TooManyPending,
        Self::Declined,
        Self::CannotRelay,
        Self::Remote,
    ];

    /// The counter's name in `kith status --json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::OverRate => "over_rate",
            Self::SelfIntroduction => "self",
            Self::NotConnected => "not_connected",
            Self::NodeUnreachable => "node_unreachable",
            Self::TooManyPending => "too_many_pending",
            Self::Declined => "declined",
            Self::CannotRelay => "cannot_relay",
            Self::Remote => "remote",
        }
    }
}

impl IntroError {
    /// Which counter this refusal goes to.
    pub fn kind(&self) -> RefusalKind {
        match self {
            Self::OverRate => RefusalKind::OverRate,
            Self::SelfIntroduction => RefusalKind::SelfIntroduction,
            Self::NotConnected(_) | Self::NotInCluster(_) => RefusalKind::NotConnected,
            Self::NodeUnreachable(_) => RefusalKind::NodeUnreachable,
            Self::TooManyPending(_) => RefusalKind::TooManyPending,
            Self::Declined(_) | Self::RemoteDeclined(_) => RefusalKind::Declined,
            Self::CannotRelay(_) => RefusalKind::CannotRelay,
            Self::Remote(_) => RefusalKind::Remote,
        }
    }

    /// The callee itself said no (here or on another node), rather than the switchboard being
    /// unable to introduce: the caller is told it is not followed.
    pub fn declined(&self) -> bool {
        matches!(self, Self::Declined(_) | Self::RemoteDeclined(_))
    }
}

impl From<RouterError> for IntroError {
    fn from(e: RouterError) -> Self {
        IntroError::CannotRelay(RelayError::Router(e))
    }
}

/// How many introductions one peer may ask for.
pub fn introduction_rate() -> Rate {
    Rate::count(
        f64::from(SB_INTRODUCTIONS_PER_SEC),
        f64::from(SB_INTRODUCTIONS_BURST),
    )
}

/// What the session does after an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision<A> {
    /// Nothing (an answer to a request that is not pending).
    Nothing,
    /// Tell this peer its request to reach `to` is refused; counted as a refused introduction.
    Refuse {
        /// Whom this peer asked for.
        to: FeedId,
        /// Why.
        error: IntroError,
    },
    /// Find `to` (a session on this node, else the cluster node it is on) and ask it on this
    /// peer's behalf; if it cannot be found, [`Decision::Refuse`] it.
    Forward {
        /// Whom this peer asked for.
        to: FeedId,
    },
    /// Show this peer the request of `from` (without its address); the answer comes later.
    Show {
        /// Who asks.
        from: FeedId,
    },
    /// Answer `caller` through `asker` with `error`, not counted (the request never reached
    /// this peer, or this peer left).
    Reply {
        /// Who asked.
        caller: FeedId,
        /// Where the answer goes.
        asker: A,
        /// Why it was refused.
        error: IntroError,
    },
    /// This peer said no: answer `caller` through `asker` with `error`; counted as refused.
    Decline {
        /// Who asked.
        caller: FeedId,
        /// Where the answer goes.
        asker: A,
        /// Why it was refused.
        error: IntroError,
    },
    /// This peer said yes: open the relay pair with `caller` (on this node, or across the cluster
    /// per `asker`), count the outcome and answer `caller` through `asker`. With `punch` (a
    /// [`IntroAnswer::Direct`] answer) this peer is told the caller's address and the caller is
    /// told this peer's; without it (relay only) neither is.
    Accept {
        /// Who asked.
        caller: FeedId,
        /// Where the answer goes.
        asker: A,
        /// The caller's observed address, for this peer to dial, if the answer was direct.
        punch: Option<SocketAddr>,
    },
}

/// The introduction state of one session's peer.
#[derive(Debug)]
pub struct Introductions<A> {
    /// The peer the session serves.
    peer: FeedId,
    /// Introductions this peer may still ask for ([`introduction_rate`]).
    bucket: TokenBucket,
    /// Introductions asked of this peer and not yet answered, at most
    /// [`INTRODUCTIONS_PENDING_MAX`], by caller, with the caller's observed address (kept here,
    /// shown to this peer only if it answers [`IntroAnswer::Direct`]).
    pending: HashMap<FeedId, (A, SocketAddr)>,
}

impl<A> Introductions<A> {
    /// No introduction pending and a full rate, as of `now`.
    pub fn new(peer: FeedId, now: Instant) -> Self {
        Self {
            peer,
            bucket: TokenBucket::new(&introduction_rate(), now),
            pending: HashMap::new(),
        }
    }

    /// This peer asks to be introduced to `to`: past its rate or to itself, refused; otherwise
    /// forwarded. A refused request still spends its token.
    pub fn introduce(&mut self, to: FeedId, now: Instant) -> Decision<A> {
        if !self.bucket.take(&introduction_rate(), 0, now) {
            return Decision::Refuse {
                to,
                error: IntroError::OverRate,
            };
        }
        if to == self.peer {
            return Decision::Refuse {
                to,
                error: IntroError::SelfIntroduction,
            };
        }
        Decision::Forward { to }
    }

    /// `from`, seen at `observed`, asks to reach this peer, answered through `asker`: shown to
    /// this peer (without the address) and kept pending, unless too many are pending already. A second request from the same caller
    /// replaces the first (whose asker is dropped unanswered) and is always let through.
    pub fn ask(&mut self, from: FeedId, asker: A, observed: SocketAddr) -> Decision<A> {
        if self.pending.len() >= INTRODUCTIONS_PENDING_MAX && !self.pending.contains_key(&from) {
            return Decision::Reply {
                caller: from,
                asker,
                error: IntroError::TooManyPending(self.peer),
            };
        }
        self.pending.insert(from, (asker, observed));
        Decision::Show { from }
    }

    /// This peer answered the request of `from`; nothing if none is pending.
    pub fn answer(&mut self, from: FeedId, answer: IntroAnswer) -> Decision<A> {
        let Some((asker, observed)) = self.pending.remove(&from) else {
            return Decision::Nothing;
        };
        let caller = from;
        match answer {
            IntroAnswer::Direct => Decision::Accept {
                caller,
                asker,
                punch: Some(observed),
            },
            IntroAnswer::RelayOnly => Decision::Accept {
                caller,
                asker,
                punch: None,
            },
            IntroAnswer::Refuse => Decision::Decline {
                caller,
                asker,
                error: IntroError::Declined(self.peer),
            },
        }
    }

    /// This peer left: every pending request is answered that it is not connected.
    pub fn abandon(&mut self) -> Vec<Decision<A>> {
        let peer = self.peer;
        self.pending
            .drain()
            .map(|(caller, (asker, _))| Decision::Reply {
                caller,
                asker,
                error: IntroError::NotConnected(peer),
            })
            .collect()
    }

    /// How many requests are pending.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests;
