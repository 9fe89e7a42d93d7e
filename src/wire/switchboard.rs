//! The messages between a daemon and a switchboard, and between the switchboard nodes of a
//! cluster, on a connection's control stream after the hello.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::identity::FeedId;
use crate::limits::{PRESENCE_VISIBLE_IDS_MAX, SEALED_STATUS_BYTES_MAX, STATUS_BYTES_MAX};

/// The presence topic every connected peer is tracked in.
pub const PEERS_TOPIC: &str = "peers";

/// Daemon → switchboard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// Ask to be admitted (with an invite code on an invite-only switchboard).
    Join {
        /// Invite code, if any.
        invite: Option<String>,
    },
    /// Set (or clear) the status line shown to those this peer lets watch it, sealed end to end
    /// to them: the switchboard stores and forwards only the ciphertext.
    SetStatus {
        /// The sealed text, at most [`SEALED_STATUS_BYTES_MAX`] bytes of ciphertext.
        status: Option<SealedStatus>,
    },
    /// Replace the list of ids this peer wants to hear about.
    Watch {
        /// The ids.
        #[serde(deserialize_with = "grown_vec")]
        ids: Vec<FeedId>,
    },
    /// Ask to be introduced to `to`: the switchboard asks them, and if they accept, forwards
    /// packets between the two.
    Introduce {
        /// Whom.
        to: FeedId,
    },
    /// The answer to an [`ServerMsg::IntroRequest`].
    IntroAnswer {
        /// Who asked.
        from: FeedId,
        /// What this peer lets the caller have: a direct path, the relay only, or nothing.
        answer: IntroAnswer,
    },
    /// Who may see this peer's presence: the watchers its notices go to. Until a peer says, it
    /// is shown to nobody (everyone else is answered as if it were offline).
    VisibleTo {
        /// The allowed watchers (at most [`PRESENCE_VISIBLE_IDS_MAX`]), or `None` for everyone.
        ids: Option<Vec<FeedId>>,
    },
}

/// A callee's answer to an introduction, decided by its policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntroAnswer {
    /// Relay, and let each side learn the other's observed address so that they can punch a
    /// direct path ([`ServerMsg::PunchTo`] to the callee, the address in
    /// [`ServerMsg::Introduced`] to the caller).
    Direct,
    /// Relay only: neither side is told the other's address.
    RelayOnly,
    /// No introduction: the caller is told the callee does not follow it.
    Refuse,
}

/// Switchboard → daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// Admitted; the address the switchboard sees this peer at.
    Welcome {
        /// The peer's observed address.
        observed: SocketAddr,
    },
    /// Not admitted (or a request was refused); a sentence saying why.
    Refused {
        /// Why.
        reason: String,
    },
    /// `from` asks to be introduced; answer with [`ClientMsg::IntroAnswer`]. It carries no
    /// address: the caller's is given only once this peer answers
    /// [`IntroAnswer::Direct`] ([`ServerMsg::PunchTo`]).
    IntroRequest {
        /// Who asks.
        from: FeedId,
    },
    /// The introduction to `peer` was accepted: packets to and from them are forwarded now.
    Introduced {
        /// Whom.
        peer: FeedId,
        /// The address the switchboard sees them at (for a direct attempt), if they answered
        /// [`IntroAnswer::Direct`]; `None` for the relay only.
        observed: Option<SocketAddr>,
    },
    /// The introduction to `to` was refused; a sentence saying why.
    IntroRefused {
        /// Whom.
        to: FeedId,
        /// Why.
        reason: String,
        /// The callee itself said no ([`IntroAnswer::Refuse`]: it does not follow the caller),
        /// rather than the switchboard being unable to introduce them.
        declined: bool,
    },
    /// A watched id came online, changed status, or went away (`online: None`).
    Presence {
        /// Whom.
        id: FeedId,
        /// Their presence, if online.
        online: Option<PeerMeta>,
    },
    /// The join was refused; `why` tells the daemon whether trying again can help.
    JoinRefused {
        /// What kind of refusal.
        why: JoinRefusal,
        /// A sentence saying why.
        reason: String,
    },
    /// This peer answered `peer`'s request [`IntroAnswer::Direct`]: the pair is open on the
    /// relay, and `peer` is seen at `observed`; dial it there (this opens this side's NAT toward
    /// it).
    PunchTo {
        /// The caller.
        peer: FeedId,
        /// Where the switchboard sees them.
        observed: SocketAddr,
    },
}

/// Why a switchboard refused a join, as far as the daemon's retries are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinRefusal {
    /// Only the user can fix it: a missing, unknown, used or expired invite code, or a
    /// membership the operator removed. The daemon waits for a new code.
    Invite,
    /// The switchboard is full or throttling this client: try again later.
    Busy,
    /// Anything else (the switchboard could not save its membership, …): try again later.
    Other,
}

