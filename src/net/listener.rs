//! The listener actor both roles run: it owns the accept loop ([`accept_each`]) on the node's
//! QUIC endpoint and hands each connection whose peer proved its key to the role's `on_accept`
//! (a daemon starts a peer connection, a switchboard a session). When the endpoint closes the
//! actor fails, so that its supervisor restarts it.
//!
//! Why one actor for both: the loop, its ownership and its failure are the same; only what is
//! started for a connection differs, and that is the role's function.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::identity::FeedId;
use crate::net::accept::accept_each;
use crate::net::PeerEndpoint;
use crate::runtime::OwnedTask;

/// What a role does with an authenticated connection (its slot is held until this returns).
pub type OnAccept = Arc<
    dyn Fn(quinn::Connection, FeedId) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync,
>;

/// What a listener starts with.
#[derive(Clone)]
pub struct ListenerArgs {
    /// The endpoint to accept on.
    pub endpoint: Arc<PeerEndpoint>,
    /// Who listens, for the logs ("peers", "switchboard").
    pub role: &'static str,
    /// The role's handler of each connection.
    pub on_accept: OnAccept,
}

/// Messages to a listener.
pub enum ListenerMsg {
    /// The endpoint closed; the listener fails so that it is restarted.
    EndpointClosed,
}

/// The listener actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Listener;

/// The listener's state: its accept loop, aborted with it.
pub struct ListenerState {
    role: &'static str,
    _accept: OwnedTask,
}

impl Actor for Listener {
    type Msg = ListenerMsg;
    type State = ListenerState;
    type Arguments = ListenerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let ListenerArgs {
            endpoint,
            role,
            on_accept,
        } = args;
        tracing::info!(addr = ?endpoint.local_addr().ok(), role, "listening");
        let accept = OwnedTask::spawn(async move {
            accept_each(&endpoint, move |conn, peer| on_accept(conn, peer)).await;
            let _ = myself.cast(ListenerMsg::EndpointClosed);
        });
        Ok(ListenerState {
            role,
            _accept: accept,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ListenerMsg::EndpointClosed => {
                Err(format!("the {} endpoint closed", state.role).into())
            }
        }
    }
}
