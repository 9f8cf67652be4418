//! twinflow-executor-slurm: the Slurm backend (issue 6, being built).
//!
//! - [`script`] renders a task's batch script, [`parse`] reads what
//!   `sbatch --parsable`, `squeue` and `sacct` print (pure functions, tested
//!   on literal samples of Slurm 22.05's output);
//! - [`SlurmExecutor`] submits from the login node with `sbatch`, follows
//!   all its jobs with one `squeue` per poll interval and kills with
//!   `scancel`.
//!
//! Not built yet: submission over SSH, job arrays, packing, `sacct`.

mod executor;
pub mod parse;
pub mod script;

pub use executor::{SlurmExecutor, SlurmFactory};
