//! Operator actions (hold, release, kill, rerun, trigger, set) in the exports: each
//! journalled action becomes an `UpdateAction` of the provenance crate —
//! who (`agent`), when (`startTime`), what (`name`, the selectors) and on
//! which tasks (`object`: their `CreateAction`s) — and a row of the HTML
//! report's "Operator actions" section.

use crate::record::rfc3339;
use serde_json::{Value, json};
use twinflow_engine::ActionRecord;

/// The crate entities of `actions`: one `UpdateAction` each, and one
/// `Person` per operator; `task_id` gives a task's entity id from its name.
pub(crate) fn entities(actions: &[ActionRecord], task_id: impl Fn(&str) -> String) -> Vec<Value> {
    let mut out = Vec::new();
    let mut people: Vec<&str> = Vec::new();
    for a in actions {
        let person = format!("#operator/{}", a.by.user);
        if !people.contains(&a.by.user.as_str()) {
            people.push(&a.by.user);
        }
        out.push(json!({
            "@id": format!("#action/{}", a.seq),
            "@type": "UpdateAction",
            "name": a.kind.as_str(),
            "description": format!(
                "{} {} by {} ({} task(s))",
                a.kind.as_str(),
                a.selectors.join(" "),
                a.by.user,
                a.tasks.len()
            ),
            "agent": { "@id": person },
            "startTime": rfc3339(a.at_ms),
            "object": a.tasks.iter().map(|t| json!({ "@id": task_id(t) })).collect::<Vec<_>>(),
        }));
    }
    for user in people {
        out.push(json!({
            "@id": format!("#operator/{user}"),
            "@type": "Person",
            "name": user,
        }));
    }
    out
}

/// The report's section, or nothing without actions; `esc` escapes HTML.
pub(crate) fn section(actions: &[ActionRecord], esc: impl Fn(&str) -> String) -> String {
    if actions.is_empty() {
        return String::new();
    }
    let mut h = format!(
        r#"<section id="actions-section"><h2>Operator actions <span class="count">{}</span></h2><table class="steps"><thead><tr><th>#</th><th>when</th><th>who</th><th>action</th><th>selectors</th><th>tasks</th></tr></thead><tbody>"#,
        actions.len()
    );
    for a in actions {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            a.seq,
            esc(&rfc3339(a.at_ms)),
            esc(&a.by.user),
            esc(a.kind.as_str()),
            esc(&a.selectors.join(" ")),
            esc(&a.tasks.join(", "))
        ));
    }
    h.push_str("</tbody></table></section>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use twinflow_engine::{ActionKind, Actor};

    #[test]
    fn every_kind_is_named_as_the_cli_spells_it() {
        let actions: Vec<ActionRecord> = ActionKind::ALL
            .into_iter()
            .enumerate()
            .map(|(i, kind)| ActionRecord {
                seq: i as i64 + 1,
                at_ms: 0,
                by: Actor {
                    user: "op".into(),
                    uid: 1000,
                },
                kind,
                selectors: vec!["make".into()],
                tasks: vec!["make".into()],
            })
            .collect();
        let graph = entities(&actions, |t| format!("#task/{t}"));
        let names: Vec<&str> = graph
            .iter()
            .filter(|e| e["@type"] == "UpdateAction")
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert_eq!(names.len(), ActionKind::ALL.len());
        assert!(names.contains(&"trigger"), "{names:?}");
        assert!(names.contains(&"set-succeeded"), "{names:?}");
        assert!(names.contains(&"set-failed"), "{names:?}");
        let html = section(&actions, str::to_owned);
        assert!(html.contains("<td>set-failed</td>"), "{html}");
    }
}