/// Switchboard node → switchboard node, on the cluster link's control stream: introductions
/// between clients of different nodes, and the packets relayed between them, batched per node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeMsg {
    /// `from`, a client of the sending node, asks to reach `to`, a client of the receiving node.
    Introduce {
        /// The caller.
        from: FeedId,
        /// The callee.
        to: FeedId,
        /// The caller's observed address (for hole punching).
        observed: SocketAddr,
    },
    /// The answer of `callee` (a client of the sending node) to `caller`: when it accepted
    /// (the sending node has opened its side of the pair), its observed address if it answered
    /// [`IntroAnswer::Direct`] (none for the relay only); or why not.
    Answer {
        /// Who was asked.
        callee: FeedId,
        /// Who asked.
        caller: FeedId,
        /// The callee's observed address (direct) or none (relay only), or the reason for the
        /// refusal.
        result: Result<Option<SocketAddr>, String>,
        /// The callee itself refused ([`IntroAnswer::Refuse`]).
        declined: bool,
    },
    /// Relayed frames for clients of the receiving node.
    Packets(#[serde(deserialize_with = "grown_vec")] Vec<NodePacket>),
    /// `owner`, a client of the sending node, took `watchers` off its allow-list in version
    /// `seq` of its presence meta (of its connection since `since_ms`): they must see it offline
    /// now, before the presence CRDT carries that version here at its next broadcast.
    Revoke {
        /// Whose presence.
        owner: FeedId,
        /// Its connection's `since_ms`.
        since_ms: u64,
        /// The meta version that no longer allows them.
        seq: u64,
        /// Who lost the view (at most [`PRESENCE_VISIBLE_IDS_MAX`]).
        #[serde(deserialize_with = "grown_vec")]
        watchers: Vec<FeedId>,
    },
}

/// One relayed frame crossing the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePacket {
    /// The destination, a client of the receiving node.
    pub to: FeedId,
    /// `[source key][inner packet]`, already stamped by the source's node.
    pub frame: Vec<u8>,
}

/// What a watcher is told about a connected peer (the part of the presence meta a notice
/// carries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerMeta {
    /// Connected since (ms since the epoch).
    pub since_ms: u64,
    /// The switchboard node holding the connection.
    pub node: String,
    /// The peer's status line, sealed to the people it lets watch it.
    pub status: Option<SealedStatus>,
}

/// A status line sealed end to end (see `daemon::uplink::seal`): opaque to a switchboard,
/// opened by a watcher holding the content key of `epoch`, given to it by the peer over their
/// own end-to-end connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedStatus {
    /// Which of the peer's content keys sealed it.
    pub epoch: u64,
    /// The nonce.
    pub nonce: [u8; 24],
    /// The ciphertext (the padded text and its tag).
    pub sealed: Vec<u8>,
}

/// What the presence CRDT holds about a connected peer: what watchers are told, and whom to
/// tell. It travels with the presence to every node of the cluster, so each node enforces it.
/// Held in memory only, like the rest of the CRDT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedMeta {
    /// What an allowed watcher is told.
    pub peer: PeerMeta,
    /// Who may watch (`None`: everyone).
    pub visible_to: Option<Vec<FeedId>>,
    /// The version of this meta within its connection (grows with each change), so that a node
    /// told of a revocation ([`NodeMsg::Revoke`]) knows when its CRDT has caught up.
    pub seq: u64,
}

impl TrackedMeta {
    /// Encode as presence meta bytes.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decode presence meta bytes.
    pub fn decode(bytes: &[u8]) -> Option<TrackedMeta> {
        postcard::from_bytes(bytes).ok()
    }

    /// Whether `watcher` may see this presence (a peer always sees itself).
    pub fn shown_to(&self, watcher: &FeedId, owner: &FeedId) -> bool {
        watcher == owner
            || self
                .visible_to
                .as_ref()
                .is_none_or(|ids| ids.contains(watcher))
    }
}

/// Check a status line against its bound.
pub fn check_status(text: &Option<String>) -> Result<(), String> {
    match text {
        Some(t) if t.len() > STATUS_BYTES_MAX => Err(format!(
            "a status line may be at most {STATUS_BYTES_MAX} bytes (this one is {})",
            t.len()
        )),
        _ => Ok(()),
    }
}

/// Check a sealed status line against its bound.
pub fn check_sealed_status(status: &Option<SealedStatus>) -> Result<(), String> {
    match status {
        Some(s) if s.sealed.len() > SEALED_STATUS_BYTES_MAX => Err(format!(
            "a sealed status line may be at most {SEALED_STATUS_BYTES_MAX} bytes (a {STATUS_BYTES_MAX}-byte \
             line, padded and sealed; this one is {})",
            s.sealed.len()
        )),
        _ => Ok(()),
    }
}

/// Check an allow-list against its bound.
pub fn check_visible_to(ids: &Option<Vec<FeedId>>) -> Result<(), String> {
    match ids {
        Some(ids) if ids.len() > PRESENCE_VISIBLE_IDS_MAX => Err(format!(
            "at most {PRESENCE_VISIBLE_IDS_MAX} ids may be allowed to see a presence (this list \
             has {})",
            ids.len()
        )),
        _ => Ok(()),
    }
}

/// Decodes a list from another process without trusting its declared length: serde's cautious
/// size hint would reserve up to 1 MiB on a length prefix alone (a 3-byte frame claiming 1,171
/// relayed packets reserved 64 KiB); this grows only with the elements actually read, each of
/// which consumed input bytes.
fn grown_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Grown<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Grown<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Grown(std::marker::PhantomData))
}
