//! The ghost check at the end of a run: after every simulated peer stopped, connect one checker
//! per switchboard and watch every id the run used. A switchboard answers a watch with a notice
//! for each watched id it lists as online, so every notice is a ghost: a presence with no live
//! peer behind it. The cluster is given [`LOADTEST_GHOST_SETTLE`] to forget the stopped peers
//! (leaves cross the cluster by gossip); the count is the one at the end of that time.

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;

use crate::identity::FeedId;
use crate::limits::{LOADTEST_GHOST_SETTLE, WATCH_IDS_MAX};
use crate::loadtest::client::{self, SbTarget};
use crate::loadtest::LoadtestError;
use crate::net::PeerEndpoint;
use crate::wire::switchboard::{ClientMsg, ServerMsg};

/// How long a pass waits after its last watch for the notices to stop coming.
const QUIET: Duration = Duration::from_millis(500);
/// Pause between passes.
const PASS_GAP: Duration = Duration::from_millis(500);

/// Ghosts listed by the worst switchboard, after at most [`LOADTEST_GHOST_SETTLE`].
pub async fn count(
    endpoint: &PeerEndpoint,
    targets: &[SbTarget],
    ids: &[FeedId],
    seed: u64,
) -> Result<u64, LoadtestError> {
    let deadline = Instant::now() + LOADTEST_GHOST_SETTLE;
    let mut worst = 0;
    for (i, target) in targets.iter().enumerate() {
        // A checker identity that is none of the peers'.
        let secret = *blake3::hash(
            &[
                b"kith-loadtest-checker".as_slice(),
                &seed.to_le_bytes(),
                &(i as u64).to_le_bytes(),
            ]
            .concat(),
        )
        .as_bytes();
        let key = SigningKey::from_bytes(&secret);
        let mut joined = client::join(endpoint, &key, *target).await?;
        let ghosts = loop {
            let ghosts = pass(&mut joined, ids).await?;
            if ghosts == 0 || Instant::now() >= deadline {
                break ghosts;
            }
            tokio::time::sleep(PASS_GAP).await;
        };
        joined.conn.close(0u32.into(), b"checked");
        worst = worst.max(ghosts);
    }
    Ok(worst)
}

/// One pass: watch the ids chunk by chunk; count the distinct ids noticed online.
async fn pass(joined: &mut client::Joined, ids: &[FeedId]) -> Result<u64, LoadtestError> {
    let mut online = std::collections::HashSet::new();
    for chunk in ids.chunks(WATCH_IDS_MAX) {
        client::write(
            &mut joined.send,
            &ClientMsg::Watch {
                ids: chunk.to_vec(),
            },
        )
        .await?;
    }
    client::write(&mut joined.send, &ClientMsg::Watch { ids: Vec::new() }).await?;
    // Bounded: each notice is for one of `ids`, each at most once per watch.
    let most = 2 * ids.len() + 16;
    for _ in 0..most {
        match tokio::time::timeout(QUIET, client::read(&mut joined.recv)).await {
            Ok(Ok(ServerMsg::Presence {
                id,
                online: Some(_),
            })) => {
                online.insert(id);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => break,
        }
    }
    Ok(online.len() as u64)
}
