//! A session carries out the decisions of its introduction policy
//! ([`Introductions`](crate::switchboard::intro::Introductions)): it finds the callee (a session
//! on this node, or the cluster node it is on), shows requests to its peer, opens relay pairs,
//! counts, and answers callers.
//!
//! Why apart from the policy: everything here touches the node (sessions, presence, the cluster's
//! links, the hub); the policy itself stays sans-IO and tested on its own.

use std::net::SocketAddr;

use crate::identity::FeedId;
use crate::switchboard::cluster::node_link;
use crate::switchboard::context::Counters;
use crate::switchboard::intro::{Decision, IntroError};
use crate::switchboard::messages::{Asker, SbSessionMsg};
use crate::wire::switchboard::{NodeMsg, ServerMsg, TrackedMeta, PEERS_TOPIC};

use super::io::send;
use super::SbSessionState;

/// Do what the policy decided; false if the peer is not reading (the session ends).
pub(super) fn carry_out(state: &SbSessionState, decision: Decision<Asker>) -> bool {
    match decision {
        Decision::Nothing => true,
        Decision::Refuse { to, error } => refuse(state, to, error),
        Decision::Forward { to } => forward(state, to),
        Decision::Show { from } => send(state, ServerMsg::IntroRequest { from }),
        Decision::Reply {
            caller,
            asker,
            error,
        } => {
            reply(state, caller, asker, Err(error));
            true
        }
        Decision::Decline {
            caller,
            asker,
            error,
        } => {
            state.ctx.counters.refuse_introduction(&error);
            reply(state, caller, asker, Err(error));
            true
        }
        Decision::Accept {
            caller,
            asker,
            punch,
        } => {
            let opened = match &asker {
                Asker::Local(_) => state
                    .ctx
                    .hub
                    .open_pair(caller, state.peer)
                    .map_err(IntroError::from),
                Asker::Node(node) => node_link::open_remote(&state.ctx, *node, state.peer, caller),
            };
            // Addresses cross only on a direct answer: this peer is told where the caller is,
            // and the caller where this peer is. Relay only: neither.
            let result = opened.map(|()| punch.map(|_| state.conn.remote_address()));
            match &result {
                Ok(_) => Counters::bump(&state.ctx.counters.introductions),
                Err(e) => state.ctx.counters.refuse_introduction(e),
            }
            let keep = match (&result, punch) {
                (Ok(_), Some(observed)) => send(
                    state,
                    ServerMsg::PunchTo {
                        peer: caller,
                        observed,
                    },
                ),
                _ => true,
            };
            reply(state, caller, asker, result);
            keep
        }
    }
}

/// Tell this peer that its request to reach `to` is refused, and count it.
fn refuse(state: &SbSessionState, to: FeedId, error: IntroError) -> bool {
    state.ctx.counters.refuse_introduction(&error);
    send(
        state,
        ServerMsg::IntroRefused {
            to,
            reason: error.to_string(),
            declined: error.declined(),
        },
    )
}

/// This peer asks to reach `to`: ask `to`'s session, which asks its peer; or, when `to` is a
/// client of another node of the cluster, ask that node.
fn forward(state: &SbSessionState, to: FeedId) -> bool {
    let observed = state.conn.remote_address();
    if let Some(session) = state.ctx.sessions.get(&to).map(|s| s.clone()) {
        let request = SbSessionMsg::IntroRequest {
            from: state.peer,
            asker: Asker::Local(state.me.clone()),
            observed,
        };
        return session.cast(request).is_ok() || refuse(state, to, IntroError::NotConnected(to));
    }
    let Some(node) = home_node(state, &to) else {
        return refuse(state, to, IntroError::NotConnected(to));
    };
    state.ctx.nodes.introduce(&node, state.peer, to, observed)
        || refuse(state, to, IntroError::NodeUnreachable(to))
}

/// The other cluster node `id` is connected to, per presence.
fn home_node(state: &SbSessionState, id: &FeedId) -> Option<FeedId> {
    state
        .ctx
        .tracker
        .get_by_key(PEERS_TOPIC, &id.to_string())
        .into_iter()
        .filter_map(|p| TrackedMeta::decode(&p.row.meta))
        .filter_map(|m| m.peer.node.parse::<FeedId>().ok())
        .find(|node| state.ctx.nodes.is_linked(node))
}

/// Give `caller`, who asked this peer through `asker`, this peer's answer (as text when it
/// crosses to another node).
fn reply(
    state: &SbSessionState,
    caller: FeedId,
    asker: Asker,
    result: Result<Option<SocketAddr>, IntroError>,
) {
    match asker {
        Asker::Local(session) => {
            let _ = session.cast(SbSessionMsg::IntroResult {
                to: state.peer,
                result,
            });
        }
        Asker::Node(node) => {
            let _ = state.ctx.nodes.send(
                &node,
                NodeMsg::Answer {
                    callee: state.peer,
                    caller,
                    declined: result.as_ref().is_err_and(IntroError::declined),
                    result: result.map_err(|e| e.to_string()),
                },
            );
        }
    }
}
