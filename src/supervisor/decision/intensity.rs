//! Restart intensity: the sliding window of recent restarts that decides when a supervisor
//! gives up.
//!
//! OTP semantics: a supervisor may restart at most `max_restarts` times within any `period`.
//! The restart that would be restart number `max_restarts + 1` inside the window is refused,
//! and the supervisor escalates instead. Time is passed in, never read here.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::limits;

/// How many restarts a supervisor tolerates within a period before it escalates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Intensity {
    /// Most restarts allowed inside any window of length `period` (OTP `intensity`).
    pub max_restarts: u32,
    /// Length of the sliding window (OTP `period`).
    pub period: Duration,
}

impl Default for Intensity {
    /// OTP's defaults: one restart within five seconds.
    fn default() -> Self {
        Self {
            max_restarts: limits::SUPERVISOR_DEFAULT_MAX_RESTARTS,
            period: limits::SUPERVISOR_DEFAULT_PERIOD,
        }
    }
}

/// The timestamps of the restarts still inside the window.
#[derive(Debug, Default)]
pub(crate) struct RestartLog {
    stamps: VecDeque<Instant>,
}

impl RestartLog {
    /// Records a restart at `now`. Returns `false` when it exceeds `intensity`, in which case
    /// the supervisor must escalate rather than restart.
    pub(crate) fn record(&mut self, now: Instant, intensity: Intensity) -> bool {
        while let Some(&oldest) = self.stamps.front() {
            if now.saturating_duration_since(oldest) < intensity.period {
                break;
            }
            self.stamps.pop_front();
        }
        self.stamps.push_back(now);
        let allowed = self.stamps.len() <= intensity.max_restarts as usize;
        // The window never needs more than `max_restarts + 1` entries to decide.
        while self.stamps.len() > intensity.max_restarts as usize + 1 {
            self.stamps.pop_front();
        }
        allowed
    }
}
