//! Waiting for the keyspace's storage-attached indexes to be queryable. An SAI index created
//! on a table that already holds rows is built in the background, and an ANN query before the
//! build ends fails (or, on some versions, finds nothing); a run would count those as errors
//! or as lost recall. Cassandra 5.0 lists each index's state in the virtual table
//! `system_views.sai_column_indexes` of the node asked; a cluster without it (ScyllaDB, older
//! Cassandra) has nothing to wait for.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use scylla::client::session::Session;

/// How long the indexes may take to build before the run gives up.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(200);

/// Returns once every SAI index of `keyspace` is queryable, or fails after [`BUILD_TIMEOUT`]
/// naming the ones that are not.
pub async fn wait_queryable(session: &Session, keyspace: &str) -> Result<()> {
    let started = Instant::now();
    let mut logged = false;
    loop {
        let Some(pending) = not_queryable(session, keyspace).await else {
            return Ok(()); // no such table: nothing to wait for
        };
        if pending.is_empty() {
            return Ok(());
        }
        if started.elapsed() > BUILD_TIMEOUT {
            bail!(
                "indexes of {keyspace} still not queryable after {} s: {}",
                BUILD_TIMEOUT.as_secs(),
                pending.join(", ")
            );
        }
        if !logged {
            tracing::info!("waiting for indexes to be built: {}", pending.join(", "));
            logged = true;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The SAI indexes of `keyspace` not queryable yet; `None` when the node has no such table.
async fn not_queryable(session: &Session, keyspace: &str) -> Option<Vec<String>> {
    let cql = "SELECT index_name, is_queryable FROM system_views.sai_column_indexes \
               WHERE keyspace_name = ?";
    let result = session.query_unpaged(cql, (keyspace,)).await.ok()?;
    let rows = result.into_rows_result().ok()?;
    let rows = rows.rows::<(String, Option<bool>)>().ok()?;
    Some(
        rows.flatten()
            .filter(|(_, queryable)| *queryable != Some(true))
            .map(|(name, _)| name)
            .collect(),
    )
}
