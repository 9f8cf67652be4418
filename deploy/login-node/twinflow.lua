-- Example Lmod modulefile for a site-wide twinflow install, e.g.
-- /appl/modulefiles/twinflow/0.1.0.lua. Adjust `root`.
help([[
twinflow: workflows of coupled digital twins on HPC.
  twinflow daemon start      start your daemon on this login node
  twinflow submit FILE       hand a workflow to it, then log out
  twinflow watch RUN         follow a run; twinflow runs / status RUN
State lives in $TWINFLOW_STATE_DIR (default ~/.local/state/twinflow); put it
on a file system the compute nodes see, e.g. your project's scratch.
]])
whatis("Name: twinflow")
whatis("Description: workflow orchestration for coupled digital twins")

local root = "/appl/twinflow/0.1.0"
prepend_path("PATH", pathJoin(root, "bin"))
-- Packed Slurm jobs run `twinflow worker` on compute nodes: the binary
-- under `root` must be visible there (it is, on a shared /appl).
