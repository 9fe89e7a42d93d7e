//! The switchboard's forwarding core, sans-IO: frames and `now` in, a forward or a named refusal out.
//!
//! A client sends frames `[32-byte destination key][inner packet]` over its outer connection. The
//! router forwards a frame only between two clients that both consented to an *introduction*
//! ([`Router::open_pair`]), rewrites the header to the sender's *authenticated* key (the key its
//! outer TLS handshake proved, passed in by the driver) so a peer cannot spoof its source, and
//! holds every client to its limits: frame size, a packet and byte token bucket, and the room left
//! in the destination's send queue (the driver reports it; a full queue drops the frame, as a
//! router's tail drop would, and inner QUIC congestion control backs off).
//!
//! Introductions per client are bounded; a client at the bound makes room by closing the pair
//! no frame crossed for longest, once that is past [`RouterConfig::pair_idle_expiry`].
//!
//! Every refusal has a [`Refusal`] reason and a counter. Nothing records who talked to whom: the
//! counters are totals over all clients. The async glue (reading outer datagrams, per-client send
//! queues) lives with the switchboard server.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::bucket::{Rate, TokenBucket};
use crate::identity::FeedId;
use crate::limits;

/// The limits a [`Router`] enforces; [`Default`] takes them from [`crate::limits`].
#[derive(Debug, Clone, PartialEq)]
pub struct RouterConfig {
    /// Largest frame (header included) forwarded.
    pub frame_bytes_max: usize,
    /// Per-client rate limit.
    pub rate: Rate,
    /// Clients tracked at once.
    pub clients_max: usize,
    /// Open pairs per client.
    pub pairs_per_client_max: usize,
    /// A pair no frame crossed for this long may be closed to make room for a new one.
    pub pair_idle_expiry: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            frame_bytes_max: limits::RELAY_FRAME_BYTES_MAX,
            rate: client_rate(
                limits::RELAY_CLIENT_PACKETS_PER_SEC,
                limits::RELAY_CLIENT_BYTES_PER_SEC,
            ),
            clients_max: limits::RELAY_CLIENTS_MAX,
            pairs_per_client_max: limits::RELAY_PAIRS_PER_CLIENT_MAX,
            pair_idle_expiry: limits::RELAY_PAIR_IDLE_EXPIRY,
        }
    }
}

impl RouterConfig {
    /// The defaults with the operator's per-client sustained rates (bursts follow them, see
    /// [`limits::RELAY_CLIENT_BURST_MS`]); rates below the named minimums are refused.
    pub fn with_client_rate(packets_per_sec: u32, bytes_per_sec: u64) -> Result<Self, RateError> {
        if packets_per_sec < limits::RELAY_CLIENT_PACKETS_PER_SEC_MIN {
            return Err(RateError::PacketsTooLow(packets_per_sec));
        }
        if bytes_per_sec < limits::RELAY_CLIENT_BYTES_PER_SEC_MIN {
            return Err(RateError::BytesTooLow(bytes_per_sec));
        }
        Ok(Self {
            rate: client_rate(packets_per_sec, bytes_per_sec),
            ..Self::default()
        })
    }
}

/// Sustained rates, and bursts of [`limits::RELAY_CLIENT_BURST_MS`] at them.
fn client_rate(packets_per_sec: u32, bytes_per_sec: u64) -> Rate {
    let burst = limits::RELAY_CLIENT_BURST_MS as f64 / 1_000.0;
    let (packets_per_sec, bytes_per_sec) = (f64::from(packets_per_sec), bytes_per_sec as f64);
    Rate {
        packets_per_sec,
        packets_burst: packets_per_sec * burst,
        bytes_per_sec,
        bytes_burst: bytes_per_sec * burst,
    }
}

/// A per-client rate the router cannot hold a client to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// Below [`limits::RELAY_CLIENT_PACKETS_PER_SEC_MIN`].
    #[error("a client rate of {0} packets/s is below the minimum of {min}", min = limits::RELAY_CLIENT_PACKETS_PER_SEC_MIN)]
    PacketsTooLow(u32),
    /// Below [`limits::RELAY_CLIENT_BYTES_PER_SEC_MIN`] (a burst would not hold a full frame).
    #[error("a client rate of {0} bytes/s is below the minimum of {min}", min = limits::RELAY_CLIENT_BYTES_PER_SEC_MIN)]
    BytesTooLow(u64),
}

