# Helpers shared by deploy/dev/slurm-up and slurm-down (sourced, not run).
# They expect $dir, $run, $munge_dir and a log function; MariaDB (accounting
# mode) lives under $dir/db.

# alive PIDFILE NAME...: the pid file names a live, non-zombie process whose
# command name starts with one of NAME (Debian's binaries may carry -wlm).
alive() {
  local pf=$1; shift
  [[ -s "$pf" ]] || return 1
  local pid; pid=$({ tr -dc '0-9' <"$pf"; } 2>/dev/null) || return 1
  [[ -n "$pid" && -r /proc/$pid/stat ]] || return 1
  local st; st=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [[ -n "$st" && "$st" != Z && "$st" != X ]] || return 1
  local comm n; comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  for n in "$@"; do [[ "$comm" == "$n"* ]] && return 0; done
  return 1
}

# stop_pid PIDFILE LABEL NAME...: SIGTERM the process the pid file names (only
# if its name matches), wait up to 30 s, then SIGKILL.
stop_pid() {
  local pf=$1 label=$2; shift 2
  if ! alive "$pf" "$@"; then rm -f "$pf"; return 0; fi
  local pid i; pid=$(tr -dc '0-9' <"$pf")
  log "stopping $label (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do alive "$pf" "$@" || break; sleep 0.1; done
  if alive "$pf" "$@"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
  rm -f "$pf"
}

stop_all() {
  stop_pid "$run/slurmd.pid" slurmd slurmd
  stop_pid "$run/slurmctld.pid" slurmctld slurmctld
  stop_accounting
  stop_pid "$munge_dir/run/munged.pid" munged munged
}

# stop_accounting: slurmdbd, then its MariaDB (both only run with --accounting).
stop_accounting() {
  stop_pid "$run/slurmdbd.pid" slurmdbd slurmdbd
  stop_pid "$dir/db/run/mysqld.pid" mariadbd mariadbd mysqld
}

# wait_for SECONDS CMD...: run CMD every 0.2 s until it succeeds.
wait_for() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || return 1
    sleep 0.2
  done
}
