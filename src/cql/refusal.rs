//! Whether a failed connection is a refusal (the node answered and said no: waiting will not
//! change its answer) or a cluster that is not ready yet (starting, draining, restarting, its
//! auth replicas down), which a daemon waits out.
//!
//! The driver's errors carry no kind for these, only text (its own, the server's, rustls'),
//! read here. Only a certain refusal ends a run; anything else is waited for, so that a daemon
//! (re)started during a rolling restart comes up when the cluster does.
//!
//! One case is ambiguous in the driver's text: over TLS, a connection dropped under its first
//! request. A node that requires a client certificate we do not have drops it (after an alert
//! the driver may or may not notice first), and so does a node that is draining or was
//! killed. [`probe_tls`] tells them apart: a TLS handshake of our own, without sending
//! anything after it, reads the node's alert when there is one.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

/// What the driver's text says about a failed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Certain: the node refused us, for this reason.
    Refused(&'static str),
    /// The node or the cluster is not ready; why, when the text says.
    Wait(Option<&'static str>),
    /// Over TLS, the connection dropped under its first request: ask the node ([`probe_tls`]).
    DroppedOverTls,
}

/// Why a node cannot check a login yet (Cassandra's "Unable to perform authentication:
/// Cannot achieve consistency level ...", which the driver reports as an authentication
/// error).
pub const AUTH_UNAVAILABLE: &str =
    "the node cannot check the login yet (the replicas of system_auth are unavailable)";

pub const WRONG_LOGIN: &str = "refused: wrong password or unknown role";

/// Reads the driver's one-line `reason` for a failed connection, made `tls` or not.
pub fn classify(reason: &str, tls: bool) -> Verdict {
    // Before the login marks: the server says "authentication" for these too.
    if reason.contains("Unable to perform authentication")
        || reason.contains("Cannot achieve consistency level")
    {
        return Verdict::Wait(Some(AUTH_UNAVAILABLE));
    }
    const REFUSALS: &[(&str, &str)] = &[
        ("and/or password are incorrect", WRONG_LOGIN),
        ("Authentication failed", WRONG_LOGIN),
        ("bad credentials", WRONG_LOGIN),
        (
            "requires authentication",
            "refused: the node requires a login (cluster.username)",
        ),
        (
            "invalid peer certificate",
            "refused: the node's certificate is not trusted (cluster.tls.ca_file)",
        ),
        (
            "received fatal alert",
            "refused: the node rejected the TLS handshake (a client certificate missing or not trusted)",
        ),
        (
            "received corrupt message",
            "refused: the node does not speak TLS on this port",
        ),
        (
            "peer is incompatible",
            "refused: the node's TLS settings are incompatible",
        ),
        (
            "peer misbehaved",
            "refused: the node does not speak TLS on this port",
        ),
    ];
    if let Some((_, why)) = REFUSALS.iter().find(|(mark, _)| reason.contains(mark)) {
        return Verdict::Refused(why);
    }
    let broken_at_first_request = reason.contains("Request: OPTIONS, reason: Connection broken");
    if !tls && broken_at_first_request && reason.contains("Connection reset by peer") {
        // A TLS-only port resets plain text at once; a node going down closes, or refuses.
        return Verdict::Refused("refused: the node expects TLS on this port (plain text sent)");
    }
    if tls && broken_at_first_request {
        return Verdict::DroppedOverTls;
    }
    Verdict::Wait(None)
}

/// A TLS handshake with the first of `contact_points` that accepts a TCP connection, then a
/// read of what the node sends while we send nothing. `Some(text)`: the node refused us (its
/// alert, or our verdict on its certificate); `None`: nothing certain (no node listening, the
/// connection closed or quiet).
pub fn probe_tls(
    contact_points: &[String],
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> Option<String> {
    let addr = contact_points
        .iter()
        .filter_map(|c| c.to_socket_addrs().ok())
        .flatten()
        .find_map(|a| TcpStream::connect_timeout(&a, timeout).ok().map(|s| (a, s)));
    let (addr, mut tcp) = addr?;
    handshake_and_listen(addr, &mut tcp, config, timeout)
}

fn handshake_and_listen(
    addr: SocketAddr,
    tcp: &mut TcpStream,
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> Option<String> {
    tcp.set_read_timeout(Some(timeout)).ok()?;
    tcp.set_write_timeout(Some(timeout)).ok()?;
    let name = ServerName::IpAddress(addr.ip().into());
    let mut conn = ClientConnection::new(config, name).ok()?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 512];
    // The handshake, then whatever the node sends: session tickets (ignored), an alert, or a
    // close. rustls reports an alert or a bad certificate as an error naming it.
    while Instant::now() < deadline {
        let io = if conn.is_handshaking() {
            conn.complete_io(tcp).map(|_| ())
        } else {
            conn.reader().read(&mut buf).map(|_| ()).or_else(|e| {
                if e.kind() == ErrorKind::WouldBlock {
                    conn.read_tls(tcp).and_then(|n| {
                        if n == 0 {
                            return Err(ErrorKind::UnexpectedEof.into());
                        }
                        conn.process_new_packets()
                            .map(|_| ())
                            .map_err(std::io::Error::other)
                    })
                } else {
                    Err(e)
                }
            })
        };
        if let Err(e) = io {
            return rustls_error(&e);
        }
    }
    None
}

/// The text of a TLS verdict in `e` (an alert received, a certificate refused), if it is one.
fn rustls_error(e: &std::io::Error) -> Option<String> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    match inner {
        rustls::Error::AlertReceived(_) | rustls::Error::InvalidCertificate(_) => {
            Some(inner.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The driver's own text for a connection dropped under its first request (seen from a
    /// mutual-TLS node reached without a client certificate, and from a node killed).
    const DROPPED: &str = "Failed to perform initial cluster metadata fetch: Control connection \
        pool error: The pool is broken; Last connection failed with: Failed to perform a \
        connection setup request. Request: OPTIONS, reason: Connection broken, reason: Failed \
        to send/receive data needed to perform a request via tokio channel. It implies that \
        other half of the channel has been dropped.";

    /// Cassandra's answer to a login while the replicas of system_auth are down, as the driver
    /// words it.
    const AUTH_DOWN: &str = "Control connection pool error: The pool is broken; Last \
        connection failed with: Failed to perform a connection setup request. Request: \
        AUTH_RESPONSE, reason: Authentication failed - Unable to perform authentication: \
        Cannot achieve consistency level LOCAL_QUORUM";

    #[test]
    fn auth_replicas_down_are_waited_for_not_a_wrong_password() {
        assert_eq!(
            classify(AUTH_DOWN, true),
            Verdict::Wait(Some(AUTH_UNAVAILABLE))
        );
        assert_eq!(
            classify(AUTH_DOWN, false),
            Verdict::Wait(Some(AUTH_UNAVAILABLE))
        );
        let wrong = "Authentication failed - Provided username cqlpulse and/or password are \
            incorrect";
        assert_eq!(classify(wrong, true), Verdict::Refused(WRONG_LOGIN));
    }

    #[test]
    fn a_dropped_connection_over_tls_is_asked_about_not_refused() {
        assert_eq!(classify(DROPPED, true), Verdict::DroppedOverTls);
        assert_eq!(
            classify(DROPPED, false),
            Verdict::Wait(None),
            "a plain node may be starting"
        );
        assert_eq!(
            classify("Connection refused (os error 111)", true),
            Verdict::Wait(None)
        );
        assert!(matches!(
            classify("received fatal alert: CertificateRequired", true),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn a_probe_of_nothing_listening_is_not_a_refusal() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap().to_string();
        drop(free);
        let roots = rustls::RootCertStore::empty();
        let config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        assert_eq!(
            probe_tls(&[addr], Arc::new(config), Duration::from_secs(1)),
            None
        );
    }
}
