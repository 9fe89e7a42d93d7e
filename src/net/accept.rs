//! The accept loop both roles share: each inbound QUIC handshake is admitted (or asked to prove
//! its address, or refused) by the sans-IO [`crate::net::admission`] core, finishes in its own
//! task within the deadline the core gave it, and only connections whose peer proved its key
//! reach the caller.
//!
//! The loop never waits for a slot: a decision is taken for every attempt as it arrives, so a
//! flood of stalled handshakes is answered with Retries (which cost no state) instead of
//! queueing honest clients behind it. An attempt the core cannot take now (every slot taken, or
//! while calm the share of new clients) may wait in the core's bounded queue: the loop holds it
//! in arrival order, offers it the next slot that frees (the core may ask a new client to
//! validate instead, once on guard), and gives up on it once it has waited the core's bound.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::identity::FeedId;
use crate::net::admission::{Action, Admission, Attempt, Outcome, Ticket};
use crate::net::endpoint::accept_within;
use crate::net::{NetError, PeerEndpoint};

/// Accept connections on `endpoint` until it closes: each attempt is decided by the endpoint's
/// admission state; an admitted TLS handshake (the peer proves its key) finishes in its own task,
/// then `on_accept` gets the connection and the proven id; the attempt's slot is given back when
/// `on_accept` returns. Shared by the daemon's and the switchboard's listeners.
pub async fn accept_each<F, Fut>(endpoint: &PeerEndpoint, on_accept: F)
where
    F: Fn(quinn::Connection, FeedId) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let admission = endpoint.admission();
    let on_accept = Arc::new(on_accept);
    let freed = Arc::new(Notify::new());
    let wait = lock(&admission).queue_wait();
    // Proven attempts waiting for a slot, oldest first (bounded by the core's queue).
    let mut queue: VecDeque<(Instant, quinn::Incoming)> = VecDeque::new();
    loop {
        let oldest = queue.front().map(|(since, _)| *since + wait);
        tokio::select! {
            incoming = endpoint.incoming() => {
                let Some(incoming) = incoming else { break };
                let action = lock(&admission).admit(attempt(&incoming), std::time::Instant::now());
                if let Some(incoming) = act(action, incoming, &admission, &freed, &on_accept) {
                    queue.push_back((Instant::now(), incoming));
                }
            }
            _ = freed.notified(), if !queue.is_empty() => {}
            _ = tokio::time::sleep_until(oldest.unwrap_or_else(Instant::now)), if oldest.is_some() => {}
        }
        // Slots freed, waits ran out, or the door went on guard: the queue's head, in order.
        while let Some((since, incoming)) = queue.pop_front() {
            let action = if since.elapsed() >= wait {
                lock(&admission).expire_queued(attempt(&incoming))
            } else {
                lock(&admission).admit_queued(attempt(&incoming), std::time::Instant::now())
            };
            if let Some(incoming) = act(action, incoming, &admission, &freed, &on_accept) {
                queue.push_front((since, incoming));
                break;
            }
        }
    }
    for (_, incoming) in queue {
        lock(&admission).forget_queued(incoming.remote_address().ip());
        incoming.refuse();
    }
}

/// What the core needs to know of an incoming attempt.
fn attempt(incoming: &quinn::Incoming) -> Attempt {
    Attempt {
        ip: incoming.remote_address().ip(),
        validated: incoming.remote_address_validated(),
        may_retry: incoming.may_retry(),
    }
}

/// Carry out the core's `action` on `incoming`; gives the attempt back when it is to wait in the
/// queue.
fn act<F, Fut>(
    action: Action,
    incoming: quinn::Incoming,
    admission: &Arc<Mutex<Admission>>,
    freed: &Arc<Notify>,
    on_accept: &Arc<F>,
) -> Option<quinn::Incoming>
where
    F: Fn(quinn::Connection, FeedId) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    match action {
        Action::Accept { ticket, deadline } => {
            handshake(incoming, ticket, deadline, admission, freed, on_accept)
        }
        Action::Queue => return Some(incoming),
        Action::Retry => {
            // The core asks for a Retry only when `may_retry`; should quinn still refuse, the
            // attempt is refused rather than admitted.
            if let Err(e) = incoming.retry() {
                e.into_incoming().refuse();
            }
        }
        Action::Refuse => incoming.refuse(),
        Action::Ignore => incoming.ignore(),
    }
    None
}

/// Run one admitted handshake in its own task; its slot is given back (and the loop told) when
/// it ends, after `on_accept` for a connection.
fn handshake<F, Fut>(
    incoming: quinn::Incoming,
    ticket: Ticket,
    deadline: std::time::Duration,
    admission: &Arc<Mutex<Admission>>,
    freed: &Arc<Notify>,
    on_accept: &Arc<F>,
) where
    F: Fn(quinn::Connection, FeedId) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let slot = Slot {
        admission: Arc::clone(admission),
        freed: Arc::clone(freed),
        ticket: Some(ticket),
    };
    let on_accept = Arc::clone(on_accept);
    tokio::spawn(async move {
        let result = accept_within(incoming, deadline).await;
        let outcome = match &result {
            Ok(_) => Outcome::Completed,
            Err(NetError::HandshakeTimeout(_)) => Outcome::TimedOut,
            Err(_) => Outcome::Failed,
        };
        match result {
            // The slot is held through the caller's work too (its hello is bounded by
            // HELLO_TIMEOUT), so the tasks this loop starts stay bounded.
            Ok((conn, key)) => on_accept(conn, FeedId::from(key)).await,
            Err(e) => tracing::debug!(error = %e, "inbound handshake failed"),
        }
        slot.end(outcome);
    });
}

fn lock(admission: &Mutex<Admission>) -> std::sync::MutexGuard<'_, Admission> {
    admission.lock().unwrap_or_else(|p| p.into_inner())
}

/// An admitted handshake's slot: given back with its outcome, or as failed if the task is
/// dropped first (a runtime shutting down), so no slot is ever lost.
struct Slot {
    admission: Arc<Mutex<Admission>>,
    /// Wakes the accept loop for its queue.
    freed: Arc<Notify>,
    ticket: Option<Ticket>,
}

impl Slot {
    fn end(mut self, outcome: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            lock(&self.admission).finish(ticket, outcome, std::time::Instant::now());
            self.freed.notify_one();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            lock(&self.admission).finish(ticket, Outcome::Failed, std::time::Instant::now());
            self.freed.notify_one();
        }
    }
}
