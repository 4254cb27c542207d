//! Finds where a field path such as `ops[1].args[0]` is written in the spec text, so that
//! semantic errors (found after deserialisation) can still name a line and column.

use toml::de::{DeTable, DeValue};

use super::error::Position;

/// The position of the deepest part of `field` that exists in `text`.
pub fn find(text: &str, field: &str) -> Option<Position> {
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut found: Option<usize> = None;
    let mut value: Option<&DeValue<'_>> = None;
    for part in split(field) {
        let (key, index) = part;
        if let Some(v) = value {
            table = match v {
                DeValue::Table(t) => t,
                _ => break,
            };
        }
        let Some((k, v)) = table.get_key_value(key) else {
            break;
        };
        found = Some(k.span().start);
        let mut v = v;
        if let Some(i) = index {
            let DeValue::Array(items) = v.get_ref() else {
                break;
            };
            let Some(item) = items.get(i) else { break };
            v = item;
            found = Some(item.span().start);
        }
        value = Some(v.get_ref());
    }
    found.map(|offset| Position::of_offset(text, offset))
}

/// Splits `a.b[2].c` into `[("a", None), ("b", Some(2)), ("c", None)]`.
fn split(field: &str) -> Vec<(&str, Option<usize>)> {
    field
        .split('.')
        .filter(|p| !p.is_empty())
        .map(|part| match part.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse().ok()),
            None => (part, None),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_fields_and_array_items() {
        let text = "name = \"x\"\n[load]\nrate = 5\n[[ops]]\nname = \"a\"\n[[ops]]\nname = \"b\"\nweight = 0\n";
        assert_eq!(
            find(text, "load.rate"),
            Some(Position { line: 3, column: 1 })
        );
        assert_eq!(
            find(text, "ops[1].weight"),
            Some(Position { line: 8, column: 1 })
        );
        // A missing leaf falls back to its deepest existing parent.
        assert_eq!(find(text, "ops[0].cql").map(|p| p.line), Some(4));
        assert_eq!(find(text, "nothing"), None);
    }
}
