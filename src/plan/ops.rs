//! What the plan knows about a CQL statement without a server: its bind markers, its kind
//! (read, write, LWT, counter) and consistency names.

use scylla::statement::{Consistency, SerialConsistency};

/// What an operation does, inferred from its CQL. Decides default idempotence and whether rows
/// are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Read,
    Write,
    /// A conditional (`IF ...`) statement: never retried by default.
    Lwt,
    /// A counter update (`SET c = c + ?`): never retried by default.
    Counter,
}

/// Counts `?` bind markers outside string literals and comments.
pub fn count_bind_markers(cql: &str) -> usize {
    let mut count = 0;
    let mut in_string = false;
    let mut chars = cql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => in_string = !in_string, // '' inside a literal toggles twice: still fine
            '?' if !in_string => count += 1,
            '-' if !in_string && chars.peek() == Some(&'-') => {
                // a comment runs to the end of the line
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    count
}

pub fn classify(cql: &str) -> OpKind {
    let upper = strip_literals(cql).to_ascii_uppercase();
    let words: Vec<&str> = upper.split_whitespace().collect();
    match words.first().copied() {
        Some("SELECT") => OpKind::Read,
        _ if words.contains(&"IF") => OpKind::Lwt,
        Some("UPDATE") if is_counter_update(&upper) => OpKind::Counter,
        _ => OpKind::Write,
    }
}

/// `SET c = c + ?` or `c = c - 1`: a column assigned from itself plus or minus something.
fn is_counter_update(upper: &str) -> bool {
    let Some(set) = upper.find(" SET ") else {
        return false;
    };
    let assignments = &upper[set + 5..];
    let assignments = assignments.split(" WHERE ").next().unwrap_or("");
    assignments.split(',').any(|a| {
        let Some((col, expr)) = a.split_once('=') else {
            return false;
        };
        let col = col.trim();
        let expr = expr.trim();
        expr.starts_with(col)
            && matches!(
                expr[col.len()..].trim_start().chars().next(),
                Some('+' | '-')
            )
    })
}

fn strip_literals(cql: &str) -> String {
    let mut out = String::with_capacity(cql.len());
    let mut in_string = false;
    for c in cql.chars() {
        if c == '\'' {
            in_string = !in_string;
            out.push(' ');
        } else if !in_string {
            out.push(c);
        }
    }
    out
}

pub fn parse_consistency(name: &str) -> Option<Consistency> {
    Some(match name.to_ascii_lowercase().as_str() {
        "any" => Consistency::Any,
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "local_one" => Consistency::LocalOne,
        "serial" => Consistency::Serial,
        "local_serial" => Consistency::LocalSerial,
        _ => return None,
    })
}

pub const CONSISTENCY_NAMES: &str =
    "any, one, two, three, quorum, all, local_quorum, each_quorum, local_one, serial, local_serial";

pub fn parse_serial_consistency(name: &str) -> Option<SerialConsistency> {
    match name.to_ascii_lowercase().as_str() {
        "serial" => Some(SerialConsistency::Serial),
        "local_serial" => Some(SerialConsistency::LocalSerial),
        _ => None,
    }
}

/// Names used as Prometheus label values and in tables: letters, digits, `_` and `-`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_markers_outside_literals_are_counted() {
        assert_eq!(count_bind_markers("INSERT INTO t (a, b) VALUES (?, ?)"), 2);
        assert_eq!(
            count_bind_markers("SELECT * FROM t WHERE a = '?' AND b = ?"),
            1
        );
        assert_eq!(count_bind_markers("SELECT ? -- what?\n FROM t"), 1);
    }

    #[test]
    fn kinds_are_inferred_from_the_statement() {
        assert_eq!(classify("select * from t where k = ?"), OpKind::Read);
        assert_eq!(classify("INSERT INTO t (k) VALUES (?)"), OpKind::Write);
        assert_eq!(
            classify("INSERT INTO t (k) VALUES (?) IF NOT EXISTS"),
            OpKind::Lwt
        );
        assert_eq!(
            classify("UPDATE t SET v = ? WHERE k = ? IF v = ?"),
            OpKind::Lwt
        );
        assert_eq!(
            classify("UPDATE c SET n = n + ? WHERE k = ?"),
            OpKind::Counter
        );
        assert_eq!(classify("UPDATE t SET v = ? WHERE k = ?"), OpKind::Write);
        assert_eq!(
            classify("INSERT INTO t (k, s) VALUES (?, 'if')"),
            OpKind::Write
        );
    }
}
