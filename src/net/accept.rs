//! The accept loop both roles share: every inbound QUIC handshake finishes in its own task,
//! boundedly many at once, and only connections whose peer proved its key reach the caller.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::identity::FeedId;
use crate::limits::HANDSHAKES_MAX;
use crate::net::endpoint::accept;
use crate::net::PeerEndpoint;

/// Accept connections on `endpoint` until it closes: each TLS handshake (the peer proves its
/// key) finishes in its own task, at most [`HANDSHAKES_MAX`] at once, then `on_accept` gets the
/// connection and the proven id. Shared by the daemon's and the switchboard's listeners.
pub async fn accept_each<F, Fut>(endpoint: &PeerEndpoint, on_accept: F)
where
    F: Fn(quinn::Connection, FeedId) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    let on_accept = Arc::new(on_accept);
    while let Some(incoming) = endpoint.incoming().await {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let on_accept = Arc::clone(&on_accept);
        tokio::spawn(async move {
            match accept(incoming).await {
                Ok((conn, key)) => on_accept(conn, FeedId::from(key)).await,
                Err(e) => tracing::debug!(error = %e, "inbound handshake failed"),
            }
            drop(permit);
        });
    }
}
