//! twinflow-executor-slurm: the Slurm backend.
//!
//! - [`script`] renders a task's batch script and [`group`] the scripts of
//!   job arrays and packed jobs; [`parse`] reads what `sbatch --parsable`,
//!   `squeue`, `sacct` and `scontrol show config` print (pure functions,
//!   tested on literal samples of Slurm 22.05's output);
//! - [`SlurmExecutor`] groups attempts into job arrays and packed jobs,
//!   keeps at most `max_jobs` jobs queued, and follows every job of a
//!   factory's runs with one `squeue` per poll interval; `user_cap` keeps
//!   the user's jobs on a cluster under `user_max_jobs` over all runs;
//! - [`worker`] is `twinflow worker`, which runs a packed job's tasks;
//!   `install` decides which `twinflow` binary packed jobs run (over SSH:
//!   this one, uploaded once per cluster);
//! - [`containers`] resolves a step's image on the cluster and writes the
//!   lines that run a task inside it; [`pack_container`] runs a pack's
//!   members in one shared container; `preflight` checks the runtime,
//!   the bind sources and the image on the node first;
//! - `pack_parallel` shapes parallel packs (`pack: {tasks, parallel}`):
//!   one allocation for K tasks, each task one `srun` step;
//! - [`prologue`] runs the executor's `prologue:` at the top of every job;
//! - [`coupled`] runs a coupling group's instance as one job of one
//!   concurrent `srun` step per member;
//! - [`ranks`] shapes tasks of several ranks and nodes (`#SBATCH --nodes`,
//!   `--ntasks`, ...) and starts their ranks (`srun`, `mpirun`, none);
//! - `remote` and `staging` reach a cluster over SSH and move the tasks'
//!   files there and back.

mod cluster;
pub mod containers;
pub mod coupled;
mod executor;
pub mod group;
mod install;
mod monitor;
pub mod pack_container;
mod pack_gpus;
mod pack_parallel;
pub mod parse;
mod preflight;
pub mod prologue;
pub mod ranks;
mod recover;
mod remote;
pub mod script;
mod script_error;
#[cfg(test)]
mod script_tests_support;
mod staging;
mod user_cap;
pub mod worker;

pub use executor::{SlurmExecutor, SlurmFactory};
