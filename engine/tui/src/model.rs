//! The TUI's model: everything the screen shows. Keys change it
//! ([`crate::keys`]), the daemon's answers are applied to it
//! ([`Model::apply`]), and the screen is drawn from it alone
//! ([`crate::render`]), so every part is testable without a terminal.

use crate::fetch::{Request, Update};
use std::collections::{BTreeSet, VecDeque};
use twinflow_daemon::api::{LogStream, StatusSummary, TaskQuery};
use twinflow_engine::{ActionKind, RunInfo, TaskCursor, TaskOrder, TaskRow, TaskState};

/// How many tasks one page of the task table asks the daemon for.
pub const PAGE: usize = 100;

/// How many lines of a log the pane keeps (the newest).
pub const LOG_LINES: usize = 500;

/// Which screen is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The daemon's runs, newest first.
    Runs,
    /// One run: its steps, a page of its tasks, a log.
    Run,
}

/// Which pane of the run screen the arrows move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The per-step progress (actions then apply to the step).
    Steps,
    /// The task table.
    Tasks,
}

/// A window over the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    /// The keys.
    Help,
    /// The operator actions ([`ActionKind::ALL`]), one highlighted.
    Actions {
        /// The highlighted one.
        selected: usize,
    },
    /// "Really?" before an action is sent.
    Confirm {
        /// What to do.
        kind: ActionKind,
        /// On what (task names or a step name).
        selectors: Vec<String>,
    },
    /// Typing a name glob for the task filter.
    Filter {
        /// What was typed so far.
        input: String,
    },
}

/// Which tasks the table lists: done by the daemon ([`TaskQuery`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks of this step.
    pub step: Option<String>,
    /// Only tasks whose name matches this glob.
    pub name: Option<String>,
}

impl Filter {
    /// The next state filter (`f`): none, then each of [`TaskState::ALL`].
    pub fn next_state(&mut self) {
        let all = TaskState::ALL;
        self.state = match self.state {
            None => all.first().copied(),
            Some(s) => all
                .iter()
                .position(|x| *x == s)
                .and_then(|i| all.get(i + 1).copied()),
        };
    }

    /// How it is shown: `state=running step=sim name=*x*`, or `all`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.state {
            parts.push(format!("state={}", s.as_str()));
        }
        if let Some(s) = &self.step {
            parts.push(format!("step={s}"));
        }
        if let Some(n) = &self.name {
            parts.push(format!("name={n}"));
        }
        if parts.is_empty() {
            "all".to_owned()
        } else {
            parts.join(" ")
        }
    }
}

/// A typed name filter as a glob: text without `*`, `?` or `[` matches
/// names containing it.
pub fn name_glob(typed: &str) -> Option<String> {
    let typed = typed.trim();
    if typed.is_empty() {
        None
    } else if typed.contains(['*', '?', '[']) {
        Some(typed.to_owned())
    } else {
        Some(format!("*{typed}*"))
    }
}

/// The log pane: the tail of one stream of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPane {
    /// The task followed (its name), if any.
    pub task: Option<String>,
    /// Which stream (`s` switches).
    pub stream: LogStream,
    /// The newest lines (at most [`LOG_LINES`]).
    pub lines: VecDeque<String>,
    /// The last line, not ended yet.
    pub partial: String,
    /// Why there is nothing (more) to show, if so.
    pub note: Option<String>,
    /// Which follow the pane shows: answers of older ones are dropped.
    pub generation: u64,
}

impl Default for LogPane {
    fn default() -> Self {
        Self {
            task: None,
            stream: LogStream::Stdout,
            lines: VecDeque::new(),
            partial: String::new(),
            note: None,
            generation: 0,
        }
    }
}

impl LogPane {
    /// Adds bytes of the log.
    pub fn push(&mut self, bytes: &[u8]) {
        self.partial.push_str(&String::from_utf8_lossy(bytes));
        while let Some(nl) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=nl).collect();
            self.lines
                .push_back(line.trim_end_matches(['\n', '\r']).to_owned());
            if self.lines.len() > LOG_LINES {
                self.lines.pop_front();
            }
        }
    }

    /// The last `n` lines, the unended one included.
    pub fn tail(&self, n: usize) -> Vec<&str> {
        let mut all: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        if !self.partial.is_empty() {
            all.push(&self.partial);
        }
        let skip = all.len().saturating_sub(n);
        all.split_off(skip)
    }
}