/// Why a frame was not forwarded. Each reason has its own counter in [`RouterStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The sender is not a client of this router.
    UnknownSender,
    /// The sender is over its packet or byte rate.
    RateLimited,
    /// The frame is shorter than the 32-byte header.
    TooShort,
    /// The frame is over [`RouterConfig::frame_bytes_max`].
    TooLarge,
    /// The frame is addressed to its own sender.
    SelfAddressed,
    /// No open introduction between the sender and the destination (or no such client).
    NotIntroduced,
    /// The destination's send queue has no room for the frame.
    QueueFull,
}

impl Refusal {
    /// Every reason, in counter order.
    pub const ALL: [Refusal; 7] = [
        Refusal::UnknownSender,
        Refusal::RateLimited,
        Refusal::TooShort,
        Refusal::TooLarge,
        Refusal::SelfAddressed,
        Refusal::NotIntroduced,
        Refusal::QueueFull,
    ];

    /// A stable name for metrics.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::UnknownSender => "unknown_sender",
            Refusal::RateLimited => "rate_limited",
            Refusal::TooShort => "too_short",
            Refusal::TooLarge => "too_large",
            Refusal::SelfAddressed => "self_addressed",
            Refusal::NotIntroduced => "not_introduced",
            Refusal::QueueFull => "queue_full",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What the driver must do with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `frame` (header now the sender's key) to client `to`.
    Forward {
        /// The destination client.
        to: FeedId,
        /// `[sender key][inner packet]`.
        frame: Bytes,
    },
    /// Drop the frame; the reason has been counted.
    Refuse(Refusal),
}

/// Why a client or an introduction could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    /// [`RouterConfig::clients_max`] clients are already tracked.
    #[error("the switchboard holds its maximum of {0} clients")]
    ClientsFull(usize),
    /// The client is already tracked (one outer connection per key).
    #[error("client {} is already connected", .0.short())]
    AlreadyConnected(FeedId),
    /// One side of the introduction is not a client.
    #[error("client {} is not connected", .0.short())]
    NotConnected(FeedId),
    /// A client cannot be introduced to itself.
    #[error("a client cannot be introduced to itself")]
    SelfPair,
    /// One side already holds [`RouterConfig::pairs_per_client_max`] introductions, all in use.
    #[error("client {} holds its maximum of introductions, all in use", .0.short())]
    PairsFull(FeedId),
}

/// Totals over all clients: frames and bytes forwarded, frames refused per reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Frames forwarded.
    pub forwarded_packets: u64,
    /// Bytes forwarded (headers included).
    pub forwarded_bytes: u64,
    /// Idle introductions closed to make room for new ones.
    pub expired_pairs: u64,
    refused: [u64; Refusal::ALL.len()],
}

impl RouterStats {
    /// Frames refused for `reason`.
    pub fn refused(&self, reason: Refusal) -> u64 {
        self.refused[reason.index()]
    }

    /// Frames refused for any reason.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }
}

#[derive(Debug)]
struct Client {
    /// Introduced peers, and when a frame last crossed to this client's knowledge: opened,
    /// sent by it, or delivered to it from another node.
    pairs: HashMap<FeedId, Instant>,
    bucket: TokenBucket,
}

/// The forwarding state of one switchboard: clients, introductions, limits, counters.
#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    clients: HashMap<FeedId, Client>,
    stats: RouterStats,
}

impl Default for Router {
    fn default() -> Self {
        Self::new(RouterConfig::default())
    }
}

