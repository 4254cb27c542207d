//! The closed set of request error kinds: what `request_errors_total{kind}` may say. Labels
//! never carry driver messages, which would explode the number of series.

use scylla::errors::{DbError, ExecutionError, RequestAttemptError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    ReadTimeout,
    WriteTimeout,
    /// No response within the client-side request timeout.
    ClientTimeout,
    Unavailable,
    Overloaded,
    ReadFailure,
    WriteFailure,
    /// Broken or missing connections: the node is down or unreachable.
    Connection,
    ServerError,
    /// The server refused the request as such: syntax, schema, permissions, types.
    Invalid,
    Other,
}

impl ErrorKind {
    pub const COUNT: usize = 11;
    pub const ALL: [ErrorKind; ErrorKind::COUNT] = [
        ErrorKind::ReadTimeout,
        ErrorKind::WriteTimeout,
        ErrorKind::ClientTimeout,
        ErrorKind::Unavailable,
        ErrorKind::Overloaded,
        ErrorKind::ReadFailure,
        ErrorKind::WriteFailure,
        ErrorKind::Connection,
        ErrorKind::ServerError,
        ErrorKind::Invalid,
        ErrorKind::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ReadTimeout => "read_timeout",
            ErrorKind::WriteTimeout => "write_timeout",
            ErrorKind::ClientTimeout => "client_timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::ReadFailure => "read_failure",
            ErrorKind::WriteFailure => "write_failure",
            ErrorKind::Connection => "connection",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Other => "other",
        }
    }

    /// Index into per-kind counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the node itself is the likely cause, so that a retry should go to another
    /// replica: it did not answer in time, or its connection broke. (A server timeout or
    /// `unavailable` comes from a coordinator that works, about other replicas.)
    pub fn blames_the_node(self) -> bool {
        matches!(self, ErrorKind::ClientTimeout | ErrorKind::Connection)
    }

    /// Whether an idempotent request may be sent again after this error.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::ReadTimeout
                | ErrorKind::WriteTimeout
                | ErrorKind::ClientTimeout
                | ErrorKind::Unavailable
                | ErrorKind::Overloaded
                | ErrorKind::Connection
        )
    }
}

pub fn classify(e: &ExecutionError) -> ErrorKind {
    match e {
        ExecutionError::RequestTimeout(_) => ErrorKind::ClientTimeout,
        ExecutionError::ConnectionPoolError(_) | ExecutionError::EmptyPlan => ErrorKind::Connection,
        ExecutionError::BadQuery(_) => ErrorKind::Invalid,
        ExecutionError::LastAttemptError(a) => classify_attempt(a),
        _ => ErrorKind::Other,
    }
}

fn classify_attempt(e: &RequestAttemptError) -> ErrorKind {
    match e {
        RequestAttemptError::DbError(db, _) => classify_db(db),
        RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId => ErrorKind::Connection,
        RequestAttemptError::SerializationError(_) => ErrorKind::Invalid,
        _ => ErrorKind::Other,
    }
}

fn classify_db(e: &DbError) -> ErrorKind {
    match e {
        DbError::ReadTimeout { .. } => ErrorKind::ReadTimeout,
        DbError::WriteTimeout { .. } => ErrorKind::WriteTimeout,
        DbError::Unavailable { .. } => ErrorKind::Unavailable,
        DbError::Overloaded | DbError::RateLimitReached { .. } => ErrorKind::Overloaded,
        DbError::ReadFailure { .. } => ErrorKind::ReadFailure,
        DbError::WriteFailure { .. } => ErrorKind::WriteFailure,
        DbError::SyntaxError
        | DbError::Invalid
        | DbError::AlreadyExists { .. }
        | DbError::Unauthorized
        | DbError::ConfigError
        | DbError::AuthenticationError => ErrorKind::Invalid,
        DbError::ServerError
        | DbError::IsBootstrapping
        | DbError::TruncateError
        | DbError::FunctionFailure { .. }
        | DbError::ProtocolError => ErrorKind::ServerError,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn kinds_have_unique_names_and_indices() {
        let names: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ErrorKind::COUNT);
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }

    #[test]
    fn driver_errors_map_to_kinds() {
        assert_eq!(
            classify(&ExecutionError::RequestTimeout(Duration::from_millis(1))),
            ErrorKind::ClientTimeout
        );
        assert_eq!(classify(&ExecutionError::EmptyPlan), ErrorKind::Connection);
        let db =
            |e| ExecutionError::LastAttemptError(RequestAttemptError::DbError(e, String::new()));
        assert_eq!(classify(&db(DbError::Overloaded)), ErrorKind::Overloaded);
        assert_eq!(classify(&db(DbError::Invalid)), ErrorKind::Invalid);
        assert_eq!(classify(&db(DbError::ServerError)), ErrorKind::ServerError);
        assert_eq!(
            classify(&ExecutionError::LastAttemptError(
                RequestAttemptError::UnableToAllocStreamId
            )),
            ErrorKind::Connection
        );
    }
}
