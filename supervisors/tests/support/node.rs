//! A running node for the social tests: its home, its daemon (on loopback), its id and its
//! listen address, with the few steps every social test takes (follow, wait until a feed is
//! replicated, read its own sequence). Tests add their own steps in their own `impl Node`.

use std::path::Path;
use std::time::Duration;

use kith::testing::eventually_blocking;
use serde_json::Value;

use super::{head_seq, kith_json, listen_addr, Daemon, Home, POLL};

pub(crate) const LOOPBACK: &[&str] = &["--listen", "127.0.0.1:0"];
/// Deadline for replication between running daemons (debug build, shared 2-core box).
pub(crate) const SOON: Duration = Duration::from_secs(30);

/// A running node: its home, its daemon, its id and address.
pub(crate) struct Node {
    pub(crate) home: Home,
    pub(crate) daemon: Option<Daemon>,
    pub(crate) id: String,
    pub(crate) addr: String,
}

impl Node {
    pub(crate) fn start() -> Node {
        let home = Home::init();
        let daemon = Daemon::start(&home.dir, LOOPBACK);
        let id = home.id();
        let addr = listen_addr(&home.dir);
        Node {
            home,
            daemon: Some(daemon),
            id,
            addr,
        }
    }

    /// Stop the daemon gracefully (its connections close at once).
    pub(crate) fn stop(&mut self) {
        if let Some(d) = self.daemon.take() {
            assert!(d.stop(), "the daemon exits cleanly");
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.home.dir
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        kith_json(self.dir(), &all)
    }

    pub(crate) fn follow(&self, other: &Node) {
        let out = self.json(&["follow", &other.id, "--addr", &other.addr]);
        assert_eq!(out["contact"]["following"], true, "{out}");
    }

    /// Wait until this node holds `feed` up to `seq`.
    pub(crate) fn holds(&self, feed: &Node, seq: u64) {
        eventually_blocking("replicated", SOON, POLL, || {
            head_seq(self.dir(), &feed.id) >= seq
        });
    }

    pub(crate) fn seq(&self) -> u64 {
        head_seq(self.dir(), &self.id)
    }
}