/// The line at the bottom: what happened last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The text.
    pub text: String,
    /// Whether it is an error (shown in red).
    pub error: bool,
}

/// Everything the TUI shows.
#[derive(Debug, Clone)]
pub struct Model {
    /// The screen up.
    pub screen: Screen,
    /// The pane the arrows move in.
    pub focus: Focus,
    /// A window over the screen, if any.
    pub dialog: Option<Dialog>,
    /// The runs (runs screen).
    pub runs: Vec<RunInfo>,
    /// The highlighted run.
    pub runs_selected: usize,
    /// The run shown (as given, then its id once the daemon answered).
    pub run: Option<String>,
    /// Its summary, as last fetched.
    pub summary: Option<StatusSummary>,
    /// The highlighted step.
    pub step_selected: usize,
    /// The page of tasks on screen, in [`Model::order`] (as the daemon
    /// answered it).
    pub page: Vec<TaskRow>,
    /// Where the page starts (`after` of its query).
    pub cursor: Option<TaskCursor>,
    /// Where the pages before it started (for going back).
    pub back: Vec<Option<TaskCursor>>,
    /// Where the next page starts, if more tasks match.
    pub next: Option<TaskCursor>,
    /// The highlighted task (index into `page`).
    pub task_selected: usize,
    /// Tasks marked for an action, by name.
    pub marked: BTreeSet<String>,
    /// Which tasks the table lists.
    pub filter: Filter,
    /// The order the daemon pages the tasks in (`o` cycles
    /// [`TaskOrder::ALL`]).
    pub order: TaskOrder,
    /// The log pane.
    pub log: LogPane,
    /// The bottom line.
    pub message: Option<Message>,
    /// Fetches of the run sent and not answered yet.
    pub in_flight: usize,
    /// Whether to stop.
    pub quit: bool,
}

impl Model {
    /// A model on the runs screen, or on run `run` (an id, unique prefix,
    /// or `latest`) if given.
    pub fn new(run: Option<String>) -> Self {
        Self {
            screen: if run.is_some() {
                Screen::Run
            } else {
                Screen::Runs
            },
            focus: Focus::Tasks,
            dialog: None,
            runs: Vec::new(),
            runs_selected: 0,
            run,
            summary: None,
            step_selected: 0,
            page: Vec::new(),
            cursor: None,
            back: Vec::new(),
            next: None,
            task_selected: 0,
            marked: BTreeSet::new(),
            filter: Filter::default(),
            order: TaskOrder::Id,
            log: LogPane::default(),
            message: None,
            in_flight: 0,
            quit: false,
        }
    }

    /// The query of the page on screen.
    pub fn query(&self) -> TaskQuery {
        TaskQuery {
            step: self.filter.step.clone(),
            states: self.filter.state.into_iter().collect(),
            name: self.filter.name.clone(),
            order: self.order,
            after: self.cursor,
            limit: Some(PAGE),
        }
    }

    /// What to ask the daemon for to show the current screen afresh.
    pub fn refresh(&mut self) -> Option<Request> {
        match (self.screen, &self.run) {
            (Screen::Run, Some(run)) => {
                self.in_flight += 1;
                Some(Request::Run {
                    run: run.clone(),
                    query: self.query(),
                })
            }
            _ => Some(Request::Runs),
        }
    }

    /// The highlighted task.
    pub fn selected_task(&self) -> Option<&TaskRow> {
        self.page.get(self.task_selected)
    }

    /// The highlighted step's name.
    pub fn selected_step(&self) -> Option<&str> {
        self.summary
            .as_ref()
            .and_then(|s| s.steps.get(self.step_selected))
            .map(|s| s.step.as_str())
    }

    /// What an action applies to: the highlighted step (steps pane), else
    /// the marked tasks, else the highlighted task.
    pub fn selectors(&self) -> Vec<String> {
        match self.focus {
            Focus::Steps => self
                .selected_step()
                .map(str::to_owned)
                .into_iter()
                .collect(),
            Focus::Tasks if !self.marked.is_empty() => self.marked.iter().cloned().collect(),
            Focus::Tasks => self
                .selected_task()
                .map(|t| t.name.clone())
                .into_iter()
                .collect(),
        }
    }

