//! The concurrency models, one row each: everything the rest of the program knows about a
//! model comes from [`MODELS`]. Its name in the spec and on the command line, its knob (the
//! `[load]` key, its default, where it is stored), the traits the engine obeys, and the lines
//! of the README's tables (checked against the README by a test).
//!
//! Adding a model: a [`ModelName`] variant, its row here, and a `[load]` field if its knob is
//! new. The plan's checks, reloads, `compare`, the CLI and the engine's limits follow from the
//! row; a behaviour that no trait below describes goes to `engine/model.rs`.

use serde::{Deserialize, Serialize};

use super::LoadSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelName {
    Sync,
    Batches,
    Pipeline,
    Unbounded,
    Chains,
}

/// One model: its names, its knob and the traits the engine reads.
pub struct ModelRow {
    pub model: ModelName,
    pub name: &'static str,
    /// The `[load]` key of its knob.
    pub knob: &'static str,
    /// The knob's default; `None`: the knob is `max_in_flight` itself.
    pub knob_default: Option<u32>,
    /// Reads and writes the knob's `[load]` field (`None` when the knob is `max_in_flight`).
    pub field: Option<Field>,
    /// The cap is the knob: `max_in_flight` is the only limit and setting the knob moves it.
    pub cap_is_knob: bool,
    /// Completions are taken in submission order (the oldest request first).
    pub fifo: bool,
    /// A lane fills a batch of its share, then waits for all of it to finish.
    pub whole_batches: bool,
    /// The python-driver benchmark it mirrors.
    pub python: &'static str,
    /// What the knob means (the README's `[load]` table).
    pub knob_meaning: &'static str,
    /// How the model sends (the README's model table).
    pub behaviour: &'static str,
}

/// Access to a knob's field of [`LoadSpec`].
#[derive(Clone, Copy)]
pub struct Field {
    pub get: fn(&LoadSpec) -> Option<u32>,
    pub set: fn(&mut LoadSpec, Option<u32>),
}

pub const MODELS: [ModelRow; 5] = [
    ModelRow {
        model: ModelName::Sync,
        name: "sync",
        knob: "workers",
        knob_default: Some(1),
        field: Some(Field {
            get: |l| l.workers,
            set: |l, v| l.workers = v,
        }),
        cap_is_knob: false,
        fifo: false,
        whole_batches: false,
        python: "sync.py",
        knob_meaning: "workers, each with one request in flight",
        behaviour: "`workers` workers, each sends a request and awaits it",
    },
    ModelRow {
        model: ModelName::Batches,
        name: "batches",
        knob: "batch_size",
        knob_default: Some(120),
        field: Some(Field {
            get: |l| l.batch_size,
            set: |l, v| l.batch_size = v,
        }),
        cap_is_knob: false,
        fifo: false,
        whole_batches: true,
        python: "future_batches.py",
        knob_meaning: "requests per batch",
        behaviour: "send `batch_size` requests, wait for all of them, repeat",
    },
    ModelRow {
        model: ModelName::Pipeline,
        name: "pipeline",
        knob: "window",
        knob_default: Some(120),
        field: Some(Field {
            get: |l| l.window,
            set: |l, v| l.window = v,
        }),
        cap_is_knob: false,
        fifo: true,
        whole_batches: false,
        python: "future_full_pipeline.py",
        knob_meaning: "requests in flight; when full, wait for the oldest",
        behaviour: "keep `window` in flight; when full, wait for the oldest (FIFO)",
    },
    ModelRow {
        model: ModelName::Unbounded,
        name: "unbounded",
        knob: "max_in_flight",
        knob_default: None,
        field: None,
        cap_is_knob: true,
        fifo: false,
        whole_batches: false,
        python: "future_full_throttle.py",
        knob_meaning: "the hard cap in every model (the only limit of `unbounded`)",
        behaviour: "send as fast as ops are generated; only `max_in_flight` stops it",
    },
    ModelRow {
        model: ModelName::Chains,
        name: "chains",
        knob: "chains",
        knob_default: Some(120),
        field: Some(Field {
            get: |l| l.chains,
            set: |l, v| l.chains = v,
        }),
        cap_is_knob: false,
        fifo: false,
        whole_batches: false,
        python: "callback_full_pipeline.py",
        knob_meaning: "independent chains; each completion sends its chain's next request",
        behaviour: "`chains` chains; each completion sends that chain's next request",
    },
];

