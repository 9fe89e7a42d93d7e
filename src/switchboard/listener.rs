//! The switchboard's listener: accepts peers and starts one session actor per connection.
//!
//! Like the daemon's listener ([`accept_each`]), an owned accept loop finishes each TLS handshake
//! in its own short task and starts the session as a temporary child of the
//! clients dynamic supervisor, whose `max_children` bounds how many peers one node holds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::identity::FeedId;
use crate::net::accept::accept_each;
use crate::net::close::close;
use crate::net::CloseCode;
use crate::runtime::OwnedTask;
use crate::switchboard::context::SbContext;
use crate::switchboard::session::{SbSession, SbSessionArgs};

/// Messages to the switchboard listener.
pub enum SbListenerMsg {
    /// The endpoint closed; the listener fails so that it is restarted.
    EndpointClosed,
}

/// The switchboard listener actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct SbListener;

/// The listener's state: its accept loop, aborted with it.
pub struct SbListenerState {
    _accept: OwnedTask,
}

impl Actor for SbListener {
    type Msg = SbListenerMsg;
    type State = SbListenerState;
    type Arguments = SbContext;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        tracing::info!(addr = ?ctx.endpoint.local_addr().ok(), "switchboard listening");
        Ok(SbListenerState {
            _accept: OwnedTask::spawn(accept_loop(ctx, myself)),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SbListenerMsg::EndpointClosed => Err("the switchboard endpoint closed".into()),
        }
    }
}

async fn accept_loop(ctx: SbContext, myself: ActorRef<SbListenerMsg>) {
    let endpoint = Arc::clone(&ctx.endpoint);
    accept_each(&endpoint, move |conn, peer| {
        let ctx = ctx.clone();
        async move { start_session(&ctx, conn, peer).await }
    })
    .await;
    let _ = myself.cast(SbListenerMsg::EndpointClosed);
}

async fn start_session(ctx: &SbContext, conn: quinn::Connection, peer: FeedId) {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let args = SbSessionArgs {
        ctx: ctx.clone(),
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
