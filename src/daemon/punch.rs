//! Relay first, direct when it opens; and hole punching.
//!
//! After an introduction the caller dials the callee through the switchboard's relay at once
//! ([`relay_first`]), so the first byte never waits for a punch to fail (behind NATs that cannot
//! be punched, waiting [`PUNCH_TIMEOUT`] first used to be most of a newcomer's first sync). When
//! the callee answered direct, the introduction carries its observed address and the caller
//! tries it beside the relayed dial ([`punch`]), from the same UDP socket it uses for
//! everything else, while the callee dials the caller back (told to by the switchboard), which
//! opens its own NAT's mapping toward the caller. When a direct connection comes up, the
//! connections table's tie-break (`keep_new`: a direct connection beats a relayed one) moves the
//! session onto it and closes the relayed one — as iroh does. A relay-only answer carries no
//! address: nothing is punched, and neither side learns where the other is.
//!
//! Behind a NAT that filters by address and port, the first packet of whichever side sends first
//! dies at the other side's NAT (no mapping yet), so often only one of the two dials gets
//! through in time, and it may be the callee's. [`punch`] therefore reports whether the peer is
//! connected once its own attempt ends, not whether its own dial won.
//!
//! [`introduce`] asks one switchboard link and records the outcome ([`Outcome`]) for `kith
//! contacts` and `kith status`.

use std::net::SocketAddr;

use ractor::rpc::CallResult;
use ractor::ActorRef;

use crate::daemon::context::PeerContext;
use crate::daemon::error::{IntroError, RelayFailure};
use crate::daemon::listener::start_peer;
use crate::daemon::messages::{Relayed, SbLinkMsg};
use crate::daemon::peer::Direction;
use crate::daemon::uplink::{Outcome, OutcomeKind};
use crate::feed::now_ms;
use crate::identity::FeedId;
use crate::limits::{INTRODUCTION_TIMEOUT, PUNCH_TIMEOUT};
use crate::net::close::close;
use crate::net::CloseCode;

/// Try the direct path to `peer` at `observed`; true if the peer is now connected, by this dial
/// or by theirs (the callee's dial-back, or the caller's punch when this is the dial-back).
pub async fn punch(ctx: &PeerContext, peer: FeedId, observed: SocketAddr) -> bool {
    let Ok(key) = peer.verifying_key() else {
        return false;
    };
    let dial = tokio::time::timeout(PUNCH_TIMEOUT, ctx.endpoint.dial(observed, key)).await;
    match dial {
        Ok(Ok((conn, _))) => {
            if let Err(e) = start_peer(ctx, conn, peer, Direction::Outbound).await {
                tracing::debug!(peer = %peer.short(), %observed, error = %e, "direct connection not kept");
            }
        }
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer.short(), %observed, error = %e, "direct path failed")
        }
        Err(_) => tracing::debug!(peer = %peer.short(), %observed, "direct path timed out"),
    }
    ctx.connections.contains(&peer)
}

/// Dial `peer` through the relay of `path` now and, if the introduction gave its address, punch
/// beside it (the punch goes on after this returns; a direct connection replaces the relayed
/// one when it opens). Ok once the peer is connected by either.
pub async fn relay_first(
    ctx: &PeerContext,
    peer: FeedId,
    path: Relayed,
) -> Result<(), RelayFailure> {
    let key = peer
        .verifying_key()
        .map_err(|_| RelayFailure::Refused(IntroError::RelayGone))?;
    let punching = path.observed.map(|observed| {
        let ctx = ctx.clone();
        tokio::spawn(async move { punch(&ctx, peer, observed).await })
    });
    match path.endpoint.dial(path.addr, key).await {
        Ok((conn, _)) => {
            if ctx.connections.via(&peer).is_some_and(|via| !via.relayed) {
                // The punch (or the callee's dial-back) opened the direct path first.
                close(&conn, CloseCode::Duplicate);
                return Ok(());
            }
            start_peer(ctx, conn, peer, Direction::Outbound)
                .await
                .map_err(RelayFailure::Start)
        }
        Err(e) => {
            // The relay failed: the direct path may still connect them.
            let punched = match punching {
                Some(task) => task.await.unwrap_or(false),
                None => false,
            };
            match punched {
                true => Ok(()),
                false => Err(RelayFailure::Dial(e)),
            }
        }
    }
}

/// An introduction to `peer` through one switchboard link, its outcome recorded.
pub async fn introduce(
    ctx: &PeerContext,
    link: &ActorRef<SbLinkMsg>,
    peer: FeedId,
) -> Result<Relayed, RelayFailure> {
    let answer = link
        .call(
            |port| SbLinkMsg::Introduce(peer, port),
            Some(INTRODUCTION_TIMEOUT),
        )
        .await;
    let result = match answer {
        Ok(CallResult::Success(Ok(path))) => Ok(path),
        Ok(CallResult::Success(Err(e))) => Err(RelayFailure::Refused(e)),
        _ => Err(RelayFailure::NoAnswer),
    };
    match &result {
        Ok(path) => {
            let kind = match path.observed {
                Some(_) => OutcomeKind::Direct,
                None => OutcomeKind::RelayOnly,
            };
            note(ctx, peer, kind, None);
        }
        Err(e @ RelayFailure::Refused(IntroError::Declined(_))) => {
            tracing::debug!(peer = %peer.short(), reason = %e, "introduction refused");
            note(ctx, peer, OutcomeKind::Refused, Some(e.to_string()));
        }
        Err(e) => tracing::debug!(peer = %peer.short(), reason = %e, "no introduction"),
    }
    result
}

/// Ask each switchboard in turn and take the first path it gives, relay first. The outcome of
/// the round is recorded: introduced (direct or relay only), refused by the callee, or failed.
pub async fn through_switchboards(
    ctx: &PeerContext,
    peer: FeedId,
) -> Result<(), Vec<RelayFailure>> {
    let mut reasons = Vec::new();
    let mut introduced = false;
    for link in ctx.relays.links() {
        match introduce(ctx, &link, peer).await {
            Ok(path) => {
                introduced = true;
                match relay_first(ctx, peer, path).await {
                    Ok(()) => return Ok(()),
                    Err(e) => reasons.push(e),
                }
            }
            Err(e) => reasons.push(e),
        }
    }
    let declined = reasons
        .iter()
        .any(|r| matches!(r, RelayFailure::Refused(IntroError::Declined(_))));
    if !introduced && !declined && !reasons.is_empty() {
        let texts: Vec<String> = reasons.iter().map(ToString::to_string).collect();
        note(ctx, peer, OutcomeKind::Failed, Some(texts.join("; ")));
    }
    Err(reasons)
}

fn note(ctx: &PeerContext, peer: FeedId, answer: OutcomeKind, reason: Option<String>) {
    ctx.relays.note_outcome(
        peer,
        Outcome {
            answer,
            reason,
            at_ms: now_ms(),
        },
    );
}
