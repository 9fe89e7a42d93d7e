//! One tracker shard as a sans-IO state machine: events and `now` in, actions out.
//!
//! A shard owns one [`State`], the table of remote [`Replicas`], the generation ladder and the
//! pull bookkeeping. Its driver (an actor, or the simulator) calls [`Shard::tick`] when
//! [`Shard::next_tick`] is due, feeds inbound frames to [`Shard::receive`], calls the client
//! operations, and then drains [`Shard::drain_actions`] to send frames and publish diffs.
//!
//! Beyond Phoenix: a replica met for the first time (or back from down) is asked for a transfer
//! at once, and a transfer request from an unknown replica counts as first contact; so a new
//! node catches up in a round trip instead of waiting for idle heartbeats. Clocks received from
//! peers are cut to the replicas we know before the pull decision, so a replica we cannot learn
//! about never makes us pull forever (#135).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::clock::{append_clock, filter_replicas};
use super::delta::{Ctx, Payload};
use super::generations::Generations;
use super::message::{Envelope, Message};
use super::options::{Options, OptionsError};
use super::replica::{ReplicaStatus, Replicas, Transition};
use super::state::{State, StateError};
use super::types::{Diff, Meta, Millis, Owner, Presence, ReplicaName, ReplicaRef};
use crate::limits;

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send to every other node's shard of the same index.
    Broadcast(Envelope),
    /// Send to one node.
    SendTo(ReplicaName, Envelope),
    /// Publish a diff to subscribers (and apply it to the read view).
    Diff(Diff),
    /// A replica changed liveness (for observers and tests).
    Replica(Transition),
    /// An inbound frame was refused.
    Refused {
        /// Who sent it.
        from: ReplicaName,
        /// Why.
        reason: Refusal,
    },
}

/// Why an inbound frame was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The sender runs another shard count: topics would never meet.
    #[error("shard count mismatch: ours {ours}, theirs {theirs}")]
    ShardCountMismatch {
        /// Our shard count.
        ours: u16,
        /// Theirs.
        theirs: u16,
    },
    /// Addressed to another shard index.
    #[error("frame for shard {0} delivered to another shard")]
    WrongShard(u16),
    /// The transport's sender and the message's sender differ.
    #[error("sender name does not match the transport peer")]
    Spoofed,
    /// Too many replica names already tracked.
    #[error("replica table full")]
    TooManyReplicas,
}

/// A client operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// From the CRDT.
    #[error(transparent)]
    State(#[from] StateError),
}

/// One shard. See the module doc.
#[derive(Debug)]
pub struct Shard {
    opts: Options,
    index: u16,
    state: State,
    replicas: Replicas,
    gens: Generations,
    clockset: Vec<(ReplicaRef, Ctx)>,
    silent: u32,
    sample_countdown: u32,
    next_req: u64,
    next_tick: Millis,
    actions: Vec<Action>,
    transfers_requested: u64,
}

impl Shard {
    /// A new shard for incarnation `me`, started at `now`. The first tick is jittered by up to
    /// a quarter of the broadcast period (from `seed`) so that nodes do not tick in lockstep.
    pub fn new(
        me: ReplicaRef,
        index: u16,
        opts: Options,
        seed: u64,
        now: Millis,
    ) -> Result<Self, OptionsError> {
        opts.validate()?;
        let jitter = StdRng::seed_from_u64(seed).gen_range(0..=opts.broadcast_period / 4);
        Ok(Self {
            index,
            state: State::new(me),
            replicas: Replicas::new(),
            gens: Generations::new(opts.max_delta_sizes.clone()),
            clockset: Vec::new(),
            silent: opts.max_silent_periods,
            sample_countdown: opts.clock_sample_periods,
            next_req: 0,
            next_tick: now + jitter,
            actions: Vec::new(),
            transfers_requested: 0,
            opts,
        })
    }

    /// The CRDT (for reads in tests and the simulator).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The remote replica table.
    pub fn replicas(&self) -> &Replicas {
        &self.replicas
    }

