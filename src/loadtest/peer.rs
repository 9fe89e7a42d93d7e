//! The simulated peer: one actor per peer, with its own identity, under the harness's dynamic
//! supervisor. It joins a switchboard with the real protocol (key-bound QUIC, hello, join),
//! watches the peers its plan names and times the presence changes it is told of, churns when
//! told to (status line, leave and rejoin), and, as half of a relayed pair, introduces itself
//! and runs inner QUIC through the relay ([`crate::loadtest::inner`]).
//!
//! Failures to connect are counted by cause and retried a bounded number of times; a connection
//! lost mid-run (not by its own leave, not at the end) crashes the actor, and its supervisor
//! restarts it (counted as a restart). A restarted peer plays the same part: the part is a
//! function of its index ([`crate::loadtest::plan`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::identity::FeedId;
use crate::limits::{
    LOADTEST_AWAY, LOADTEST_CONNECT_ATTEMPTS, LOADTEST_INTRO_ATTEMPTS, LOADTEST_RETRY_BASE,
};
use crate::loadtest::client::{self, Joined};
use crate::loadtest::harness::{ChangeKind, Harness};
use crate::loadtest::inner::InnerRelay;
pub use crate::loadtest::messages::PeerMsg;
use crate::loadtest::metrics::{Measure, Metrics};
use crate::loadtest::plan::Part;
use crate::runtime::OwnedTask;
use crate::wire::switchboard::{ClientMsg, PeerMeta, ServerMsg};

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
    intro_attempts: u32,
    generation: u64,
    away: bool,
    live: Option<Live>,
    /// The latest change seen of each watched peer (so one change is timed once).
    seen: [u64; 2],
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
        Ok(PeerState {
            local: args.local,
            harness: args.harness,
            attempt: 0,
            intro_attempts: 0,
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
            PeerMsg::Connect if state.live.is_none() && !state.harness.is_stopping() => {
                connect(&myself, state).await
            }
            PeerMsg::Connect => {}
            PeerMsg::Frame(generation, frame) if generation == state.generation => {
                on_frame(&myself, state, frame).await
            }
            PeerMsg::Frame(..) => {}
            PeerMsg::Closed(generation, reason)
                if generation == state.generation && state.live.is_some() =>
            {
                disconnected(state);
                if !state.harness.is_stopping() {
                    state.harness.metrics.fail("lost");
                    return Err(format!("connection to the switchboard lost: {reason}").into());
                }
            }
            PeerMsg::Closed(..) => {}
            PeerMsg::ChangeStatus => change_status(state).await,
            PeerMsg::Leave if state.live.is_some() => {
                state.harness.change(state.local, ChangeKind::Leave);
                Metrics::bump(&state.harness.metrics.churn_events);
                disconnected(state);
                state.away = true;
                myself.send_after(LOADTEST_AWAY, || PeerMsg::Connect);
            }
            PeerMsg::Leave => {}
            PeerMsg::Introduce => introduce(state).await,
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
    let (Some(endpoint), Some(target)) = (
        harness.endpoint(state.local),
        harness.targets.get(harness.plan.switchboard(state.local)),
    ) else {
        return;
    };
    let key = harness.key(state.local);
    let started = Instant::now();
    match client::join(endpoint, &key, *target).await {
        Ok(joined) => {
            harness.metrics.record(Measure::Connect, started.elapsed());
            Metrics::bump(&harness.metrics.joins);
            Metrics::bump(&harness.metrics.connected);
            state.attempt = 0;
            state.away = false;
            joined_now(myself, state, joined).await;
        }
        Err(e) if harness.is_stopping() => drop(e),
        Err(e) => {
            harness.metrics.fail(client::cause(&e));
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
    if let Part::Caller { .. } = part {
        // The callee may still be on its way up; introductions are retried if refused.
        myself.send_after(Duration::from_millis(200), || PeerMsg::Introduce);
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
            text: Some(format!("lt {n}")),
        },
    )
    .await;
}

async fn introduce(state: &mut PeerState) {
    let Part::Caller { callee } = state.harness.plan.part(state.local) else {
        return;
    };
    let Some(to) = state.harness.id(callee) else {
        return;
    };
    state.intro_attempts += 1;
    write(state, ClientMsg::Introduce { to }).await;
}

async fn on_frame(myself: &ActorRef<PeerMsg>, state: &mut PeerState, frame: ServerMsg) {
    match frame {
        ServerMsg::Presence { id, online } => noticed(state, id, online.as_ref()),
        ServerMsg::IntroRequest { from, .. } => {
            let accept = relay(state).is_some_and(|r| r.register(from).is_ok());
            write(state, ClientMsg::IntroAnswer { from, accept }).await;
        }
        ServerMsg::Introduced { peer, .. } => {
            let (metrics, stop) = (
                Arc::clone(&state.harness.metrics),
                Arc::clone(&state.harness.stopping),
            );
            let started = relay(state).map(|r| r.round_trips(peer, metrics, stop));
            if !matches!(started, Some(Ok(()))) {
                state.harness.metrics.fail("relay_setup");
            }
        }
        ServerMsg::IntroRefused { .. } if state.intro_attempts < LOADTEST_INTRO_ATTEMPTS => {
            myself.send_after(Duration::from_millis(500), || PeerMsg::Introduce);
        }
        ServerMsg::IntroRefused { reason, .. } => {
            tracing::debug!(%reason, "introduction refused for good");
            state.harness.metrics.fail("intro_refused");
        }
        ServerMsg::Welcome { .. } | ServerMsg::Refused { .. } | ServerMsg::JoinRefused { .. } => {}
    }
}

/// The inner relay over this peer's connection, started on first use.
fn relay(state: &mut PeerState) -> Option<&mut InnerRelay> {
    let key = state.harness.key(state.local);
    let live = state.live.as_mut()?;
    if live.relay.is_none() {
        live.relay = InnerRelay::start(&key, &live.conn).ok();
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
        ChangeKind::Status(n) => {
            online.and_then(|m| m.status.as_deref()) == Some(format!("lt {n}").as_str())
        }
        ChangeKind::Leave => online.is_none(),
    };
    if !shows || change.at < live.since || state.seen[slot] >= change.seq {
        return;
    }
    state.seen[slot] = change.seq;
    let measure = match harness.plan.switchboard(target) == harness.plan.switchboard(state.local) {
        true => Measure::PresenceSameNode,
        false => Measure::PresenceOtherNode,
    };
    harness.metrics.record(measure, change.at.elapsed());
}
