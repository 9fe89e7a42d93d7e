//! The simulated peer: one actor per peer, with its own identity, under the harness's dynamic
//! supervisor. It joins a switchboard with the real protocol (key-bound QUIC, hello, join),
//! watches the peers its plan names and times the presence changes it is told of, churns when
//! told to (status line, leave and rejoin), and, as half of a relayed pair or as a node of the
//! follow graph, introduces itself and runs inner QUIC through the relay
//! ([`crate::loadtest::inner`]): round trips, or replication ([`crate::loadtest::replicate`]).
//!
//! Introductions: a peer watches the peers it must reach and asks for an introduction to each
//! when the switchboard shows it online (a callee that has not joined yet, or whose presence has
//! not crossed the cluster yet, would be refused); a refusal is retried after a pause, and an
//! unanswered request after [`LOADTEST_INTRO_ANSWER_TIMEOUT`], at most
//! [`LOADTEST_INTRO_ATTEMPTS`] times per target. Like a daemon, a peer accepts an introduction
//! only from the peers its plan says will call it (a daemon accepts only ids it follows).
//!
//! Failures to connect are counted by cause and retried a bounded number of times; a connection
//! lost mid-run (not by its own leave, not at the end) crashes the actor, and its supervisor
//! restarts it (counted as a restart). A lost connection or a failed dial moves the peer to the
//! next node of the cluster ([`Harness::move_on`]), as a daemon given the whole cluster moves
//! when its node dies: the failover scenario times that. A restarted peer plays the same part:
//! the part is a function of its index ([`crate::loadtest::plan`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::identity::FeedId;
use crate::identity::Identity;
use crate::limits::{
    LOADTEST_AWAY, LOADTEST_CONNECT_ATTEMPTS, LOADTEST_INTRO_ANSWER_TIMEOUT,
    LOADTEST_INTRO_ATTEMPTS, LOADTEST_RETRY_BASE,
};
use crate::loadtest::client::{self, Joined};
use crate::loadtest::harness::{ChangeKind, Harness};
use crate::loadtest::inner::{InnerRelay, Serve};
pub use crate::loadtest::messages::PeerMsg;
use crate::loadtest::metrics::{Measure, Metrics};
use crate::loadtest::plan::Part;
use crate::loadtest::replica::Replica;
use crate::loadtest::replicate::Feeds;
use crate::loadtest::schedule::peer_secret;
use crate::runtime::OwnedTask;
use crate::wire::switchboard::{ClientMsg, IntroAnswer, PeerMeta, SealedStatus, ServerMsg};

/// The first pause before a refused introduction is asked again (times the attempts so far,
/// up to ten).
const INTRO_RETRY: Duration = Duration::from_millis(250);

/// The simulated peer actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimPeer;

/// What a peer starts from: its local index and the shared context.
#[derive(Clone)]
pub struct PeerArgs {
    /// Local index (its part, its identity, its switchboard follow from it).
    pub local: u64,
    /// The shared context.
    pub harness: Arc<Harness>,
}

/// A peer's state.
pub struct PeerState {
    local: u64,
    harness: Arc<Harness>,
    attempt: u32,
    /// The peers this one must reach, and how far each introduction got.
    targets: HashMap<FeedId, Target>,
    /// The own feed and the followed ones (a node of the follow graph only).
    feeds: Option<Arc<Feeds>>,
    generation: u64,
    away: bool,
    live: Option<Live>,
    /// The latest change seen of each watched peer (so one change is timed once).
    seen: [u64; 2],
}

/// One peer to reach through an introduction.
#[derive(Clone, Copy, Debug, Default)]
struct Target {
    /// Introductions asked so far.
    attempts: u32,
    /// An introduction is asked and not answered yet.
    asked: bool,
    /// Introduced: the inner connection is being made.
    up: bool,
}

struct Live {
    send: quinn::SendStream,
    conn: quinn::Connection,
    since: Instant,
    relay: Option<InnerRelay>,
    _reader: OwnedTask,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.conn.close(0u32.into(), b"bye");
    }
}