    /// The generation ladder.
    pub fn generations(&self) -> &Generations {
        &self.gens
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// This shard's index.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// How many transfer requests this shard has sent.
    pub fn transfers_requested(&self) -> u64 {
        self.transfers_requested
    }

    /// When the next tick is due.
    pub fn next_tick(&self) -> Millis {
        self.next_tick
    }

    /// Takes the pending actions.
    pub fn drain_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    fn push(&mut self, action: Action) {
        if self.actions.len() < limits::MAX_SHARD_ACTIONS {
            self.actions.push(action);
        } else {
            tracing::warn!(
                shard = self.index,
                "presence shard action buffer full; dropping an action"
            );
        }
    }

    fn envelope(&self, message: Message) -> Envelope {
        Envelope {
            shard: self.index,
            shard_count: self.opts.shard_count,
            message,
        }
    }

    fn emit(&mut self, diff: Diff) {
        if !diff.is_empty() {
            self.push(Action::Diff(diff));
        }
    }

    fn me(&self) -> ReplicaRef {
        self.state.replica().clone()
    }

    // ----- client operations -------------------------------------------------------------------

    /// Tracks a presence for a local owner.
    pub fn track(
        &mut self,
        owner: Owner,
        topic: &str,
        key: &str,
        meta: Meta,
    ) -> Result<Presence, ShardError> {
        let diff = self.state.track(owner, topic, key, meta)?;
        let p = diff.joins.first().cloned();
        self.emit(diff);
        p.ok_or(ShardError::State(StateError::NoPresence))
    }

    /// Untracks one presence; untracking nothing is fine.
    pub fn untrack(&mut self, owner: Owner, topic: &str, key: &str) {
        let diff = self.state.untrack(owner, topic, key);
        self.emit(diff);
    }

    /// Untracks every presence of an owner (it exited).
    pub fn untrack_owner(&mut self, owner: Owner) {
        let diff = self.state.untrack_owner(owner);
        self.emit(diff);
    }

    /// Replaces the meta of a presence in one step; returns the new version.
    pub fn update(
        &mut self,
        owner: Owner,
        topic: &str,
        key: &str,
        f: impl FnOnce(&Meta) -> Meta,
    ) -> Result<Presence, ShardError> {
        let diff = self.state.update(owner, topic, key, f)?;
        let p = diff.joins.first().cloned();
        self.emit(diff);
        p.ok_or(ShardError::State(StateError::NoPresence))
    }

    /// Announces a graceful shutdown so that peers drop this replica at once.
    pub fn graceful_permdown(&mut self) {
        let env = self.envelope(Message::GracefulPermdown { from: self.me() });
        self.push(Action::Broadcast(env));
    }

    /// The transport connected to a peer node (again): exchange clocks with it right away.
    pub fn peer_connected(&mut self, peer: &ReplicaName) {
        let known = self.replicas.get(peer).map(|r| r.r#ref.clone());
        if let Some(r) = known {
            self.request_transfer(&r);
        }
    }

    // ----- timer -------------------------------------------------------------------------------

    /// Runs the tick if it is due: broadcast, pull decision, failure detection.
    pub fn tick(&mut self, now: Millis) {
        if now < self.next_tick {
            return;
        }
        self.broadcast_heartbeat();
        self.sample_clocks();
        let transitions =
            self.replicas
                .detect_downs(self.opts.down_period, self.opts.permdown_period, now);
        self.apply_transitions(transitions);
        self.next_tick = now + self.opts.broadcast_period;
    }

    fn broadcast_heartbeat(&mut self) {
        let delta = if self.state.has_delta() {
            let d = self.state.reset_delta();
            self.state.compact();
            self.gens.push(self.state.delta(), &d);
            Some(d)
        } else if self.silent.saturating_add(1) >= self.opts.max_silent_periods {
            // This tick is the `max_silent_periods`-th since the last heartbeat: announce, so
            // heartbeats are `Options::idle_heartbeat` apart (Phoenix's `>=` before the
            // increment made them one tick further apart than its doc says).
            None
        } else {
            self.silent += 1;
            return;
        };
        self.silent = 0;
        let msg = Message::Heartbeat {
            from: self.me(),
            delta,
            clocks: self.state.clocks(),
        };
        let env = self.envelope(msg);
        self.push(Action::Broadcast(env));
    }

    fn sample_clocks(&mut self) {
        if self.sample_countdown > 1 {
            self.sample_countdown -= 1;
            return;
        }
        self.sample_countdown = self.opts.clock_sample_periods;
        let set = std::mem::take(&mut self.clockset);
        let set = append_clock(set, (self.me(), self.state.clocks()));
        for (r, _) in set {
            if r != *self.state.replica() {
                self.request_transfer(&r);
            }
        }
    }

    fn request_transfer(&mut self, to: &ReplicaRef) {
        self.next_req += 1;
        self.transfers_requested += 1;
        let msg = Message::TransferReq {
            id: self.next_req,
            from: self.me(),
            clocks: self.state.clocks(),
        };
        let env = self.envelope(msg);
        self.push(Action::SendTo(to.name.clone(), env));
    }

    fn apply_transitions(&mut self, transitions: Vec<Transition>) {
        for t in transitions {
            let diff = match &t {
                Transition::Up(r) => self.state.replica_up(r),
                Transition::Down(r) => self.state.replica_down(r),
                Transition::Permdown(r) => {
                    self.gens.prune(r);
                    self.clockset.retain(|(c, _)| c != r);
                    self.state.remove_down_replicas(r)
                }
            };
            self.emit(diff);
            self.push(Action::Replica(t));
        }
    }

    // ----- inbound -----------------------------------------------------------------------------

    /// Handles one inbound frame from node `from` at `now`.
    pub fn receive(&mut self, from: &ReplicaName, env: Envelope, now: Millis) {
        if let Err(reason) = self.check(from, &env) {
            tracing::warn!(shard = self.index, %from, %reason, "presence frame refused");
            self.push(Action::Refused {
                from: from.clone(),
                reason,
            });
            return;
        }
        let sender = env.message.from().clone();
        if sender == *self.state.replica() || self.replicas.is_stale(&sender) {
            return;
        }
        match env.message {
            Message::Heartbeat {
                from,
                delta,
                clocks,
            } => self.on_heartbeat(from, delta, clocks, now),
            Message::TransferReq { id, from, clocks } => {
                self.on_transfer_req(id, from, clocks, now)
            }
            Message::TransferAck { from, payload, .. } => self.on_transfer_ack(from, payload),
            Message::GracefulPermdown { from } => {
                let t = self.replicas.permdown_now(&from, now);
                self.apply_transitions(t);
            }
        }
    }

    fn check(&self, from: &ReplicaName, env: &Envelope) -> Result<(), Refusal> {
        if env.shard_count != self.opts.shard_count {
            return Err(Refusal::ShardCountMismatch {
                ours: self.opts.shard_count,
                theirs: env.shard_count,
            });
        }
        if env.shard != self.index {
            return Err(Refusal::WrongShard(env.shard));
        }
        if env.message.from().name != *from {
            return Err(Refusal::Spoofed);
        }
        let unknown = self.replicas.get(from).is_none();
        if unknown && self.replicas.len() >= limits::MAX_PRESENCE_REPLICAS {
            return Err(Refusal::TooManyReplicas);
        }
        Ok(())
    }

    /// Records life from `r`; on first contact or return from down, asks it for a transfer.
    fn handle_heartbeat(&mut self, r: &ReplicaRef, now: Millis) {
        let hb = self.replicas.put_heartbeat(r, now);
        let came_up = hb
            .transitions
            .iter()
            .any(|t| matches!(t, Transition::Up(_)));
        self.apply_transitions(hb.transitions);
        if came_up {
            self.request_transfer(r);
        }
    }

    fn on_heartbeat(
        &mut self,
        from: ReplicaRef,
        delta: Option<super::delta::Delta>,
        clocks: Ctx,
        now: Millis,
    ) {
        self.handle_heartbeat(&from, now);
        if let Some(d) = delta {
            let diff = self.state.merge_delta(d.clone());
            self.emit(diff);
            self.gens.push(self.state.delta(), &d);
        }
        let known = filter_replicas(&clocks, self.state.context().keys());
        if self.clockset.len() < limits::MAX_PENDING_CLOCKS {
            self.clockset = append_clock(std::mem::take(&mut self.clockset), (from, known));
        }
    }

    fn on_transfer_req(&mut self, id: u64, from: ReplicaRef, clocks: Ctx, now: Millis) {
        // A request from an unknown replica, or from one we think is down, is proof of life.
        let up = self
            .replicas
            .get(&from.name)
            .is_some_and(|r| r.r#ref == from && r.status == ReplicaStatus::Up);
        if !up {
            self.handle_heartbeat(&from, now);
        }
        let payload = self.gens.extract(&self.state, &from, &clocks);
        let env = self.envelope(Message::TransferAck {
            id,
            from: self.me(),
            payload,
        });
        self.push(Action::SendTo(from.name.clone(), env));
    }

    fn on_transfer_ack(&mut self, _from: ReplicaRef, payload: Payload) {
        match payload {
            Payload::Full(f) => {
                let diff = self.state.merge_full(f);
                self.emit(diff);
                self.gens.clear();
            }
            Payload::Delta(d) => {
                let diff = self.state.merge_delta(d.clone());
                self.emit(diff);
                self.gens.push(self.state.delta(), &d);
            }
        }
    }
}
