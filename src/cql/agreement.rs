//! Schema set-up through a slow schema agreement. After each DDL statement the driver waits
//! (up to `cluster.schema_agreement_timeout`, 60 s) for every node to report the same schema
//! version, and fails the statement when they do not in time, although the coordinator
//! applied it. A node that is restarting, or a cluster busy with compaction, can take longer;
//! the set-up statements are idempotent (`IF NOT EXISTS`, `IF EXISTS`), so such a failure is
//! not the end: wait for agreement again, a few times, and only then give up. A statement
//! whose coordinator does not answer in time (a frozen node keeps its connections) is sent
//! again, to the next node of the driver's round robin; that what it creates exists then
//! means that the first attempt applied it.

use std::future::Future;

use scylla::client::session::Session;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError, SchemaAgreementError};

/// Waits for agreement after the driver's own wait this many times more, at most.
pub const AGREEMENT_RETRIES: u32 = 4;
/// Sends a statement again after a client timeout this many times, at most.
pub const TIMEOUT_RETRIES: u32 = 4;

/// Runs one set-up statement; an agreement that did not come in time is waited for again,
/// and a statement that timed out is sent again.
pub async fn ddl(session: &Session, cql: &str) -> Result<(), ExecutionError> {
    let mut timeouts = 0;
    loop {
        match session.query_unpaged(cql, ()).await {
            Ok(_) => return Ok(()),
            Err(ExecutionError::SchemaAgreementError(e)) if may_still_come(&e) => {
                tracing::warn!(
                    "`{cql}` is applied, but the nodes do not agree on the schema yet ({e}): waiting again"
                );
                return wait(session)
                    .await
                    .map_err(ExecutionError::SchemaAgreementError);
            }
            Err(ExecutionError::RequestTimeout(t)) if timeouts < TIMEOUT_RETRIES => {
                timeouts += 1;
                tracing::warn!(
                    "`{cql}`: no answer within {} ms (its coordinator may be down or frozen): \
                     sending it again ({} more after this at most)",
                    t.as_millis(),
                    TIMEOUT_RETRIES - timeouts
                );
            }
            Err(e) if timeouts > 0 && already_exists(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Whether a statement failed because what it creates exists (after a timed-out attempt of
/// it: that attempt applied it).
fn already_exists(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::AlreadyExists { .. },
            _
        ))
    )
}

/// Waits for schema agreement, again after each timeout, up to [`AGREEMENT_RETRIES`] more times.
pub async fn wait(session: &Session) -> Result<(), SchemaAgreementError> {
    retry(AGREEMENT_RETRIES, || session.await_schema_agreement()).await
}

/// Calls `attempt` until it succeeds, fails for good, or has been retried `retries` times.
async fn retry<T, F, Fut>(retries: u32, mut attempt: F) -> Result<(), SchemaAgreementError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SchemaAgreementError>>,
{
    let mut left = retries;
    loop {
        match attempt().await {
            Ok(_) => return Ok(()),
            Err(e) if left > 0 && may_still_come(&e) => {
                left -= 1;
                tracing::warn!("schema agreement: {e}; waiting again ({left} more after this)");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether waiting longer can bring agreement: a timeout, or a node the driver cannot reach
/// right now (restarting). Not a malformed answer.
fn may_still_come(e: &SchemaAgreementError) -> bool {
    matches!(
        e,
        SchemaAgreementError::Timeout(_)
            | SchemaAgreementError::RequiredHostAbsent(_)
            | SchemaAgreementError::ConnectionPoolError(_)
    )
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use super::*;

    fn timeout() -> SchemaAgreementError {
        SchemaAgreementError::Timeout(Duration::from_secs(60))
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_timeout_is_waited_out_and_a_lasting_one_ends_after_the_retries() {
        let calls = Cell::new(0);
        let twice_late = || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move { if n <= 2 { Err(timeout()) } else { Ok(()) } }
        };
        assert!(run(retry(AGREEMENT_RETRIES, twice_late)).is_ok());
        assert_eq!(calls.get(), 3, "two timeouts, then agreement");

        calls.set(0);
        let never = || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(timeout()) }
        };
        let e = run(retry(AGREEMENT_RETRIES, never)).unwrap_err();
        assert!(matches!(e, SchemaAgreementError::Timeout(_)), "{e}");
        assert_eq!(calls.get(), 1 + AGREEMENT_RETRIES);
    }

    #[test]
    fn an_error_the_driver_already_gave_up_on_is_not_retried() {
        let calls = Cell::new(0);
        let malformed = || {
            calls.set(calls.get() + 1);
            async {
                Err::<(), _>(SchemaAgreementError::RequestError(
                    scylla::errors::RequestAttemptError::UnableToAllocStreamId,
                ))
            }
        };
        assert!(run(retry(AGREEMENT_RETRIES, malformed)).is_err());
        assert_eq!(calls.get(), 1);
    }
}
