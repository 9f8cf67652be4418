//! Showing a run as it goes: live bars on a terminal (indicatif), plain
//! lines otherwise, or one JSON object per event with `--json`.

use crate::term::{count, shown};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};
use twinflow_engine::{RunEvent, RunSummary, StepCounts, StepSize};

/// How a run is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Bars redrawn in place (stderr is a terminal).
    Live,
    /// Log lines on stderr; `verbose` adds one per task.
    Lines { verbose: bool },
    /// JSON lines on stdout.
    Json,
}

#[derive(Debug, Default, Clone)]
struct StepTally {
    name: String,
    total: u64,
    done: u64,
    running: u64,
    failed: u64,
    skipped: u64,
    cached: u64,
}

impl StepTally {
    fn message(&self) -> String {
        let mut parts = Vec::new();
        if self.running > 0 {
            parts.push(format!("{} running", self.running));
        }
        let waiting = self.total.saturating_sub(self.done + self.running);
        if waiting > 0 && self.done + self.running > 0 {
            parts.push(format!("{waiting} queued"));
        }
        if self.cached > 0 {
            parts.push(format!("{} cached", self.cached));
        }
        if self.failed > 0 {
            parts.push(format!("{} failed", self.failed));
        }
        if self.skipped > 0 {
            parts.push(format!("{} skipped", self.skipped));
        }
        parts.join(" · ")
    }
}

/// Shows one run.
#[derive(Debug)]
pub(crate) struct Reporter {
    mode: Mode,
    steps: Vec<StepTally>,
    running: HashSet<u32>,
    bars: Option<Bars>,
    started: Instant,
    last_line: Instant,
    done: u64,
    total: u64,
}

#[derive(Debug)]
struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    steps: Vec<ProgressBar>,
}

impl Reporter {
    pub(crate) fn new(mode: Mode) -> Self {
        Self {
            mode,
            steps: Vec::new(),
            running: HashSet::new(),
            bars: None,
            started: Instant::now(),
            last_line: Instant::now(),
            done: 0,
            total: 0,
        }
    }

    /// A line for the user (on stderr, above the bars when they are shown).
    pub(crate) fn note(&self, line: &str) {
        match &self.bars {
            Some(bars) => bars.multi.suspend(|| eprintln!("{line}")),
            None if self.mode == Mode::Json => {}
            None => eprintln!("{line}"),
        }
    }

