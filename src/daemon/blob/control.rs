//! The control socket's blob requests: `kith blob add FILE`, `kith blob get ID`, `kith blob ls`,
//! and the attachments of `kith post --attach FILE`.
//!
//! The client sends file paths, not bytes: it runs as the same user on the same machine (the
//! control socket is the owner's only), and a 5 MiB file would not fit the line protocol.
//! `blob get` answers with the held file's path after checking it against its id; the client
//! copies it out.

use std::path::Path;

use serde_json::{json, Value};

use crate::blob::{BlobError, BlobId, BlobRef};
use crate::daemon::error::NodeError;
use crate::daemon::node::Node;
use crate::limits::ATTACHMENTS_MAX;

/// Store the files at `paths` (absolute) as pinned blobs; their references, in order.
pub(crate) async fn add_files(node: &Node, paths: Vec<String>) -> Result<Vec<BlobRef>, NodeError> {
    if paths.len() > ATTACHMENTS_MAX {
        return Err(NodeError::Feed(crate::feed::FeedError::ContentInvalid(
            format!(
                "a post attaches at most {ATTACHMENTS_MAX} files, not {}",
                paths.len()
            ),
        )));
    }
    let store = node.blobs.store.clone();
    let added = tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .map(|p| store.add_file(Path::new(p)))
            .collect::<Result<Vec<_>, BlobError>>()
    })
    .await
    .map_err(|_| NodeError::Unavailable("the blob store"))?;
    Ok(added?)
}

/// `kith blob add FILE`.
pub(crate) async fn add(node: &Node, path: String) -> Result<Value, NodeError> {
    let mut added = add_files(node, vec![path]).await?;
    let Some(r) = added.pop() else {
        return Err(NodeError::Unavailable("the blob store"));
    };
    Ok(json!({ "id": r.id.to_string(), "size": r.size, "name": r.name }))
}

/// `kith blob get ID`: where the verified file is.
pub(crate) async fn get(node: &Node, id: String) -> Result<Value, NodeError> {
    let id: BlobId = id.parse()?;
    let store = node.blobs.store.clone();
    let size = tokio::task::spawn_blocking(move || store.read(&id).map(|b| b.len()))
        .await
        .map_err(|_| NodeError::Unavailable("the blob store"))??;
    let path = node.blobs.store.path(&id);
    Ok(json!({ "id": id.to_string(), "size": size, "path": path.display().to_string() }))
}

/// `kith blob ls`: the blobs held, and refusals peers sent about blobs served from here.
pub(crate) async fn list(node: &Node) -> Result<Value, NodeError> {
    let store = node.blobs.store.clone();
    let held = tokio::task::spawn_blocking(move || store.list())
        .await
        .map_err(|_| NodeError::Unavailable("the blob store"))??;
    let limits = node.blobs.store.limits();
    let total: u64 = held.iter().map(|b| b.size).sum();
    let blobs: Vec<Value> = held
        .iter()
        .map(|b| json!({ "id": b.id.to_string(), "size": b.size, "pinned": b.pinned }))
        .collect();
    Ok(json!({
        "blobs": blobs,
        "held_bytes": total,
        "max_bytes": limits.max_bytes,
        "budget_bytes": limits.budget_bytes,
        "refused_by_peers": node.blobs.refusals(),
    }))
}
