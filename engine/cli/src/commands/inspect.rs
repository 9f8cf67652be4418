//! `twinflow runs`, `status` and `logs`: reading the state store.

use crate::args::{StateArgs, Stream};
use crate::exit;
use crate::output::Output;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use twinflow_engine::{RunInfo, StateStore};

/// The state directory the user chose, or the default.
pub(crate) fn state_dir(args: &StateArgs) -> PathBuf {
    args.state_dir
        .clone()
        .unwrap_or_else(twinflow_engine::default_state_dir)
}

/// Opens the state store or says why not (exit 3).
pub(crate) fn open_store(out: &Output, dir: &Path) -> Result<StateStore, u8> {
    StateStore::open(dir).map_err(|e| {
        out.error(&e.to_string());
        exit::UNREACHABLE
    })
}

fn find_run(out: &Output, store: &StateStore, run: Option<&str>) -> Result<RunInfo, u8> {
    let found = match run {
        Some(id) if id != "latest" => store.run(id),
        _ => store.runs().map(|r| r.into_iter().next()),
    };
    match found {
        Ok(Some(run)) => Ok(run),
        Ok(None) => {
            match run {
                Some(id) => out.error(&format!(
                    "no run `{id}` in {} (`twinflow runs` lists them)",
                    store.dir().display()
                )),
                None => out.error(&format!("no runs yet in {}", store.dir().display())),
            }
            Err(exit::INVALID)
        }
        Err(e) => {
            out.error(&e.to_string());
            Err(exit::UNREACHABLE)
        }
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
fn when(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let date = jiff::civil::Date::new(1970, 1, 1)
        .ok()
        .and_then(|d| d.checked_add(jiff::Span::new().days(days)).ok());
    match date {
        Some(d) => format!(
            "{d} {:02}:{:02}:{:02}",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        ),
        None => ms.to_string(),
    }
}

pub(crate) fn runs(out: &Output, state: &StateArgs, json: bool) -> u8 {
    let store = match open_store(out, &state_dir(state)) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let runs = match store.runs() {
        Ok(r) => r,
        Err(e) => {
            out.error(&e.to_string());
            return exit::UNREACHABLE;
        }
    };
    if json {
        out.print(&format!(
            "{}\n",
            serde_json::to_string(&runs).unwrap_or_default()
        ));
        return exit::SUCCESS;
    }
    if runs.is_empty() {
        out.print(&format!("no runs yet in {}\n", store.dir().display()));
        return exit::SUCCESS;
    }
    let width = runs.iter().map(|r| r.id.len()).max().unwrap_or(6).max(6);
    let mut s = format!(
        "{:<width$}  {:<11}  {:>7}  {:<19} UTC  workflow\n",
        "run", "state", "tasks", "created"
    );
    for r in &runs {
        let _ = writeln!(
            s,
            "{:<width$}  {:<11}  {:>7}  {}      {}",
            r.id,
            r.state.as_str(),
            r.task_count,
            when(r.created_ms),
            r.workflow
        );
    }
    out.print(&s);
    exit::SUCCESS
}

pub(crate) fn status(
    out: &Output,
    state: &StateArgs,
    run: Option<&str>,
    tasks: bool,
    json: bool,
) -> u8 {
    let store = match open_store(out, &state_dir(state)) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let info = match find_run(out, &store, run) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let (steps, rows) = match (store.step_counts(&info.id), store.tasks(&info.id)) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => {
            out.error(&e.to_string());
            return exit::UNREACHABLE;
        }
    };
    if json {
        let value = serde_json::json!({ "run": info, "steps": steps, "tasks": rows });
        out.print(&format!("{value}\n"));
        return exit::SUCCESS;
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "run {} ({}): {}",
        info.id,
        info.workflow,
        info.state.as_str()
    );
    let _ = writeln!(
        s,
        "  created {} UTC, last change {} UTC",
        when(info.created_ms),
        when(info.updated_ms)
    );
    if let Some(file) = &info.file {
        let _ = writeln!(s, "  workflow file: {file}");
    }
    let _ = writeln!(s, "  files: {}", info.run_dir);
    let width = steps
        .iter()
        .map(|st| st.step.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        s,
        "\n  {:<width$}  {:>6}  {:>6}  {:>7}  {:>6}  {:>6}  {:>7}  {:>7}  {:>9}",
        "step", "total", "done", "running", "queued", "failed", "skipped", "waiting", "cancelled"
    );
    for st in &steps {
        let _ = writeln!(
            s,
            "  {:<width$}  {:>6}  {:>6}  {:>7}  {:>6}  {:>6}  {:>7}  {:>7}  {:>9}",
            st.step,
            st.total,
            st.succeeded,
            st.running,
            st.queued + st.retrying,
            st.failed,
            st.skipped,
            st.waiting,
            st.cancelled
        );
    }
    let cached: u64 = steps.iter().map(|st| st.cached).sum();
    if cached > 0 {
        let _ = writeln!(s, "  ({cached} of the done tasks reused earlier results)");
    }
    let failed: Vec<_> = rows.iter().filter(|t| t.state == "failed").collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "\nfailed tasks:");
        for t in &failed {
            let _ = writeln!(s, "  {}: {}", t.name, t.reason.as_deref().unwrap_or(""));
        }
        let _ = writeln!(
            s,
            "  (twinflow logs {} TASK shows a task's output)",
            info.id
        );
    }
    if tasks {
        let _ = writeln!(s, "\ntasks:");
        for t in &rows {
            let secs = t.seconds.map(|x| format!("{x:.1} s")).unwrap_or_default();
            let _ = writeln!(s, "  {:<10} {:>8}  {}", t.state, secs, t.name);
        }
    }
    out.print(&s);
    exit::SUCCESS
}