    pub(crate) fn event(&mut self, event: &RunEvent) {
        if self.mode == Mode::Json {
            if let Ok(line) = serde_json::to_string(event) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            return;
        }
        match event {
            RunEvent::RunStarted {
                format: _,
                run_id,
                workflow,
                run_dir,
                steps,
                resumed,
            } => self.started(run_id, workflow, run_dir, steps, *resumed),
            RunEvent::TaskSubmitted { .. } => {}
            RunEvent::TaskAwaiting { name, what, .. } => {
                self.note(&format!("awaiting {}: {}", shown(name), shown(what)));
            }
            RunEvent::TaskRunning { task, step } => {
                if self.running.insert(*task) {
                    self.tally(*step, |s| s.running += 1);
                }
            }
            RunEvent::TaskSucceeded {
                task,
                name,
                step,
                cached_from,
                seconds,
            } => {
                self.stopped(*task, *step);
                let cached = cached_from.is_some();
                self.tally(*step, |s| {
                    s.done += 1;
                    s.cached += u64::from(cached);
                });
                if self.mode == (Mode::Lines { verbose: true }) {
                    let name = shown(name);
                    match cached_from {
                        Some(run) => {
                            self.note(&format!("cached  {name} (from {})", shown(run)));
                        }
                        None => self.note(&format!("done    {name} ({seconds:.1} s)")),
                    }
                }
                self.advance(*step);
            }
            RunEvent::TaskFailed {
                task,
                name,
                step,
                attempt,
                reason,
                retry_in,
                stderr,
                stdout,
            } => {
                self.stopped(*task, *step);
                let (name, reason) = (shown(name), shown(reason));
                // Attempts count from 0, as the log files and `logs --attempt` do.
                match retry_in {
                    Some(delay) => self.note(&format!(
                        "retry   {name}: attempt {attempt} failed: {reason}; attempt {} in {delay:.0} s",
                        attempt + 1
                    )),
                    None => {
                        self.note(&format!(
                            "FAILED  {name}: {reason}\n        attempt {attempt}; {}",
                            logs_written(stderr.as_deref(), stdout.as_deref())
                        ));
                        self.tally(*step, |s| {
                            s.done += 1;
                            s.failed += 1;
                        });
                        self.advance(*step);
                    }
                }
            }
            RunEvent::TaskSkipped {
                name,
                step,
                because,
                ..
            } => {
                self.tally(*step, |s| {
                    s.done += 1;
                    s.skipped += 1;
                });
                if let (Some(b), Mode::Lines { verbose: true }) = (because, self.mode) {
                    self.note(&format!("skipped {}: {} failed", shown(name), shown(b)));
                }
                self.advance(*step);
            }
            RunEvent::TaskReset {
                task,
                name,
                step,
                was,
                by,
            } => {
                self.stopped(*task, *step);
                if matches!(
                    was.as_str(),
                    "succeeded" | "failed" | "skipped" | "cancelled"
                ) {
                    self.tally(*step, |s| {
                        s.done = s.done.saturating_sub(1);
                        match was.as_str() {
                            "failed" => s.failed = s.failed.saturating_sub(1),
                            "skipped" => s.skipped = s.skipped.saturating_sub(1),
                            _ => {}
                        }
                    });
                    self.done = self.done.saturating_sub(1);
                    if let Some(bars) = &self.bars {
                        bars.total.set_position(self.done);
                    }
                }
                self.note(&format!("rerun   {} ({was}; {})", shown(name), shown(by)));
            }
            RunEvent::RunStalled { unfinished } => self.note(&format!(
                "stalled: nothing runs or is ready, {} unfinished",
                count(*unfinished, "task")
            )),
            RunEvent::HookFailed {
                hook, task, reason, ..
            } => {
                let about = task
                    .as_deref()
                    .map(|t| format!(" (for {})", shown(t)))
                    .unwrap_or_default();
                self.note(&format!(
                    "hook failed: {}{about}: {}",
                    shown(hook),
                    shown(reason)
                ));
            }
            RunEvent::RunFinished(_) => {
                // The live bars give way to one line per step.
                if let Some(bars) = self.bars.take() {
                    bars.total.finish_and_clear();
                    for bar in &bars.steps {
                        bar.finish_and_clear();
                    }
                    let _ = bars.multi.clear();
                    let width = self.steps.iter().map(|s| s.name.len()).max().unwrap_or(4);
                    for s in &self.steps {
                        let extra = s.message();
                        eprintln!("  {:<width$}  {:>6}/{:<6} {extra}", s.name, s.done, s.total);
                    }
                }
            }
        }
    }

    /// What a watcher that came late learns first (after `run-started`):
    /// each step's counts so far. Tasks running now are counted when they
    /// end.
    pub(crate) fn snapshot(&mut self, counts: &[StepCounts]) {
        if self.mode == Mode::Json {
            return;
        }
        for (i, c) in counts.iter().enumerate() {
            let Ok(step) = u32::try_from(i) else { break };
            self.tally(step, |s| {
                s.done = (c.succeeded + c.failed + c.skipped + c.cancelled).min(s.total);
                s.cached = c.cached;
                s.failed = c.failed;
                s.skipped = c.skipped;
            });
        }
        self.done = self.steps.iter().map(|s| s.done).sum();
        if let Some(bars) = &self.bars {
            bars.total.set_position(self.done);
        }
        if self.mode != Mode::Live && self.done > 0 {
            self.note(&format!(
                "{}/{} done so far",
                self.done,
                count(self.total, "task")
            ));
        }
    }

    /// Called now and then: a progress line every 10 s without a terminal.
    pub(crate) fn tick(&mut self) {
        if let Mode::Lines { .. } = self.mode
            && self.total > 0
            && self.last_line.elapsed() >= Duration::from_secs(10)
        {
            self.last_line = Instant::now();
            let running: u64 = self.steps.iter().map(|s| s.running).sum();
            self.note(&format!(
                "[{:>6.1} s] {}/{} done, {running} running",
                self.started.elapsed().as_secs_f64(),
                self.done,
                count(self.total, "task")
            ));
        }
    }

    fn started(
        &mut self,
        run_id: &str,
        workflow: &str,
        run_dir: &std::path::Path,
        steps: &[StepSize],
        resumed: bool,
    ) {
        self.steps = steps
            .iter()
            .map(|s| StepTally {
                name: shown(&s.name).into_owned(),
                total: u64::from(s.tasks),
                ..StepTally::default()
            })
            .collect();
        self.total = self.steps.iter().map(|s| s.total).sum();
        let verb = if resumed { "resuming" } else { "running" };
        self.note(&format!(
            "{verb} {}: run {}, {} in {}\n  files: {}",
            shown(workflow),
            shown(run_id),
            count(self.total, "task"),
            count(steps.len() as u64, "step"),
            shown(&run_dir.display().to_string())
        ));
        if self.mode == Mode::Live {
            self.bars = Some(self.make_bars());
        }
    }