impl Actor for SimPeer {
    type Msg = PeerMsg;
    type State = PeerState;
    type Arguments = PeerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PeerMsg>,
        args: PeerArgs,
    ) -> Result<PeerState, ActorProcessingErr> {
        let metrics = &args.harness.metrics;
        Metrics::bump(&metrics.starts);
        if args.harness.register(args.local, myself.clone()) {
            Metrics::bump(&metrics.restarts);
        }
        myself.cast(PeerMsg::Connect)?;
        let harness = &args.harness;
        let targets = reaches(harness, args.local)
            .into_iter()
            .map(|id| (id, Target::default()))
            .collect();
        let feeds = feeds(harness, args.local);
        Ok(PeerState {
            local: args.local,
            harness: args.harness,
            attempt: 0,
            targets,
            feeds,
            generation: 0,
            away: false,
            live: None,
            seen: [0; 2],
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<PeerMsg>,
        msg: PeerMsg,
        state: &mut PeerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            // Boxed, as the other arms that await the network: ractor keeps this handler's
            // future inside every actor's boxed processing loop for the actor's life, sized for
            // its largest arm, and the dial (TLS, hello, join) is kilobytes of state that a
            // joined peer never needs again.
            PeerMsg::Connect if state.live.is_none() && !state.harness.is_stopping() => {
                Box::pin(connect(&myself, state)).await
            }
            PeerMsg::Connect => {}
            PeerMsg::Frame(generation, frame) if generation == state.generation => {
                Box::pin(on_frame(&myself, state, frame)).await
            }
            PeerMsg::Frame(..) => {}
            PeerMsg::Closed(generation, reason)
                if generation == state.generation && state.live.is_some() =>
            {
                disconnected(state);
                if !state.harness.is_stopping() {
                    state.harness.metrics.fail("lost");
                    // Its node may be gone: the restarted peer dials the next one.
                    state.harness.move_on(state.local);
                    return Err(format!("connection to the switchboard lost: {reason}").into());
                }
            }
            PeerMsg::Closed(..) => {}
            PeerMsg::ChangeStatus => Box::pin(change_status(state)).await,
            PeerMsg::Leave if state.live.is_some() => {
                state.harness.change(state.local, ChangeKind::Leave);
                Metrics::bump(&state.harness.metrics.churn_events);
                disconnected(state);
                state.away = true;
                myself.send_after(LOADTEST_AWAY, || PeerMsg::Connect);
            }
            PeerMsg::Leave => {}
            PeerMsg::Introduce(to) => Box::pin(introduce(&myself, state, to)).await,
            PeerMsg::IntroTimeout(to, attempt) => {
                let pending = state
                    .targets
                    .get(&to)
                    .is_some_and(|t| t.asked && t.attempts == attempt);
                if pending {
                    state.harness.metrics.refuse_intro("unanswered");
                    Box::pin(introduce(&myself, state, to)).await;
                }
            }
            PeerMsg::Post => post(state),
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<PeerMsg>,
        state: &mut PeerState,
    ) -> Result<(), ActorProcessingErr> {
        disconnected(state);
        Ok(())
    }
}

fn disconnected(state: &mut PeerState) {
    if state.live.take().is_some() {
        state
            .harness
            .metrics
            .connected
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn connect(myself: &ActorRef<PeerMsg>, state: &mut PeerState) {
    let harness = Arc::clone(&state.harness);
    let node = harness.node(state.local);
    let (Some(endpoint), Some(target)) = (harness.endpoint(state.local), harness.targets.get(node))
    else {
        return;
    };
    let key = harness.key(state.local);
    // A slot first (see LOADTEST_HANDSHAKES_IN_FLIGHT); the wait is not the admission's time.
    let Ok(_slot) = harness.dial_slots.acquire().await else {
        return;
    };
    let started = Instant::now();
    match client::join_as(endpoint, &key, *target, harness.link).await {
        Ok(joined) => {
            harness.metrics.record(Measure::Connect, started.elapsed());
            if let Some(after_kill) = harness.rejoined(state.local, node) {
                harness.metrics.record(Measure::Failover, after_kill);
            }
            Metrics::bump(&harness.metrics.joins);
            Metrics::bump(&harness.metrics.connected);
            state.attempt = 0;
            state.away = false;
            joined_now(myself, state, joined).await;
        }
        Err(e) if harness.is_stopping() => drop(e),
        Err(e) => {
            harness.metrics.fail(client::cause(&e));
            harness.move_on(state.local);
            state.attempt += 1;
            if state.attempt >= LOADTEST_CONNECT_ATTEMPTS {
                Metrics::bump(&harness.metrics.gave_up);
                myself.stop(Some("gave up connecting".into()));
            } else {
                myself.send_after(LOADTEST_RETRY_BASE * state.attempt, || PeerMsg::Connect);
            }
        }
    }
}

async fn joined_now(myself: &ActorRef<PeerMsg>, state: &mut PeerState, joined: Joined) {
    state.generation += 1;
    let generation = state.generation;
    let Joined {
        conn,
        mut send,
        recv,
        ..
    } = joined;
    let reader = OwnedTask::spawn(read_loop(recv, myself.clone(), generation));
    let part = state.harness.plan.part(state.local);
    if let Part::Presence { watches } = part {
        let ids: Vec<FeedId> = watches
            .iter()
            .filter_map(|l| state.harness.id(*l))
            .collect();
        if client::write(&mut send, &ClientMsg::Watch { ids })
            .await
            .is_err()
        {
            return;
        }
    }
    // Whom to reach: asked for when the switchboard shows them online (the watch's answer).
    let reach: Vec<FeedId> = state.targets.keys().copied().collect();
    for target in state.targets.values_mut() {
        // A new connection has no inner connection yet: everything is asked again.
        *target = Target::default();
    }
    if !reach.is_empty()
        && client::write(&mut send, &ClientMsg::Watch { ids: reach })
            .await
            .is_err()
    {
        return;
    }
    state.live = Some(Live {
        send,
        conn,
        since: Instant::now(),
        relay: None,
        _reader: reader,
    });
}

async fn read_loop(mut recv: quinn::RecvStream, myself: ActorRef<PeerMsg>, generation: u64) {
    let reason = loop {
        match client::read(&mut recv).await {
            Ok(msg) => {
                if myself.cast(PeerMsg::Frame(generation, msg)).is_err() {
                    return;
                }
            }
            Err(e) => break e.to_string(),
        }
    };
    let _ = myself.cast(PeerMsg::Closed(generation, reason));
}

async fn write(state: &mut PeerState, msg: ClientMsg) {
    if let Some(live) = state.live.as_mut() {
        if client::write(&mut live.send, &msg).await.is_err() {
            // The reader sees the connection end and reports it.
            live.conn.close(0u32.into(), b"write failed");
        }
    }
}

async fn change_status(state: &mut PeerState) {
    if state.live.is_none() {
        return;
    }
    let n = state.harness.next_status();
    state.harness.change(state.local, ChangeKind::Status(n));
    Metrics::bump(&state.harness.metrics.churn_events);
    write(
        state,
        ClientMsg::SetStatus {
            status: Some(status(n)),
        },
    )
    .await;
}

/// Status change `n` as a simulated peer sends it: an opaque "sealed" line, as a daemon's is
/// to the switchboard (nobody opens it; watchers compare it to time the change).
fn status(n: u64) -> SealedStatus {
    SealedStatus {
        epoch: 0,
        nonce: [0; 24],
        sealed: format!("lt {n}").into_bytes(),
    }
}

/// Ask for an introduction to `to` (unless it is up, or its attempts are spent), and check
/// back after [`LOADTEST_INTRO_ANSWER_TIMEOUT`].
async fn introduce(myself: &ActorRef<PeerMsg>, state: &mut PeerState, to: FeedId) {
    if state.live.is_none() {
        return;
    }
    let Some(target) = state.targets.get_mut(&to) else {
        return;
    };
    if target.up {
        return;
    }
    if target.attempts >= LOADTEST_INTRO_ATTEMPTS {
        if target.asked {
            target.asked = false;
            state.harness.metrics.refuse_intro("gave_up");
        }
        return;
    }
    target.attempts += 1;
    target.asked = true;
    let attempt = target.attempts;
    myself.send_after(LOADTEST_INTRO_ANSWER_TIMEOUT, move || {
        PeerMsg::IntroTimeout(to, attempt)
    });
    write(state, ClientMsg::Introduce { to }).await;
}

/// Post to the own feed (a node of the follow graph), stamped for the followers to time.
fn post(state: &mut PeerState) {
    let Some(feeds) = state.feeds.as_ref() else {
        return;
    };
    let own = FeedId::from(state.harness.key(state.local).verifying_key());
    match feeds.post(&state.harness.metrics, own) {
        Ok(_) => Metrics::bump(&state.harness.metrics.posts),
        Err(e) => {
            tracing::debug!(error = %e, "a post was not made");
            state.harness.metrics.fail("post");
        }
    }
}

/// The peers local peer `l` must reach: its callee (a relay caller), or the nodes of the follow
/// graph it dials (a replicator).
fn reaches(harness: &Harness, l: u64) -> Vec<FeedId> {
    match harness.plan.part(l) {
        Part::Caller { callee } => harness.id(callee).into_iter().collect(),
        Part::Replicator { node } => {
            let (Some(graph), start) =
                (harness.graph.as_ref(), harness.plan.replicate_range().start)
            else {
                return Vec::new();
            };
            graph
                .dials(node as usize)
                .into_iter()
                .filter_map(|n| harness.id(start + u64::from(n)))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// A replicator's feeds: its own and those it follows, empty (in memory: see
/// [`crate::loadtest::replica`]).
fn feeds(harness: &Harness, l: u64) -> Option<Arc<Feeds>> {
    let Part::Replicator { node } = harness.plan.part(l) else {
        return None;
    };
    let graph = harness.graph.as_ref()?;
    let start = harness.plan.replicate_range().start;
    let follows: Vec<FeedId> = graph
        .follows(node as usize)
        .iter()
        .filter_map(|n| harness.id(start + u64::from(*n)))
        .collect();
    let identity = Identity::from_seed(peer_secret(harness.seed, harness.shard.global(l)));
    Some(Feeds::new(Replica::new(identity, &follows)))
}

/// The callee's policy: whether `from` is a peer the plan says will call local peer `l`.
fn accepts(harness: &Harness, l: u64, from: &FeedId) -> bool {
    let Some(caller) = harness.local(from) else {
        return false;
    };
    match harness.plan.part(l) {
        Part::Callee => caller + 1 == l && harness.plan.part(caller) == Part::Caller { callee: l },
        Part::Replicator { node } => match (harness.plan.part(caller), harness.graph.as_ref()) {
            (Part::Replicator { node: other }, Some(graph)) => {
                graph.is_dialled_by(node as usize, other as usize)
            }
            _ => false,
        },
        _ => false,
    }
}

async fn on_frame(myself: &ActorRef<PeerMsg>, state: &mut PeerState, frame: ServerMsg) {
    match frame {
        ServerMsg::Presence { id, online } => {
            let ask = online.is_some()
                && state
                    .targets
                    .get(&id)
                    .is_some_and(|t| !t.up && !t.asked && t.attempts == 0);
            if ask {
                introduce(myself, state, id).await;
            }
            noticed(state, id, online.as_ref())
        }
        ServerMsg::IntroRequest { from, .. } => {
            // Simulated peers relay only: they never punch.
            let allowed = accepts(&state.harness, state.local, &from);
            let answer = match allowed && relay(state).is_some_and(|r| r.register(from).is_ok()) {
                true => IntroAnswer::RelayOnly,
                false => IntroAnswer::Refuse,
            };
            write(state, ClientMsg::IntroAnswer { from, answer }).await;
        }
        ServerMsg::Introduced { peer, .. } => {
            match state.targets.get_mut(&peer) {
                Some(target) if !target.up => {
                    target.up = true;
                    target.asked = false;
                }
                // Not asked for, or a second answer: nothing to start.
                _ => return,
            }
            let (metrics, stop) = (
                Arc::clone(&state.harness.metrics),
                Arc::clone(&state.harness.stopping),
            );
            let feeds = state.feeds.clone();
            let started = relay(state).map(|r| match feeds {
                Some(feeds) => r.replicate_with(peer, feeds, metrics, stop),
                None => r.round_trips(peer, metrics, stop),
            });
            if !matches!(started, Some(Ok(()))) {
                state.harness.metrics.fail("relay_setup");
            }
        }
        ServerMsg::IntroRefused { to, reason, .. } => {
            let Some(target) = state.targets.get_mut(&to).filter(|t| t.asked) else {
                return;
            };
            target.asked = false;
            let attempts = target.attempts;
            tracing::debug!(%reason, attempts, "introduction refused");
            state
                .harness
                .metrics
                .refuse_intro(client::intro_cause(&reason));
            if attempts < LOADTEST_INTRO_ATTEMPTS {
                // Back off a little more each time: the usual cause is a callee not yet online
                // on this node, or a callee with many introductions pending.
                let pause = INTRO_RETRY * attempts.min(10);
                myself.send_after(pause, move || PeerMsg::Introduce(to));
            } else {
                tracing::debug!(%reason, "introduction refused for good");
                state.harness.metrics.refuse_intro("gave_up");
            }
        }
        ServerMsg::Welcome { .. }
        | ServerMsg::Refused { .. }
        | ServerMsg::JoinRefused { .. }
        | ServerMsg::PunchTo { .. } => {}
    }
}

/// The inner relay over this peer's connection, started on first use: echoing round trips, or
/// replicating for a node of the follow graph.
fn relay(state: &mut PeerState) -> Option<&mut InnerRelay> {
    let key = state.harness.key(state.local);
    let serve = match &state.feeds {
        Some(feeds) => Serve::Replicate {
            feeds: Arc::clone(feeds),
            metrics: Arc::clone(&state.harness.metrics),
            stop: Arc::clone(&state.harness.stopping),
        },
        None => Serve::Echo,
    };
    let live = state.live.as_mut()?;
    if live.relay.is_none() {
        let lane = state.harness.lane(state.local);
        live.relay = InnerRelay::start(&key, &live.conn, serve, lane).ok();
    }
    live.relay.as_mut()
}

/// A presence notice about a watched peer: if it shows that peer's latest change, made while
/// this watcher was connected, time it (once).
fn noticed(state: &mut PeerState, id: FeedId, online: Option<&PeerMeta>) {
    let harness = &state.harness;
    let (Some(target), Some(live)) = (harness.local(&id), state.live.as_ref()) else {
        return;
    };
    let Part::Presence { watches } = harness.plan.part(state.local) else {
        return;
    };
    let Some(slot) = watches.iter().position(|w| *w == target) else {
        return;
    };
    let Some(change) = harness.latest_change(target) else {
        return;
    };
    let shows = match change.kind {
        ChangeKind::Status(n) => online.and_then(|m| m.status.as_ref()) == Some(&status(n)),
        ChangeKind::Leave => online.is_none(),
    };
    if !shows || change.at < live.since || state.seen[slot] >= change.seq {
        return;
    }
    state.seen[slot] = change.seq;
    let measure = match harness.node(target) == harness.node(state.local) {
        true => Measure::PresenceSameNode,
        false => Measure::PresenceOtherNode,
    };
    harness.metrics.record(measure, change.at.elapsed());
}
