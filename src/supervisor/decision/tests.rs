//! Unit tests of the restart-decision core: every OTP rule, no runtime.

use std::time::{Duration, Instant};

use super::*;

const ABNORMAL: fn() -> ExitReason = || ExitReason::Abnormal("boom".into());

fn intensity(max_restarts: u32, secs: u64) -> Intensity {
    Intensity {
        max_restarts,
        period: Duration::from_secs(secs),
    }
}

/// A core with the given children, all started.
fn core(strategy: Strategy, children: &[(&str, Restart)]) -> Core {
    let mut core = Core::new(strategy, intensity(100, 10));
    for (id, restart) in children {
        core.add_child(id, *restart).unwrap();
        core.child_started(id);
    }
    core
}

fn abc(strategy: Strategy) -> Core {
    core(
        strategy,
        &[
            ("a", Restart::Permanent),
            ("b", Restart::Permanent),
            ("c", Restart::Permanent),
        ],
    )
}

fn plan(stop: &[&str], remove: &[&str], start: &[&str]) -> Decision {
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Decision::Restart(RestartPlan {
        stop: own(stop),
        remove: own(remove),
        start: own(start),
    })
}

fn ids(core: &Core) -> Vec<&str> {
    core.children().map(|c| c.id.as_str()).collect()
}

fn state(core: &Core, id: &str) -> ChildState {
    core.children().find(|c| c.id == id).unwrap().state
}

#[test]
fn one_for_one_restarts_only_the_child() {
    let mut core = abc(Strategy::OneForOne);
    let d = core.child_exited("b", &ABNORMAL(), Instant::now());
    assert_eq!(d, plan(&[], &[], &["b"]));
    assert_eq!(state(&core, "b"), ChildState::Restarting);
    assert_eq!(state(&core, "a"), ChildState::Running);
    assert_eq!(state(&core, "c"), ChildState::Running);
}

#[test]
fn rest_for_one_stops_later_children_in_reverse_and_restarts_in_order() {
    let mut core = core(
        Strategy::RestForOne,
        &[
            ("a", Restart::Permanent),
            ("b", Restart::Permanent),
            ("c", Restart::Permanent),
            ("d", Restart::Permanent),
        ],
    );
    let d = core.child_exited("b", &ABNORMAL(), Instant::now());
    assert_eq!(d, plan(&["d", "c"], &[], &["b", "c", "d"]));
    assert_eq!(state(&core, "a"), ChildState::Running);
}

#[test]
fn rest_for_one_last_child_is_alone() {
    let mut core = abc(Strategy::RestForOne);
    let d = core.child_exited("c", &ABNORMAL(), Instant::now());
    assert_eq!(d, plan(&[], &[], &["c"]));
}

#[test]
fn one_for_all_stops_all_others_in_reverse_and_restarts_all_in_order() {
    let mut core = abc(Strategy::OneForAll);
    let d = core.child_exited("b", &ABNORMAL(), Instant::now());
    assert_eq!(d, plan(&["c", "a"], &[], &["a", "b", "c"]));
    assert!(core.children().all(|c| c.state == ChildState::Restarting));
}

#[test]
fn permanent_child_is_restarted_after_normal_and_shutdown_exits() {
    for reason in [ExitReason::Normal, ExitReason::Shutdown] {
        let mut core = abc(Strategy::OneForOne);
        let d = core.child_exited("a", &reason, Instant::now());
        assert_eq!(d, plan(&[], &[], &["a"]), "{reason}");
    }
}

#[test]
fn transient_child_normal_exit_is_kept_stopped() {
    for reason in [ExitReason::Normal, ExitReason::Shutdown] {
        let mut core = core(Strategy::OneForAll, &[("t", Restart::Transient)]);
        assert_eq!(
            core.child_exited("t", &reason, Instant::now()),
            Decision::Keep
        );
        assert_eq!(state(&core, "t"), ChildState::Stopped);
        assert_eq!(core.total_restarts(), 0);
    }
}

#[test]
fn transient_child_abnormal_exit_is_restarted() {
    let mut core = core(Strategy::OneForOne, &[("t", Restart::Transient)]);
    let d = core.child_exited("t", &ABNORMAL(), Instant::now());
    assert_eq!(d, plan(&[], &[], &["t"]));
    assert_eq!(core.total_restarts(), 1);
}

#[test]
fn temporary_child_is_removed_under_every_strategy() {
    for strategy in [
        Strategy::OneForOne,
        Strategy::RestForOne,
        Strategy::OneForAll,
    ] {
        for reason in [ExitReason::Normal, ExitReason::Shutdown, ABNORMAL()] {
            let mut core = core(
                strategy,
                &[
                    ("a", Restart::Permanent),
                    ("tmp", Restart::Temporary),
                    ("c", Restart::Permanent),
                ],
            );
            let d = core.child_exited("tmp", &reason, Instant::now());
            assert_eq!(d, Decision::Remove, "{strategy:?} {reason}");
            assert_eq!(ids(&core), ["a", "c"]);
            assert_eq!(core.total_restarts(), 0);
        }
    }
}

