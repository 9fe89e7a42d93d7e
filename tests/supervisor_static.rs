//! Static supervisor behaviour with real ractor actors: strategies, restart types, intensity
//! and escalation, panics, and start failures.

mod supervisor_util;

use kith::supervisor::{
    report, ChildSpec, ChildState, Restart, RootExit, RootSupervisor, Strategy, Supervisor,
};
use kith::testing::eventually;
use ractor::ActorStatus;
use supervisor_util::{bounded, ping, spec, Env, ProbeMsg, BOUND, POLL};

fn perm(env: &Env, ids: &[&str]) -> Vec<ChildSpec> {
    ids.iter()
        .map(|id| env.worker(id, Restart::Permanent))
        .collect()
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn one_for_one_restarts_only_the_crashed_child() {
    let env = Env::default();
    let sup_spec = spec("s", Strategy::OneForOne, 1, perm(&env, &["a", "b", "c"]));
    let (sup, _join) = Supervisor::start(sup_spec).await.unwrap();
    let (a, c) = (env.probe("a").get_id(), env.probe("c").get_id());
    let mark = env.log().len();

    env.crash_and_wait("b", ProbeMsg::Fail, 2).await;

    assert_eq!(env.log_since(mark), lines(&["start:b"]));
    assert_eq!((env.probe("a").get_id(), env.probe("c").get_id()), (a, c));
    let r = report(&sup).await.unwrap();
    assert_eq!(r.total_restarts, 1);
    assert_eq!(r.child("b").unwrap().restart_count, 1);
    assert_eq!(r.child("a").unwrap().restart_count, 0);
    Supervisor::shutdown(&sup).await.unwrap();
}

#[tokio::test]
async fn rest_for_one_restarts_the_child_and_those_started_after_it() {
    let env = Env::default();
    let sup_spec = spec(
        "s",
        Strategy::RestForOne,
        1,
        perm(&env, &["a", "b", "c", "d"]),
    );
    let (sup, _join) = Supervisor::start(sup_spec).await.unwrap();
    let a = env.probe("a").get_id();
    let mark = env.log().len();

    env.crash_and_wait("b", ProbeMsg::Fail, 2).await;
    eventually("d restarted", BOUND, POLL, || env.starts("d") == 2).await;

    let expected = ["stop:d", "stop:c", "start:b", "start:c", "start:d"];
    assert_eq!(env.log_since(mark), lines(&expected));
    assert_eq!(env.probe("a").get_id(), a);
    // One restart, even though three children were started again; the stops the supervisor
    // caused were not taken for crashes (max_restarts = 1 would have escalated).
    let r = report(&sup).await.unwrap();
    assert_eq!(r.total_restarts, 1);
    assert!(r.children.iter().all(|c| c.state == ChildState::Running));
    Supervisor::shutdown(&sup).await.unwrap();
}

#[tokio::test]
async fn one_for_all_restarts_every_child() {
    let env = Env::default();
    let sup_spec = spec("s", Strategy::OneForAll, 1, perm(&env, &["a", "b", "c"]));
    let (sup, _join) = Supervisor::start(sup_spec).await.unwrap();
    let mark = env.log().len();

    env.crash_and_wait("b", ProbeMsg::Fail, 2).await;
    eventually("c restarted", BOUND, POLL, || env.starts("c") == 2).await;

    let expected = ["stop:c", "stop:a", "start:a", "start:b", "start:c"];
    assert_eq!(env.log_since(mark), lines(&expected));
    let r = report(&sup).await.unwrap();
    assert_eq!(r.total_restarts, 1);
    assert!(r.children.iter().all(|c| c.restart_count == 1));
    Supervisor::shutdown(&sup).await.unwrap();
}

#[tokio::test]
async fn a_sibling_failing_to_restart_counts_as_another_restart_of_the_group() {
    let env = Env::default();
    let sup_spec = spec("s", Strategy::OneForAll, 2, perm(&env, &["a", "b", "c"]));
    let (sup, _join) = Supervisor::start(sup_spec).await.unwrap();
    env.fail_next_start("a");
    let mark = env.log().len();

    env.crash_and_wait("b", ProbeMsg::Fail, 2).await;
    eventually("c restarted", BOUND, POLL, || env.starts("c") == 2).await;

    // a's failed start is a second failure: the whole group is restarted again.
    let expected = [
        "stop:c",
        "stop:a",
        "failstart:a",
        "start:a",
        "start:b",
        "start:c",
    ];
    assert_eq!(env.log_since(mark), lines(&expected));
    let r = report(&sup).await.unwrap();
    assert_eq!(r.total_restarts, 2);
    assert!(r.children.iter().all(|c| c.state == ChildState::Running));
    Supervisor::shutdown(&sup).await.unwrap();
}

#[tokio::test]
async fn transient_child_is_restarted_only_after_an_abnormal_exit() {
    let env = Env::default();
    let children = vec![
        env.worker("t1", Restart::Transient),
        env.worker("t2", Restart::Transient),
    ];
    let (sup, _join) = Supervisor::start(spec("s", Strategy::OneForOne, 5, children))
        .await
        .unwrap();

    env.probe("t1").cast(ProbeMsg::StopNormal).unwrap();
    eventually("t1 stopped", BOUND, POLL, || env.count("stop:t1") == 1).await;
    env.crash_and_wait("t2", ProbeMsg::Fail, 2).await;

    let r = report(&sup).await.unwrap();
    assert_eq!(r.child("t1").unwrap().state, ChildState::Stopped);
    assert_eq!(env.starts("t1"), 1);
    assert_eq!(r.child("t2").unwrap().state, ChildState::Running);
    assert_eq!(r.total_restarts, 1);
    Supervisor::shutdown(&sup).await.unwrap();
}

#[tokio::test]
async fn temporary_children_are_never_restarted_under_any_strategy() {
    for strategy in [
        Strategy::OneForOne,
        Strategy::RestForOne,
        Strategy::OneForAll,
    ] {
        let env = Env::default();
        let children = vec![
            env.worker("a", Restart::Permanent),
            env.worker("tmp1", Restart::Temporary),
            env.worker("tmp2", Restart::Temporary),
            env.worker("c", Restart::Permanent),
        ];
        let (sup, _join) = Supervisor::start(spec("s", strategy, 5, children))
            .await
            .unwrap();

        // A temporary child that crashes is removed, not restarted.
        env.probe("tmp1").cast(ProbeMsg::Fail).unwrap();
        let gone = |r: &kith::supervisor::SupervisorReport, id| r.child(id).is_none();
        let mut r = report(&sup).await.unwrap();
        for _ in 0..1000 {
            if gone(&r, "tmp1") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            r = report(&sup).await.unwrap();
        }
        assert!(gone(&r, "tmp1"), "{strategy:?}: tmp1 still listed");

        // A sibling's crash: tmp2 is left alone (one_for_one) or stopped and removed.
        env.crash_and_wait("a", ProbeMsg::Fail, 2).await;
        if strategy != Strategy::OneForOne {
            eventually("c restarted", BOUND, POLL, || env.starts("c") == 2).await;
        }
        let r = report(&sup).await.unwrap();
        assert_eq!(env.starts("tmp1"), 1, "{strategy:?}");
        assert_eq!(env.starts("tmp2"), 1, "{strategy:?}");
        match strategy {
            Strategy::OneForOne => {
                assert_eq!(r.child("tmp2").unwrap().state, ChildState::Running);
                ping(&env.probe("tmp2")).await;
            }
            _ => {
                assert!(gone(&r, "tmp2"), "{strategy:?}: tmp2 still listed");
                assert_eq!(env.count("stop:tmp2"), 1, "{strategy:?}");
            }
        }
        assert_eq!(r.total_restarts, 1, "{strategy:?}");
        Supervisor::shutdown(&sup).await.unwrap();
    }
}

#[tokio::test]
async fn a_panic_in_a_handler_is_a_crash_the_supervisor_handles() {
    let env = Env::default();
    let sup_spec = spec("s", Strategy::OneForOne, 1, perm(&env, &["a", "b", "c"]));
    let (sup, _join) = Supervisor::start(sup_spec).await.unwrap();
    let (a, c) = (env.probe("a"), env.probe("c"));

    env.crash_and_wait("b", ProbeMsg::Panic, 2).await;

    ping(&a).await;
    ping(&c).await;
    ping(&env.probe("b")).await;
    assert_eq!(env.probe("a").get_id(), a.get_id());
    assert_eq!(sup.get_status(), ActorStatus::Running);
    assert_eq!(report(&sup).await.unwrap().total_restarts, 1);
    Supervisor::shutdown(&sup).await.unwrap();
}

#[tokio::test]
async fn a_nested_supervisor_that_gives_up_is_handled_by_its_parent_strategy() {
    let env = Env::default();
    // inner allows one restart; the second crash of x makes it escalate.
    let inner = spec("inner", Strategy::OneForOne, 1, perm(&env, &["x"]));
    let children = vec![
        env.worker("w1", Restart::Permanent),
        ChildSpec::supervisor(inner),
        env.worker("w2", Restart::Permanent),
    ];
    let (root, _join) = Supervisor::start(spec("root", Strategy::RestForOne, 3, children))
        .await
        .unwrap();
    let w1 = env.probe("w1").get_id();

    env.crash_and_wait("x", ProbeMsg::Fail, 2).await;
    assert_eq!(report(&root).await.unwrap().total_restarts, 0);
    env.crash_and_wait("x", ProbeMsg::Fail, 3).await;
    // rest_for_one at the root: w2 (after inner) is restarted, w1 (before) is not.
    eventually("w2 restarted", BOUND, POLL, || env.starts("w2") == 2).await;

    assert_eq!(env.probe("w1").get_id(), w1);
    let r = report(&root).await.unwrap();
    assert_eq!(r.total_restarts, 1);
    let inner = r.child("inner").unwrap();
    assert_eq!(inner.restart_count, 1);
    let nested = inner.supervisor.as_ref().unwrap();
    assert_eq!(nested.total_restarts, 0, "a fresh inner supervisor");
    assert_eq!(nested.child("x").unwrap().state, ChildState::Running);
    Supervisor::shutdown(&root).await.unwrap();
}

#[tokio::test]
async fn a_root_that_gives_up_exits_and_reports_the_escalation() {
    let env = Env::default();
    let children = vec![
        env.worker("healthy", Restart::Permanent),
        env.worker("crashy", Restart::Permanent),
    ];
    let mut root = RootSupervisor::start(spec("root", Strategy::OneForOne, 0, children))
        .await
        .unwrap();
    assert_eq!(root.exit(), None);

    env.probe("crashy").cast(ProbeMsg::Fail).unwrap();
    let exit = bounded("root exit", root.wait()).await;

    let RootExit::Escalated(reason) = exit else {
        panic!("expected an escalation, got {exit:?}");
    };
    assert!(reason.contains("restart intensity exceeded"), "{reason}");
    // Before exiting, the root stopped its remaining child gracefully.
    assert_eq!(env.count("stop:healthy"), 1);
    assert_eq!(root.actor().get_status(), ActorStatus::Stopped);
}

#[tokio::test]
async fn a_plain_root_join_handle_completes_when_it_gives_up() {
    let env = Env::default();
    let sup_spec = spec("root", Strategy::OneForAll, 0, perm(&env, &["a"]));
    let (sup, join) = Supervisor::start(sup_spec).await.unwrap();
    env.probe("a").cast(ProbeMsg::Fail).unwrap();
    bounded("root join", join).await.unwrap();
    assert!(report(&sup).await.is_err());
}

#[tokio::test]
async fn a_root_stopped_on_purpose_reports_a_clean_exit() {
    let env = Env::default();
    let sup_spec = spec("root", Strategy::OneForOne, 1, perm(&env, &["a"]));
    let mut root = RootSupervisor::start(sup_spec).await.unwrap();
    assert_eq!(
        bounded("shutdown", root.shutdown()).await.unwrap(),
        RootExit::Stopped
    );
}

#[tokio::test]
async fn a_child_that_fails_to_start_fails_the_supervisor_start_in_order() {
    let env = Env::default();
    let children = vec![
        env.worker("a", Restart::Permanent),
        env.worker("b", Restart::Permanent),
        env.failing_worker("bad"),
        env.worker("never", Restart::Permanent),
    ];
    let started = Supervisor::start(spec("s", Strategy::OneForOne, 1, children)).await;
    assert!(started.is_err());
    let expected = ["start:a", "start:b", "failstart:bad", "stop:b", "stop:a"];
    assert_eq!(env.log(), lines(&expected));
}

#[tokio::test]
async fn duplicate_child_ids_are_refused() {
    let env = Env::default();
    let sup_spec = spec("s", Strategy::OneForOne, 1, perm(&env, &["a", "a"]));
    assert!(Supervisor::start(sup_spec).await.is_err());
    assert_eq!(env.starts("a"), 0);
}
