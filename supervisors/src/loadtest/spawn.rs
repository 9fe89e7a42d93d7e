//! Local switchboard processes for `kith loadtest --spawn N` and `kith bench relay`: real
//! `kith switchboard` processes of this same binary on loopback, each with its own temporary data
//! directory; nodes 2..N join node 1 into one cluster. They are killed (and waited for) when the
//! [`Node`] is dropped, so every exit path of the harness — success, error, Ctrl-C
//! handled by the caller, a panic that unwinds — tears them down.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kith::bench::TempDir;
use kith::identity::{FeedId, Identity};
use kith::limits::{LOADTEST_SPAWN_MAX, LOADTEST_SPAWN_TIMEOUT};
use kith::loadtest::client::SbTarget;
use kith::loadtest::procfs;
use kith::wire::control::Request;

use crate::cli::client;

/// One spawned switchboard.
pub struct Node {
    /// The process.
    pub child: Child,
    /// Where it listens and the key it proves.
    pub at: SbTarget,
    /// Its data directory (control socket, identity).
    pub dir: TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Switchboard processes this harness started; each is killed when dropped.
pub struct LocalCluster {
    /// The nodes, node 1 first.
    pub nodes: Vec<Node>,
}

impl LocalCluster {
    /// Start `n` nodes; `extra` flags go to every node (e.g. the bench's relay limits).
    pub fn start(n: usize, extra: &[String]) -> Result<LocalCluster> {
        if n == 0 || n > LOADTEST_SPAWN_MAX {
            bail!("--spawn must be between 1 and {LOADTEST_SPAWN_MAX}");
        }
        // Identities first, so every node can be told the keys of the others.
        let mut dirs = Vec::with_capacity(n);
        for _ in 0..n {
            let dir = TempDir::new("kith-loadtest-sb")?;
            let id = Identity::create(dir.path())?.id();
            dirs.push((dir, id));
        }
        let ids: Vec<FeedId> = dirs.iter().map(|(_, id)| *id).collect();
        let listed = lists_members()?;
        let mut cluster = LocalCluster {
            nodes: Vec::with_capacity(n),
        };
        for (i, (dir, id)) in dirs.into_iter().enumerate() {
            let seed = cluster.nodes.first().map(|node| node.at.to_text());
            let members: Vec<FeedId> = match listed {
                true => ids.iter().filter(|other| **other != id).copied().collect(),
                false => Vec::new(),
            };
            // Pushed as soon as it runs, so an error on a later node still kills this one.
            let node = start_node(dir, i, seed.as_deref(), &members, extra)?;
            cluster.nodes.push(node);
        }
        Ok(cluster)
    }

    /// Where the nodes listen, `@ID@HOST:PORT` each.
    pub fn targets(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.at.to_text()).collect()
    }

    /// The process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.child.id()).collect()
    }

    /// Resident bytes of all nodes together.
    pub fn rss(&self) -> Option<u64> {
        self.nodes
            .iter()
            .map(|n| procfs::rss(&n.child.id().to_string()).ok())
            .sum()
    }

    /// CPU time of all nodes together.
    pub fn cpu(&self) -> Option<Duration> {
        self.nodes
            .iter()
            .map(|n| procfs::cpu(&n.child.id().to_string()).ok())
            .sum()
    }
}

/// Whether this binary's switchboard takes `--cluster-key` (cluster members listed on the
/// accepting node): then each node is told the keys of all the others.
fn lists_members() -> Result<bool> {
    let exe = std::env::current_exe().context("finding the kith binary")?;
    let help = Command::new(exe)
        .args(["switchboard", "--help"])
        .stderr(Stdio::null())
        .output()?;
    Ok(String::from_utf8_lossy(&help.stdout).contains("--cluster-key"))
}

/// Start node `i` in `dir` (its identity already there), joined to `seed` if given, with the
/// other nodes' keys as cluster members, and wait until its control socket answers. The one
/// place a node's command line is made.
fn start_node(
    dir: TempDir,
    i: usize,
    seed: Option<&str>,
    members: &[FeedId],
    extra: &[String],
) -> Result<Node> {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let exe = std::env::current_exe().context("finding the kith binary")?;
    let mut command = Command::new(exe);
    command
        .arg("--data-dir")
        .arg(dir.path())
        .args(["switchboard", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra);
    if let Some(seed) = seed {
        command.args(["--join", seed]);
    }
    for member in members {
        command.args(["--cluster-key", &member.to_string()]);
    }
    tracing::debug!(node = i + 1, ?command, "starting a switchboard");
    let child = command
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting a switchboard")?;
    let mut node = Node {
        child,
        at: SbTarget {
            addr: format!("127.0.0.1:{port}").parse()?,
            key: ed25519_dalek::SigningKey::from_bytes(&[0; 32]).verifying_key(),
        },
        dir,
    };
    let started = Instant::now();
    let status = loop {
        if let Ok(status) = client::call(node.dir.path(), &Request::Status) {
            break status;
        }
        if let Ok(Some(exit)) = node.child.try_wait() {
            bail!("a spawned switchboard exited at start ({exit})");
        }
        if started.elapsed() > LOADTEST_SPAWN_TIMEOUT {
            bail!("a spawned switchboard did not answer within {LOADTEST_SPAWN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let id: FeedId = status["id"]
        .as_str()
        .ok_or_else(|| anyhow!("the switchboard's status has no id"))?
        .parse()?;
    node.at.key = id.verifying_key()?;
    Ok(node)
}
