//! The supervision engine: OTP strategies, restart intensity and restart types over ractor.
//!
//! Layout:
//! - [`decision`]: the pure restart-decision state machine (no runtime; time passed in).
//! - `spec`: [`ChildSpec`], [`SupervisorSpec`], [`DynamicSpec`] — what to start and how.
//! - `children`: the live child table shared by both supervisors; carries out decisions,
//!   stops children with a deadline then a kill.
//! - `supervisor`: the static [`Supervisor`] actor (ordered start, strategies, ordered stop).
//! - `dynamic` + `handle`: the [`DynamicSupervisor`] and the late-bound
//!   [`DynamicSupervisorHandle`] workers use to start children at run time.
//! - `report`: [`SupervisorReport`], a serializable tree of the whole hierarchy.
//! - `root`: [`RootSupervisor`], a root whose exit cause can be awaited.
//!
//! No actor here registers a ractor name, so many trees can run in one process.

pub mod decision;

mod children;
mod dynamic;
mod error;
mod handle;
mod report;
mod root;
mod spec;
#[allow(clippy::module_inception)]
mod supervisor;

pub use self::decision::{ChildState, ExitReason, Intensity, Restart, Strategy};
pub use dynamic::{DynamicSupervisor, DynamicSupervisorMsg, DynamicSupervisorState};
pub use error::SupervisorError;
pub use handle::DynamicSupervisorHandle;
pub use report::{report, report_cell, ChildReport, SupervisorReport};
pub use root::{RootExit, RootSupervisor};
pub use spec::{BoxFuture, ChildKind, ChildSpec, DynamicSpec, StartFn, SupervisorSpec};
pub use supervisor::{Supervisor, SupervisorMsg, SupervisorState};