#[test]
fn temporary_siblings_stopped_by_a_restart_are_removed_not_restarted() {
    let children = [
        ("a", Restart::Permanent),
        ("tmp1", Restart::Temporary),
        ("b", Restart::Permanent),
        ("tmp2", Restart::Temporary),
    ];
    let mut all = core(Strategy::OneForAll, &children);
    let d = all.child_exited("b", &ABNORMAL(), Instant::now());
    assert_eq!(
        d,
        plan(&["tmp2", "tmp1", "a"], &["tmp1", "tmp2"], &["a", "b"])
    );
    assert_eq!(ids(&all), ["a", "b"]);

    let mut rest = core(Strategy::RestForOne, &children);
    let d = rest.child_exited("b", &ABNORMAL(), Instant::now());
    assert_eq!(d, plan(&["tmp2"], &["tmp2"], &["b"]));
    assert_eq!(ids(&rest), ["a", "tmp1", "b"]);
}

#[test]
fn one_for_one_leaves_temporary_siblings_alone() {
    let mut core = core(
        Strategy::OneForOne,
        &[("a", Restart::Permanent), ("tmp", Restart::Temporary)],
    );
    let d = core.child_exited("a", &ABNORMAL(), Instant::now());
    assert_eq!(d, plan(&[], &[], &["a"]));
    assert_eq!(ids(&core), ["a", "tmp"]);
}

#[test]
fn stopped_transient_sibling_is_started_again_by_one_for_all_as_in_otp() {
    let mut core = core(
        Strategy::OneForAll,
        &[("t", Restart::Transient), ("p", Restart::Permanent)],
    );
    let now = Instant::now();
    assert_eq!(
        core.child_exited("t", &ExitReason::Normal, now),
        Decision::Keep
    );
    // t is not running, so there is nothing to stop, but OTP's start_children starts it.
    assert_eq!(
        core.child_exited("p", &ABNORMAL(), now),
        plan(&[], &[], &["t", "p"])
    );
}

#[test]
fn intensity_exceeded_escalates() {
    let mut core = Core::new(Strategy::OneForOne, intensity(2, 10));
    core.add_child("a", Restart::Permanent).unwrap();
    core.child_started("a");
    let t0 = Instant::now();
    for k in 0..2 {
        let d = core.child_exited("a", &ABNORMAL(), t0 + Duration::from_secs(k));
        assert!(matches!(d, Decision::Restart(_)), "restart {k}: {d:?}");
        core.child_started("a");
    }
    let d = core.child_exited("a", &ABNORMAL(), t0 + Duration::from_secs(2));
    assert!(matches!(d, Decision::Escalate { .. }), "{d:?}");
    assert_eq!(core.total_restarts(), 2);
}

#[test]
fn restarts_older_than_the_period_no_longer_count() {
    let mut core = Core::new(Strategy::OneForOne, intensity(1, 5));
    core.add_child("a", Restart::Permanent).unwrap();
    core.child_started("a");
    let t0 = Instant::now();
    assert!(matches!(
        core.child_exited("a", &ABNORMAL(), t0),
        Decision::Restart(_)
    ));
    core.child_started("a");
    // Exactly one period later the first restart has left the window.
    let t1 = t0 + Duration::from_secs(5);
    assert!(matches!(
        core.child_exited("a", &ABNORMAL(), t1),
        Decision::Restart(_)
    ));
    core.child_started("a");
    let t2 = t1 + Duration::from_secs(4);
    let d = core.child_exited("a", &ABNORMAL(), t2);
    assert!(matches!(d, Decision::Escalate { .. }), "{d:?}");
}

#[test]
fn zero_max_restarts_escalates_on_first_failure() {
    let mut core = Core::new(Strategy::OneForOne, intensity(0, 5));
    core.add_child("a", Restart::Permanent).unwrap();
    core.child_started("a");
    let d = core.child_exited("a", &ABNORMAL(), Instant::now());
    assert!(matches!(d, Decision::Escalate { .. }), "{d:?}");
}

#[test]
fn a_one_for_all_restart_of_many_children_counts_once() {
    let mut core = Core::new(Strategy::OneForAll, intensity(1, 10));
    for id in ["a", "b", "c", "d", "e"] {
        core.add_child(id, Restart::Permanent).unwrap();
        core.child_started(id);
    }
    let now = Instant::now();
    let Decision::Restart(p) = core.child_exited("c", &ABNORMAL(), now) else {
        panic!("expected a restart");
    };
    assert_eq!(p.start.len(), 5);
    assert_eq!(core.total_restarts(), 1);
    for id in &p.start {
        core.child_started(id);
    }
    assert!(core.children().all(|c| c.restart_count == 1));
    let d = core.child_exited("a", &ABNORMAL(), now);
    assert!(matches!(d, Decision::Escalate { .. }), "{d:?}");
}