/// Every model's name, comma-separated, in table order (the CLI's default for `compare`).
pub const MODEL_NAMES: &str = "sync,batches,pipeline,unbounded,chains";

impl ModelName {
    /// This model's row of [`MODELS`].
    pub fn row(self) -> &'static ModelRow {
        // The table is in variant order (checked by a test).
        &MODELS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// The spec key of the knob this model uses for its concurrency.
    pub fn knob(self) -> &'static str {
        self.row().knob
    }

    pub fn parse(name: &str) -> Option<ModelName> {
        MODELS.iter().find(|m| m.name == name).map(|m| m.model)
    }
}

impl LoadSpec {
    /// The value of the model's knob in force: as written, else its default.
    pub fn knob(&self) -> u32 {
        let row = self.model.row();
        match (row.field, row.knob_default) {
            (Some(f), Some(default)) => (f.get)(self).unwrap_or(default),
            _ => self.max_in_flight,
        }
    }
}

/// The README's model table, rendered from [`MODELS`].
pub fn model_table() -> String {
    let mut out =
        String::from("| `model` | python-driver benchmark | behaviour |\n|---|---|---|\n");
    for m in &MODELS {
        out += &format!("| `{}` | {} | {} |\n", m.name, m.python, m.behaviour);
    }
    out
}

/// The README's `[load]` rows of the knobs, rendered from [`MODELS`] (the cap last).
pub fn knob_rows() -> String {
    let mut out = String::new();
    let (own, cap): (Vec<&ModelRow>, Vec<&ModelRow>) =
        MODELS.iter().partition(|m| m.field.is_some());
    for m in own.into_iter().chain(cap) {
        let (default, meaning) = match m.knob_default {
            Some(d) => (d.to_string(), format!("`{}`: {}", m.name, m.knob_meaning)),
            None => (
                super::LoadSpec::default().max_in_flight.to_string(),
                m.knob_meaning.to_string(),
            ),
        };
        out += &format!("| `{}` | `{default}` | {meaning} |\n", m.knob);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_variant_order_and_names_are_unique() {
        for (i, m) in MODELS.iter().enumerate() {
            assert_eq!(m.model as usize, i, "{} is out of order", m.name);
            assert_eq!(ModelName::parse(m.name), Some(m.model));
            let json = serde_json::to_string(&m.model).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name), "serde and the table agree");
        }
        let names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        assert_eq!(MODEL_NAMES, names.join(","));
        assert_eq!(ModelName::parse("fast"), None);
    }

    #[test]
    fn a_knob_field_is_the_one_its_row_names() {
        for m in MODELS.iter().filter(|m| m.field.is_some()) {
            let field = m.field.unwrap();
            let mut l = LoadSpec::default();
            (field.set)(&mut l, Some(7));
            let value = toml::Value::try_from(&l).unwrap();
            let written = value.get(m.knob).and_then(|v| v.as_integer());
            assert_eq!(written, Some(7), "{}", m.name);
            assert_eq!((field.get)(&l), Some(7));
        }
    }

    #[test]
    fn the_readme_tables_are_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        assert!(
            readme.contains(&model_table()),
            "README's model table differs from spec/model.rs; it should read:\n{}",
            model_table()
        );
        assert!(
            readme.contains(&knob_rows()),
            "README's [load] knob rows differ from spec/model.rs; they should read:\n{}",
            knob_rows()
        );
    }
}
