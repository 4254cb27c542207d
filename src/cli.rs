//! Command-line arguments. Common spec keys have flags; any key can be set with
//! `--set load.rate=5000`, and from the environment as `CQLPULSE__LOAD__RATE=5000`.
//! Command-line values win over the environment, which wins over the file.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::compare::Format;
use crate::spec::{Override, env_overrides};

#[derive(Debug, Parser)]
#[command(
    name = "cqlpulse",
    version,
    about = "A load generator for Apache Cassandra and ScyllaDB, observable live."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log filter, as in RUST_LOG (`info`, `cqlpulse=debug,scylla=warn`).
    #[arg(
        long,
        global = true,
        env = "CQLPULSE_LOG",
        default_value = "info,scylla=warn,scylla::network::connection=error,scylla::cluster::metadata::cc_establisher=off"
    )]
    pub log: String,
    /// Runtime worker threads, and so lanes (default: one per core). Beside the database on
    /// a small machine, 1 costs the least CPU per request.
    #[arg(long, global = true, env = "CQLPULSE_THREADS")]
    pub threads: Option<usize>,
    /// Log format: text on a terminal and JSON otherwise, unless set.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workload: until its op count or duration, or until SIGTERM/SIGINT.
    Run(RunArgs),
    /// Validate a spec offline; with --connect, also connect and prepare every statement.
    Check(CheckArgs),
    /// Run one workload under several concurrency models in turn and compare them.
    Compare(CompareArgs),
    /// Write a spec from a live table's schema: an insert, a read by key and a slice.
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The table, as keyspace.table.
    #[arg(long)]
    pub from: String,
    /// The nodes to read the schema from (host:port, comma-separated); also the spec's.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:9042")]
    pub contact_points: Vec<String>,
    /// Where to write the spec (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Log in as this user (with --password-env); written into the spec.
    #[arg(long)]
    pub username: Option<String>,
    /// The environment variable holding the password (never the password itself).
    #[arg(long)]
    pub password_env: Option<String>,
    /// TLS to the nodes: the CA certificate (PEM) their certificates must lead to.
    #[arg(long)]
    pub tls_ca_file: Option<String>,
    /// Mutual TLS: the client certificate and key (PEM), both or neither.
    #[arg(long, requires = "tls_key_file")]
    pub tls_cert_file: Option<String>,
    #[arg(long, requires = "tls_cert_file")]
    pub tls_key_file: Option<String>,
    /// Check the nodes' certificates against the CA but not against their addresses.
    #[arg(long)]
    pub tls_no_verify_server_name: bool,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// The workload spec (TOML).
    pub spec: PathBuf,
    /// Set any spec key: `--set load.rate=5000` (TOML values; repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// load.rate: target ops/s (0 = unthrottled).
    #[arg(long)]
    pub rate: Option<f64>,
    /// load.duration, e.g. 30s or 5m.
    #[arg(long)]
    pub duration: Option<String>,
    /// load.ops: the number of ops to run.
    #[arg(long)]
    pub ops: Option<u64>,
    /// load.max_in_flight: the hard cap on requests in flight.
    #[arg(long)]
    pub max_in_flight: Option<u32>,
    /// cluster.contact_points, comma-separated host:port.
    #[arg(long, value_delimiter = ',')]
    pub contact_points: Vec<String>,
    /// metrics.listen: the HTTP address for /metrics, /status and control.
    #[arg(long)]
    pub listen: Option<String>,
    /// shard.index: a number, or `auto` for the Kubernetes pod ordinal.
    #[arg(long)]
    pub shard_index: Option<String>,
    /// shard.count: the number of instances sharing the workload.
    #[arg(long)]
    pub shard_count: Option<u32>,
}

