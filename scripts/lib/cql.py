#!/usr/bin/python3
"""Runs CQL statements on one node with the DataStax Python driver (Debian's python3-cassandra,
installed by scripts/cassandra): `scripts/cassandra query` and the readiness checks of `start`.

    cql.py HOST PORT TIMEOUT STATEMENT...     ("-" reads one statement from stdin)

Environment:
    CQL_CONSISTENCY   consistency of every statement (default ONE)
    CQL_HEADER=1      print the column names first
    CQL_TLS_CA        PEM file of the CA that signed the node's certificate: speak TLS
    CQL_TLS_CERT, CQL_TLS_KEY   client certificate and key (mutual TLS)
    CQL_USER, CQL_PASSWORD      PasswordAuthenticator credentials
Rows are printed tab-separated; errors go to stderr with exit status 1 (2: cannot connect; 3:
the node answered but refused the login, e.g. while the replicas of system_auth are down).
Every statement goes to HOST itself (a readiness check asks that node, not the cluster).
"""
import os
import ssl
import sys

from cassandra import ConsistencyLevel
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import WhiteListRoundRobinPolicy
from cassandra.query import SimpleStatement, tuple_factory


def fmt(v, nested=False):
    """A value as cqlsh would print it, on one line."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        if nested:
            return "'" + v.replace("'", "''") + "'"
        return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    if isinstance(v, (bytes, bytearray)):
        return "0x" + v.hex()
    if isinstance(v, dict) or hasattr(v, "items"):
        return "{" + ", ".join(f"{fmt(k, True)}: {fmt(x, True)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple, set, frozenset)) or hasattr(v, "__iter__"):
        items = sorted(v) if isinstance(v, (set, frozenset)) else v
        body = ", ".join(fmt(x, True) for x in items)
        return {list: f"[{body}]", tuple: f"({body})"}.get(type(v), "{" + body + "}")
    return str(v)


def ssl_context():
    ca = os.environ.get("CQL_TLS_CA", "")
    if not ca:
        return None
    ctx = ssl.create_default_context(cafile=ca)
    cert, key = os.environ.get("CQL_TLS_CERT", ""), os.environ.get("CQL_TLS_KEY", "")
    if cert:
        ctx.load_cert_chain(cert, key or None)
    return ctx


def main():
    host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    stmts = [sys.stdin.read() if s == "-" else s for s in sys.argv[4:]]
    consistency = ConsistencyLevel.name_to_value[os.environ.get("CQL_CONSISTENCY", "ONE").upper()]
    user = os.environ.get("CQL_USER", "")
    auth = PlainTextAuthProvider(user, os.environ.get("CQL_PASSWORD", "")) if user else None
    ctx = ssl_context()
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]),
                               consistency_level=consistency, request_timeout=timeout,
                               row_factory=tuple_factory)
    cluster = Cluster([host], port=port, auth_provider=auth, connect_timeout=timeout,
                      control_connection_timeout=timeout, protocol_version=4,
                      ssl_context=ctx, ssl_options={"server_hostname": host} if ctx else None,
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                      schema_metadata_enabled=False, token_metadata_enabled=False)
    try:
        session = cluster.connect()
    except NoHostAvailable as e:
        print("cannot connect to %s:%d: %s" % (host, port, e), file=sys.stderr)
        refused = any(isinstance(x, AuthenticationFailed) for x in e.errors.values())
        return 3 if refused else 2
    try:
        for q in stmts:
            result = session.execute(SimpleStatement(q))
            names = result.column_names or []
            if os.environ.get("CQL_HEADER", "") == "1" and names:
                print("\t".join(names))
            for row in result:
                print("\t".join(fmt(v) for v in row))
    except Exception as e:  # the driver's errors have no common base: report any, exit 1
        print("cql: %s" % e, file=sys.stderr)
        return 1
    finally:
        cluster.shutdown()
    sys.stdout.flush()
    return 0


sys.exit(main())
