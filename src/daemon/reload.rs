//! Reload: parse the spec again, validate it, and apply only the fields that can change while
//! running. Anything structural (cluster, schema, the statements, generators, sharding,
//! listeners) is refused with the fields named, and the running spec stays.

use std::path::PathBuf;

use toml::Value;

use crate::spec::{MODELS, Spec, SpecError};

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    /// The spec is the one running: nothing to do.
    Unchanged,
    Applied,
}

impl Reloaded {
    /// The `result` of `POST /control/reload`: `applied` only when something changed.
    pub fn result(self) -> &'static str {
        match self {
            Reloaded::Unchanged => "unchanged",
            Reloaded::Applied => "applied",
        }
    }
}

impl std::fmt::Display for Reloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reloaded::Unchanged => "no change",
            Reloaded::Applied => "hot fields applied",
        })
    }
}

/// Why a reload was refused; the running spec stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new spec does not parse or validate.
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("{}: these fields cannot change while running: {}", path.display(), fields.join(", "))]
    Structural { path: PathBuf, fields: Vec<String> },
}

/// Fields that a reload may change: the rate and stages, the models' knobs (`spec::MODELS`)
/// and the cap, and op weights.
const HOT: &[&str] = &[
    "load.rate",
    "load.stages",
    "load.max_in_flight",
    "ops[].weight",
];

/// The structural fields that differ between `old` and `new` (empty: the reload may apply).
pub fn structural_changes(old: &Spec, new: &Spec) -> Vec<String> {
    let (Ok(a), Ok(b)) = (Value::try_from(old), Value::try_from(new)) else {
        return vec!["(the spec could not be compared)".to_string()];
    };
    let mut out = Vec::new();
    diff("", &a, &b, &mut out);
    // Secrets serialise as a placeholder (see `spec::Secret`): compared here instead.
    if old.cluster.password != new.cluster.password && !out.iter().any(|f| f == "cluster.password")
    {
        out.push("cluster.password".to_string());
    }
    if old.control.token != new.control.token && !out.iter().any(|f| f == "control.token") {
        out.push("control.token".to_string());
    }
    out.retain(|path| !is_hot(path));
    out
}

fn is_hot(path: &str) -> bool {
    let knob = path
        .strip_prefix("load.")
        .is_some_and(|k| MODELS.iter().any(|m| m.knob == k));
    let generic = generic_path(path);
    knob || HOT.iter().any(|h| {
        generic == *h
            || generic.starts_with(&format!("{h}."))
            || generic.starts_with(&format!("{h}["))
    })
}

/// `ops[3].weight` -> `ops[].weight`.
fn generic_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut skipping = false;
    for c in path.chars() {
        match c {
            '[' => {
                skipping = true;
                out.push('[');
            }
            ']' => {
                skipping = false;
                out.push(']');
            }
            _ if skipping => {}
            _ => out.push(c),
        }
    }
    out
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Table(x), Value::Table(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff(&join(k), va, vb, out),
                    _ => out.push(join(k)),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() && !is_hot(path) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Spec {
        toml::from_str(&format!(
            "name = \"t\"\n[[ops]]\nname = \"a\"\ncql = \"INSERT INTO t (k) VALUES (1)\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn hot_fields_may_change_and_structural_ones_are_named() {
        let old = spec("weight = 1.0\n[load]\nrate = 10.0\nchains = 4");
        let hot = spec("weight = 3.0\n[load]\nrate = 20.0\nchains = 8");
        assert!(structural_changes(&old, &hot).is_empty());
        let cold = spec(
            "weight = 1.0\n[load]\nrate = 10.0\nchains = 4\n[cluster]\ncontact_points = [\"10.0.0.1:9042\"]\n[schema]\nkeyspace = \"other\"",
        );
        assert_eq!(
            structural_changes(&old, &cold),
            vec!["cluster.contact_points[0]", "schema.keyspace"]
        );
        let secret = spec(
            "weight = 1.0\n[load]\nrate = 10.0\nchains = 4\n[cluster]\nusername = \"u\"\npassword = \"new-one\"",
        );
        let was = spec(
            "weight = 1.0\n[load]\nrate = 10.0\nchains = 4\n[cluster]\nusername = \"u\"\npassword = \"old-one\"",
        );
        assert_eq!(structural_changes(&was, &secret), vec!["cluster.password"]);
        let stmt = toml::from_str::<Spec>("name = \"t\"\n[[ops]]\nname = \"a\"\ncql = \"DELETE FROM t WHERE k = 1\"\nweight = 1.0\n[load]\nrate = 10.0\nchains = 4").unwrap();
        assert_eq!(structural_changes(&old, &stmt), vec!["ops[0].cql"]);
    }
}
