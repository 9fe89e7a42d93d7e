//! The pure restart-decision state machine (sans-IO: no tokio, no ractor, time passed in).
//!
//! [`Core`] holds the ordered child list of one supervisor and answers a single question:
//! *a child exited — what now?* The answer is a [`Decision`] that the actor glue carries out.
//! Keeping it pure lets every OTP rule below be unit-tested without a runtime:
//!
//! - `permanent` children are always restarted, `transient` ones only after an abnormal exit,
//!   `temporary` ones never (under every strategy).
//! - `one_for_one` restarts the child alone; `rest_for_one` also stops the children started
//!   after it (in reverse start order) and restarts them in order; `one_for_all` does the same
//!   with every child.
//! - temporary children stopped because of a sibling's restart are removed, not restarted.
//! - each restart counts once against the [`Intensity`], whatever the number of children it
//!   touches; exceeding it means [`Decision::Escalate`].

mod intensity;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::Serialize;

pub use intensity::Intensity;
use intensity::RestartLog;

/// Which siblings are restarted along with a failed child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Restart only the child that exited.
    OneForOne,
    /// Restart the child that exited and every child started after it.
    RestForOne,
    /// Restart every child.
    OneForAll,
}

/// When a child is restarted after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always restarted.
    Permanent,
    /// Restarted only after an abnormal exit.
    Transient,
    /// Never restarted; removed from the supervisor when it exits.
    Temporary,
}

/// Why a child exited, in OTP's three classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// A normal exit (OTP `normal`).
    Normal,
    /// An orderly shutdown (OTP `shutdown` / `{shutdown, _}`); not a crash.
    Shutdown,
    /// A crash, a kill or an error, with a description.
    Abnormal(String),
}

impl ExitReason {
    /// True for a crash: the only reason a transient child is restarted.
    pub fn is_abnormal(&self) -> bool {
        matches!(self, Self::Abnormal(_))
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Normal => f.write_str("normal"),
            Self::Shutdown => f.write_str("shutdown"),
            Self::Abnormal(why) => write!(f, "abnormal: {why}"),
        }
    }
}

/// Where a child is in its life, as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    /// Started and not known to have exited.
    Running,
    /// Exited or stopped as part of a restart that has not finished yet.
    Restarting,
    /// Not running and not going to be restarted on its own.
    Stopped,
}

/// One child as the core tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreChild {
    /// Unique id within the supervisor.
    pub id: String,
    /// The child's restart type.
    pub restart: Restart,
    /// Current state.
    pub state: ChildState,
    /// Times this child was started again after its first start.
    pub restart_count: u32,
    started_once: bool,
}

/// The work a restart requires, carried out by the glue in this order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestartPlan {
    /// Running children to stop, in reverse start order.
    pub stop: Vec<String>,
    /// Temporary children to drop once stopped (they are never restarted).
    pub remove: Vec<String>,
    /// Children to start, in start order.
    pub start: Vec<String>,
}

/// What the supervisor must do after a child exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: the child is unknown or already stopped.
    Ignore,
    /// The child stays in the list, stopped (a transient child that exited normally).
    Keep,
    /// The child was removed from the list (temporary, or not restarted by a dynamic supervisor).
    Remove,
    /// Restart according to the plan.
    Restart(RestartPlan),
    /// Restart intensity exceeded: stop every child and exit abnormally.
    Escalate {
        /// Human-readable cause, used as the supervisor's exit reason.
        reason: String,
    },
}

/// Error from changing the child list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// A child with this id is already in the list.
    #[error("duplicate child id '{0}'")]
    DuplicateId(String),
}

/// The restart-decision state machine of one supervisor.
///
/// Children are kept in start order (keyed by the sequence number they were added with) and
/// indexed by id, so that a dynamic supervisor with thousands of children adds, finds and
/// removes one in O(log n), not by scanning the list.
#[derive(Debug)]
pub struct Core {
    strategy: Strategy,
    intensity: Intensity,
    children: BTreeMap<u64, CoreChild>,
    by_id: HashMap<String, u64>,
    next_seq: u64,
    log: RestartLog,
    total_restarts: u64,
    remove_unrestarted: bool,
}

impl Core {
    /// A static supervisor's core.
    pub fn new(strategy: Strategy, intensity: Intensity) -> Self {
        Self {
            strategy,
            intensity,
            children: BTreeMap::new(),
            by_id: HashMap::new(),
            next_seq: 0,
            log: RestartLog::default(),
            total_restarts: 0,
            remove_unrestarted: false,
        }
    }

