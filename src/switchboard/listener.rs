//! The switchboard's side of the listener: one session actor per accepted connection (the actor
//! itself is the shared [`crate::net::listener::Listener`]).
//!
//! As for a daemon, an owned accept loop ([`crate::net::accept::accept_each`]) finishes each TLS handshake
//! in its own short task and starts the session as a temporary child of the
//! clients dynamic supervisor, whose `max_children` bounds how many peers one node holds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::identity::FeedId;
use crate::net::close::close;
use crate::net::listener::{ListenerArgs, OnAccept};
use crate::net::CloseCode;
use crate::switchboard::context::SbContext;
use crate::switchboard::session::{SbSession, SbSessionArgs};

/// The shared listener's arguments for a switchboard: every authenticated connection gets a
/// session actor.
pub fn listener_args(ctx: SbContext) -> ListenerArgs {
    let endpoint = Arc::clone(&ctx.endpoint);
    // One context shared by every session (a session's arguments live as long as it does).
    let ctx = Arc::new(ctx);
    let on_accept: OnAccept = Arc::new(move |conn, peer| {
        let ctx = Arc::clone(&ctx);
        Box::pin(async move { start_session(&ctx, conn, peer).await })
    });
    ListenerArgs {
        endpoint,
        role: "switchboard",
        on_accept,
    }
}

async fn start_session(ctx: &Arc<SbContext>, conn: quinn::Connection, peer: FeedId) {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let args = SbSessionArgs {
        ctx: Arc::clone(ctx),
        conn: conn.clone(),
        peer,
    };
    let id = format!(
        "client:{}:{}",
        peer.short(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    );
    if let Err(e) = ctx
        .clients
        .start_worker(id, SbSession, move || args.clone())
        .await
    {
        tracing::debug!(peer = %peer.short(), error = %e, "switchboard session not started");
        close(&conn, CloseCode::Normal);
    }
}
