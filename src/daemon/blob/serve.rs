//! Serving blobs on a peer connection: every stream the peer opens after the hello is one
//! `BlobWant` (see [`crate::blob::wire`]). At most [`BLOB_STREAMS_PER_PEER`] are handled at once
//! per peer (the next is not accepted until one ends, so QUIC's stream limit pushes back), and
//! at most [`BLOB_SERVES_MAX`](crate::limits::BLOB_SERVES_MAX) across all peers (past it the
//! answer is `Busy`). A blob whose file no longer matches its hash is refused as `Damaged`,
//! never passed on. The fetcher's verdict is read back: a refusal is logged by name and kept
//! for `kith blob ls`.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::blob::plan::serve_decision;
use crate::blob::verify::encode;
use crate::blob::wire::{BlobReply, BlobVerdict, BlobWant, ServeRefusal};
use crate::blob::{BlobError, BlobId};
use crate::daemon::blob::Blobs;
use crate::identity::FeedId;
use crate::limits::{BLOB_FETCH_TIMEOUT, BLOB_FRAME_BYTES_MAX, BLOB_STREAMS_PER_PEER};
use crate::net::stream;

/// Answer the blob streams `peer` opens on `conn` until the connection ends.
pub(crate) async fn serve_streams(conn: quinn::Connection, blobs: Blobs, peer: FeedId) {
    let slots = Arc::new(Semaphore::new(BLOB_STREAMS_PER_PEER));
    let mut running = JoinSet::new();
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Ok((send, recv)) = conn.accept_bi().await else {
            return;
        };
        while running.try_join_next().is_some() {}
        let blobs = blobs.clone();
        running.spawn(async move {
            let served = serve_one(send, recv, &blobs, peer);
            if tokio::time::timeout(BLOB_FETCH_TIMEOUT, served)
                .await
                .is_err()
            {
                tracing::debug!(peer = %peer.short(), "a blob stream outlived its deadline");
            }
            drop(slot);
        });
    }
}

async fn serve_one(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    blobs: &Blobs,
    peer: FeedId,
) {
    let want = match stream::read_frame::<BlobWant>(&mut recv, BLOB_FRAME_BYTES_MAX).await {
        Ok(Some(want)) => want,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(peer = %peer.short(), error = %e, "bad blob request");
            return;
        }
    };
    let id = want.id;
    let (size, stream_bytes) = match prepare(blobs, &want).await {
        Ok(ready) => ready,
        Err(refusal) => {
            tracing::debug!(peer = %peer.short(), blob = %id.short(), %refusal, "blob not served");
            let _ = stream::write_frame(&mut send, &BlobReply::Refused(refusal)).await;
            let _ = send.finish();
            return;
        }
    };
    // A fetcher that refuses the bytes stops reading at once, so the write may fail: its
    // verdict is read all the same.
    let sent = async {
        stream::write_frame(&mut send, &BlobReply::Blob { size })
            .await
            .ok()?;
        send.write_all(&stream_bytes).await.ok()?;
        send.finish().ok()
    };
    let _ = sent.await;
    drop(stream_bytes);
    match stream::read_frame::<BlobVerdict>(&mut recv, BLOB_FRAME_BYTES_MAX).await {
        Ok(Some(BlobVerdict::Stored)) => {
            tracing::debug!(peer = %peer.short(), blob = %id.short(), "blob served");
        }
        Ok(Some(BlobVerdict::Refused(refusal))) => {
            tracing::warn!(peer = %peer.short(), blob = %id, reason = %refusal, "the peer refused a blob this node served");
            blobs.note_refusal(peer, id, refusal);
        }
        Ok(None) | Err(_) => {}
    }
}

/// The size and bao stream of the wanted blob, or why it is not served.
async fn prepare(blobs: &Blobs, want: &BlobWant) -> Result<(u64, Vec<u8>), ServeRefusal> {
    let Ok(_serving) = blobs.serving.try_acquire() else {
        return Err(ServeRefusal::Busy);
    };
    let store = blobs.store.clone();
    let size = store.size_of(&want.id).ok().flatten();
    let size = serve_decision(size, want.max_bytes, &store.limits())?;
    let id = want.id;
    let read = tokio::task::spawn_blocking(move || read_and_encode(&store, &id)).await;
    let mut encoded = match read {
        Ok(Ok(encoded)) => encoded,
        Ok(Err(BlobError::NotHeld(_))) => return Err(ServeRefusal::NotHeld),
        Ok(Err(BlobError::HashMismatch { .. })) => {
            tracing::error!(blob = %id, "a held blob no longer matches its hash (damaged disk?); not served");
            return Err(ServeRefusal::Damaged);
        }
        Ok(Err(e)) => {
            tracing::warn!(blob = %id, error = %e, "a held blob could not be read");
            return Err(ServeRefusal::NotHeld);
        }
        Err(_) => return Err(ServeRefusal::Busy),
    };
    if encoded.0 != size {
        // The file changed between the two looks: say it is not here rather than lie.
        return Err(ServeRefusal::NotHeld);
    }
    blobs.tamper(id, &mut encoded.1);
    Ok(encoded)
}

fn read_and_encode(
    store: &crate::blob::BlobStore,
    id: &BlobId,
) -> Result<(u64, Vec<u8>), BlobError> {
    let bytes = store.read(id)?;
    let (encoded_id, stream) =
        encode(&bytes).map_err(|e| BlobError::io("encoding", store.path(id), e))?;
    if encoded_id != *id {
        return Err(BlobError::HashMismatch {
            expected: *id,
            actual: encoded_id,
        });
    }
    Ok((bytes.len() as u64, stream))
}
