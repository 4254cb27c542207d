//! A secret (the cluster password, the control token) from the moment it is parsed to the
//! moment it is handed to the driver or compared with a request's token. No output may carry
//! it or a cheap function of it, so everything that could print or digest it sees a
//! placeholder instead: `Debug`, `Display`, `Serialize` (which the spec digest and the reload
//! diff go through) and the errors of a value of the wrong type.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a secret shows as, wherever it would otherwise be printed.
pub const REDACTED: &str = "<redacted>";

/// The spec keys that hold secrets: an override of one takes its text as it is, never parsed
/// as TOML (`CQLPULSE__CLUSTER__PASSWORD=918273645` is the string "918273645").
pub const SECRET_KEYS: &[&str] = &["cluster.password", "control.token"];

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret itself: for the driver's authenticator and the token comparison only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Serialises as the placeholder: a serialised spec (its digest, the reload diff) is the same
/// whatever the secret. The reload compares secrets itself (`daemon::reload`).
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        deserializer.deserialize_string(SecretVisitor)
    }
}

struct SecretVisitor;

/// serde's own type errors quote the value ("invalid type: integer `918273645`"); these do not.
fn not_a_string<E: de::Error>(kind: &str) -> E {
    E::custom(format!(
        "a secret must be a string, not {kind} (quote it in the file; an environment variable \
         or --set takes its text as it is)"
    ))
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(not_a_string("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        Err(not_a_string("an integer"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        Err(not_a_string("an integer"))
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Secret, E> {
        Err(not_a_string("an integer"))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Secret, E> {
        Err(not_a_string("an integer"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(not_a_string("a number"))
    }

    fn visit_char<E: de::Error>(self, _: char) -> Result<Secret, E> {
        Err(not_a_string("a character"))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Err(not_a_string("bytes"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Err(not_a_string("an array"))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Err(not_a_string("a table"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize)]
    struct Holder {
        password: Secret,
    }

    #[test]
    fn a_secret_never_shows_and_a_wrong_type_is_not_echoed() {
        let h: Holder = toml::from_str("password = \"hunter2-sentinel\"").unwrap();
        assert_eq!(h.password.expose(), "hunter2-sentinel");
        let shown = format!("{h:?} {} {}", h.password, toml::to_string(&h).unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        for (value, kind) in [
            ("918273645", "an integer"),
            ("918273.645", "a number"),
            ("true", "a boolean"),
            ("[918273645]", "an array"),
            ("{ x = 918273645 }", "a table"),
        ] {
            let e = toml::from_str::<Holder>(&format!("password = {value}")).unwrap_err();
            // The message only: toml's Display adds the source line, which SpecError leaves out.
            let text = e.message().to_string();
            assert!(text.contains(kind), "{value}: {text}");
            assert!(!text.contains("918273"), "{value} echoed: {text}");
        }
    }
}
