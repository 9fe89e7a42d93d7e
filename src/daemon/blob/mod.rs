//! The daemon's side of blobs: serving them on peer connections, fetching the ones followed
//! feeds attach, and the control answers (`kith blob add|get|ls`, `kith post --attach`).
//!
//! - [`serve`]: the streams a peer opens on its connection, one blob each (started by the
//!   connection actor beside its replication session);
//! - [`fetch`]: one fetch on one stream, verified while it streams ([`crate::blob::verify`]);
//! - [`fetcher`]: the actor that finds attachments in wanted feeds and drives
//!   [`crate::blob::plan::Planner`]; it drops the blobs of feeds unfollowed or blocked;
//! - [`control`]: the control socket's blob requests.
//!
//! [`Blobs`] is the handle the node carries: the store, the serving slots, and the refusals
//! peers sent about blobs this node served (a damaged disk or a lying relay shows up there).

pub mod control;
pub mod fetch;
pub mod fetcher;
pub mod serve;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::blob::wire::FetchRefusal;
use crate::blob::{BlobId, BlobStore};
use crate::identity::FeedId;
use crate::limits::{BLOB_REFUSALS_KEPT, BLOB_SERVES_MAX};

/// One refusal a peer sent about a blob this node served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Who refused.
    pub peer: String,
    /// Which blob.
    pub blob: String,
    /// Why, as the peer said.
    pub reason: String,
    /// The reason, as sent.
    #[serde(skip)]
    pub refusal: Option<FetchRefusal>,
}

/// Changes the bao stream of a served blob before it is sent: only for tests of a rogue peer,
/// and only with the `test-utils` feature (no command line or setting reaches it).
#[cfg(feature = "test-utils")]
pub type Tamper = Arc<dyn Fn(BlobId, &mut Vec<u8>) + Send + Sync>;

/// The node's blobs: the files, the serving slots, recent refusals. Cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    /// The files.
    pub store: BlobStore,
    serving: Arc<Semaphore>,
    refusals: Arc<Mutex<VecDeque<Refusal>>>,
    #[cfg(feature = "test-utils")]
    tamper: Arc<Mutex<Option<Tamper>>>,
}

impl Blobs {
    /// The handle over `store`.
    pub fn new(store: BlobStore) -> Blobs {
        Blobs {
            store,
            serving: Arc::new(Semaphore::new(BLOB_SERVES_MAX)),
            refusals: Arc::default(),
            #[cfg(feature = "test-utils")]
            tamper: Arc::default(),
        }
    }

    /// Remember that `peer` refused blob `id` as served by this node (the newest
    /// [`BLOB_REFUSALS_KEPT`]).
    pub(crate) fn note_refusal(&self, peer: FeedId, id: BlobId, refusal: FetchRefusal) {
        let mut list = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() >= BLOB_REFUSALS_KEPT {
            list.pop_front();
        }
        list.push_back(Refusal {
            peer: peer.to_string(),
            blob: id.to_string(),
            reason: refusal.to_string(),
            refusal: Some(refusal),
        });
    }

    /// The refusals peers sent about blobs this node served, oldest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        let list = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        list.iter().cloned().collect()
    }

    /// Make this node serve tampered blobs (tests of a rogue peer only).
    #[cfg(feature = "test-utils")]
    pub fn set_tamper(&self, tamper: Tamper) {
        *self.tamper.lock().unwrap_or_else(|p| p.into_inner()) = Some(tamper);
    }

    #[cfg(feature = "test-utils")]
    fn tamper(&self, id: BlobId, stream: &mut Vec<u8>) {
        let hook = self
            .tamper
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(hook) = hook {
            hook(id, stream);
        }
    }

    #[cfg(not(feature = "test-utils"))]
    fn tamper(&self, _id: BlobId, _stream: &mut [u8]) {}
}
