//! Dynamic supervisors (start/terminate/max_children/restarts, the late-bound handle) and the
//! report tree.

mod supervisor_util;

use kith::supervisor::{
    report, ChildKind, ChildSpec, ChildState, DynamicSpec, DynamicSupervisorHandle, Restart,
    Strategy, Supervisor, SupervisorError,
};
use kith::testing::eventually;
use ractor::ActorStatus;
use supervisor_util::{intensity, ping, spec, Env, ProbeMsg, BOUND, POLL};

fn dynamic(name: &str, max_restarts: u32, max_children: usize) -> DynamicSpec {
    DynamicSpec {
        name: name.into(),
        intensity: intensity(max_restarts),
        max_children,
    }
}

/// A root holding one dynamic supervisor behind `handle`.
async fn tree(
    env: &Env,
    dyn_spec: DynamicSpec,
    handle: &DynamicSupervisorHandle,
) -> ractor::ActorRef<kith::supervisor::SupervisorMsg> {
    let children = vec![
        ChildSpec::dynamic(dyn_spec, handle.clone()),
        env.worker("listener", Restart::Permanent),
    ];
    let (root, _join) = Supervisor::start(spec("root", Strategy::RestForOne, 3, children))
        .await
        .unwrap();
    root
}

#[tokio::test]
async fn start_terminate_count_and_which_children() {
    let env = Env::default();
    let handle = DynamicSupervisorHandle::new("peers");
    assert!(matches!(
        handle.count().await,
        Err(SupervisorError::NotRunning)
    ));
    let root = tree(&env, dynamic("peers", 3, 10), &handle).await;

    let p1 = handle
        .start_child(env.worker("p1", Restart::Temporary))
        .await
        .unwrap();
    handle
        .start_child(env.worker("p2", Restart::Temporary))
        .await
        .unwrap();
    assert_eq!(handle.count().await.unwrap(), 2);
    assert_eq!(handle.which_children().await.unwrap(), ["p1", "p2"]);
    let dup = handle
        .start_child(env.worker("p1", Restart::Temporary))
        .await;
    assert!(matches!(dup, Err(SupervisorError::DuplicateId(id)) if id == "p1"));

    handle.terminate_child("p1").await.unwrap();
    assert_eq!(env.count("stop:p1"), 1);
    assert_eq!(p1.get_status(), ActorStatus::Stopped);
    assert_eq!(handle.which_children().await.unwrap(), ["p2"]);
    let unknown = handle.terminate_child("p1").await;
    assert!(matches!(unknown, Err(SupervisorError::UnknownChild(id)) if id == "p1"));

    let failed = handle.start_child(env.failing_worker("bad")).await;
    assert!(matches!(failed, Err(SupervisorError::Start { id, .. }) if id == "bad"));
    assert_eq!(handle.count().await.unwrap(), 1);
    Supervisor::shutdown(&root).await.unwrap();
    assert!(matches!(
        handle.count().await,
        Err(SupervisorError::NotRunning)
    ));
}

#[tokio::test]
async fn max_children_is_enforced() {
    let env = Env::default();
    let handle = DynamicSupervisorHandle::new("peers");
    let root = tree(&env, dynamic("peers", 3, 2), &handle).await;
    for id in ["p1", "p2"] {
        handle
            .start_child(env.worker(id, Restart::Temporary))
            .await
            .unwrap();
    }
    let full = handle
        .start_child(env.worker("p3", Restart::Temporary))
        .await;
    assert!(matches!(full, Err(SupervisorError::MaxChildren { max: 2 })));
    assert_eq!(env.starts("p3"), 0);

    handle.terminate_child("p1").await.unwrap();
    handle
        .start_child(env.worker("p3", Restart::Temporary))
        .await
        .unwrap();
    assert_eq!(handle.count().await.unwrap(), 2);
    Supervisor::shutdown(&root).await.unwrap();
}

#[tokio::test]
async fn crashed_permanent_child_is_restarted_and_temporary_or_finished_ones_are_removed() {
    let env = Env::default();
    let handle = DynamicSupervisorHandle::new("peers");
    let root = tree(&env, dynamic("peers", 5, 10), &handle).await;
    for (id, restart) in [
        ("perm", Restart::Permanent),
        ("tmp", Restart::Temporary),
        ("trans", Restart::Transient),
    ] {
        handle.start_child(env.worker(id, restart)).await.unwrap();
    }

    env.crash_and_wait("perm", ProbeMsg::Fail, 2).await;
    ping(&env.probe("perm")).await;

    env.probe("tmp").cast(ProbeMsg::Fail).unwrap();
    env.probe("trans").cast(ProbeMsg::StopNormal).unwrap();
    eventually("trans stopped", BOUND, POLL, || {
        env.count("stop:trans") == 1
    })
    .await;
    let mut ids = handle.which_children().await.unwrap();
    for _ in 0..1000 {
        if ids == ["perm"] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        ids = handle.which_children().await.unwrap();
    }
    assert_eq!(ids, ["perm"]);
    assert_eq!((env.starts("tmp"), env.starts("trans")), (1, 1));
    let r = handle.report().await.unwrap();
    assert_eq!(r.total_restarts, 1);
    assert_eq!(r.child("perm").unwrap().restart_count, 1);
    Supervisor::shutdown(&root).await.unwrap();
}