    /// A dynamic supervisor's core: one_for_one, and a child that is not restarted is removed
    /// (OTP `DynamicSupervisor` keeps no stopped children).
    pub fn dynamic(intensity: Intensity) -> Self {
        Self {
            remove_unrestarted: true,
            ..Self::new(Strategy::OneForOne, intensity)
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The intensity.
    pub fn intensity(&self) -> Intensity {
        self.intensity
    }

    /// Restarts performed so far (each counted once, as for the intensity).
    pub fn total_restarts(&self) -> u64 {
        self.total_restarts
    }

    /// The children in start order.
    pub fn children(&self) -> impl DoubleEndedIterator<Item = &CoreChild> + ExactSizeIterator {
        self.children.values()
    }

    /// How many children there are.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// True without children.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Appends a child (stopped until [`Core::child_started`]).
    pub fn add_child(&mut self, id: &str, restart: Restart) -> Result<(), CoreError> {
        if self.by_id.contains_key(id) {
            return Err(CoreError::DuplicateId(id.to_owned()));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_id.insert(id.to_owned(), seq);
        self.children.insert(
            seq,
            CoreChild {
                id: id.to_owned(),
                restart,
                state: ChildState::Stopped,
                restart_count: 0,
                started_once: false,
            },
        );
        Ok(())
    }

    /// Removes a child; returns whether it was there.
    pub fn remove_child(&mut self, id: &str) -> bool {
        match self.by_id.remove(id) {
            Some(seq) => self.children.remove(&seq).is_some(),
            None => false,
        }
    }

    /// Marks a child running; every start after the first counts as one of its restarts.
    pub fn child_started(&mut self, id: &str) {
        if let Some(child) = self.child_mut(id) {
            if child.started_once {
                child.restart_count = child.restart_count.saturating_add(1);
            }
            child.started_once = true;
            child.state = ChildState::Running;
        }
    }

    /// Marks a child stopped on the supervisor's own request (not an exit to react to).
    pub fn child_stopped(&mut self, id: &str) {
        if let Some(child) = self.child_mut(id) {
            child.state = ChildState::Stopped;
        }
    }

    /// Decides what to do about a child's exit at time `now`, updating the child list.
    pub fn child_exited(&mut self, id: &str, reason: &ExitReason, now: Instant) -> Decision {
        let Some((seq, child)) = self
            .by_id
            .get(id)
            .and_then(|seq| Some((*seq, self.children.get(seq)?)))
        else {
            return Decision::Ignore;
        };
        if child.state == ChildState::Stopped {
            return Decision::Ignore;
        }
        let restart = match child.restart {
            Restart::Permanent => true,
            Restart::Transient => reason.is_abnormal(),
            Restart::Temporary => false,
        };
        if !restart {
            return self.not_restarted(seq);
        }
        if !self.log.record(now, self.intensity) {
            return Decision::Escalate {
                reason: format!(
                    "restart intensity exceeded ({} restarts in {:?}); child '{id}' exited: {reason}",
                    self.intensity.max_restarts, self.intensity.period
                ),
            };
        }
        self.total_restarts = self.total_restarts.saturating_add(1);
        Decision::Restart(self.plan(seq))
    }

    fn not_restarted(&mut self, seq: u64) -> Decision {
        let Some(child) = self.children.get_mut(&seq) else {
            return Decision::Ignore;
        };
        if self.remove_unrestarted || child.restart == Restart::Temporary {
            let id = child.id.clone();
            self.remove_child(&id);
            Decision::Remove
        } else {
            child.state = ChildState::Stopped;
            Decision::Keep
        }
    }

    /// Builds the restart plan for the child `failed` and applies its state changes.
    fn plan(&mut self, failed: u64) -> RestartPlan {
        let scope: Vec<u64> = match self.strategy {
            Strategy::OneForOne => vec![failed],
            Strategy::RestForOne => self.children.range(failed..).map(|(seq, _)| *seq).collect(),
            Strategy::OneForAll => self.children.keys().copied().collect(),
        };
        let mut plan = RestartPlan::default();
        for seq in scope.iter().rev() {
            let child = &self.children[seq];
            if *seq != failed && child.state == ChildState::Running {
                plan.stop.push(child.id.clone());
            }
        }
        for seq in &scope {
            let Some(child) = self.children.get_mut(seq) else {
                continue;
            };
            if *seq != failed && child.restart == Restart::Temporary {
                plan.remove.push(child.id.clone());
            } else {
                child.state = ChildState::Restarting;
                plan.start.push(child.id.clone());
            }
        }
        for id in &plan.remove {
            self.remove_child(id);
        }
        plan
    }

    fn child_mut(&mut self, id: &str) -> Option<&mut CoreChild> {
        let seq = self.by_id.get(id)?;
        self.children.get_mut(seq)
    }
}
