//! Multi-node tests over the sans-IO shard and the simulator: ports of Phoenix's
//! `shard_replication_test.exs` and `shard_test.exs` (research/tracker-spec.md §4.5–4.6), plus
//! the acceptance tests of kith's fixes (partition heal, restarts, catch-up, #135, shard count).
//! Every test is deterministic: a seeded network and simulated time.

use std::collections::BTreeSet;

use kith::presence::message::{Envelope, Message};
use kith::presence::options::OptionsError;
use kith::presence::replica::{ReplicaStatus, Transition};
use kith::presence::shard::{Action, Refusal};
use kith::presence::sim::{NetConfig, Sim};
use kith::presence::{Options, Owner, ReplicaName, ReplicaRef, Shard};

// The bench's memory figures are counted per thread by this allocator, as in the `kith` binary.
#[global_allocator]
static ALLOC: kith::bench::alloc::CountingAlloc = kith::bench::alloc::CountingAlloc;

/// Phoenix's NodeCase timings: broadcast 100 ms, idle heartbeat every 2 ticks, down 400 ms,
/// permdown 1.5 s.
fn opts() -> Options {
    Options::with_periods(100, 2, 1_500)
}

fn sim(seed: u64) -> Sim {
    Sim::new(
        NetConfig {
            latency_min: 1,
            latency_max: 10,
            encode: true,
            ..NetConfig::default()
        },
        seed,
    )
}

fn cluster(seed: u64, names: &[&str]) -> Sim {
    let mut s = sim(seed);
    for n in names {
        s.start(n, 1, opts()).unwrap();
    }
    s
}

fn track(s: &mut Sim, node: &str, owner: u64, topic: &str, key: &str) {
    s.with(node, |sh| sh.track(Owner(owner), topic, key, vec![]))
        .unwrap()
        .unwrap();
}

