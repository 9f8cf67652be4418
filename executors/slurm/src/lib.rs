//! twinflow-executor-slurm: the Slurm backend (issue 6, being built).
//!
//! This first slice holds the pure parts, tested on literal samples of what
//! Slurm 22.05 prints: rendering a task's batch script, and parsing what
//! `sbatch --parsable`, `squeue` and `sacct` print into twinflow's states.
//! Submission, the batched polling loop and SSH come next; nothing here runs
//! a command.

pub mod parse;
pub mod script;
