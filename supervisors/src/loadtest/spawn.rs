//! Local switchboard processes for `kith loadtest --spawn N` and `kith bench relay`: real
//! `kith switchboard` processes of this same binary on loopback, each with its own temporary data
//! directory, joined into one cluster as a full mesh: node `i` joins every node before it
//! (`--join @ID@ADDR` each) and lists every other node's key (`--cluster-key`). A mesh, not a
//! star: a node links only to the nodes it joins or that join it, and introductions and relayed
//! packets cross one link, so two nodes that both joined only node 1 could see each other's
//! clients in presence (gossip reaches them through node 1) but not introduce them.
//!
//! Teardown: they are killed (and waited for) when the [`Node`] is dropped, so every exit path
//! of the harness that runs destructors — success, error, Ctrl-C handled by the caller, a panic
//! that unwinds — tears them down. A harness killed outright (SIGKILL, OOM killer) runs none:
//! for that, each node is started with `PR_SET_PDEATHSIG` = SIGKILL (through `rustix`), so the
//! kernel kills it when the thread that spawned it ends. That is the harness's main thread in
//! `kith loadtest` and `kith bench relay`; a caller that spawns from a thread that may end
//! before the run (a blocking pool's thread) would lose its nodes early.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kith::identity::{FeedId, Identity};
use kith::limits::{LOADTEST_SPAWN_MAX, LOADTEST_SPAWN_TIMEOUT};
use kith::loadtest::client::SbTarget;
use kith::loadtest::procfs;
use kith::wire::control::Request;
use tempfile::TempDir;

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
            let dir = tempfile::Builder::new()
                .prefix("kith-loadtest-sb")
                .tempdir()?;
            let id = Identity::create(dir.path())?.id();
            dirs.push((dir, id));
        }
        let ids: Vec<FeedId> = dirs.iter().map(|(_, id)| *id).collect();
        let mut cluster = LocalCluster {
            nodes: Vec::with_capacity(n),
        };
        for (i, (dir, id)) in dirs.into_iter().enumerate() {
            let joins: Vec<String> = cluster.nodes.iter().map(|node| node.at.to_text()).collect();
            let members: Vec<FeedId> = ids.iter().filter(|other| **other != id).copied().collect();
            // Pushed as soon as it runs, so an error on a later node still kills this one.
            let node = start_node(dir, i, &joins, &members, extra)?;
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

    /// Kill node `i` outright (SIGKILL), as a crash or a pulled plug would; it is reaped when
    /// the cluster drops.
    pub fn kill(&self, i: usize) -> Result<()> {
        let node = self
            .nodes
            .get(i)
            .ok_or_else(|| anyhow!("no spawned node {i}"))?;
        let pid = rustix::process::Pid::from_raw(node.child.id() as i32)
            .ok_or_else(|| anyhow!("a spawned node has no process id"))?;
        rustix::process::kill_process(pid, rustix::process::Signal::KILL)
            .with_context(|| format!("killing spawned node {}", i + 1))?;
        Ok(())
    }

    /// Kill node `i` (SIGKILL) and start it again on the same address, with the same identity
    /// and data directory and the same flags: a node that crashed and came back, with none of
    /// the cluster's presence in memory. Returns when it answers on its control socket.
    pub fn restart(&mut self, i: usize, extra: &[String]) -> Result<()> {
        let joins: Vec<String> = (0..self.nodes.len())
            .filter(|j| *j != i)
            .map(|j| self.nodes[j].at.to_text())
            .collect();
        let members: Vec<FeedId> = (0..self.nodes.len())
            .filter(|j| *j != i)
            .map(|j| self.nodes[j].at.id())
            .collect();
        let node = self
            .nodes
            .get_mut(i)
            .ok_or_else(|| anyhow!("no spawned node {i}"))?;
        let _ = node.child.kill();
        let _ = node.child.wait();
        node.child = launch(
            node.dir.path(),
            node.at.addr.port(),
            &joins,
            &members,
            extra,
        )?;
        ready(node)?;
        Ok(())
    }

    /// CPU time of all nodes together.
    pub fn cpu(&self) -> Option<Duration> {
        self.nodes
            .iter()
            .map(|n| procfs::cpu(&n.child.id().to_string()).ok())
            .sum()
    }
}

/// Start node `i` in `dir` (its identity already there), joined to each of `joins`
/// (`@ID@ADDR`), with the other nodes' keys as cluster members, and wait until its control
/// socket answers. The one place a node's command line is made.
fn start_node(
    dir: TempDir,
    i: usize,
    joins: &[String],
    members: &[FeedId],
    extra: &[String],
) -> Result<Node> {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut node = Node {
        child: launch(dir.path(), port, joins, members, extra)?,
        at: SbTarget {
            addr: format!("127.0.0.1:{port}").parse()?,
            key: ed25519_dalek::SigningKey::from_bytes(&[0; 32]).verifying_key(),
        },
        dir,
    };
    tracing::debug!(node = i + 1, "started a switchboard");
    node.at.key = ready(&mut node)?.verifying_key()?;
    Ok(node)
}

/// Start `kith switchboard` in `dir` on loopback `port`, joined to `joins`, with `members` as
/// its cluster's other keys.
fn launch(
    dir: &std::path::Path,
    port: u16,
    joins: &[String],
    members: &[FeedId],
    extra: &[String],
) -> Result<Child> {
    let exe = std::env::current_exe().context("finding the kith binary")?;
    let mut command = Command::new(exe);
    command
        .arg("--data-dir")
        .arg(dir)
        .args(["switchboard", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra);
    for join in joins {
        command.args(["--join", join]);
    }
    for member in members {
        command.args(["--cluster-key", &member.to_string()]);
    }
    die_with_parent(&mut command);
    command
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting a switchboard")
}

/// Wait until `node` answers on its control socket (bounded by [`LOADTEST_SPAWN_TIMEOUT`]);
/// its id as it says.
fn ready(node: &mut Node) -> Result<FeedId> {
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
    Ok(status["id"]
        .as_str()
        .ok_or_else(|| anyhow!("the switchboard's status has no id"))?
        .parse()?)
}

/// Have the kernel kill the child (SIGKILL) when the thread that spawns it ends, however the
/// harness ends (`prctl(PR_SET_PDEATHSIG)`); if the harness is already gone by the time the
/// child runs this, the child does not start (ESRCH).
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    let hook = move || {
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
        // The parent may have died between the fork and the prctl: then nobody would kill us.
        if rustix::process::getppid() != Some(parent) {
            return Err(rustix::io::Errno::SRCH.into());
        }
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec; it makes only the prctl and
    // getppid system calls (async-signal-safe), does not allocate (its errors are raw OS error
    // codes), and touches no lock or state shared with the parent's other threads.
    unsafe {
        command.pre_exec(hook);
    }
}