#[test]
fn non_restarts_do_not_consume_intensity() {
    let mut core = Core::new(Strategy::OneForOne, intensity(0, 10));
    core.add_child("t", Restart::Transient).unwrap();
    core.add_child("tmp", Restart::Temporary).unwrap();
    core.child_started("t");
    core.child_started("tmp");
    let now = Instant::now();
    assert_eq!(
        core.child_exited("t", &ExitReason::Normal, now),
        Decision::Keep
    );
    assert_eq!(core.child_exited("tmp", &ABNORMAL(), now), Decision::Remove);
}

#[test]
fn unknown_or_stopped_children_are_ignored() {
    let mut core = abc(Strategy::OneForAll);
    let now = Instant::now();
    assert_eq!(core.child_exited("zz", &ABNORMAL(), now), Decision::Ignore);
    core.child_stopped("a");
    assert_eq!(core.child_exited("a", &ABNORMAL(), now), Decision::Ignore);
    assert_eq!(core.total_restarts(), 0);
}

#[test]
fn a_child_failing_to_restart_is_planned_again() {
    let mut core = abc(Strategy::OneForAll);
    let now = Instant::now();
    assert!(matches!(
        core.child_exited("b", &ABNORMAL(), now),
        Decision::Restart(_)
    ));
    // a restarted, then b failed to start: a is running again and must be stopped.
    core.child_started("a");
    let d = core.child_exited("b", &ABNORMAL(), now);
    assert_eq!(d, plan(&["a"], &[], &["a", "b", "c"]));
    assert_eq!(core.total_restarts(), 2);
}

#[test]
fn restart_count_counts_starts_after_the_first() {
    let mut core = abc(Strategy::OneForOne);
    assert!(core.children().all(|c| c.restart_count == 0));
    let _ = core.child_exited("a", &ABNORMAL(), Instant::now());
    core.child_started("a");
    assert_eq!(core.children().next().unwrap().restart_count, 1);
    assert_eq!(core.children().nth(1).unwrap().restart_count, 0);
}

#[test]
fn dynamic_core_removes_children_it_does_not_restart() {
    let mut core = Core::dynamic(intensity(3, 10));
    assert_eq!(core.strategy(), Strategy::OneForOne);
    for (id, r) in [("t", Restart::Transient), ("p", Restart::Permanent)] {
        core.add_child(id, r).unwrap();
        core.child_started(id);
    }
    let now = Instant::now();
    assert_eq!(
        core.child_exited("t", &ExitReason::Normal, now),
        Decision::Remove
    );
    assert_eq!(
        core.child_exited("p", &ABNORMAL(), now),
        plan(&[], &[], &["p"])
    );
    assert_eq!(ids(&core), ["p"]);
}

#[test]
fn duplicate_ids_are_rejected() {
    let mut core = abc(Strategy::OneForOne);
    assert_eq!(
        core.add_child("a", Restart::Permanent),
        Err(CoreError::DuplicateId("a".into()))
    );
    assert!(core.remove_child("a"));
    assert!(!core.remove_child("a"));
    assert!(core.add_child("a", Restart::Permanent).is_ok());
}

fn core_of(children: &[(&str, Restart)]) -> Core {
    core(Strategy::RestForOne, children)
}

#[test]
fn start_order_survives_removals_re_adds_and_restarts() {
    let mut core = core(
        Strategy::RestForOne,
        &[
            ("a", Restart::Permanent),
            ("b", Restart::Temporary),
            ("c", Restart::Permanent),
            ("d", Restart::Permanent),
        ],
    );
    assert!(core.remove_child("a"));
    assert!(!core.remove_child("a"), "already gone");
    core.add_child("a", Restart::Permanent).unwrap();
    core.child_started("a");
    assert_eq!(
        ids(&core),
        ["b", "c", "d", "a"],
        "a re-added child goes last"
    );
    // b is temporary: rest_for_one from c stops d and a, and starts them again after c.
    let d = core.child_exited("c", &ABNORMAL(), Instant::now());
    assert_eq!(d, plan(&["a", "d"], &[], &["c", "d", "a"]));
    // A rest_for_one restart of b's predecessor drops the temporary b.
    let mut other = core_of(&[("x", Restart::Permanent), ("b", Restart::Temporary)]);
    let d = other.child_exited("x", &ABNORMAL(), Instant::now());
    assert_eq!(d, plan(&["b"], &["b"], &["x"]));
    assert_eq!(ids(&other), ["x"]);
    assert!(
        other.add_child("b", Restart::Temporary).is_ok(),
        "a dropped id can be used again"
    );
}

#[test]
fn a_dynamic_core_with_thousands_of_children_finds_each_by_id() {
    let mut core = Core::dynamic(intensity(100, 10));
    for i in 0..5_000 {
        core.add_child(&format!("peer-{i}"), Restart::Temporary)
            .unwrap();
        core.child_started(&format!("peer-{i}"));
    }
    assert_eq!(
        core.child_exited("peer-2500", &ExitReason::Normal, Instant::now()),
        Decision::Remove
    );
    assert_eq!(core.len(), 4_999);
    assert_eq!(
        core.child_exited("peer-2500", &ExitReason::Normal, Instant::now()),
        Decision::Ignore
    );
    assert_eq!(ids(&core)[2_500], "peer-2501");
}