    fn make_bars(&self) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let width = self.steps.iter().map(|s| s.name.len()).max().unwrap_or(4);
        let total = multi.add(ProgressBar::new(self.total));
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{{spinner}} {{elapsed_precise}} {{bar:{}}} {{pos}}/{{len}} tasks · ETA {{eta}}",
            width + 20
        )) {
            total.set_style(style);
        }
        total.enable_steady_tick(Duration::from_millis(125));
        let style = ProgressStyle::with_template(&format!(
            "  {{prefix:<{width}}} [{{bar:30}}] {{pos:>6}}/{{len:<6}} {{msg}}"
        ))
        .map(|s| s.progress_chars("=> "));
        let steps = self
            .steps
            .iter()
            .map(|s| {
                let bar = multi.add(ProgressBar::new(s.total));
                if let Ok(style) = &style {
                    bar.set_style(style.clone());
                }
                bar.set_prefix(s.name.clone());
                bar
            })
            .collect();
        Bars {
            multi,
            total,
            steps,
        }
    }

    fn tally(&mut self, step: u32, f: impl FnOnce(&mut StepTally)) {
        if let Some(s) = self.steps.get_mut(step as usize) {
            f(s);
            if let Some(bar) = self.bars.as_ref().and_then(|b| b.steps.get(step as usize)) {
                bar.set_position(s.done);
                bar.set_message(s.message());
            }
        }
    }

    fn stopped(&mut self, task: u32, step: u32) {
        if self.running.remove(&task) {
            self.tally(step, |s| s.running = s.running.saturating_sub(1));
        }
    }

    fn advance(&mut self, step: u32) {
        self.done += 1;
        if let Some(bars) = &self.bars {
            bars.total.set_position(self.done);
        }
        let Some(s) = self.steps.get(step as usize) else {
            return;
        };
        if s.done == s.total && self.mode != Mode::Live {
            let extra = s.message();
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(" ({extra})")
            };
            self.note(&format!(
                "[{:>6.1} s] step {} finished: {}/{}{extra}",
                self.started.elapsed().as_secs_f64(),
                shown(&s.name),
                s.done,
                count(s.total, "task")
            ));
        }
    }
}

/// The log files a failed attempt wrote (only those that exist).
fn logs_written(stderr: Option<&std::path::Path>, stdout: Option<&std::path::Path>) -> String {
    let path = |p: &std::path::Path| shown(&p.display().to_string()).into_owned();
    match (stderr, stdout) {
        (Some(err), Some(out)) => format!("log: {} (output: {})", path(err), path(out)),
        (Some(err), None) => format!("log: {}", path(err)),
        (None, Some(out)) => format!("log: {} (nothing on stderr)", path(out)),
        (None, None) => "it wrote no log".to_owned(),
    }
}

/// The closing lines of a run.
pub(crate) fn summary_text(summary: &RunSummary, interrupted: bool) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let outcome = match summary.outcome {
        twinflow_engine::Outcome::Succeeded => "succeeded",
        twinflow_engine::Outcome::Failed => "FAILED",
        twinflow_engine::Outcome::Cancelled if interrupted => "interrupted",
        twinflow_engine::Outcome::Cancelled => "cancelled",
    };
    let _ = write!(
        s,
        "run {} {outcome} in {:.1} s: {}, {} ran, {} cached",
        shown(&summary.run_id),
        summary.seconds,
        count(summary.tasks, "task"),
        summary.ran,
        summary.cached
    );
    for (n, what) in [
        (summary.failed, "failed"),
        (summary.skipped, "skipped"),
        (summary.cancelled, "cancelled"),
    ] {
        if n > 0 {
            let _ = write!(s, ", {n} {what}");
        }
    }
    s.push('\n');
    for (name, reason) in summary.failures.iter().take(10) {
        let _ = writeln!(s, "  failed: {}: {}", shown(name), shown(reason));
    }
    if summary.failures.len() > 10 {
        let _ = writeln!(s, "  ... and {} more", summary.failures.len() - 10);
    }
    if let Some((name, _)) = summary.failures.first() {
        let _ = writeln!(
            s,
            "  see a log with: twinflow logs {} '{}'",
            shown(&summary.run_id),
            shown(name)
        );
    }
    s
}
