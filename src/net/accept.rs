//! The accept loop both roles share: each inbound QUIC handshake is admitted (or asked to prove
//! its address, or refused) by the sans-IO [`crate::net::admission`] core, finishes in its own
//! task within the deadline the core gave it, and only connections whose peer proved its key
//! reach the caller.
//!
//! The loop never waits for a slot: a decision is taken for every attempt as it arrives, so a
//! flood of stalled handshakes is answered with Retries (which cost no state) instead of
//! queueing honest clients behind it.

use std::sync::{Arc, Mutex};

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
    while let Some(incoming) = endpoint.incoming().await {
        let attempt = Attempt {
            ip: incoming.remote_address().ip(),
            validated: incoming.remote_address_validated(),
            may_retry: incoming.may_retry(),
        };
        let action = lock(&admission).admit(attempt);
        let (ticket, deadline) = match action {
            Action::Accept { ticket, deadline } => (ticket, deadline),
            Action::Retry => {
                // The core asks for a Retry only when `may_retry`; should quinn still refuse,
                // the attempt is refused rather than admitted.
                if let Err(e) = incoming.retry() {
                    e.into_incoming().refuse();
                }
                continue;
            }
            Action::Refuse => {
                incoming.refuse();
                continue;
            }
            Action::Ignore => {
                incoming.ignore();
                continue;
            }
        };
        let slot = Slot {
            admission: Arc::clone(&admission),
            ticket: Some(ticket),
        };
        let on_accept = Arc::clone(&on_accept);
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
}

fn lock(admission: &Mutex<Admission>) -> std::sync::MutexGuard<'_, Admission> {
    admission.lock().unwrap_or_else(|p| p.into_inner())
}

/// An admitted handshake's slot: given back with its outcome, or as failed if the task is
/// dropped first (a runtime shutting down), so no slot is ever lost.
struct Slot {
    admission: Arc<Mutex<Admission>>,
    ticket: Option<Ticket>,
}

impl Slot {
    fn end(mut self, outcome: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            lock(&self.admission).finish(ticket, outcome);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            lock(&self.admission).finish(ticket, Outcome::Failed);
        }
    }
}
