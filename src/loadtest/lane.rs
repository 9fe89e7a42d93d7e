//! The probe lane: a tokio runtime of its own on which the relayed pairs' endpoints, their
//! connections (outer and inner) and the tasks that make their round trips are driven, apart
//! from the runtime that runs every other simulated peer.
//!
//! Why: the harness times relayed round trips while it simulates thousands of other peers in
//! the same process. On one runtime the round trips' tasks wait in the same task queue as the
//! ramp's handshakes (dozens in flight, each a few hundred µs of crypto) and as the replication
//! work a post sets off (a follow-graph hub's post wakes a hundred followers, each verifying
//! the entry at once), so part of what the report called the switchboards' relay latency was
//! the harness's own queue. On their own lane (their own worker threads, task queue, timers and
//! socket readiness) the measuring peers wait only for the machine's CPUs and the switchboards,
//! which is what the figure is for. They run the same code as every other peer; only where
//! their tasks run differs.
//!
//! quinn's `TokioRuntime` spawns onto whichever runtime the caller happens to be in: [`OnLane`]
//! names the runtime instead, for the endpoint's driver, its connections' drivers, their timers
//! and their socket.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use quinn::{AsyncTimer, AsyncUdpSocket};
use tokio::runtime::Handle;

use crate::runtime::OwnedTask;

/// A runtime the probes' endpoints and tasks run on.
#[derive(Clone, Debug)]
pub struct Lane(Handle);

impl Lane {
    /// The lane on the runtime `handle` belongs to.
    pub fn new(handle: Handle) -> Lane {
        Lane(handle)
    }

    /// The quinn runtime that drives an endpoint (and its connections) on this lane.
    pub fn quinn(&self) -> Arc<dyn quinn::Runtime> {
        Arc::new(OnLane(self.0.clone()))
    }

    /// Spawn `future` on this lane, owned by the returned value.
    pub fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) -> OwnedTask {
        OwnedTask::spawn_on(&self.0, future)
    }
}

/// Spawn `future` on `lane`, or on the current runtime without one.
pub fn spawn_on(
    lane: Option<&Lane>,
    future: impl Future<Output = ()> + Send + 'static,
) -> OwnedTask {
    match lane {
        Some(lane) => lane.spawn(future),
        None => OwnedTask::spawn(future),
    }
}

/// The quinn runtime of `lane`, or quinn's tokio runtime (the current one) without one.
pub fn quinn_runtime(lane: Option<&Lane>) -> Arc<dyn quinn::Runtime> {
    match lane {
        Some(lane) => lane.quinn(),
        None => Arc::new(quinn::TokioRuntime),
    }
}

/// quinn's tokio runtime, bound to one runtime rather than the caller's.
#[derive(Debug)]
struct OnLane(Handle);

impl quinn::Runtime for OnLane {
    fn new_timer(&self, at: Instant) -> Pin<Box<dyn AsyncTimer>> {
        let _inside = self.0.enter();
        quinn::TokioRuntime.new_timer(at)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.0.spawn(future);
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        // Readiness is registered with the lane's IO driver.
        let _inside = self.0.enter();
        quinn::TokioRuntime.wrap_udp_socket(socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lane's tasks run on its runtime's threads, not the caller's.
    #[test]
    fn tasks_and_quinn_drivers_run_on_the_lane() {
        let lane_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("lane-test")
            .enable_all()
            .build()
            .unwrap();
        let lane = Lane::new(lane_rt.handle().clone());
        let main = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let names = main.block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let _task = lane.spawn(async move {
                let _ = tx.send(std::thread::current().name().map(str::to_owned));
            });
            let spawned = rx.await.unwrap();
            let (tx, rx) = tokio::sync::oneshot::channel();
            // What quinn spawns (its endpoint and connection drivers) runs on the lane too.
            lane.quinn().spawn(Box::pin(async move {
                let _ = tx.send(std::thread::current().name().map(str::to_owned));
            }));
            let driven = rx.await.unwrap();
            (spawned, driven)
        });
        assert_eq!(names.0.as_deref(), Some("lane-test"));
        assert_eq!(names.1.as_deref(), Some("lane-test"));
        // Outside any runtime (tokio would panic: no reactor), timers and sockets quinn asks
        // for are made on the lane's drivers, and work.
        let mut timer = lane.quinn().new_timer(Instant::now());
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let wrapped = lane.quinn().wrap_udp_socket(socket).unwrap();
        assert!(wrapped.local_addr().unwrap().ip().is_loopback());
        main.block_on(std::future::poll_fn(|cx| timer.as_mut().poll(cx)));
    }
}
