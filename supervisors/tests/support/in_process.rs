//! A daemon tree started inside the test process (no `kith` process): for tests that need the
//! node's handles — its connections table, its supervisors — rather than its command line.

use std::path::Path;
use std::sync::Arc;

use kith::daemon::peer::{IntroPolicy, ServePolicy};
use kith::identity::Identity;
use kith::net::PeerEndpoint;
use kith::store::Store;
use kith_supervisors::trees::daemon::{self, Daemon, DaemonParts};

/// A fresh identity and store in `dir`, a loopback endpoint, and the daemon's tree on them,
/// serving everyone and with no switchboard.
pub(crate) async fn daemon_tree(dir: &Path) -> Daemon {
    let identity = Arc::new(Identity::create(dir).unwrap());
    let store = Store::open(dir).unwrap();
    let endpoint = Arc::new(
        PeerEndpoint::bind("127.0.0.1:0".parse().unwrap(), identity.signing_key()).unwrap(),
    );
    let parts = DaemonParts {
        data_dir: dir.to_path_buf(),
        identity,
        store,
        endpoint,
        serve: ServePolicy::Everyone,
        switchboards: Vec::new(),
        introductions: IntroPolicy::Relay,
        blobs: Default::default(),
        presence_visible_to: Default::default(),
    };
    daemon::start(parts).await.unwrap()
}