#[tokio::test]
async fn a_worker_starts_children_through_a_handle_that_follows_restarts() {
    let env = Env::default();
    let handle = DynamicSupervisorHandle::new("peers");
    // max_restarts 0: the first child crash makes the dynamic supervisor give up.
    let root = tree(&env, dynamic("peers", 0, 10), &handle).await;
    let first = handle.actor().unwrap().get_id();

    let listener = env.probe("listener");
    let spawn = |id: &str| {
        let (h, s) = (handle.clone(), env.worker(id, Restart::Permanent));
        move |reply| ProbeMsg::Spawn(h, s, reply)
    };
    let cell = ractor::call_t!(listener, spawn("peer1"), 5000)
        .unwrap()
        .unwrap();
    assert_eq!(cell.try_get_supervisor().unwrap().get_id(), first);

    // peer1 crashes -> peers escalates -> root (rest_for_one) restarts peers and the listener.
    env.probe("peer1").cast(ProbeMsg::Fail).unwrap();
    eventually("listener restarted", BOUND, POLL, || {
        env.starts("listener") == 2
    })
    .await;

    let second = handle.actor().unwrap().get_id();
    assert_ne!(first, second);
    assert_eq!(
        handle.count().await.unwrap(),
        0,
        "children do not survive their supervisor"
    );
    let listener = env.probe("listener");
    let cell = ractor::call_t!(listener, spawn("peer2"), 5000)
        .unwrap()
        .unwrap();
    assert_eq!(cell.try_get_supervisor().unwrap().get_id(), second);
    assert_eq!(report(&root).await.unwrap().total_restarts, 1);
    Supervisor::shutdown(&root).await.unwrap();
}

#[tokio::test]
async fn report_covers_the_whole_tree_and_serializes() {
    let env = Env::default();
    let handle = DynamicSupervisorHandle::new("peers");
    let inner = spec(
        "inner",
        Strategy::OneForAll,
        2,
        vec![env.worker("x", Restart::Transient)],
    );
    let children = vec![
        env.worker("a", Restart::Permanent),
        ChildSpec::supervisor(inner),
        ChildSpec::dynamic(dynamic("peers", 4, 7), handle.clone()),
    ];
    let (root, _join) = Supervisor::start(spec("root", Strategy::OneForOne, 3, children))
        .await
        .unwrap();
    handle
        .start_child(env.worker("p1", Restart::Temporary))
        .await
        .unwrap();
    env.crash_and_wait("a", ProbeMsg::Fail, 2).await;

    let r = report(&root).await.unwrap();
    assert_eq!(
        (r.name.as_str(), r.strategy, r.total_restarts),
        ("root", Strategy::OneForOne, 1)
    );
    assert_eq!(r.intensity.max_restarts, 3);
    assert_eq!(r.max_children, None);
    let ids: Vec<_> = r.children.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a", "inner", "peers"]);
    let a = r.child("a").unwrap();
    assert_eq!(
        (a.kind, a.restart, a.restart_count),
        (ChildKind::Worker, Restart::Permanent, 1)
    );
    assert!(a.supervisor.is_none());

    let inner = r.child("inner").unwrap();
    assert_eq!(inner.kind, ChildKind::Supervisor);
    let inner = inner.supervisor.as_ref().unwrap();
    assert_eq!(inner.strategy, Strategy::OneForAll);
    let x = inner.child("x").unwrap();
    assert_eq!(
        (x.restart, x.state),
        (Restart::Transient, ChildState::Running)
    );

    let peers = r.child("peers").unwrap().supervisor.as_ref().unwrap();
    assert_eq!(
        (peers.max_children, peers.intensity.max_restarts),
        (Some(7), 4)
    );
    assert_eq!(peers.child("p1").unwrap().restart, Restart::Temporary);

    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["strategy"], "one_for_one");
    assert_eq!(json["children"][1]["supervisor"]["children"][0]["id"], "x");
    assert_eq!(
        json["children"][2]["supervisor"]["children"][0]["state"],
        "running"
    );
    Supervisor::shutdown(&root).await.unwrap();
}

#[tokio::test]
async fn identical_trees_run_side_by_side_without_name_clashes() {
    let (env1, env2) = (Env::default(), Env::default());
    let (h1, h2) = (
        DynamicSupervisorHandle::new("peers"),
        DynamicSupervisorHandle::new("peers"),
    );
    let root1 = tree(&env1, dynamic("peers", 1, 4), &h1).await;
    let root2 = tree(&env2, dynamic("peers", 1, 4), &h2).await;
    h1.start_child(env1.worker("p", Restart::Permanent))
        .await
        .unwrap();
    h2.start_child(env2.worker("p", Restart::Permanent))
        .await
        .unwrap();
    assert_eq!(
        (h1.count().await.unwrap(), h2.count().await.unwrap()),
        (1, 1)
    );
    Supervisor::shutdown(&root1).await.unwrap();
    Supervisor::shutdown(&root2).await.unwrap();
}
