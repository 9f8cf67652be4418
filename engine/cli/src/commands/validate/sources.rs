//! What `twinflow validate` checks on this machine for the workflow's
//! external sources, which the fetch executor reads here, on the
//! submitting host: the credentials a source needs are set. The compiler
//! has already checked each URL's form; the fetch checks everything again.

use twinflow_core::{BackendConfig, Plan, SourceScheme, SourceSpec};

/// One problem per source whose credentials are missing, looked up with
/// `var` (the environment) and `aws_credentials` (the text of
/// `~/.aws/credentials`, if any).
pub(crate) fn missing_credentials(
    plan: &Plan,
    var: impl Fn(&str) -> Option<String>,
    aws_credentials: Option<&str>,
) -> Vec<String> {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    let mut problems = Vec::new();
    for source in sources(plan) {
        match source.scheme {
            SourceScheme::Gbif if is_gbif_query(source) => {
                let missing: Vec<&str> = ["GBIF_USER", "GBIF_PWD"]
                    .into_iter()
                    .filter(|v| !set(v))
                    .collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "source `{}` ({}) files a GBIF download request, which needs your GBIF \
                         account: set {}",
                        source.name,
                        source.url,
                        missing.join(" and ")
                    ));
                }
            }
            SourceScheme::S3 => {
                if let Some(profile) = &source.options.profile {
                    let header = format!("[{profile}]");
                    let found = aws_credentials
                        .is_some_and(|text| text.lines().any(|l| l.trim() == header));
                    if !found {
                        problems.push(format!(
                            "source `{}` ({}) uses the AWS profile `{profile}`, which \
                             ~/.aws/credentials does not define",
                            source.name, source.url
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    problems
}

/// One warning per source fetched over plain `http://` (a STAC catalog
/// too): its content travels unencrypted and unauthenticated, which the
/// `sha256` pin is the one guard against.
pub(crate) fn plain_http_sources(plan: &Plan) -> Vec<String> {
    sources(plan)
        .filter(|s| s.url.starts_with("http://") || s.url.starts_with("stac+http://"))
        .map(|s| {
            let pin = if s.sha256.is_some() {
                "its sha256 pin guards the content"
            } else {
                "pin its `sha256`, or use https://, to guard the content"
            };
            format!(
                "source `{}` ({}) is fetched over plain http: unencrypted and unauthenticated; {pin}",
                s.name, s.url
            )
        })
        .collect()
}

fn sources(plan: &Plan) -> impl Iterator<Item = &SourceSpec> {
    plan.executors.iter().flat_map(|e| match &e.backend {
        BackendConfig::Fetch(fetch) => fetch.sources.as_slice(),
        _ => &[],
    })
}

/// Whether a GBIF source files a download request (`gbif:occurrence?…`)
/// rather than fetching an existing download.
fn is_gbif_query(source: &SourceSpec) -> bool {
    source.url.starts_with("gbif:occurrence")
}

#[cfg(test)]
mod tests {
    use super::*;
    use twinflow_core::{ExecutorSpec, FetchConfig};

    fn plan_with(sources: Vec<SourceSpec>) -> Plan {
        let mut plan = twinflow_workflow::compile_str(
            "t.yaml",
            "version: 1\nname: t\nsteps:\n  a: { run: echo a }\n",
            &twinflow_workflow::CompileOptions::default(),
        )
        .unwrap();
        plan.executors.push(ExecutorSpec {
            name: twinflow_core::FETCH_EXECUTOR.to_owned(),
            backend: BackendConfig::Fetch(FetchConfig { sources }),
            prologue: None,
            env: Vec::new(),
            container_runtime: None,
            bound_by: None,
        });
        plan
    }

    fn source(name: &str, url: &str, scheme: SourceScheme, profile: Option<&str>) -> SourceSpec {
        let mut spec = SourceSpec::new(name, url, scheme, true);
        spec.options.profile = profile.map(str::to_owned);
        spec
    }

    #[test]
    fn a_gbif_query_needs_the_account_and_an_existing_download_does_not() {
        let plan = plan_with(vec![
            source("q", "gbif:occurrence?taxonKey=1", SourceScheme::Gbif, None),
            source("d", "gbif:download/0001-2", SourceScheme::Gbif, None),
        ]);
        let problems = missing_credentials(&plan, |_| None, None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("source `q`"), "{}", problems[0]);
        assert!(problems[0].contains("GBIF_USER and GBIF_PWD"));
        let only_user = |v: &str| (v == "GBIF_USER").then(|| "me".to_owned());
        let problems = missing_credentials(&plan, only_user, None);
        assert!(problems[0].ends_with("set GBIF_PWD"), "{}", problems[0]);
        let both = |_: &str| Some("x".to_owned());
        assert!(missing_credentials(&plan, both, None).is_empty());
    }

    #[test]
    fn plain_http_sources_are_warned_about_and_https_ones_are_not() {
        let mut pinned = source("p", "http://h/a.csv", SourceScheme::Http, None);
        pinned.sha256 = Some("ab".repeat(32));
        let plan = plan_with(vec![
            source("a", "http://h/a.csv", SourceScheme::Http, None),
            source("s", "stac+http://h/catalog.json", SourceScheme::Stac, None),
            source("t", "https://h/a.csv", SourceScheme::Http, None),
            pinned,
        ]);
        let warnings = plain_http_sources(&plan);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("source `a` (http://h/a.csv)"));
        assert!(warnings[0].contains("pin its `sha256`"));
        assert!(warnings[2].contains("its sha256 pin guards"));
    }

    #[test]
    fn an_s3_profile_must_be_defined_in_the_credentials_file() {
        let plan = plan_with(vec![source(
            "lake",
            "s3://b/k.nc",
            SourceScheme::S3,
            Some("dedl"),
        )]);
        assert_eq!(missing_credentials(&plan, |_| None, None).len(), 1);
        let file = "[default]\naws_access_key_id = a\n[other]\n";
        assert_eq!(missing_credentials(&plan, |_| None, Some(file)).len(), 1);
        let file = "[default]\n[dedl]\naws_access_key_id = a\n";
        assert!(missing_credentials(&plan, |_| None, Some(file)).is_empty());
    }
}
