//! Starts the daemon's switchboard links: one per switchboard or cluster given (`--switchboard`
//! or config) or remembered in the store, each through [`start_link`] under the `switchboards`
//! dynamic supervisor.
//!
//! Why an actor: the links live under a dynamic supervisor, so that `kith follow CARD` can add
//! one while the daemon runs; a dynamic supervisor starts empty, so something after it in the
//! tree must start the links it should hold. This worker does it each time it starts, which
//! under the tree's rest_for_one is each time the supervisor before it restarted too, and it
//! re-reads the store, so links added while the daemon ran (remembered when added) come back.
//! Then it idles. A link that cannot start is logged and the others still start.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::daemon::context::PeerContext;
use crate::daemon::switchboard_link::start_link;
use crate::net::target::merge_targets;

/// The link starter actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkStarter;

/// What it starts links from.
#[derive(Clone)]
pub struct LinkStarterArgs {
    /// The node's peer context (its `links` handle starts them).
    pub ctx: PeerContext,
    /// The switchboards and clusters given on the command line or in the config.
    pub given: Vec<String>,
}

impl Actor for LinkStarter {
    type Msg = ();
    type State = ();
    type Arguments = LinkStarterArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let remembered = args.ctx.node.store.read()?.switchboards()?;
        let targets = merge_targets(&args.given, &remembered)?;
        for target in targets {
            match start_link(&args.ctx, &target).await {
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(switchboard = %target, error = %e, "switchboard link not started")
                }
            }
        }
        Ok(())
    }
}