impl SpecArgs {
    /// Environment overrides, then command-line ones (applied in that order, so the command
    /// line wins).
    pub fn overrides(&self) -> Result<Vec<Override>, String> {
        let mut out = env_overrides(std::env::vars());
        let mut add = |flag: &str, key: &str, raw: String| out.push(Override::new(flag, key, &raw));
        if let Some(r) = self.rate {
            add("--rate", "load.rate", format!("{r:?}"));
        }
        if let Some(d) = &self.duration {
            add("--duration", "load.duration", toml_string(d));
        }
        if let Some(n) = self.ops {
            add("--ops", "load.ops", n.to_string());
        }
        if let Some(n) = self.max_in_flight {
            add("--max-in-flight", "load.max_in_flight", n.to_string());
        }
        if !self.contact_points.is_empty() {
            let list: Vec<String> = self.contact_points.iter().map(|c| toml_string(c)).collect();
            add(
                "--contact-points",
                "cluster.contact_points",
                format!("[{}]", list.join(", ")),
            );
        }
        if let Some(l) = &self.listen {
            add("--listen", "metrics.listen", toml_string(l));
        }
        if let Some(i) = &self.shard_index {
            let raw = if i.parse::<u32>().is_ok() {
                i.clone()
            } else {
                toml_string(i)
            };
            add("--shard-index", "shard.index", raw);
        }
        if let Some(n) = self.shard_count {
            add("--shard-count", "shard.count", n.to_string());
        }
        // `--duration` and `--ops` each say when the run ends: one given alone replaces the
        // other from the file or the environment (both given is the spec's error).
        match (&self.duration, self.ops) {
            (Some(_), None) => out.push(Override::remove("--duration", "load.ops")),
            (None, Some(_)) => out.push(Override::remove("--ops", "load.duration")),
            _ => {}
        }
        for s in &self.set {
            let (key, value) = s
                .split_once('=')
                .ok_or_else(|| format!("--set {s}: expected KEY=VALUE"))?;
            out.push(Override::new(
                format!("--set {key}"),
                key.trim(),
                value.trim(),
            ));
        }
        Ok(out)
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Write an HdrHistogram interval log (service time per op) to this file.
    #[arg(long)]
    pub hdr_log: Option<PathBuf>,
    /// Write each checked ANN query and what it counted as written to this file (JSON lines;
    /// README, "Vector search").
    #[arg(long)]
    pub recall_log: Option<PathBuf>,
    /// Seconds between status lines (0 = none).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub status_every: Duration,
    /// Keep serving /metrics this long after the run ends, for a last scrape.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub linger: Duration,
    /// Serve no HTTP at all.
    #[arg(long)]
    pub no_http: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Also connect, create missing schema (never dropping anything) and prepare every op.
    #[arg(long)]
    pub connect: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Models to run, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = crate::spec::MODEL_NAMES
    )]
    pub models: Vec<String>,
    /// The knob of every model but sync (batch size, window, chains; the cap for unbounded).
    #[arg(long, default_value_t = 120)]
    pub concurrency: u32,
    /// Workers of the sync model.
    #[arg(long, default_value_t = 1)]
    pub sync_workers: u32,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write the comparison to this file (in --format).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{self, Source};

    /// The spec that `text` gives with the command line `args` (after the subcommand).
    fn spec_with(text: &str, args: &[&str]) -> Result<spec::Spec, String> {
        #[derive(Parser)]
        struct Line {
            #[command(flatten)]
            spec: SpecArgs,
        }
        let words = ["cqlpulse", "test.toml"]
            .into_iter()
            .chain(args.iter().copied());
        let line = Line::try_parse_from(words).map_err(|e| e.to_string())?;
        let source = Source {
            path: "test.toml".into(),
            text: text.into(),
        };
        spec::parse(&source, &line.spec.overrides()?).map_err(|e| e.to_string())
    }

    const SPEC: &str = "[[ops]]\nname = \"a\"\ncql = \"SELECT now() FROM system.local\"\n";

    #[test]
    fn ops_or_duration_on_the_command_line_replaces_the_other_from_the_file() {
        let s = spec_with(
            &format!("{SPEC}[load]\nduration = \"30s\"\n"),
            &["--ops", "100"],
        )
        .unwrap();
        assert_eq!((s.load.ops, s.load.duration.is_none()), (Some(100), true));
        let s = spec_with(&format!("{SPEC}[load]\nops = 100\n"), &["--duration", "5s"]).unwrap();
        assert_eq!((s.load.ops, s.load.duration.is_some()), (None, true));
        // Both on the command line: both stay, and the plan refuses them together.
        let s = spec_with(SPEC, &["--ops", "100", "--duration", "5s"]).unwrap();
        assert_eq!((s.load.ops, s.load.duration.is_some()), (Some(100), true));
        // Neither: the file's own choice stands.
        let s = spec_with(&format!("{SPEC}[load]\nduration = \"30s\"\n"), &[]).unwrap();
        assert_eq!((s.load.ops, s.load.duration.is_some()), (None, true));
    }
}
