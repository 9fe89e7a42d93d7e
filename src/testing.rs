//! Test support: the one bounded polling helper of the workspace's tests.
//!
//! Tests that wait for something asynchronous (an actor restarted, a presence gossiped, a
//! daemon's status showing a connection) poll a condition until it holds. Every such wait must be
//! bounded in time, so that a broken build fails with a message instead of hanging, and the
//! deadline and poll interval are the test's to choose. This module is that loop, once:
//!
//! - [`eventually`]: async, polls a plain `FnMut() -> bool` condition;
//! - [`eventually_async`]: async, polls an async condition (one that itself awaits);
//! - [`within`]: like [`eventually`] but returns whether the condition held instead of panicking,
//!   for tests that assert with a message of their own (the state they saw);
//! - [`eventually_blocking`]: sync, for process-level tests that poll from a plain thread.
//!
//! The async variants sleep and read the clock through `tokio::time`, so they also work on a
//! paused clock (`#[tokio::test(start_paused = true)]`), where the deadline is virtual time.
//! The last check is made at the deadline itself, never skipped by a long poll interval.
//!
//! It is compiled only with the `test-utils` cargo feature, which the test targets enable through
//! dev-dependencies (the `kith` crate dev-depends on itself with the feature); it is no part of
//! the library's API and panics by design.

use std::time::Duration;

/// Polls the async `cond` every `every` until it holds or `limit` has passed (on the tokio
/// clock): `Ok` with the time it took, or `Err` with the time waited. The one async loop here.
async fn poll(
    limit: Duration,
    every: Duration,
    mut cond: impl AsyncFnMut() -> bool,
) -> Result<Duration, Duration> {
    let started = tokio::time::Instant::now();
    let deadline = started + limit;
    loop {
        if cond().await {
            return Ok(started.elapsed());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(now - started);
        }
        tokio::time::sleep_until((now + every).min(deadline)).await;
    }
}

fn timed_out(what: &str, limit: Duration, waited: Duration) -> ! {
    panic!("timed out after {limit:?} (waited {waited:?}) waiting for: {what}")
}

/// Waits until `cond` holds, checking it every `every`, and returns how long that took (for
/// reporting, not asserting). Panics naming `what` and `limit` if it still does not hold once
/// `limit` has passed.
pub async fn eventually(
    what: &str,
    limit: Duration,
    every: Duration,
    mut cond: impl FnMut() -> bool,
) -> Duration {
    eventually_async(what, limit, every, async || cond()).await
}

/// [`eventually`] for a condition that awaits (an actor call, a query over the network).
pub async fn eventually_async(
    what: &str,
    limit: Duration,
    every: Duration,
    cond: impl AsyncFnMut() -> bool,
) -> Duration {
    match poll(limit, every, cond).await {
        Ok(took) => took,
        Err(waited) => timed_out(what, limit, waited),
    }
}

/// Whether `cond` comes to hold within `limit`, checked every `every`: [`eventually`] without the
/// panic, for a test that asserts with its own message.
pub async fn within(limit: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    poll(limit, every, async || cond()).await.is_ok()
}

/// [`eventually`] for synchronous tests: blocks the calling thread (`std::thread::sleep`, the
/// wall clock) between checks.
pub fn eventually_blocking(
    what: &str,
    limit: Duration,
    every: Duration,
    mut cond: impl FnMut() -> bool,
) -> Duration {
    let started = std::time::Instant::now();
    loop {
        if cond() {
            return started.elapsed();
        }
        let waited = started.elapsed();
        if waited >= limit {
            timed_out(what, limit, waited);
        }
        std::thread::sleep(every.min(limit - waited));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn checks_until_the_condition_holds_and_at_the_deadline() {
        let mut n = 0;
        let took = eventually("the fifth check", 100 * MS, 10 * MS, || {
            n += 1;
            n == 5
        })
        .await;
        assert_eq!(took, 40 * MS);
        // A deadline between two polls is still checked, at the deadline itself.
        let mut checks = 0;
        assert!(
            !within(25 * MS, 10 * MS, || {
                checks += 1;
                false
            })
            .await
        );
        assert_eq!(checks, 4, "at 0, 10, 20 and 25 ms");
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "timed out after 50ms (waited 50ms) waiting for: nothing")]
    async fn panics_naming_what_and_how_long() {
        eventually("nothing", 50 * MS, 20 * MS, || false).await;
    }

    #[test]
    #[should_panic(expected = "waiting for: never")]
    fn blocking_is_bounded_too() {
        eventually_blocking("never", 30 * MS, 10 * MS, || false);
    }
}
