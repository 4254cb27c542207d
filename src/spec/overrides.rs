//! Overrides of spec keys from the environment (`CQLPULSE__LOAD__RATE=5000`) and the command
//! line (`--rate 5000`). Each is patched into the parsed TOML table before the one strict
//! deserialisation, so an override obeys exactly the rules of the file.

use toml::{Table, Value};

use super::{SECRET_KEYS, SpecError};

/// Environment variables with this prefix override spec keys; `__` separates the levels.
pub const ENV_PREFIX: &str = "CQLPULSE__";

/// One override: a key path, its new value (`None`: the key is removed) and where it came from
/// (for error messages).
#[derive(Debug, Clone)]
pub struct Override {
    pub origin: String,
    pub path: Vec<String>,
    pub value: Option<Value>,
}

impl Override {
    /// An override of `dotted` (`load.rate`, `ops.0.weight`) with a value written as TOML
    /// (`5000`, `"x"`, `["a:9042"]`); text that is not valid TOML is taken as a string. A
    /// secret ([`SECRET_KEYS`]) is always its text as given: a password may look like a number.
    pub fn new(origin: impl Into<String>, dotted: &str, raw: &str) -> Override {
        let value = if SECRET_KEYS.contains(&dotted) {
            Value::String(raw.to_string())
        } else {
            toml::from_str::<Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| Value::String(raw.to_string()))
        };
        Override {
            origin: origin.into(),
            path: dotted.split('.').map(str::to_string).collect(),
            value: Some(value),
        }
    }

    /// An override that removes `dotted` from the spec (nothing to do if it is not there).
    pub fn remove(origin: impl Into<String>, dotted: &str) -> Override {
        Override {
            origin: origin.into(),
            path: dotted.split('.').map(str::to_string).collect(),
            value: None,
        }
    }

    /// The path as the deserialiser prints it: `ops[0].weight`.
    pub fn dotted_key(&self) -> String {
        let mut out = String::new();
        for part in &self.path {
            if part.parse::<usize>().is_ok() {
                out.push_str(&format!("[{part}]"));
            } else {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(part);
            }
        }
        out
    }

    pub(super) fn apply(&self, root: &mut Table) -> Result<(), SpecError> {
        let mut value = Value::Table(std::mem::take(root));
        let result = match &self.value {
            Some(new) => set(&mut value, &self.path, new),
            None => {
                remove(&mut value, &self.path);
                Ok(())
            }
        };
        if let Value::Table(t) = value {
            *root = t;
        }
        result.map_err(|message| SpecError::Override {
            origin: self.origin.clone(),
            field: self.dotted_key(),
            message,
        })
    }
}

/// Sets `path` under `value` to `new`, creating tables on the way; numeric parts index arrays.
fn set(value: &mut Value, path: &[String], new: &Value) -> Result<(), String> {
    let Some((part, rest)) = path.split_first() else {
        *value = new.clone();
        return Ok(());
    };
    let child = match value {
        Value::Table(t) => t
            .entry(part.clone())
            .or_insert_with(|| Value::Table(Table::new())),
        Value::Array(items) => {
            let i: usize = part
                .parse()
                .map_err(|_| format!("`{part}` is not an index into an array"))?;
            let len = items.len();
            items
                .get_mut(i)
                .ok_or_else(|| format!("index {i} is past the end of an array of {len}"))?
        }
        _ => return Err(format!("`{part}` is under a key that is not a table")),
    };
    set(child, rest, new)
}

/// Removes `path` under `value`, if it is there.
fn remove(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut table = value;
    for part in parents {
        let Some(child) = table.as_table_mut().and_then(|t| t.get_mut(part)) else {
            return;
        };
        table = child;
    }
    if let Some(t) = table.as_table_mut() {
        t.remove(last);
    }
}

/// Overrides from environment variables named `CQLPULSE__SECTION__KEY`.
pub fn env_overrides(vars: impl Iterator<Item = (String, String)>) -> Vec<Override> {
    let mut out: Vec<Override> = vars
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix(ENV_PREFIX)?;
            let dotted = rest.to_ascii_lowercase().replace("__", ".");
            Some(Override::new(
                format!("environment variable {name}"),
                &dotted,
                &value,
            ))
        })
        .collect();
    // A stable order, so that errors and tests do not depend on the environment's.
    out.sort_by(|a, b| a.origin.cmp(&b.origin));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_map_to_key_paths_and_typed_values() {
        let vars = vec![
            ("CQLPULSE__LOAD__RATE".to_string(), "5000".to_string()),
            (
                "CQLPULSE__CLUSTER__CONTACT_POINTS".to_string(),
                "[\"db:9042\"]".to_string(),
            ),
            ("CQLPULSE__SHARD__INDEX".to_string(), "auto".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let o = env_overrides(vars.into_iter());
        assert_eq!(o.len(), 3);
        let rate = o.iter().find(|o| o.dotted_key() == "load.rate").unwrap();
        assert_eq!(rate.value, Some(Value::Integer(5000)));
        let cp = o
            .iter()
            .find(|o| o.dotted_key() == "cluster.contact_points")
            .unwrap();
        assert!(matches!(cp.value, Some(Value::Array(_))));
        let idx = o.iter().find(|o| o.dotted_key() == "shard.index").unwrap();
        assert_eq!(idx.value, Some(Value::String("auto".into())));
    }

    #[test]
    fn apply_creates_tables_and_indexes_arrays() {
        let mut t: Table = toml::from_str("[[ops]]\nname = \"a\"\nweight = 1\n").unwrap();
        Override::new("x", "load.rate", "10").apply(&mut t).unwrap();
        Override::new("x", "ops.0.weight", "3")
            .apply(&mut t)
            .unwrap();
        assert_eq!(t["load"]["rate"].as_integer(), Some(10));
        assert_eq!(t["ops"][0]["weight"].as_integer(), Some(3));
        let err = Override::new("x", "ops.5.weight", "3")
            .apply(&mut t)
            .unwrap_err();
        assert!(err.to_string().contains("past the end"), "{err}");
    }

    #[test]
    fn remove_takes_a_key_out_and_ignores_a_missing_one() {
        let mut t: Table = toml::from_str("[load]\nduration = \"30s\"\nrate = 5\n").unwrap();
        Override::remove("x", "load.duration")
            .apply(&mut t)
            .unwrap();
        Override::remove("x", "load.ops").apply(&mut t).unwrap();
        Override::remove("x", "nowhere.at_all")
            .apply(&mut t)
            .unwrap();
        assert!(t["load"].get("duration").is_none(), "{t}");
        assert_eq!(t["load"]["rate"].as_integer(), Some(5));
        assert!(t.get("nowhere").is_none(), "{t}");
    }
}
