#!/usr/bin/env python3
"""A minimal CQL native protocol v4 client, standard-library Python only (used by
scripts/cassandra: `query`, and the readiness checks of `start`).

    cql.py HOST PORT TIMEOUT STATEMENT...     ("-" reads one statement from stdin)

Environment:
    CQL_CONSISTENCY   consistency of every statement (default ONE)
    CQL_HEADER=1      print the column names first
    CQL_TLS_CA        PEM file of the CA that signed the node's certificate: speak TLS
    CQL_TLS_CERT, CQL_TLS_KEY   client certificate and key (mutual TLS)
    CQL_USER, CQL_PASSWORD      PasswordAuthenticator credentials
Rows are printed tab-separated; errors go to stderr with exit status 1 (2: cannot connect).
"""
import datetime, decimal, ipaddress, os, socket, ssl, struct, sys, uuid

host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
stmts = [sys.stdin.read() if s == "-" else s for s in sys.argv[4:]]
CONS = {"ANY": 0, "ONE": 1, "TWO": 2, "THREE": 3, "QUORUM": 4, "ALL": 5,
        "LOCAL_QUORUM": 6, "EACH_QUORUM": 7, "SERIAL": 8, "LOCAL_SERIAL": 9,
        "LOCAL_ONE": 10}[os.environ.get("CQL_CONSISTENCY", "ONE").upper()]
HEADER = os.environ.get("CQL_HEADER", "") == "1"


class CqlError(Exception):
    pass


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise CqlError("connection closed by server")
        buf += chunk
    return bytes(buf)


