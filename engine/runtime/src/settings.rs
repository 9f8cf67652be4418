//! The settings a front end records with a run (`runs.args` in the store)
//! so that the run can be compiled again: by `twinflow run --resume`, by a
//! restarted daemon taking up an interrupted run, and by `twinflow
//! provenance`/`report`. The CLI and the daemon write and read the same
//! struct, so either resumes the other's runs.
//!
//! The stored form is the JSON object twinflow has always written,
//! `{"file":…,"params":[…],"site":…,"local":…}`, byte for byte. Every field
//! is optional when read (a run started through the Rust API stores `{}`
//! when it sets nothing) and unknown fields are ignored, so a database
//! written by an earlier or a later twinflow reads. A change that older
//! readers must not misread would add a `version` field.

use serde::{Deserialize, Serialize};

/// What a run was started with, beyond its workflow's text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSettings {
    /// The workflow file as the front end was given it (the CLI: as typed,
    /// perhaps relative; the daemon: absolute).
    #[serde(default)]
    pub file: Option<String>,
    /// `key=value` parameter overrides, in the order given.
    #[serde(default)]
    pub params: Vec<String>,
    /// The site file, absolute.
    #[serde(default)]
    pub site: Option<String>,
    /// Whether every executor was bound to a local one (`--local`).
    #[serde(default)]
    pub local: bool,
    /// The job object of a CWL document, absolute (absent for YAML
    /// workflows, and then not written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The binding file of a CWL document's abstract steps, absolute
    /// (absent otherwise, and then not written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
}

impl RunSettings {
    /// The settings of a run's stored JSON (`RunInfo::args`).
    ///
    /// # Errors
    /// When the text is not a JSON object of these fields.
    pub fn parse(stored: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(stored)
    }

    /// The JSON stored with the run.
    pub fn to_json(&self) -> String {
        // Strings, a list of strings and a bool: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Whether no parameter, site file or `--local` is set.
    pub fn is_plain(&self) -> bool {
        self.params.is_empty() && self.site.is_none() && !self.local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As `twinflow run` and the daemon have stored them since version 1
    /// (the first is the run in `tests/fixtures/state-v1.sqlite`).
    const STORED: [&str; 3] = [
        r#"{"file":"/tmp/fx/fixture.yaml","params":[],"site":null,"local":false}"#,
        r#"{"file":"flow.yaml","params":["n=3","name=a b"],"site":"/etc/site.yaml","local":true}"#,
        r#"{"file":"/abs/flow.yaml","params":["n=1"],"site":null,"local":false}"#,
    ];

    #[test]
    fn settings_stored_today_parse_and_are_written_back_byte_for_byte() {
        let parsed = RunSettings::parse(STORED[1]).unwrap();
        assert_eq!(
            parsed,
            RunSettings {
                file: Some("flow.yaml".to_owned()),
                params: vec!["n=3".to_owned(), "name=a b".to_owned()],
                site: Some("/etc/site.yaml".to_owned()),
                local: true,
                job: None,
                bind: None,
            }
        );
        for stored in STORED {
            let settings = RunSettings::parse(stored).unwrap();
            assert_eq!(settings.to_json(), stored);
            assert_eq!(RunSettings::parse(&settings.to_json()).unwrap(), settings);
        }
    }

    #[test]
    fn missing_fields_default_and_unknown_ones_are_ignored() {
        // What the Rust API stored for a run that set nothing.
        assert_eq!(RunSettings::parse("{}").unwrap(), RunSettings::default());
        assert!(RunSettings::default().is_plain());
        let later = r#"{"version":2,"file":"f.yaml","local":true,"profile":"x"}"#;
        let settings = RunSettings::parse(later).unwrap();
        assert_eq!(settings.file.as_deref(), Some("f.yaml"));
        assert!(settings.local && !settings.is_plain());
    }

    #[test]
    fn text_that_is_not_settings_is_an_error_not_a_panic() {
        for bad in ["", "3", "not json", r#"{"params":"n=1"}"#] {
            assert!(RunSettings::parse(bad).is_err(), "{bad}");
        }
    }
}
