//! The states a run and a task can be in, as the store records them and as
//! the daemon sends them: the one place their names are spelled. Every other
//! module and crate uses [`RunState`] and [`TaskState`], never the string;
//! the SQLite columns and the JSON wire format hold [`TaskState::as_str`]
//! (byte-identical to what earlier versions wrote).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

/// A state name the store or a client does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} state `{name}`")]
pub struct UnknownState {
    /// `run` or `task`.
    pub kind: &'static str,
    /// The name found.
    pub name: String,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// A live twinflow process is running it.
    Running,
    /// Its process ended without finishing it (killed, crashed, machine
    /// rebooted): `twinflow run --resume` takes it up. Never stored: a
    /// `running` run whose process is gone reads as interrupted.
    Interrupted,
    /// Every task succeeded.
    Succeeded,
    /// Some task failed.
    Failed,
    /// It was cancelled.
    Cancelled,
}

impl RunState {
    /// Every state, for tests and help texts.
    pub const ALL: [Self; 5] = [
        Self::Running,
        Self::Interrupted,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The lowercase name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Interrupted => "interrupted",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Where a task's latest attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskState {
    /// Handed to its backend (queued there or about to be).
    Queued,
    /// Running in its backend.
    Running,
    /// Succeeded, by running or by reusing an earlier result.
    Succeeded,
    /// Failed for good.
    Failed,
    /// Failed; another attempt is scheduled.
    Retrying,
    /// Not run: a dependency failed.
    Skipped,
    /// Not run, or killed: the run was cancelled.
    Cancelled,
    /// In flight when the twinflow process running it ended, and not
    /// followed by its backend.
    Lost,
    /// Started, and waiting for external data to be published (a source
    /// task of a data trigger); the task's reason says what it waits for.
    Awaiting,
    /// Put back to wait by an operator (a rerun of it or of a task it
    /// depends on, or a set that lets a skipped task run): it runs again as
    /// a new attempt; its reason says who asked. Tasks never launched have
    /// no record at all.
    Waiting,
}

impl TaskState {
    /// Every state, for tests and help texts.
    pub const ALL: [Self; 10] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Retrying,
        Self::Skipped,
        Self::Cancelled,
        Self::Lost,
        Self::Awaiting,
        Self::Waiting,
    ];

    /// The lowercase name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Retrying => "retrying",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
            Self::Lost => "lost",
            Self::Awaiting => "awaiting",
            Self::Waiting => "waiting",
        }
    }

    /// Whether entering this state ends the attempt, giving it a finish
    /// time (`lost` is written by a later process, with its own time).
    pub fn ends_attempt(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Skipped | Self::Cancelled | Self::Retrying
        )
    }
}

macro_rules! string_form {
    ($ty:ident, $kind:literal) => {
        impl std::str::FromStr for $ty {
            type Err = UnknownState;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownState {
                        kind: $kind,
                        name: s.to_owned(),
                    })
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: UnknownState| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

string_form!(RunState, "run");
string_form!(TaskState, "task");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_state_round_trips_through_its_name_and_json() {
        let names: Vec<&str> = TaskState::ALL.iter().map(|s| s.as_str()).collect();
        // The names earlier versions stored: they must never change.
        assert_eq!(
            names,
            [
                "queued",
                "running",
                "succeeded",
                "failed",
                "retrying",
                "skipped",
                "cancelled",
                "lost",
                "awaiting",
                "waiting"
            ]
        );
        for state in TaskState::ALL {
            assert_eq!(state.as_str().parse::<TaskState>(), Ok(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<TaskState>(&json).unwrap(), state);
            assert_eq!(format!("{state:<10}|"), format!("{:<10}|", state.as_str()));
        }
    }

    #[test]
    fn every_run_state_round_trips_through_its_name_and_json() {
        let names: Vec<&str> = RunState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            ["running", "interrupted", "succeeded", "failed", "cancelled"]
        );
        for state in RunState::ALL {
            assert_eq!(state.as_str().parse::<RunState>(), Ok(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<RunState>(&json).unwrap(), state);
        }
    }

    #[test]
    fn an_unknown_name_is_an_error_not_a_panic() {
        let err = "done".parse::<TaskState>().unwrap_err();
        assert_eq!(err.to_string(), "unknown task state `done`");
        assert!("Succeeded".parse::<TaskState>().is_err());
        assert_eq!(
            "paused".parse::<RunState>().unwrap_err().to_string(),
            "unknown run state `paused`"
        );
        assert!(serde_json::from_str::<TaskState>("\"done\"").is_err());
    }

    #[test]
    fn the_store_reads_what_it_writes_and_refuses_an_unknown_state() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute("CREATE TABLE t (state TEXT NOT NULL)", [])
            .unwrap();
        for state in TaskState::ALL {
            conn.execute("INSERT INTO t VALUES (?1)", [state]).unwrap();
        }
        let mut stmt = conn.prepare("SELECT state FROM t").unwrap();
        let read: Vec<TaskState> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, TaskState::ALL);
        let raw: Vec<String> = conn
            .prepare("SELECT state FROM t")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(raw[2], "succeeded", "stored as its name");
        conn.execute("INSERT INTO t VALUES ('done')", []).unwrap();
        let err = conn
            .query_row("SELECT state FROM t WHERE state = 'done'", [], |r| {
                r.get::<_, TaskState>(0)
            })
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown task state `done`"),
            "{err}"
        );
    }
}
