//! Holds the renderer to the metric catalogue in docs/metrics.md (whose tables the dashboard
//! and rule lints read too): every family of the first table is rendered with its type and
//! label names, and nothing else is rendered.

use std::collections::{BTreeMap, BTreeSet};

use super::tests::scrape_of_test_snapshot;

const CATALOGUE: &str = include_str!("../../docs/metrics.md");

/// The heading of the table the renderer must match exactly.
const EMITTED: &str = "## Emitted by the daemon";

#[derive(Debug, PartialEq)]
struct Family {
    kind: String,
    labels: BTreeSet<String>,
}

/// Rows of the table under `heading`: name -> type and label names.
fn catalogue_table(heading: &str) -> BTreeMap<String, Family> {
    let mut rows = BTreeMap::new();
    let mut inside = false;
    for line in CATALOGUE.lines() {
        if line.starts_with("## ") {
            inside = line.trim() == heading;
            continue;
        }
        if !inside || !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", name, type, labels, meaning, ""
        assert!(cells.len() >= 5, "docs/metrics.md: bad row `{line}`");
        let name = cells[1].trim_matches('`').to_string();
        let labels = cells[3]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let family = Family {
            kind: cells[2].to_string(),
            labels,
        };
        assert!(
            rows.insert(name.clone(), family).is_none(),
            "docs/metrics.md lists {name} twice"
        );
    }
    rows
}

/// Families of an exposition: name -> TYPE and the label names of its samples (without `le`).
fn rendered_families(text: &str) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                panic!("bad TYPE line `{line}`");
            };
            families.insert(
                name.to_string(),
                Family {
                    kind: kind.to_string(),
                    labels: BTreeSet::new(),
                },
            );
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let series = line.split(' ').next().unwrap_or(line);
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|f| families.get(*f).is_some_and(|f| f.kind == "histogram"))
            .unwrap_or(name);
        let Some(f) = families.get_mut(family) else {
            panic!("sample `{line}` has no TYPE line before it");
        };
        for pair in labels.trim_end_matches('}').split(',') {
            if let Some((label, _)) = pair.split_once('=')
                && label != "le"
            {
                f.labels.insert(label.to_string());
            }
        }
    }
    families
}

#[test]
fn the_catalogue_table_parses() {
    let emitted = catalogue_table(EMITTED);
    assert!(emitted.len() > 20, "{emitted:?}");
    let f = &emitted["cqlpulse_requests_total"];
    assert_eq!(f.kind, "counter");
    assert_eq!(
        f.labels,
        BTreeSet::from(["op".to_string(), "outcome".to_string()])
    );
    assert!(emitted["cqlpulse_in_flight_limit"].labels.is_empty());
}

#[test]
fn the_renderer_emits_exactly_the_catalogue() {
    let catalogue = catalogue_table(EMITTED);
    let rendered = rendered_families(&scrape_of_test_snapshot());
    let mut problems = Vec::new();
    for (name, want) in &catalogue {
        match rendered.get(name) {
            None => problems.push(format!("{name}: in docs/metrics.md, not rendered")),
            Some(got) if got != want => problems.push(format!(
                "{name}: docs/metrics.md says {} {:?}, the renderer {} {:?}",
                want.kind, want.labels, got.kind, got.labels
            )),
            Some(_) => {}
        }
    }
    for name in rendered.keys().filter(|n| !catalogue.contains_key(*n)) {
        problems.push(format!("{name}: rendered, missing from docs/metrics.md"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