def request(sock, opcode, body):
    """Sends one frame on stream 0; returns (opcode, Reader positioned at the body)."""
    sock.sendall(struct.pack(">BBhBi", 0x04, 0, 0, opcode, len(body)) + body)
    while True:
        _ver, flags, stream, op, length = struct.unpack(">BBhBi", recv_exact(sock, 9))
        r = Reader(recv_exact(sock, length))
        if stream != 0:
            continue
        if flags & 0x01:
            raise CqlError("compressed frame (not negotiated)")
        if flags & 0x02:  # tracing id
            r.take(16)
        if flags & 0x08:  # warnings: [string list]
            for _ in range(r.short()):
                print("cql warning: %s" % r.string(), file=sys.stderr)
        if flags & 0x04:  # custom payload: [bytes map]
            for _ in range(r.short()):
                r.string(), r.bytes()
        return op, r


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, n):
        v = self.d[self.p:self.p + n]
        self.p += n
        return v

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def string(self):
        return self.take(self.short()).decode("utf-8")

    def bytes(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def option(self):
        t = self.short()
        if t == 0x0000:
            return ("custom", self.string())
        if t in (0x0020, 0x0022):
            return (t, self.option())
        if t == 0x0021:
            return (t, self.option(), self.option())
        if t == 0x0030:
            ks, name = self.string(), self.string()
            return (t, [(self.string(), self.option()) for _ in range(self.short())])
        if t == 0x0031:
            return (t, [self.option() for _ in range(self.short())])
        return (t,)


def vint(r):
    first = r.take(1)[0]
    extra = 0
    while extra < 8 and first & (0x80 >> extra):
        extra += 1
    v = first & (0xFF >> extra) if extra < 8 else 0
    for b in r.take(extra):
        v = (v << 8) | b
    return (v >> 1) ^ -(v & 1)  # zig-zag


def fmt(typ, b, nested=False):
    if b is None:
        return "null"
    t = typ[0]
    if t in (0x0001, 0x000D):
        s = b.decode("utf-8")
        if nested:
            return "'" + s.replace("'", "''") + "'"
        return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    if t in (0x0002, 0x0005):
        return str(struct.unpack(">q", b)[0])
    if t == 0x0009:
        return str(struct.unpack(">i", b)[0])
    if t == 0x0013:
        return str(struct.unpack(">h", b)[0])
    if t == 0x0014:
        return str(struct.unpack(">b", b)[0])
    if t == 0x000E:
        return str(int.from_bytes(b, "big", signed=True))
    if t == 0x0006:
        scale = struct.unpack(">i", b[:4])[0]
        return str(decimal.Decimal(int.from_bytes(b[4:], "big", signed=True)).scaleb(-scale))
    if t == 0x0004:
        return "true" if b[0] else "false"
    if t == 0x0007:
        return repr(struct.unpack(">d", b)[0])
    if t == 0x0008:
        return repr(struct.unpack(">f", b)[0])
    if t in (0x000C, 0x000F):
        return str(uuid.UUID(bytes=b))
    if t == 0x0010:
        return str(ipaddress.ip_address(b))
    if t == 0x000B:
        ms = struct.unpack(">q", b)[0]
        ts = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=ms)
        return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if t == 0x0011:
        days = struct.unpack(">I", b)[0] - (1 << 31)
        try:
            return (datetime.date(1970, 1, 1) + datetime.timedelta(days=days)).isoformat()
        except OverflowError:
            return str(days)
    if t == 0x0012:
        ns = struct.unpack(">q", b)[0]
        s, ns = divmod(ns, 10**9)
        return "%02d:%02d:%02d.%09d" % (s // 3600, s // 60 % 60, s % 60, ns)
    if t in (0x0020, 0x0022):
        r = Reader(b)
        items = [fmt(typ[1], r.bytes(), True) for _ in range(r.int())]
        return ("[%s]" if t == 0x0020 else "{%s}") % ", ".join(items)
    if t == 0x0021:
        r = Reader(b)
        items = []
        for _ in range(r.int()):
            k = fmt(typ[1], r.bytes(), True)
            items.append(k + ": " + fmt(typ[2], r.bytes(), True))
        return "{%s}" % ", ".join(items)
    if t == 0x0030:
        r = Reader(b)
        items = []
        for name, ft in typ[1]:
            if r.p >= len(b):
                break
            items.append(name + ": " + fmt(ft, r.bytes(), True))
        return "{%s}" % ", ".join(items)
    if t == 0x0031:
        r = Reader(b)
        return "(%s)" % ", ".join(fmt(ft, r.bytes(), True) for ft in typ[1])
    if t == "custom" and typ[1].endswith("DurationType"):
        r = Reader(b)
        return duration(vint(r), vint(r), vint(r))
    if t == "custom" and typ[1].startswith(MARSHAL + "VectorType("):
        inner, _, n = typ[1][len(MARSHAL + "VectorType("):-1].rpartition(",")
        elem = FIXED.get(inner.strip())
        n = int(n)
        if elem and len(b) == elem[1] * n:
            return "[%s]" % ", ".join(fmt((elem[0],), b[i * elem[1]:(i + 1) * elem[1]], True) for i in range(n))
    return "0x" + b.hex()


MARSHAL = "org.apache.cassandra.db.marshal."
FIXED = {MARSHAL + "FloatType": (0x0008, 4), MARSHAL + "DoubleType": (0x0007, 8),
         MARSHAL + "Int32Type": (0x0009, 4), MARSHAL + "LongType": (0x0002, 8)}


def duration(months, days, nanos):
    if months == days == nanos == 0:
        return "0s"
    sign = "-" if min(months, days, nanos) < 0 else ""
    months, days, nanos = abs(months), abs(days), abs(nanos)
    out = sign
    for value, unit in ((months // 12, "y"), (months % 12, "mo"), (days, "d"),
                        (nanos // 3600000000000, "h"), (nanos // 60000000000 % 60, "m"),
                        (nanos // 1000000000 % 60, "s"), (nanos // 1000000 % 1000, "ms"),
                        (nanos // 1000 % 1000, "us"), (nanos % 1000, "ns")):
        if value:
            out += "%d%s" % (value, unit)
    return out


def run(sock, q):
    body = struct.pack(">i", len(q.encode())) + q.encode() + struct.pack(">HB", CONS, 0)
    op, r = request(sock, 0x07, body)
    if op == 0x00:
        code = r.int()
        raise CqlError("error 0x%04x: %s" % (code, r.string()))
    if op != 0x08:
        raise CqlError("unexpected opcode 0x%02x" % op)
    kind = r.int()
    if kind in (1, 3, 4, 5):  # Void, Set_keyspace, Prepared, Schema_change: nothing to print
        return
    if kind != 2:
        raise CqlError("unexpected result kind %d" % kind)
    flags, ncols = r.int(), r.int()
    if flags & 0x0002:
        r.bytes()
    if flags & 0x0001:
        r.string(), r.string()
    cols = []
    for _ in range(ncols):
        if not flags & 0x0001:
            r.string(), r.string()
        cols.append((r.string(), r.option()))
    out = sys.stdout
    if HEADER:
        out.write("\t".join(c[0] for c in cols) + "\n")
    for _ in range(r.int()):
        out.write("\t".join(fmt(ct, r.bytes()) for _n, ct in cols) + "\n")


def open_socket():
    """Connects, wrapped in TLS when CQL_TLS_CA is set (the node's name is checked)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    ca = os.environ.get("CQL_TLS_CA", "")
    if not ca:
        return sock
    ctx = ssl.create_default_context(cafile=ca)
    cert, key = os.environ.get("CQL_TLS_CERT", ""), os.environ.get("CQL_TLS_KEY", "")
    if cert:
        ctx.load_cert_chain(cert, key or None)
    try:
        return ctx.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


def authenticate(sock, authenticator):
    user = os.environ.get("CQL_USER", "")
    if not user:
        raise CqlError("server requires authentication (%s): set CQL_USER and CQL_PASSWORD" % authenticator)
    token = b"\0" + user.encode() + b"\0" + os.environ.get("CQL_PASSWORD", "").encode()
    op, r = request(sock, 0x0F, struct.pack(">i", len(token)) + token)
    if op == 0x00:
        code = r.int()
        raise CqlError("login as %s: error 0x%04x: %s" % (user, code, r.string()))
    if op != 0x10:
        raise CqlError("login as %s: unexpected opcode 0x%02x" % (user, op))


def main():
    try:
        sock = open_socket()
    except (OSError, ssl.SSLError) as e:
        print("cannot connect to %s:%d: %s" % (host, port, e), file=sys.stderr)
        return 2
    try:
        with sock:
            startup = {"CQL_VERSION": "3.0.0"}
            body = struct.pack(">H", len(startup))
            for k, v in startup.items():
                body += struct.pack(">H", len(k)) + k.encode() + struct.pack(">H", len(v)) + v.encode()
            op, r = request(sock, 0x01, body)
            if op == 0x03:
                authenticate(sock, r.string())
            elif op == 0x00:
                code = r.int()
                raise CqlError("error 0x%04x: %s" % (code, r.string()))
            for q in stmts:
                run(sock, q)
    except (CqlError, OSError) as e:
        print("cql: %s" % e, file=sys.stderr)
        return 1
    sys.stdout.flush()
    return 0


sys.exit(main())