pub(crate) fn logs(
    out: &Output,
    state: &StateArgs,
    run: &str,
    task: &str,
    attempt: Option<u32>,
    stream: Option<Stream>,
) -> u8 {
    let store = match open_store(out, &state_dir(state)) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let info = match find_run(out, &store, Some(run)) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let row = match store.task(&info.id, task) {
        Ok(Some(row)) => row,
        Ok(None) => {
            out.error(&format!(
                "run {} has no record of a task `{task}` (`twinflow status {} --tasks` lists them)",
                info.id, info.id
            ));
            return exit::INVALID;
        }
        Err(e) => {
            out.error(&e.to_string());
            return exit::UNREACHABLE;
        }
    };
    let (step, first) = match store.step_of(&info.id, row.step) {
        Ok(Some(found)) => found,
        Ok(None) => {
            out.error(&format!("run {} has no step {}", info.id, row.step));
            return exit::UNREACHABLE;
        }
        Err(e) => {
            out.error(&e.to_string());
            return exit::UNREACHABLE;
        }
    };
    // A reused result's logs are those of the run that produced it.
    if let Some(from) = row.cached_from.as_deref().filter(|from| *from != info.id) {
        eprintln!(
            "({} reused the result of run {from}; its logs follow)",
            row.name
        );
        return logs(out, state, from, task, attempt, stream);
    }
    let attempt = attempt.unwrap_or(row.attempt);
    let paths =
        twinflow_engine::task_paths(Path::new(&info.run_dir), &step, row.task - first, attempt);
    let mut shown = 0;
    for (which, path) in [
        (Stream::Stdout, &paths.stdout),
        (Stream::Stderr, &paths.stderr),
    ] {
        if stream.is_some_and(|s| s != which) {
            continue;
        }
        match std::fs::read(path) {
            Ok(bytes) => {
                if stream.is_none() {
                    let name = if which == Stream::Stdout {
                        "stdout"
                    } else {
                        "stderr"
                    };
                    eprintln!(
                        "==> {name} of {} (attempt {attempt}): {}",
                        row.name,
                        path.display()
                    );
                }
                out.print(&String::from_utf8_lossy(&bytes));
                shown += 1;
            }
            Err(e) => eprintln!("(no log at {}: {e})", path.display()),
        }
    }
    if shown == 0 {
        return exit::INVALID;
    }
    exit::SUCCESS
}
