//! Shared test fixtures for the supervisor suites: a `Probe` worker that logs its lifecycle
//! into a shared log and can be told to crash, panic, stop or block, and a bounded poll loop.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use kith::supervisor::{
    ChildSpec, DynamicSupervisorHandle, Intensity, Restart, Strategy, SupervisorSpec,
};
use kith::testing::eventually;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};

/// Poll step and bound of the suites' waits (`kith::testing::eventually`, [`bounded`]).
pub(crate) const POLL: Duration = Duration::from_millis(5);
pub(crate) const BOUND: Duration = Duration::from_secs(5);

/// Awaits `fut`, failing the test if it takes longer than the 5 s bound.
pub(crate) async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// What the probes share with the test: a lifecycle log and each probe's live instance.
#[derive(Clone, Default)]
pub(crate) struct Env {
    log: Arc<Mutex<Vec<String>>>,
    live: Arc<DashMap<String, ActorRef<ProbeMsg>>>,
    fail_next_start: Arc<DashMap<String, ()>>,
}

impl Env {
    pub(crate) fn push(&self, line: String) {
        self.log.lock().unwrap().push(line);
    }

    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Lines logged from index `from` on.
    pub(crate) fn log_since(&self, from: usize) -> Vec<String> {
        self.log()[from..].to_vec()
    }

    pub(crate) fn count(&self, line: &str) -> usize {
        self.log().iter().filter(|l| *l == line).count()
    }

    pub(crate) fn starts(&self, id: &str) -> usize {
        self.count(&format!("start:{id}"))
    }

    /// The most recently started instance of probe `id`.
    pub(crate) fn probe(&self, id: &str) -> ActorRef<ProbeMsg> {
        self.live
            .get(id)
            .map(|r| r.clone())
            .expect("probe never started")
    }

    /// Makes the next start of probe `id` fail (once).
    pub(crate) fn fail_next_start(&self, id: &str) {
        self.fail_next_start.insert(id.to_owned(), ());
    }

    pub(crate) fn worker(&self, id: &str, restart: Restart) -> ChildSpec {
        self.spec(id, restart, false)
    }

    /// A worker whose `pre_start` fails.
    pub(crate) fn failing_worker(&self, id: &str) -> ChildSpec {
        self.spec(id, Restart::Permanent, true)
    }

    fn spec(&self, id: &str, restart: Restart, fail_start: bool) -> ChildSpec {
        let env = self.clone();
        let name = id.to_owned();
        ChildSpec::worker(id, restart, Probe, move || ProbeArgs {
            id: name.clone(),
            env: env.clone(),
            fail_start,
        })
    }

    /// Sends `msg` to the live probe `id`, then waits until it has been started `starts` times.
    pub(crate) async fn crash_and_wait(&self, id: &str, msg: ProbeMsg, starts: usize) {
        self.probe(id).cast(msg).unwrap();
        eventually(&format!("{id} started {starts} times"), BOUND, POLL, || {
            self.starts(id) >= starts
        })
        .await;
    }
}

pub(crate) fn intensity(max_restarts: u32) -> Intensity {
    Intensity {
        max_restarts,
        period: Duration::from_secs(60),
    }
}

pub(crate) fn spec(
    name: &str,
    strategy: Strategy,
    max: u32,
    children: Vec<ChildSpec>,
) -> SupervisorSpec {
    SupervisorSpec {
        name: name.into(),
        strategy,
        intensity: intensity(max),
        children,
    }
}

/// A worker that logs `start:<id>` / `stop:<id>` and obeys [`ProbeMsg`].
#[derive(Clone, Copy)]
pub(crate) struct Probe;

pub(crate) struct ProbeArgs {
    id: String,
    env: Env,
    fail_start: bool,
}

pub(crate) struct ProbeState {
    id: String,
    env: Env,
}

pub(crate) enum ProbeMsg {
    /// Return `Err` from the handler (a crash).
    Fail,
    /// Panic inside the handler.
    Panic,
    /// Stop normally.
    StopNormal,
    /// Log `blocking:<id>` then sleep for an hour inside the handler, ignoring stop requests.
    Block,
    /// Reply `()`.
    Ping(RpcReplyPort<()>),
    /// Start a child through a dynamic supervisor handle and reply with the result.
    Spawn(
        DynamicSupervisorHandle,
        ChildSpec,
        RpcReplyPort<Result<ActorCell, String>>,
    ),
}

impl Actor for Probe {
    type Msg = ProbeMsg;
    type State = ProbeState;
    type Arguments = ProbeArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ProbeMsg>,
        args: ProbeArgs,
    ) -> Result<ProbeState, ActorProcessingErr> {
        if args.fail_start || args.env.fail_next_start.remove(&args.id).is_some() {
            args.env.push(format!("failstart:{}", args.id));
            return Err("told to fail at start".into());
        }
        args.env.live.insert(args.id.clone(), myself);
        args.env.push(format!("start:{}", args.id));
        Ok(ProbeState {
            id: args.id,
            env: args.env,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ProbeMsg>,
        msg: ProbeMsg,
        state: &mut ProbeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ProbeMsg::Fail => return Err(format!("{} told to fail", state.id).into()),
            ProbeMsg::Panic => panic!("{} told to panic", state.id),
            ProbeMsg::StopNormal => myself.stop(None),
            ProbeMsg::Block => {
                state.env.push(format!("blocking:{}", state.id));
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            ProbeMsg::Ping(reply) => {
                let _ = reply.send(());
            }
            ProbeMsg::Spawn(handle, spec, reply) => {
                let started = handle.start_child(spec).await.map_err(|e| e.to_string());
                let _ = reply.send(started);
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ProbeMsg>,
        state: &mut ProbeState,
    ) -> Result<(), ActorProcessingErr> {
        state.env.push(format!("stop:{}", state.id));
        Ok(())
    }
}

/// Answers a ping within the bound (the probe is alive and responsive).
pub(crate) async fn ping(probe: &ActorRef<ProbeMsg>) {
    let reply = ractor::call_t!(probe, ProbeMsg::Ping, 5000);
    reply.expect("probe did not answer");
}
