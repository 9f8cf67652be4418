//! The GPUs of a packed job, shared out among the tasks its worker runs side
//! by side.
//!
//! A packed job asks Slurm for one task's resources, GPUs included
//! (`--gpus=N` or `--gres=gpu:TYPE:N`, see [`crate::script`]), and the
//! worker ([`crate::worker`]) runs its tasks one after another, or side by
//! side when the allocation holds more than one task's CPUs. Slurm names
//! the allocation's devices in the job's environment, in the same order in
//! every variable: `CUDA_VISIBLE_DEVICES`, `ROCR_VISIBLE_DEVICES`,
//! `GPU_DEVICE_ORDINAL` (numbered as the job sees them) and
//! `SLURM_JOB_GPUS` (the node's own numbers); `HIP_VISIBLE_DEVICES` when a
//! site sets it. [`Shares`] cuts those lists into shares of the GPUs one
//! task asked for, and the worker runs a task only while it holds a share,
//! with each of those variables narrowed to its share: tasks that run at
//! once never see the same device, and no more tasks run at once than
//! there are shares. Containers inside the task take the narrowed
//! variables with them (`twinflow_launch::GpuDevices::Allocated`).
//!
//! When none of the variables is set, or they disagree on how many devices
//! there are, the worker cannot tell the devices apart: it then runs one
//! task at a time, with the variables as Slurm set them (the allocation is
//! one task's GPUs, so that task has them all).

/// The variables that name the allocation's devices, narrowed per task.
pub(crate) const VARS: [&str; 5] = [
    "CUDA_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "GPU_DEVICE_ORDINAL",
    "SLURM_JOB_GPUS",
];

/// The allocation's devices cut into shares of one task's GPUs.
#[derive(Debug)]
pub(crate) struct Shares {
    /// Per share: the variables a task holding it runs with.
    env: Vec<Vec<(String, String)>>,
    /// Shares no running task holds.
    free: Vec<usize>,
}

impl Shares {
    /// The shares of `gpus_per_task` devices each, from the job's variables
    /// (`var` looks one up); `None` when the tasks ask for no GPUs.
    pub(crate) fn new(gpus_per_task: u32, var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        if gpus_per_task == 0 {
            return None;
        }
        let lists: Vec<(&str, Vec<String>)> = VARS
            .iter()
            .filter_map(|name| {
                let value = var(name)?;
                let ids: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                Some((*name, ids))
            })
            .collect();
        let count = lists.first().map_or(0, |(_, ids)| ids.len());
        let agree = lists.iter().all(|(_, ids)| ids.len() == count);
        let per = gpus_per_task as usize;
        let env: Vec<Vec<(String, String)>> = if agree && count >= per {
            (0..count / per)
                .map(|k| {
                    lists
                        .iter()
                        .map(|(name, ids)| {
                            ((*name).to_owned(), ids[k * per..(k + 1) * per].join(","))
                        })
                        .collect()
                })
                .collect()
        } else {
            // One share: the variables as Slurm set them.
            vec![Vec::new()]
        };
        let free = (0..env.len()).rev().collect();
        Some(Self { env, free })
    }

    /// How many tasks may run at once: no more than `cpu_width` and the
    /// number of shares.
    pub(crate) fn width(&self, cpu_width: usize) -> usize {
        cpu_width.min(self.env.len()).max(1)
    }

    /// A free share, if any.
    pub(crate) fn take(&mut self) -> Option<usize> {
        self.free.pop()
    }

    /// The variables of share `i`.
    pub(crate) fn env(&self, i: usize) -> &[(String, String)] {
        self.env.get(i).map_or(&[], Vec::as_slice)
    }

    /// Share `i` is free again.
    pub(crate) fn give_back(&mut self, i: usize) {
        if i < self.env.len() && !self.free.contains(&i) {
            self.free.push(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn shares(per: u32, vars: &[(&str, &str)]) -> Option<Shares> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Shares::new(per, |k| vars.get(k).cloned())
    }

    #[test]
    fn the_allocation_is_cut_into_one_task_s_gpus_each() {
        let s = shares(
            2,
            &[
                ("CUDA_VISIBLE_DEVICES", "0,1,2,3"),
                ("SLURM_JOB_GPUS", "4,5,6,7"),
            ],
        )
        .unwrap();
        assert_eq!(s.width(8), 2, "two shares of two");
        assert_eq!(s.width(1), 1, "the cpus still bound it");
        let mut s = s;
        let a = s.take().unwrap();
        let b = s.take().unwrap();
        assert_eq!(s.take(), None, "no third share");
        let env = |i| s.env(i).to_vec();
        let pair = |c: &str, g: &str| {
            vec![
                ("CUDA_VISIBLE_DEVICES".to_owned(), c.to_owned()),
                ("SLURM_JOB_GPUS".to_owned(), g.to_owned()),
            ]
        };
        assert_eq!(env(a), pair("0,1", "4,5"));
        assert_eq!(env(b), pair("2,3", "6,7"));
        s.give_back(a);
        s.give_back(a);
        assert_eq!(s.take(), Some(a));
        assert_eq!(s.take(), None, "given back once, taken once");
    }

    #[test]
    fn without_gpus_there_are_no_shares_and_without_a_list_one() {
        assert!(shares(0, &[("CUDA_VISIBLE_DEVICES", "0,1")]).is_none());
        for vars in [
            &[][..],
            // Lists that disagree cannot be lined up.
            &[("CUDA_VISIBLE_DEVICES", "0,1"), ("SLURM_JOB_GPUS", "3")][..],
            // Fewer devices than one task asked for.
            &[("ROCR_VISIBLE_DEVICES", "0")][..],
        ] {
            let mut s = shares(2, vars).unwrap();
            assert_eq!(s.width(4), 1, "{vars:?}");
            let i = s.take().unwrap();
            assert!(s.env(i).is_empty(), "the variables as set: {vars:?}");
        }
        // Three devices, two per task: one share, the third device unused.
        let s = shares(2, &[("CUDA_VISIBLE_DEVICES", "0,1,2")]).unwrap();
        assert_eq!(s.width(4), 1);
    }
}
