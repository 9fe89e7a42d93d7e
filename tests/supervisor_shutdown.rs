//! Ordered shutdown and shutdown deadlines, observed through the probes' shared log.

mod supervisor_util;

use std::time::Duration;

use kith::supervisor::{report, ChildSpec, Restart, Strategy, Supervisor};
use kith::testing::eventually;
use ractor::ActorStatus;
use supervisor_util::{bounded, spec, Env, ProbeMsg, BOUND, POLL};

/// Short enough to keep the suite fast; the tests never assert on how long anything took.
const DEADLINE: Duration = Duration::from_millis(100);

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn stops(env: &Env) -> Vec<String> {
    env.log()
        .into_iter()
        .filter(|l| l.starts_with("stop:"))
        .collect()
}

#[tokio::test]
async fn shutdown_stops_children_in_reverse_start_order_depth_first() {
    let env = Env::default();
    let inner = spec(
        "inner",
        Strategy::OneForOne,
        1,
        vec![
            env.worker("x", Restart::Permanent),
            env.worker("y", Restart::Permanent),
        ],
    );
    let children = vec![
        env.worker("a", Restart::Permanent),
        env.worker("b", Restart::Transient),
        env.worker("c", Restart::Temporary),
        ChildSpec::supervisor(inner),
        env.worker("d", Restart::Permanent),
    ];
    let (root, join) = Supervisor::start(spec("root", Strategy::OneForAll, 1, children))
        .await
        .unwrap();
    let starts = [
        "start:a", "start:b", "start:c", "start:x", "start:y", "start:d",
    ];
    assert_eq!(env.log(), lines(&starts));
    let x = env.probe("x");

    bounded("shutdown", Supervisor::shutdown(&root))
        .await
        .unwrap();

    let expected = ["stop:d", "stop:y", "stop:x", "stop:c", "stop:b", "stop:a"];
    assert_eq!(stops(&env), lines(&expected));
    // Nothing was restarted while the tree went down.
    assert_eq!(env.starts("a"), 1);
    assert_eq!(x.get_status(), ActorStatus::Stopped);
    assert_eq!(root.get_status(), ActorStatus::Stopped);
    bounded("root join", join).await.unwrap();
}

#[tokio::test]
async fn a_child_that_ignores_stop_is_killed_after_its_deadline_on_shutdown() {
    let env = Env::default();
    let children = vec![
        env.worker("a", Restart::Permanent),
        env.worker("stuck", Restart::Permanent)
            .with_shutdown(DEADLINE),
        env.worker("c", Restart::Permanent),
    ];
    let (root, _join) = Supervisor::start(spec("root", Strategy::OneForOne, 1, children))
        .await
        .unwrap();
    let stuck = env.probe("stuck");
    stuck.cast(ProbeMsg::Block).unwrap();
    eventually("stuck blocking", BOUND, POLL, || {
        env.count("blocking:stuck") == 1
    })
    .await;

    bounded("shutdown", Supervisor::shutdown(&root))
        .await
        .unwrap();

    // Killed, so its post_stop never ran; its siblings stopped gracefully, in order.
    assert_eq!(stops(&env), lines(&["stop:c", "stop:a"]));
    assert_eq!(stuck.get_status(), ActorStatus::Stopped);
    assert_eq!(root.get_status(), ActorStatus::Stopped);
}

#[tokio::test]
async fn a_sibling_that_ignores_stop_during_a_restart_is_killed_and_restarted() {
    let env = Env::default();
    let children = vec![
        env.worker("stuck", Restart::Permanent)
            .with_shutdown(DEADLINE),
        env.worker("b", Restart::Permanent),
    ];
    let (root, _join) = Supervisor::start(spec("root", Strategy::OneForAll, 1, children))
        .await
        .unwrap();
    let old = env.probe("stuck");
    old.cast(ProbeMsg::Block).unwrap();
    eventually("stuck blocking", BOUND, POLL, || {
        env.count("blocking:stuck") == 1
    })
    .await;

    env.crash_and_wait("b", ProbeMsg::Fail, 2).await;

    assert_eq!(old.get_status(), ActorStatus::Stopped);
    assert_eq!(env.starts("stuck"), 2);
    assert_eq!(env.count("stop:stuck"), 0, "killed, not stopped");
    // The kill was the supervisor's doing: one restart in total, no escalation.
    let r = report(&root).await.unwrap();
    assert_eq!(r.total_restarts, 1);
    Supervisor::shutdown(&root).await.unwrap();
}

#[tokio::test]
async fn shutting_down_a_stopped_supervisor_is_an_error() {
    let env = Env::default();
    let sup_spec = spec(
        "root",
        Strategy::OneForOne,
        1,
        vec![env.worker("a", Restart::Permanent)],
    );
    let (root, _join) = Supervisor::start(sup_spec).await.unwrap();
    Supervisor::shutdown(&root).await.unwrap();
    assert!(Supervisor::shutdown(&root).await.is_err());
}
