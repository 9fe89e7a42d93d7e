//! One blob fetch on its own stream of a peer connection: ask, check the announced size, then
//! verify the bao stream as it arrives ([`Verifier`]) and append only verified bytes to a
//! temporary file, which becomes the blob when the whole has been verified. Bytes that fail
//! are refused: the peer is told why by name (a [`BlobVerdict::Refused`] frame), the stream is
//! stopped, and the temporary file is removed — nothing is stored.

use crate::blob::plan::{Fetch, Outcome};
use crate::blob::verify::{Verified, Verifier};
use crate::blob::wire::{BlobReply, BlobVerdict, BlobWant, FetchRefusal};
use crate::blob::{BlobError, BlobStore};
use crate::limits::{BLOB_FETCH_TIMEOUT, BLOB_FRAME_BYTES_MAX, BLOB_READ_BYTES};
use crate::net::{stream, Conn};

/// QUIC application code for stopping a blob stream whose bytes were refused.
const REFUSED: u32 = 1;

/// Fetch `fetch` over `conn` into `store`, within [`BLOB_FETCH_TIMEOUT`].
pub(crate) async fn fetch(conn: Conn, fetch: Fetch, store: BlobStore) -> Outcome {
    match tokio::time::timeout(BLOB_FETCH_TIMEOUT, run(&conn, &fetch, &store)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::debug!(blob = %fetch.id.short(), peer = %fetch.from.short(), "blob fetch timed out");
            Outcome::Failed
        }
    }
}

async fn run(conn: &Conn, fetch: &Fetch, store: &BlobStore) -> Outcome {
    let (peer, id) = (fetch.from, fetch.id);
    let Ok((mut send, mut recv)) = conn.open_stream().await else {
        return Outcome::Failed;
    };
    let max_bytes = store.limits().max_bytes;
    if stream::write_frame(&mut send, &BlobWant { id, max_bytes })
        .await
        .is_err()
    {
        return Outcome::Failed;
    }
    let size = match stream::read_frame::<BlobReply>(&mut recv, BLOB_FRAME_BYTES_MAX).await {
        Ok(Some(BlobReply::Blob { size })) => size,
        Ok(Some(BlobReply::Refused(why))) => {
            tracing::debug!(blob = %id.short(), peer = %peer.short(), %why, "blob not served");
            return Outcome::Refused(why);
        }
        Ok(None) | Err(_) => return Outcome::Failed,
    };
    // The size is checked before a byte of the blob is read.
    let early = if size > max_bytes {
        Some(FetchRefusal::TooLarge {
            size,
            max: max_bytes,
        })
    } else if size != fetch.size {
        Some(FetchRefusal::SizeMismatch {
            announced: size,
            expected: fetch.size,
        })
    } else {
        None
    };
    if let Some(refusal) = early {
        return refuse(send, recv, fetch, refusal).await;
    }
    let mut incoming = match store.incoming(id, size) {
        Ok(incoming) => incoming,
        Err(BlobError::OverBudget { .. }) => {
            let _ = refuse(send, recv, fetch, FetchRefusal::OverBudget).await;
            return Outcome::Failed;
        }
        Err(e) => {
            tracing::warn!(blob = %id, error = %e, "cannot store a fetched blob");
            return Outcome::Failed;
        }
    };
    let mut verifier = Verifier::new(id, size);
    let mut verified: Vec<Verified> = Vec::new();
    loop {
        let chunk = match recv.read_chunk(BLOB_READ_BYTES, true).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => return Outcome::Failed,
        };
        verified.clear();
        if let Err(e) = verifier.push(&chunk.bytes, &mut verified) {
            drop(incoming);
            return refuse(send, recv, fetch, FetchRefusal::Corrupt(e)).await;
        }
        for piece in &verified {
            if let Err(e) = incoming.write(piece) {
                tracing::warn!(blob = %id, error = %e, "cannot store a fetched blob");
                return Outcome::Failed;
            }
        }
    }
    if let Err(e) = verifier.finish() {
        drop(incoming);
        return refuse(send, recv, fetch, FetchRefusal::Corrupt(e)).await;
    }
    let committed = tokio::task::spawn_blocking(move || incoming.commit()).await;
    match committed {
        Ok(Ok(())) => {
            let _ = stream::write_frame(&mut send, &BlobVerdict::Stored).await;
            let _ = send.finish();
            tracing::info!(blob = %id, peer = %peer.short(), bytes = size, "blob fetched and verified");
            Outcome::Stored
        }
        Ok(Err(e)) => {
            tracing::warn!(blob = %id, error = %e, "a verified blob could not be stored");
            Outcome::Failed
        }
        Err(_) => Outcome::Failed,
    }
}

/// Tell the peer why its stream is refused, stop reading it, and count it against the peer.
async fn refuse(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    fetch: &Fetch,
    refusal: FetchRefusal,
) -> Outcome {
    tracing::warn!(blob = %fetch.id, peer = %fetch.from, reason = %refusal, "refused a blob a peer served; nothing stored");
    let _ = recv.stop(REFUSED.into());
    let _ = stream::write_frame(&mut send, &BlobVerdict::Refused(refusal.clone())).await;
    let _ = send.finish();
    // Let the verdict reach the peer before the stream is dropped.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), send.stopped()).await;
    match refusal {
        FetchRefusal::OverBudget => Outcome::Failed,
        _ => Outcome::Corrupt,
    }
}