fn status(s: &Sim, on: &str, of: &str) -> Option<(u64, ReplicaStatus)> {
    let r = s.node(on)?.shard.replicas().get(&ReplicaName::new(of))?;
    Some((r.r#ref.vsn, r.status))
}

fn keys(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn advance(s: &mut Sim, ms: u64) {
    let t = s.now() + ms;
    s.run_until(t);
}

// ----- shard_replication_test.exs ----------------------------------------------------------

#[test]
fn heartbeats_are_sent_repeatedly() {
    let mut s = cluster(1, &["primary"]);
    advance(&mut s, 1_000);
    let n = s
        .heartbeats
        .get(&ReplicaName::new("primary"))
        .copied()
        .unwrap_or(0);
    assert!(n >= 3, "only {n} heartbeats");
}

#[test]
fn gossip_from_unseen_node_triggers_transfer_request() {
    let mut s = cluster(2, &["primary", "node1"]);
    track(&mut s, "node1", 1, "lobby", "node1-user");
    s.run_until_pred(2_000, |s| !s.listed("primary", "lobby").is_empty())
        .unwrap();
    assert_eq!(s.listed("primary", "lobby"), keys(&["node1-user"]));
    assert!(s.transfer_reqs("primary", "node1") >= 1);
}

/// Both peers are ahead; the pull decision keeps only the dominating clock.
#[test]
fn transfer_requests_collapse_clocks() {
    let me = ReplicaRef::new("primary", 1);
    let mut p = Shard::new(me, 0, opts(), 3, 0).unwrap();
    let (n1, n2) = (ReplicaRef::new("node1", 1), ReplicaRef::new("node2", 1));
    let hb = |from: &ReplicaRef, clocks: &[(&ReplicaRef, u64)]| Envelope {
        shard: 0,
        shard_count: 1,
        message: Message::Heartbeat {
            from: from.clone(),
            delta: None,
            clocks: clocks.iter().map(|(r, v)| ((*r).clone(), *v)).collect(),
        },
    };
    // First contact with both (answered by first-contact transfer requests, drained here).
    p.receive(&n1.name, hb(&n1, &[(&n1, 0)]), 900);
    p.receive(&n2.name, hb(&n2, &[(&n2, 0)]), 900);
    p.tick(1_000);
    p.tick(1_100);
    p.drain_actions();
    // node1 has 2 presences; node2 has 1 and has seen node1's two: node2 dominates.
    p.receive(&n1.name, hb(&n1, &[(&n1, 2), (&n2, 0)]), 1_150);
    p.receive(&n2.name, hb(&n2, &[(&n1, 2), (&n2, 1)]), 1_160);
    p.tick(1_200);
    p.tick(1_300);
    let reqs: Vec<ReplicaName> = p
        .drain_actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::SendTo(
                to,
                Envelope {
                    message: Message::TransferReq { .. },
                    ..
                },
            ) => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(reqs, vec![n2.name.clone()]);
}

#[test]
fn transfer_requests_collapse_clocks_in_a_cluster() {
    let mut s = cluster(4, &["primary", "node1", "node2"]);
    advance(&mut s, 500);
    s.partition(&[&["primary"], &["node1", "node2"]]);
    track(&mut s, "node1", 1, "lobby", "a");
    track(&mut s, "node1", 2, "lobby", "b");
    track(&mut s, "node2", 3, "lobby", "c");
    advance(&mut s, 300);
    s.heal();
    advance(&mut s, 400);
    assert_eq!(s.listed("primary", "lobby"), keys(&["a", "b", "c"]));
    s.check_views().unwrap();
}

#[test]
fn old_owners_are_permdowned_when_a_node_comes_back() {
    let mut s = cluster(5, &["primary", "node1"]);
    track(&mut s, "node1", 1, "lobby", "old");
    advance(&mut s, 500);
    assert_eq!(s.listed("primary", "lobby"), keys(&["old"]));
    s.crash("node1");
    advance(&mut s, 2_000);
    s.start("node1", 2, opts()).unwrap();
    track(&mut s, "node1", 1, "lobby", "new");
    advance(&mut s, 500);
    for n in ["primary", "node1"] {
        assert_eq!(s.listed(n, "lobby"), keys(&["new"]), "on {n}");
        assert!(s
            .node(n)
            .unwrap()
            .shard
            .state()
            .rows_of(&ReplicaRef::new("node1", 1))
            .is_empty());
    }
    s.check_views().unwrap();
}

#[test]
fn tempdowns_with_same_vsn_then_new_vsn_then_permdown() {
    let mut s = cluster(6, &["primary", "node1", "node2"]);
    track(&mut s, "node1", 1, "lobby", "n1");
    advance(&mut s, 500);
    assert_eq!(s.listed("primary", "lobby"), keys(&["n1"]));

    s.set_alive("node1", false);
    advance(&mut s, 700);
    assert_eq!(
        status(&s, "primary", "node1"),
        Some((1, ReplicaStatus::Down))
    );
    assert!(s.listed("primary", "lobby").is_empty());

    s.set_alive("node1", true);
    advance(&mut s, 500);
    assert_eq!(status(&s, "primary", "node1"), Some((1, ReplicaStatus::Up)));
    assert_eq!(s.listed("primary", "lobby"), keys(&["n1"]));

    s.crash("node1");
    advance(&mut s, 700);
    assert_eq!(
        status(&s, "primary", "node1"),
        Some((1, ReplicaStatus::Down))
    );
    assert!(s.listed("primary", "lobby").is_empty());

    s.start("node1", 2, opts()).unwrap();
    track(&mut s, "node1", 1, "lobby", "n1-again");
    advance(&mut s, 500);
    assert_eq!(status(&s, "primary", "node1"), Some((2, ReplicaStatus::Up)));
    assert_eq!(s.listed("primary", "lobby"), keys(&["n1-again"]));

    s.crash("node1");
    advance(&mut s, 700);
    assert!(s.listed("primary", "lobby").is_empty());
    advance(&mut s, 2_000);
    let live: Vec<String> = s
        .node("primary")
        .unwrap()
        .shard
        .replicas()
        .live()
        .map(|r| r.r#ref.name.to_string())
        .collect();
    assert_eq!(live, keys(&["node2"]));
    let t = &s.node("primary").unwrap().transitions;
    assert!(t.contains(&Transition::Permdown(ReplicaRef::new("node1", 1))));
    assert!(t.contains(&Transition::Permdown(ReplicaRef::new("node1", 2))));
    s.check_views().unwrap();
}

#[test]
fn local_and_remote_joins_and_leaves_are_reported() {
    let mut s = cluster(7, &["primary", "node1"]);
    track(&mut s, "primary", 1, "lobby", "local");
    track(&mut s, "node1", 2, "lobby", "remote");
    advance(&mut s, 500);
    assert_eq!(s.listed("primary", "lobby"), keys(&["local", "remote"]));
    // The remote owner exits: its presences go.
    s.with("node1", |sh| sh.untrack_owner(Owner(2)));
    advance(&mut s, 300);
    assert_eq!(s.listed("primary", "lobby"), keys(&["local"]));
    assert_eq!(
        status(&s, "primary", "node1").map(|x| x.1),
        Some(ReplicaStatus::Up)
    );
    s.check_views().unwrap();
}

#[test]
fn nodedown_hides_then_permdown_erases() {
    let mut s = cluster(8, &["primary", "node1"]);
    track(&mut s, "node1", 1, "lobby", "n1");
    advance(&mut s, 500);
    s.crash("node1");
    advance(&mut s, 700);
    assert!(
        s.listed("primary", "lobby").is_empty(),
        "list hides down replicas"
    );
    let r1 = ReplicaRef::new("node1", 1);
    assert_eq!(
        s.node("primary").unwrap().shard.state().rows_of(&r1).len(),
        1,
        "rows kept while down"
    );
    advance(&mut s, 1_500);
    assert!(
        s.node("primary")
            .unwrap()
            .shard
            .state()
            .rows_of(&r1)
            .is_empty(),
        "erased at permdown"
    );
    s.check_views().unwrap();
}

#[test]
fn client_operations() {
    let mut s = cluster(9, &["primary", "node1"]);
    // untrack of something never tracked is fine
    s.with("primary", |sh| sh.untrack(Owner(1), "lobby", "nobody"));
    track(&mut s, "primary", 1, "t1", "k");
    track(&mut s, "primary", 1, "t2", "k");
    // duplicate track refused, another topic or key fine
    let dup = s
        .with("primary", |sh| sh.track(Owner(1), "t1", "k", vec![]))
        .unwrap();
    assert!(dup.is_err());
    track(&mut s, "primary", 1, "t1", "k2");
    // untrack by topic removes only that one
    s.with("primary", |sh| sh.untrack(Owner(1), "t1", "k2"));
    assert_eq!(
        s.node("primary")
            .unwrap()
            .shard
            .state()
            .get_by_owner(Owner(1))
            .len(),
        2
    );
    // update with no presence
    let none = s
        .with("primary", |sh| {
            sh.update(Owner(1), "t9", "k", |m| m.clone())
        })
        .unwrap();
    assert!(none.is_err());
    // update: remote sees a leave of the old and a join of the new in one diff
    advance(&mut s, 500);
    let before = s.node("node1").unwrap().shard.state().list("t1")[0].clone();
    let new = s
        .with("primary", |sh| {
            sh.update(Owner(1), "t1", "k", |_| b"new".to_vec())
        })
        .unwrap()
        .unwrap();
    advance(&mut s, 300);
    let after = s.node("node1").unwrap().shard.state().list("t1")[0].clone();
    assert_eq!(after, new);
    assert_ne!(after.dot, before.dot);
    // untrack_owner removes every topic
    s.with("primary", |sh| sh.untrack_owner(Owner(1)));
    advance(&mut s, 300);
    for n in ["primary", "node1"] {
        assert!(s.listed(n, "t1").is_empty() && s.listed(n, "t2").is_empty());
    }
    s.check_views().unwrap();
}

#[test]
fn graceful_permdown_drops_the_replica_at_once() {
    let mut s = cluster(10, &["primary", "node1"]);
    track(&mut s, "node1", 1, "lobby", "n1");
    advance(&mut s, 500);
    assert_eq!(s.listed("primary", "lobby"), keys(&["n1"]));
    s.graceful_stop("node1");
    advance(&mut s, 20);
    assert!(s.listed("primary", "lobby").is_empty());
    assert_eq!(
        s.node("primary").unwrap().shard.replicas().live().count(),
        0
    );
    s.check_views().unwrap();
}

/// pubsub#135: after a node is replaced, the newcomer must not pull over and over for the
/// whole permdown period because the survivor's clock still names the dead node.
#[test]
fn rolling_node_update_sends_one_transfer_request() {
    let mut o = opts();
    o.permdown_period = 2_000;
    let mut s = sim(11);
    s.start("primary", 1, o.clone()).unwrap();
    s.start("node1", 1, o.clone()).unwrap();
    track(&mut s, "node1", 1, "lobby", "n1");
    track(&mut s, "primary", 2, "lobby", "p");
    advance(&mut s, 500);
    s.crash("node1");
    advance(&mut s, 700);
    assert_eq!(
        status(&s, "primary", "node1").map(|x| x.1),
        Some(ReplicaStatus::Down)
    );
    s.start("node2", 1, o).unwrap();
    advance(&mut s, 2_500);
    assert_eq!(s.transfer_reqs("node2", "primary"), 1);
    assert!(s
        .node("primary")
        .unwrap()
        .transitions
        .contains(&Transition::Permdown(ReplicaRef::new("node1", 1))));
    assert_eq!(s.listed("node2", "lobby"), keys(&["p"]));
}

// ----- shard_test.exs and option validation ------------------------------------------------

#[test]
fn options_are_validated() {
    let mut o = opts();
    o.down_period = 1;
    assert_eq!(o.validate(), Err(OptionsError::DownBelowBroadcast));
    let mut o = opts();
    o.permdown_period = o.down_period;
    assert_eq!(o.validate(), Err(OptionsError::PermdownBelowDown));
    // kith's addition: the down period must exceed the idle heartbeat interval, or idle
    // peers flap between down and up.
    let mut o = opts();
    o.down_period = 200;
    assert_eq!(o.validate(), Err(OptionsError::DownBelowIdleHeartbeat));
    let mut o = opts();
    o.shard_count = 0;
    assert_eq!(o.validate(), Err(OptionsError::ShardCount));
    assert!(Options::default().validate().is_ok());
    assert!(Shard::new(
        ReplicaRef::new("x", 1),
        0,
        Options {
            down_period: 1,
            ..opts()
        },
        0,
        0
    )
    .is_err());
}

#[test]
fn shard_count_mismatch_is_refused() {
    let mut p = Shard::new(ReplicaRef::new("primary", 1), 0, opts(), 0, 0).unwrap();
    let other = ReplicaRef::new("other", 1);
    let env = Envelope {
        shard: 0,
        shard_count: 2,
        message: Message::GracefulPermdown {
            from: other.clone(),
        },
    };
    p.receive(&other.name, env, 1);
    let refused = p.drain_actions().into_iter().any(|a| {
        matches!(
            a,
            Action::Refused {
                reason: Refusal::ShardCountMismatch { ours: 1, theirs: 2 },
                ..
            }
        )
    });
    assert!(refused);
    assert_eq!(p.replicas().len(), 0);
    // A spoofed sender is refused too.
    let env = Envelope {
        shard: 0,
        shard_count: 1,
        message: Message::GracefulPermdown { from: other },
    };
    p.receive(&ReplicaName::new("mallory"), env, 2);
    assert!(p.drain_actions().iter().any(|a| matches!(
        a,
        Action::Refused {
            reason: Refusal::Spoofed,
            ..
        }
    )));
}

// ----- acceptance tests of the issue ---------------------------------------------------------

/// The ground truth: every live node's own rows.
fn truth(s: &Sim) -> BTreeSet<(String, String, u64)> {
    s.nodes()
        .filter(|(_, n)| n.alive)
        .flat_map(|(_, n)| n.shard.state().rows_of(n.shard.state().replica()))
        .map(|p| (p.row.topic.clone(), p.row.key.clone(), p.dot.clock))
        .collect()
}

fn visible(s: &Sim, node: &str) -> BTreeSet<(String, String, u64)> {
    s.node(node)
        .unwrap()
        .shard
        .state()
        .visible_presences()
        .into_iter()
        .map(|p| (p.row.topic.clone(), p.row.key.clone(), p.dot.clock))
        .collect()
}

/// Five nodes, a partition with churn on both sides longer than the down period, then heal:
/// every node lists exactly the live rows within two broadcast periods plus one transfer.
#[test]
fn five_nodes_converge_after_partition_heals() {
    use rand::{Rng, SeedableRng};
    let names = ["a", "b", "c", "d", "e"];
    // Long partitions (nodes go down and permdown across it) and short ones (nobody goes down).
    for (seed, steps, quiet) in (0..4u64)
        .map(|s| (s, 60, 500))
        .chain((4..8u64).map(|s| (s, 8, 50)))
    {
        let mut s = cluster(100 + seed, &names);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for (i, n) in names.iter().enumerate() {
            for k in 0..10 {
                track(&mut s, n, k, "room", &format!("{n}-{k}-{i}"));
            }
        }
        advance(&mut s, 1_000);
        s.partition(&[&["a", "b"], &["c", "d", "e"]]);
        for step in 0..steps {
            let n = names[rng.gen_range(0..5)];
            let owner = rng.gen_range(0..10);
            let key = format!("{n}-{owner}-x");
            match rng.gen_range(0..3) {
                0 => {
                    let _ = s.with(n, |sh| sh.track(Owner(owner), "room", &key, vec![]));
                }
                1 => {
                    s.with(n, |sh| sh.untrack_owner(Owner(owner)));
                }
                _ => {
                    let _ = s.with(n, |sh| {
                        sh.update(Owner(owner), "room", &key, |_| vec![step])
                    });
                }
            }
            advance(&mut s, 25);
        }
        advance(&mut s, quiet);
        let healed_at = s.now();
        s.heal();
        let deadline = healed_at + 2 * 100 + 2 * 10;
        s.run_until(deadline);
        let want = truth(&s);
        for n in names {
            assert_eq!(
                visible(&s, n),
                want,
                "seed {seed}: node {n} at {deadline} (healed {healed_at})"
            );
        }
        s.check_views()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

/// 1,000 restarts of one replica, each going down and permdown, leave bookkeeping that does
/// not grow with the number of restarts (#179).
#[test]
fn thousand_restarts_do_not_grow_bookkeeping() {
    let mut s = cluster(12, &["primary"]);
    let mut sizes = Vec::new();
    for vsn in 1..=1_000u64 {
        s.start("node", vsn, opts()).unwrap();
        track(&mut s, "node", 1, "lobby", "k");
        advance(&mut s, 300);
        assert_eq!(s.listed("primary", "lobby"), keys(&["k"]), "restart {vsn}");
        s.crash("node");
        advance(&mut s, 1_700);
        let p = &s.node("primary").unwrap().shard;
        assert!(p.state().is_empty(), "restart {vsn}");
        if vsn % 100 == 0 {
            let rungs_refs: usize = p
                .generations()
                .rungs()
                .iter()
                .map(|g| g.start.len() + g.end.len() + g.clouds.len() + g.values.len())
                .sum();
            sizes.push((
                p.replicas().len(),
                p.state().replicas().count(),
                p.state().context().len(),
                p.state().clouds().len(),
                rungs_refs,
            ));
        }
    }
    let first = sizes[0];
    assert!(
        sizes.iter().all(|s| *s == first),
        "bookkeeping grew: {sizes:?}"
    );
    assert!(first.0 <= 1 && first.1 == 1 && first.2 == 1, "{first:?}");
    s.check_views().unwrap();
}

/// A new node joining a quiet cluster at default periods lists everything within 2 s:
/// it is asked for (and asks for) a transfer at first contact.
#[test]
fn new_node_catches_up_at_first_contact() {
    let mut s = Sim::new(
        NetConfig {
            latency_min: 1,
            latency_max: 5,
            ..NetConfig::default()
        },
        13,
    );
    for n in ["a", "b", "c"] {
        s.start(n, 1, Options::default()).unwrap();
        for k in 0..300 {
            track(&mut s, n, k, "lobby", &format!("{n}{k}"));
        }
    }
    advance(&mut s, 20_000);
    let start = s.now();
    s.start("new", 1, Options::default()).unwrap();
    let done = s.run_until_pred(start + 10_000, |s| {
        s.node("new").unwrap().shard.state().visible_count() == 900
    });
    let took = done.expect("never caught up") - start;
    assert!(took <= 2_000, "took {took} ms");
}

/// The bench at tiny sizes: every figure is produced and plausible.
#[test]
fn bench_runs_at_tiny_sizes() {
    let r = kith::bench::presence::run(kith::bench::presence::BenchOptions::tiny());
    assert!(r.full_transfer_ms > 0.0 && r.full_transfer_bytes > 0);
    assert!(r.delta_merges_per_s > 0.0);
    assert!(r.catchup_ms <= 2_000, "catch-up {} ms", r.catchup_ms);
    let c = &r.convergence_ms["3"];
    assert!(
        c.p50 <= c.p99 && c.p99 < 10_000 && c.unconverged == 0,
        "{c:?}"
    );
    // Counted by the allocator (installed above), not estimated: a presence holds at least its
    // topic, key and metadata bytes, and far less than a kilobyte.
    for bytes in [r.bytes_per_presence, r.bytes_per_local_presence] {
        let bytes = bytes.expect("measured with the counting allocator");
        assert!((16.0..1_024.0).contains(&bytes), "{bytes} B per presence");
    }
    assert!(r.view_bytes_per_presence.is_some_and(|b| b > 0.0));
    assert!(serde_json::to_string(&r).is_ok());
}

// ----- issue 13: idle heartbeats and the down period ----------------------------------------

/// With the down period just above the idle heartbeat interval (accepted by the options check),
/// two idle nodes must never see each other go down. Before the fix an idle shard sent its
/// heartbeat one tick late (`max_silent + 1` ticks apart), so every idle gap exceeded the down
/// period and the peers flapped down and up.
#[test]
fn idle_peers_do_not_flap_when_down_period_just_exceeds_idle_heartbeat() {
    for max_silent in [2, 4, 10] {
        let mut o = Options::with_periods(100, max_silent, 60_000);
        // Inside (max_silent·broadcast, (max_silent+1)·broadcast], with room for the
        // simulated network's 1–10 ms delay variation.
        o.down_period = o.idle_heartbeat() + 50;
        assert!(o.validate().is_ok());
        let mut s = sim(u64::from(max_silent));
        for n in ["a", "b"] {
            s.start(n, 1, o.clone()).unwrap();
        }
        track(&mut s, "a", 1, "room", "alice");
        advance(&mut s, 30_000);
        for n in ["a", "b"] {
            let downs: Vec<_> = s
                .node(n)
                .unwrap()
                .transitions
                .iter()
                .filter(|t| matches!(t, Transition::Down(_)))
                .cloned()
                .collect();
            assert!(
                downs.is_empty(),
                "max_silent {max_silent}: {n} saw {downs:?}"
            );
        }
        assert_eq!(s.listed("b", "room"), keys(&["alice"]));
        assert_eq!(status(&s, "b", "a"), Some((1, ReplicaStatus::Up)));
    }
}

/// An idle shard announces itself exactly every `idle_heartbeat()`; 0 and 1 both mean every tick.
#[test]
fn idle_heartbeats_are_idle_heartbeat_apart() {
    for (max_silent, per_tick) in [(0u32, 1u64), (1, 1), (2, 2), (5, 5)] {
        let mut o = Options::with_periods(100, max_silent, 60_000);
        o.down_period = o.down_period.max(o.idle_heartbeat() + 100).max(200);
        assert_eq!(o.idle_heartbeat(), 100 * per_tick);
        let mut sh = Shard::new(ReplicaRef::new("a", 1), 0, o, 0, 0).unwrap();
        let mut sent_at = Vec::new();
        let mut now = 0;
        while now < 10_000 {
            now = sh.next_tick();
            sh.tick(now);
            let hb = sh.drain_actions().into_iter().any(|a| {
                matches!(
                    a,
                    Action::Broadcast(Envelope {
                        message: Message::Heartbeat { .. },
                        ..
                    })
                )
            });
            if hb {
                sent_at.push(now);
            }
        }
        let gaps: BTreeSet<u64> = sent_at.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(
            gaps,
            BTreeSet::from([100 * per_tick]),
            "max_silent {max_silent}"
        );
    }
}

// ----- issue 13: a transfer answer leaves out the requester's own rows ----------------------

/// Delivers every frame `from` has queued to `to` (broadcasts and frames addressed to it);
/// returns the transfer answers among them.
fn pass(from: &mut Shard, to: &mut Shard, now: u64) -> Vec<Envelope> {
    let to_name = to.state().replica().name.clone();
    let from_name = from.state().replica().name.clone();
    let mut acks = Vec::new();
    for a in from.drain_actions() {
        let env = match a {
            Action::Broadcast(env) => env,
            Action::SendTo(n, env) if n == to_name => env,
            _ => continue,
        };
        if matches!(env.message, Message::TransferAck { .. }) {
            acks.push(env.clone());
        }
        to.receive(&from_name, env, now);
    }
    acks
}

/// Rows of `r` in a transfer answer, delta or full.
fn rows_of(ack: &Envelope, r: &ReplicaRef) -> (bool, usize, bool) {
    let Message::TransferAck { payload, .. } = &ack.message else {
        panic!("not an ack");
    };
    match payload {
        kith::presence::delta::Payload::Delta(d) => (
            true,
            d.values.get(r).map_or(0, |v| v.len()),
            d.clouds.contains_key(r) || d.start.contains_key(r) || d.end.contains_key(r),
        ),
        kith::presence::delta::Payload::Full(f) => (
            false,
            f.values
                .iter()
                .filter(|(x, _)| x == r)
                .map(|(_, v)| v.len())
                .sum(),
            false,
        ),
    }
}

#[test]
fn transfer_delta_leaves_out_the_requesters_rows() {
    let (ra, rb) = (ReplicaRef::new("a", 1), ReplicaRef::new("b", 1));
    let mut a = Shard::new(ra.clone(), 0, opts(), 1, 0).unwrap();
    let mut b = Shard::new(rb.clone(), 0, opts(), 2, 0).unwrap();
    // Each meets the other's first (empty) heartbeat and asks for a transfer.
    let t = a.next_tick().max(b.next_tick());
    a.tick(t);
    b.tick(t);
    pass(&mut a, &mut b, t);
    pass(&mut b, &mut a, t);
    pass(&mut a, &mut b, t);
    pass(&mut b, &mut a, t);
    // Both track; their deltas reach the other and feed its generation ladder.
    a.track(Owner(1), "room", "alice", vec![]).unwrap();
    for i in 0..5 {
        b.track(Owner(10 + i), "room", &format!("bob{i}"), vec![])
            .unwrap();
    }
    let t = t + 100;
    a.tick(t);
    b.tick(t);
    pass(&mut a, &mut b, t);
    pass(&mut b, &mut a, t);
    assert_eq!(a.state().list("room").len(), 6);
    // a tracks more, so b lacks something; b's request reaches a, whose ladder holds b's rows.
    a.track(Owner(2), "room", "carol", vec![]).unwrap();
    let t = t + 100;
    a.tick(t);
    a.drain_actions(); // the heartbeat is lost: b must pull
    b.peer_connected(&ReplicaName::new("a"));
    pass(&mut b, &mut a, t);
    let acks = pass(&mut a, &mut b, t);
    assert_eq!(acks.len(), 1, "one answer to one request");
    let (delta, own_rows, own_range) = rows_of(&acks[0], &rb);
    assert!(delta, "the ladder serves this request with a delta");
    assert_eq!(own_rows, 0, "the answer carries the requester's own rows");
    assert!(!own_range, "the answer claims the requester's own dots");
    // It still brings b up to date.
    let mut listed: Vec<String> = b
        .state()
        .list("room")
        .into_iter()
        .map(|p| p.row.key.clone())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        keys(&["alice", "bob0", "bob1", "bob2", "bob3", "bob4", "carol"])
    );
}