impl Router {
    /// An empty router enforcing `config`.
    pub fn new(config: RouterConfig) -> Self {
        Self {
            config,
            clients: HashMap::new(),
            stats: RouterStats::default(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> &RouterStats {
        &self.stats
    }

    /// Clients tracked.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// True if `id` is a client.
    pub fn is_client(&self, id: &FeedId) -> bool {
        self.clients.contains_key(id)
    }

    /// Introductions `id` holds.
    pub fn pair_count(&self, id: &FeedId) -> usize {
        self.clients.get(id).map_or(0, |c| c.pairs.len())
    }

    /// True if `a` and `b` have an open introduction.
    pub fn is_paired(&self, a: &FeedId, b: &FeedId) -> bool {
        self.clients.get(a).is_some_and(|c| c.pairs.contains_key(b))
    }

    /// Tracks a client whose outer connection proved key `id`, with a full bucket as of `now`.
    pub fn add_client(&mut self, id: FeedId, now: Instant) -> Result<(), RouterError> {
        if self.clients.contains_key(&id) {
            return Err(RouterError::AlreadyConnected(id));
        }
        if self.clients.len() >= self.config.clients_max {
            return Err(RouterError::ClientsFull(self.config.clients_max));
        }
        let bucket = TokenBucket::new(&self.config.rate, now);
        self.clients.insert(
            id,
            Client {
                pairs: HashMap::new(),
                bucket,
            },
        );
        Ok(())
    }

    /// Forgets a client and closes all its introductions; returns the peers it was paired with
    /// (the driver may tell them the peer is gone).
    pub fn remove_client(&mut self, id: &FeedId) -> Vec<FeedId> {
        let Some(client) = self.clients.remove(id) else {
            return Vec::new();
        };
        let peers: Vec<FeedId> = client.pairs.into_keys().collect();
        for peer in &peers {
            if let Some(other) = self.clients.get_mut(peer) {
                other.pairs.remove(id);
            }
        }
        peers
    }

    /// Opens an introduction between `a` and `b` at `now`: frames may then flow both ways. The
    /// driver calls this only once both sides consented. Opening an open pair refreshes it. A
    /// side at its maximum makes room by closing its pair idle longest, if that one is past
    /// [`RouterConfig::pair_idle_expiry`] (its inner QUIC connection has timed out).
    pub fn open_pair(&mut self, a: FeedId, b: FeedId, now: Instant) -> Result<(), RouterError> {
        if a == b {
            return Err(RouterError::SelfPair);
        }
        for (id, other) in [(&a, &b), (&b, &a)] {
            let client = self.clients.get(id).ok_or(RouterError::NotConnected(*id))?;
            let full = !client.pairs.contains_key(other)
                && client.pairs.len() >= self.config.pairs_per_client_max;
            if full && !self.expire_idlest_pair(id, now) {
                return Err(RouterError::PairsFull(*id));
            }
        }
        for (id, other) in [(a, b), (b, a)] {
            if let Some(client) = self.clients.get_mut(&id) {
                client.pairs.insert(other, now);
            }
        }
        Ok(())
    }

    /// Closes `id`'s pair idle longest (no frame either way) if it is past the expiry; true if
    /// one was closed.
    fn expire_idlest_pair(&mut self, id: &FeedId, now: Instant) -> bool {
        let Some(client) = self.clients.get(id) else {
            return false;
        };
        let last_used = |peer: &FeedId, ours: Instant| {
            let theirs = self.clients.get(peer).and_then(|p| p.pairs.get(id));
            theirs.map_or(ours, |theirs| ours.max(*theirs))
        };
        let idlest = client
            .pairs
            .iter()
            .map(|(peer, ours)| (*peer, last_used(peer, *ours)))
            .min_by_key(|(_, at)| *at);
        match idlest {
            Some((peer, at))
                if now.saturating_duration_since(at) >= self.config.pair_idle_expiry =>
            {
                self.close_pair(id, &peer);
                self.stats.expired_pairs += 1;
                true
            }
            _ => false,
        }
    }

    /// Closes the introduction between `a` and `b`; true if it was open.
    pub fn close_pair(&mut self, a: &FeedId, b: &FeedId) -> bool {
        let mut was_open = false;
        for (id, other) in [(a, b), (b, a)] {
            if let Some(client) = self.clients.get_mut(id) {
                was_open |= client.pairs.remove(other).is_some();
            }
        }
        was_open
    }

    /// Decides what to do with `frame` received at `now` from the client whose outer connection
    /// proved `from`. `room(to)` must return the bytes `to`'s send queue can still take.
    ///
    /// Every frame from a known client is charged to its bucket first, refused ones included, so
    /// that a flood of bad frames is throttled like any other.
    pub fn route(
        &mut self,
        from: &FeedId,
        frame: Bytes,
        now: Instant,
        room: impl FnOnce(&FeedId) -> usize,
    ) -> Action {
        match self.check(from, &frame, now, room) {
            Ok(to) => self.outcome(Ok(to), stamp_source(frame, from)),
            Err(reason) => self.outcome(Err(reason), frame),
        }
    }

    /// Counts a decision and turns it into an action.
    fn outcome(&mut self, checked: Result<FeedId, Refusal>, frame: Bytes) -> Action {
        match checked {
            Ok(to) => {
                self.stats.forwarded_packets += 1;
                self.stats.forwarded_bytes += frame.len() as u64;
                Action::Forward { to, frame }
            }
            Err(reason) => {
                self.stats.refused[reason.index()] += 1;
                Action::Refuse(reason)
            }
        }
    }

    fn check(
        &mut self,
        from: &FeedId,
        frame: &[u8],
        now: Instant,
        room: impl FnOnce(&FeedId) -> usize,
    ) -> Result<FeedId, Refusal> {
        let rate = &self.config.rate;
        let sender = self.clients.get_mut(from).ok_or(Refusal::UnknownSender)?;
        if !sender.bucket.take(rate, frame.len(), now) {
            return Err(Refusal::RateLimited);
        }
        let header = frame
            .get(..limits::RELAY_HEADER_BYTES)
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
            .ok_or(Refusal::TooShort)?;
        if frame.len() > self.config.frame_bytes_max {
            return Err(Refusal::TooLarge);
        }
        let to = FeedId(header);
        if to == *from {
            return Err(Refusal::SelfAddressed);
        }
        // Pairs are symmetric and closed on removal, so a pair implies `to` is a client.
        *sender.pairs.get_mut(&to).ok_or(Refusal::NotIntroduced)? = now;
        if room(&to) < frame.len() {
            return Err(Refusal::QueueFull);
        }
        Ok(to)
    }
}

impl Router {
    /// Decides what to do with `frame`, received at `now` already stamped `[from][inner packet]`
    /// by the node of `from` (a client of another cluster node), for local client `to`. That
    /// node charged the sender's bucket; this one checks the stamp, the size, the introduction
    /// and the room.
    pub fn deliver(
        &mut self,
        to: FeedId,
        frame: Bytes,
        now: Instant,
        room: impl FnOnce(&FeedId) -> usize,
    ) -> Action {
        let checked = self.check_delivery(to, &frame, now, room);
        self.outcome(checked, frame)
    }

    fn check_delivery(
        &mut self,
        to: FeedId,
        frame: &[u8],
        now: Instant,
        room: impl FnOnce(&FeedId) -> usize,
    ) -> Result<FeedId, Refusal> {
        let from = frame
            .get(..limits::RELAY_HEADER_BYTES)
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
            .map(FeedId)
            .ok_or(Refusal::TooShort)?;
        if frame.len() > self.config.frame_bytes_max {
            return Err(Refusal::TooLarge);
        }
        if !self.is_paired(&from, &to) {
            return Err(Refusal::NotIntroduced);
        }
        if let Some(used) = self
            .clients
            .get_mut(&to)
            .and_then(|c| c.pairs.get_mut(&from))
        {
            *used = now;
        }
        if room(&to) < frame.len() {
            return Err(Refusal::QueueFull);
        }
        Ok(to)
    }
}

/// Replaces the 32-byte header of `frame` with `from`, in place when `frame` is not shared.
fn stamp_source(frame: Bytes, from: &FeedId) -> Bytes {
    let mut frame = frame
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
    frame[..limits::RELAY_HEADER_BYTES].copy_from_slice(&from.0);
    frame.freeze()
}

#[cfg(test)]
mod tests;