    /// The log the pane should follow: the highlighted task's, on the run
    /// screen with the task table focused.
    pub fn wanted_log(&self) -> Option<(String, String, LogStream)> {
        if self.screen != Screen::Run || self.focus != Focus::Tasks {
            return None;
        }
        let run = self.summary.as_ref().map(|s| s.run.id.clone())?;
        let task = self.selected_task()?.name.clone();
        Some((run, task, self.log.stream))
    }

    /// Starts following the wanted log if the pane shows another one.
    pub fn follow(&mut self) -> Option<Request> {
        let (run, task, stream) = self.wanted_log()?;
        if self.log.task.as_deref() == Some(task.as_str()) {
            return None;
        }
        let generation = self.log.generation + 1;
        self.log = LogPane {
            task: Some(task.clone()),
            stream,
            generation,
            ..LogPane::default()
        };
        Some(Request::Follow {
            run,
            task,
            stream,
            generation,
        })
    }

    /// Says `text` on the bottom line.
    pub fn say(&mut self, text: impl Into<String>, error: bool) {
        self.message = Some(Message {
            text: text.into(),
            error,
        });
    }

    /// The next order (`o`), after [`TaskOrder::ALL`].
    pub fn next_order(&mut self) {
        let all = TaskOrder::ALL;
        let at = all.iter().position(|o| *o == self.order).unwrap_or(0);
        self.order = all.get(at + 1).copied().unwrap_or(TaskOrder::Id);
    }

    /// Applies an answer of the daemon.
    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Runs(Ok(runs)) => {
                self.runs = runs;
                self.runs_selected = self.runs_selected.min(self.runs.len().saturating_sub(1));
            }
            Update::Runs(Err(e)) => self.say(e, true),
            Update::Run {
                summary,
                page,
                query,
            } => {
                self.in_flight = self.in_flight.saturating_sub(1);
                if self.screen != Screen::Run {
                    return;
                }
                match summary {
                    Ok(summary) => {
                        self.run = Some(summary.run.id.clone());
                        self.step_selected = self
                            .step_selected
                            .min(summary.steps.len().saturating_sub(1));
                        self.summary = Some(*summary);
                    }
                    Err(e) => return self.say(e, true),
                }
                // An answer to a query no longer on screen is dropped.
                if query != self.query() {
                    return;
                }
                match page {
                    Ok(page) => {
                        let keep = self.selected_task().map(|t| t.task);
                        self.page = page.tasks;
                        self.next = page.next_after;
                        match keep.and_then(|id| self.page.iter().position(|t| t.task == id)) {
                            Some(i) => self.task_selected = i,
                            None => {
                                self.task_selected =
                                    self.task_selected.min(self.page.len().saturating_sub(1));
                            }
                        }
                    }
                    Err(e) => self.say(e, true),
                }
            }
            Update::Log { generation, chunk } if generation == self.log.generation => {
                self.log.push(&chunk);
            }
            Update::LogEnd { generation, note } if generation == self.log.generation => {
                self.log.note = note;
            }
            Update::Log { .. } | Update::LogEnd { .. } => {}
            Update::Acted { kind, result } => match result {
                Ok(report) => {
                    let skipped = match report.skipped {
                        0 => String::new(),
                        n => format!("; {n} left as they are"),
                    };
                    // A trigger's warning (the dependencies its tasks
                    // start without) is said loudly, in the error colour.
                    let warnings = report.warnings.join("; ");
                    self.say(
                        format!(
                            "{}: {} task(s) (action {}){skipped}{}{warnings}",
                            kind.as_str(),
                            report.applied.len(),
                            report.seq,
                            if warnings.is_empty() {
                                ""
                            } else {
                                "; warning: "
                            },
                        ),
                        !warnings.is_empty(),
                    );
                    self.marked.clear();
                }
                Err(e) => self.say(format!("{}: {e}", kind.as_str()), true),
            },
        }
    }
}
