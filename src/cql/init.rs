//! How `cqlpulse init --from` reaches a cluster that needs a login or TLS: the same settings a
//! spec's `[cluster]` takes (a user, the name of the environment variable holding the
//! password, the TLS files), used to read the schema and written into the spec it makes, so
//! the spec connects the same way. The password itself is never written.

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

use crate::plan::tls::client_config;
use crate::spec::TlsSpec;

/// A login and TLS for `init`; the default is plain text without a login.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub username: Option<String>,
    /// The environment variable holding the password.
    pub password_env: Option<String>,
    pub tls: Option<TlsSpec>,
}

impl Access {
    /// Connects to `contact_points` with this login and TLS.
    pub async fn connect(&self, contact_points: &[String]) -> Result<Session, String> {
        let mut builder = SessionBuilder::new()
            .known_nodes(contact_points)
            .connection_timeout(std::time::Duration::from_secs(5));
        match (&self.username, &self.password_env) {
            (Some(user), Some(var)) => {
                let password = std::env::var(var).map_err(|_| {
                    format!("--password-env {var}: the environment variable is not set")
                })?;
                builder = builder.user(user, password);
            }
            (Some(_), None) => return Err("--username needs --password-env".into()),
            (None, Some(_)) => return Err("--password-env needs --username".into()),
            (None, None) => {}
        }
        if let Some(tls) = &self.tls {
            let config = client_config(tls).map_err(|e| e.to_string())?;
            builder = builder.tls_context(Some(config));
        }
        builder.build().await.map_err(|e| {
            format!(
                "cannot connect to {}{}: {e}",
                contact_points.join(", "),
                self.describe()
            )
        })
    }

    /// What the connection used, for messages: ` (user u, TLS with CA f)`.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(u) = &self.username {
            parts.push(format!("user {u}"));
        }
        if let Some(t) = &self.tls {
            parts.push(format!("TLS with CA {}", t.ca_file));
        }
        match parts.is_empty() {
            true => String::new(),
            false => format!(" ({})", parts.join(", ")),
        }
    }

    /// The `[cluster]` lines of the login, for the spec `init` writes.
    pub fn cluster_lines(&self) -> String {
        match (&self.username, &self.password_env) {
            (Some(u), Some(var)) => format!(
                "username = {}  # the login `init` used\npassword_env = {}  # the variable holding the password (never written here)\n",
                toml_string(u),
                toml_string(var)
            ),
            _ => String::new(),
        }
    }

    /// The `[cluster.tls]` table, for the end of the spec `init` writes.
    pub fn tls_table(&self) -> String {
        let Some(t) = &self.tls else {
            return String::new();
        };
        let mut out = format!(
            "\n[cluster.tls]  # TLS to the nodes, as `init` connected\nca_file = {}\n",
            toml_string(&t.ca_file)
        );
        if let (Some(c), Some(k)) = (&t.cert_file, &t.key_file) {
            out += &format!(
                "cert_file = {}\nkey_file = {}\n",
                toml_string(c),
                toml_string(k)
            );
        }
        if !t.verify_server_name {
            out += "verify_server_name = false\n";
        }
        out
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
