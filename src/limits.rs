//! Every bound in kith, named in one place.
//!
//! Frames, queues, tables, retries and backoff all take their limits from here, so that a
//! reviewer can see at a glance what the node will hold on to, and so that related limits can be
//! checked against each other at compile time.

// --- supervision ---

/// How long a worker child gets to stop gracefully before it is killed (OTP's default 5000 ms).
pub const SUPERVISOR_WORKER_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a child supervisor gets to stop its own subtree before it is killed. OTP uses
/// `infinity`; we bound it so a wedged subtree cannot hold a node's shutdown forever. It must
/// exceed a worker's deadline so a nested supervisor can finish stopping at least one worker.
pub const SUPERVISOR_CHILD_SUPERVISOR_SHUTDOWN: std::time::Duration =
    std::time::Duration::from_secs(60);

/// After a kill, how long to wait for the child to finish. A kill lands at the child's next
/// `.await`; a child blocking its thread without awaiting cannot be stopped, and the supervisor
/// moves on after this long rather than hang.
pub const SUPERVISOR_KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Default restart intensity: restarts allowed within [`SUPERVISOR_DEFAULT_PERIOD`] (OTP: 1).
pub const SUPERVISOR_DEFAULT_MAX_RESTARTS: u32 = 1;

/// Default restart intensity window (OTP: 5 s).
pub const SUPERVISOR_DEFAULT_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// Default cap on a dynamic supervisor's children (e.g. one connection actor per peer).
pub const DYNAMIC_SUPERVISOR_MAX_CHILDREN: usize = 10_000;

/// Bound on one call to a supervisor (start_child, terminate_child, count, one level of a
/// report). It covers a child's `pre_start` and, for terminate_child, the child's shutdown
/// deadline, so it exceeds [`SUPERVISOR_WORKER_SHUTDOWN`] plus [`SUPERVISOR_KILL_WAIT`].
pub const SUPERVISOR_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

const _: () = assert!(
    SUPERVISOR_CHILD_SUPERVISOR_SHUTDOWN.as_millis() > SUPERVISOR_WORKER_SHUTDOWN.as_millis()
);
const _: () = assert!(
    SUPERVISOR_CALL_TIMEOUT.as_millis()
        > SUPERVISOR_WORKER_SHUTDOWN.as_millis() + SUPERVISOR_KILL_WAIT.as_millis()
);
