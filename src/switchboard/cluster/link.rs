//! A switchboard's link to another node of its cluster (`kith switchboard --join ADDR`).
//!
//! States: connecting (dial with backoff and jitter; the other node's key is pinned as
//! `@ID@HOST:PORT` or learned on first use), linked (the connection carries the presence
//! tracker's gossip through [`QuicPresence`](super::presence_link::QuicPresence), so each node lists the peers connected to the
//! others; its hello stream carries the [`node_link`] between the two nodes: introductions and
//! relayed frames for clients of the other node). When the connection ends the link is dropped from the tracker's transport — the
//! tracker marks that node down after its down period — and the link redials. Started by the
//! switchboard tree, one per `--join`, permanent.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::identity::{FeedId, IdentityError};
use crate::net::hello::{dial_hello, Capabilities, Capability, Hello, HelloError, NodeRole};
use crate::net::pin::{pin, PinError};
use crate::net::target::Target;
use crate::net::NetError;
use crate::presence::driver::transport::Inbound;
use crate::presence::ReplicaName;
use crate::runtime::backoff::redial_delay;
use crate::runtime::OwnedTask;
use crate::switchboard::cluster::node_link::{self, NodeLink};
use crate::switchboard::context::SbContext;

/// Messages to a cluster link.
pub enum ClusterLinkMsg {
    /// Connect now.
    Connect,
    /// The connection ended.
    Closed,
}

/// The cluster link actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClusterLink;

/// What a cluster link starts with.
#[derive(Clone)]
pub struct ClusterLinkArgs {
    /// This switchboard.
    pub ctx: SbContext,
    /// `[@ID@]HOST:PORT` of the other node.
    pub target: String,
}

/// A cluster link's state.
pub struct ClusterLinkState {
    ctx: SbContext,
    target: Target,
    attempt: u32,
    link: Option<(ReplicaName, quinn::Connection, OwnedTask, NodeLink)>,
}

impl Drop for ClusterLinkState {
    fn drop(&mut self) {
        if let Some((name, conn, ..)) = self.link.take() {
            self.ctx.cluster.detach(&name, conn.stable_id());
            conn.close(0u32.into(), b"bye");
        }
    }
}

impl Actor for ClusterLink {
    type Msg = ClusterLinkMsg;
    type State = ClusterLinkState;
    type Arguments = ClusterLinkArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let target = Target::parse(&args.target)?;
        myself.cast(ClusterLinkMsg::Connect)?;
        Ok(ClusterLinkState {
            ctx: args.ctx,
            target,
            attempt: 0,
            link: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ClusterLinkMsg::Connect if state.link.is_none() => {
                match connect(&myself, state).await {
                    Ok(()) => state.attempt = 0,
                    Err(e) => {
                        tracing::debug!(node = %state.target.host, error = %e, "cluster node not reached");
                        state.attempt += 1;
                        retry(&myself, state.attempt);
                    }
                }
            }
            ClusterLinkMsg::Connect => {}
            ClusterLinkMsg::Closed => {
                if let Some((name, conn, ..)) = state.link.take() {
                    state.ctx.cluster.detach(&name, conn.stable_id());
                }
                tracing::info!(node = %state.target.host, "cluster link down");
                retry(&myself, 1);
            }
        }
        Ok(())
    }
}

/// Why a cluster link could not reach and greet the other node.
#[derive(Debug, thiserror::Error)]
enum ClusterLinkError {
    /// The host did not resolve.
    #[error(transparent)]
    Resolve(std::io::Error),
    /// The host resolved to no address.
    #[error("no address")]
    NoAddress,
    /// The pinned id is not a valid key.
    #[error(transparent)]
    BadId(#[from] IdentityError),
    /// The other node's key could not be learned on first use.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// The dial failed.
    #[error(transparent)]
    Dial(#[from] NetError),
    /// The hello exchange failed.
    #[error(transparent)]
    Hello(#[from] HelloError),
}

async fn connect(
    myself: &ActorRef<ClusterLinkMsg>,
    state: &mut ClusterLinkState,
) -> Result<(), ClusterLinkError> {
    let endpoint = &state.ctx.endpoint;
    let addr = tokio::net::lookup_host(state.target.host.as_str())
        .await
        .map_err(ClusterLinkError::Resolve)?
        .next()
        .ok_or(ClusterLinkError::NoAddress)?;
    // Trust on first use: a key learned now stays pinned for the life of the actor.
    let given = state.target.id.map(|id| id.verifying_key()).transpose()?;
    let key = pin(endpoint, addr, given).await?.key;
    state.target.id = Some(FeedId::from(key));
    let (conn, _) = endpoint.dial(addr, key).await?;
    let ours = Hello::new(
        NodeRole::Switchboard,
        Capabilities::of(&[Capability::Presence]),
    );
    let greeted = dial_hello(&conn, &ours).await?;
    let name = ReplicaName::new(&FeedId::from(key).to_string());
    let inbound: Arc<dyn Inbound> = Arc::new(state.ctx.tracker.clone());
    state
        .ctx
        .cluster
        .attach(name.clone(), conn.clone(), inbound);
    let node_link = node_link::start(
        &state.ctx,
        FeedId::from(key),
        &conn,
        greeted.send,
        greeted.recv,
    );
    let (watched, me) = (conn.clone(), myself.clone());
    let watch = OwnedTask::spawn(async move {
        watched.closed().await;
        let _ = me.cast(ClusterLinkMsg::Closed);
    });
    tracing::info!(node = %state.target.host, "cluster link up");
    state.link = Some((name, conn, watch, node_link));
    Ok(())
}

fn retry(myself: &ActorRef<ClusterLinkMsg>, attempt: u32) {
    let delay = redial_delay(attempt.max(1), rand::random::<f64>());
    myself.send_after(delay, || ClusterLinkMsg::Connect);
}
