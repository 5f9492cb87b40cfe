"""The network guard: which addresses are public, the address policy, and the proxy end to end.

Every socket here is on 127.0.0.1. Blocked targets (10.0.0.1, 169.254.169.254, ...) are refused
before any connection, which is what the tests check; "public" addresses are only ever checked as
literals, never connected to. A canary listener on loopback, not on the allow list, counts every
connection it accepts: it must see none.
"""

from __future__ import annotations

import base64
import http.server
import ipaddress
import socket
import threading
import time

import pytest

from vlcurate.transforms.sources.web.guard import proxy as net_guard
from vlcurate.transforms.sources.web.guard.proxy import GuardProxy
from vlcurate.transforms.sources.web.guard.policy import AddressPolicy, Blocked, Unreachable, is_public

TIMEOUT = 5.0


# --- is_public and the policy, on literals -------------------------------------------------------

@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True),
    ("2001:4860:4860::8888", True),
    ("::ffff:8.8.8.8", True),  # mapped, NAT64 and 6to4 of a public IPv4 are public
    ("64:ff9b::808:808", True),
    ("2002:808:808::1", True),
    ("2001:0:808:808::fefe:fefe", True),  # Teredo: server 8.8.8.8, client 1.1.1.1
    ("127.0.0.1", False),
    ("10.0.0.1", False),
    ("172.16.5.4", False),
    ("192.168.1.1", False),
    ("169.254.169.254", False),
    ("100.64.0.1", False),
    ("0.0.0.0", False),
    ("224.0.0.1", False),
    ("255.255.255.255", False),
    ("240.0.0.1", False),
    ("192.0.2.1", False),
    ("198.18.0.1", False),
    ("::1", False),
    ("::", False),
    ("fe80::1", False),
    ("fec0::1", False),
    ("fc00::1", False),
    ("ff02::1", False),
    ("ff0e::1", False),
    ("2001:db8::1", False),
    ("::127.0.0.1", False),  # IPv4-compatible (deprecated)
    ("::ffff:127.0.0.1", False),
    ("::ffff:10.0.0.1", False),
    ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
    ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
    ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
    ("2001:0:808:808::f5ff:fffe", False),  # Teredo, client 10.0.0.1
    ("2001:0:a00:1::fefe:fefe", False),  # Teredo, server 10.0.0.1
])
def test_is_public(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize("host", [
    "2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001", "017700000001", "127.0.0.1.",
    "[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "[::1]", "[::]", "0.0.0.0", "localhost", "LocalHost",
    "169.254.169.254", "10.0.0.1", "[64:ff9b::7f00:1]",
])
def test_resolve_blocks_loopback_and_private_in_any_notation(host):
    policy = AddressPolicy.from_strings(["127.0.0.1:4000"])
    with pytest.raises(Blocked) as caught:
        policy.resolve(host, 4001)
    assert caught.value.reason == "url_blocked"
    assert host.strip("[]") in caught.value.detail and "neither public nor allowed" in caught.value.detail


@pytest.mark.parametrize("host", ["256.1.1.1", "1.2.3.4.5", "0x", "a b", "ex ample.com", "", "[nope]", "bad\x00host"])
def test_resolve_blocks_malformed_hosts_without_asking_dns(host, monkeypatch):
    monkeypatch.setattr(net_guard.socket, "getaddrinfo", _no_dns)
    with pytest.raises(Blocked):
        AddressPolicy().resolve(host, 80)


def test_allowed_pair_passes_only_on_its_port():
    policy = AddressPolicy.from_strings(["127.0.0.1:4000", "[::1]:4002"])
    assert policy.resolve("127.0.0.1", 4000) == ("127.0.0.1", 4000)
    assert policy.resolve("[::1]", 4002) == ("::1", 4002)
    for host, port in [("127.0.0.1", 4001), ("127.0.0.2", 4000), ("::1", 4000), ("::ffff:127.0.0.1", 4000)]:
        with pytest.raises(Blocked):
            policy.resolve(host, port)
    assert AddressPolicy().resolve("8.8.8.8", 443) == ("8.8.8.8", 443)
    with pytest.raises(Blocked):
        AddressPolicy().resolve("8.8.8.8", 0)


def test_resolve_checks_every_address_a_name_has(monkeypatch):
    answers = {
        "mixed.test": ["8.8.8.8", "10.0.0.1"],
        "mixed6.test": ["2001:4860:4860::8888", "::ffff:127.0.0.1"],
        "public.test": ["8.8.8.8", "2001:4860:4860::8888"],
    }
    monkeypatch.setattr(net_guard.socket, "getaddrinfo", _fake_dns(answers))
    policy = AddressPolicy()
    for name in ("mixed.test", "mixed6.test"):
        with pytest.raises(Blocked) as caught:
            policy.resolve(name, 443)
        assert name in caught.value.detail
    assert policy.resolve("public.test", 443) == ("8.8.8.8", 443)
    with pytest.raises(Unreachable) as caught:
        policy.resolve("nowhere.test", 443)
    assert caught.value.reason == "network_error"


def test_from_strings_parses_and_resolves_once(monkeypatch):
    monkeypatch.setattr(net_guard.socket, "getaddrinfo", _fake_dns({"pair.test": ["127.0.0.1", "::1"]}))
    policy = AddressPolicy.from_strings(["127.0.0.1:80", "[::1]:8080", "pair.test:9000", "0x7f.1:81"])
    assert policy.allow == {("127.0.0.1", 80), ("::1", 8080), ("127.0.0.1", 9000), ("::1", 9000), ("127.0.0.1", 81)}
    assert AddressPolicy(frozenset({("0:0::1", 80)})).allow == {("::1", 80)}
    for bad in ["127.0.0.1", "::1:80", "[::1]", "host:0", "host:70000", ":80", "[zz]:80", "", "a:b:80",
                "nowhere.test:80"]:
        with pytest.raises(ValueError):
            AddressPolicy.from_strings([bad])
    with pytest.raises(ValueError):
        AddressPolicy.from_strings("127.0.0.1:80")
    with pytest.raises(ValueError):
        AddressPolicy(frozenset({("not an ip", 80)}))


def _fake_dns(answers):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            if isinstance(host, str) and host.endswith(".test"):
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0))
                for ip in answers[host]]
    return getaddrinfo


def _no_dns(*args, **kwargs):
    raise AssertionError(f"unexpected DNS lookup {args!r}")


# --- servers on loopback -------------------------------------------------------------------------

class _Upstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.seen.append((self.command, self.path, list(self.headers.items())))
        body = b"x" * 200_000 if self.path == "/big" else b"hello from upstream"
        self._send(body)

    def do_POST(self):
        self.server.seen.append((self.command, self.path, list(self.headers.items())))
        self._send(self.rfile.read(int(self.headers["Content-Length"])))

    def _send(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "keep-alive")  # the proxy must turn this into close
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the proxy cuts connections on purpose (budgets)


class _Listener:
    """A loopback TCP listener that runs ``handle(conn)`` per accepted connection and counts them."""

    def __init__(self, handle=None):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.heads = []
        self._handle = handle
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self._handle is None:
                conn.close()
            else:
                threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        with conn:
            conn.settimeout(TIMEOUT)
            try:
                self._handle(self, conn)
            except OSError:
                pass

    def close(self):
        self.sock.close()


def _websocket_echo(listener, conn):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            return
        head += chunk
    listener.heads.append(head)
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    while data := conn.recv(4096):
        conn.sendall(data)


def _silent(listener, conn):
    conn.recv(4096)
    time.sleep(3)


@pytest.fixture(scope="module")
def upstream():
    server = _QuietServer(("127.0.0.1", 0), _Upstream)
    server.seen = []
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def canary():
    listener = _Listener()
    socket.create_connection(("127.0.0.1", listener.port), timeout=TIMEOUT).close()
    deadline = time.monotonic() + TIMEOUT
    while listener.accepted == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert listener.accepted == 1  # it does count what reaches it
    listener.accepted = 0
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def echo():
    listener = _Listener(_websocket_echo)
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def proxy(upstream, echo):
    allowed = [f"127.0.0.1:{upstream.server_address[1]}", f"127.0.0.1:{echo.port}"]
    with GuardProxy(AddressPolicy.from_strings(allowed), idle_timeout=TIMEOUT) as guard:
        yield guard


@pytest.fixture
def session(proxy, canary):
    opened = proxy.open_session(max_bytes=10_000_000)
    yield opened
    proxy.close_session(opened)
    assert canary.accepted == 0, "a blocked target was connected to"


# --- a raw HTTP client ---------------------------------------------------------------------------

def _connect(proxy):
    port = int(proxy.server.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def _auth(session):
    token = base64.b64encode(f"{session.username}:{session.password}".encode()).decode()
    return f"Proxy-Authorization: Basic {token}\r\n"


def _read_response(sock):
    """(status, lower-cased headers, body); the body by Content-Length, else to EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers["content-length"]) if "content-length" in headers else None
    try:
        while length is None or len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except ConnectionResetError:
        pass
    return int(lines[0].split()[1]), headers, body


def _exchange(proxy, raw: bytes):
    with _connect(proxy) as sock:
        sock.sendall(raw)
        return _read_response(sock)


def _get(proxy, session, url, extra=""):
    auth = _auth(session) if session is not None else ""
    return _exchange(proxy, f"GET {url} HTTP/1.1\r\nHost: x\r\n{auth}{extra}\r\n".encode())


# --- the proxy -----------------------------------------------------------------------------------

def test_get_through_the_proxy(proxy, session, upstream):
    port = upstream.server_address[1]
    url = f"http://127.0.0.1:{port}/hello?x=1"
    status, headers, body = _get(proxy, session, url, "Proxy-Connection: keep-alive\r\n")
    assert (status, body) == (200, b"hello from upstream")
    assert headers["connection"] == "close"  # the browser may not reuse a connection to this server
    method, path, sent = upstream.seen[-1]
    names = {name.lower(): value for name, value in sent}
    assert (method, path) == ("GET", "/hello?x=1")
    assert names["host"] == f"127.0.0.1:{port}" and names["connection"] == "close"
    assert "proxy-authorization" not in names and "proxy-connection" not in names
    assert session.requests == 1 and session.bytes_received > len(body) and not session.over_budget


def test_credentials_are_required(proxy, session, upstream):
    url = f"http://127.0.0.1:{upstream.server_address[1]}/hello"
    status, headers, _ = _get(proxy, None, url)
    assert status == 407 and headers["proxy-authenticate"] == 'Basic realm="vlcurate"'
    wrong = base64.b64encode(f"{session.username}:nope".encode()).decode()
    assert _get(proxy, None, url, f"Proxy-Authorization: Basic {wrong}\r\n")[0] == 407
    assert _get(proxy, None, url, "Proxy-Authorization: Basic %%%\r\n")[0] == 407
    # As Chromium does: the 407 keeps the connection, the retry on it carries the credentials.
    with _connect(proxy) as sock:
        sock.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert _read_response(sock)[0] == 407
        sock.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n{_auth(session)}\r\n".encode())
        assert _read_response(sock)[:3:2] == (200, b"hello from upstream")
    closed = proxy.open_session(1000)
    proxy.close_session(closed)
    assert _get(proxy, closed, url)[0] == 407
    assert session.requests == 1


def test_blocked_targets_are_refused_before_any_connection(proxy, session, canary, upstream):
    port = canary.port
    requests = [
        f"GET http://localhost:{port}/ HTTP/1.1",
        f"GET http://2130706433:{port}/ HTTP/1.1",
        f"GET http://0x7f.1:{port}/ HTTP/1.1",
        f"GET http://[::ffff:127.0.0.1]:{port}/ HTTP/1.1",
        f"GET http://127.0.0.1:{port}/ HTTP/1.1",
        f"GET http://user@127.0.0.1:{upstream.server_address[1]}/ HTTP/1.1",
        f"POST http://127.0.0.1:{port}/ HTTP/1.1",
        f"CONNECT 127.0.0.1:{port} HTTP/1.1",
        f"CONNECT localhost:{port} HTTP/1.1",
        "CONNECT 169.254.169.254:80 HTTP/1.1",
        "CONNECT 10.0.0.1:443 HTTP/1.1",
        "CONNECT [fd00::1]:443 HTTP/1.1",
        "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1",
        f"GET https://127.0.0.1:{upstream.server_address[1]}/ HTTP/1.1",  # https comes as CONNECT only
        f"GET ftp://127.0.0.1:{upstream.server_address[1]}/ HTTP/1.1",
        "GET /hello HTTP/1.1",  # origin-form: not a proxy request
        "CONNECT 127.0.0.1 HTTP/1.1",
    ]
    for line in requests:
        status, headers, body = _exchange(proxy, f"{line}\r\nHost: x\r\n{_auth(session)}\r\n".encode())
        assert status == 403, line
        assert headers["x-vlcurate-blocked"] == "url_blocked", line
        assert b"127.0.0.1" not in body  # the page (and its screenshot) learns nothing of our DNS
    blocked = session.blocked
    assert len(blocked) == len(requests)
    assert blocked[0][0] == f"localhost:{port}" and "127.0.0.1" in blocked[0][1]
    assert ("10.0.0.1:443" in [target for target, _ in blocked])
    assert session.requests == 0 and session.bytes_received == 0
    assert canary.accepted == 0


def test_connect_tunnel(proxy, session, upstream):
    port = upstream.server_address[1]
    with _connect(proxy) as sock:
        sock.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{_auth(session)}\r\n".encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(1)
        assert reply == b"HTTP/1.1 200 Connection established\r\n\r\n"
        sock.sendall(b"GET /tunnelled HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status, headers, body = _read_response(sock)
    assert (status, body) == (200, b"hello from upstream")
    assert upstream.seen[-1][1] == "/tunnelled"
    assert session.requests == 1 and session.bytes_received > len(body)


def test_websocket_upgrade_over_plain_http(proxy, session, echo):
    with _connect(proxy) as sock:
        sock.sendall((f"GET http://127.0.0.1:{echo.port}/chat HTTP/1.1\r\nHost: 127.0.0.1:{echo.port}\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                      f"{_auth(session)}\r\n").encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(1)
        assert reply.startswith(b"HTTP/1.1 101 ") and b"Connection: Upgrade" in reply
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
    head = echo.heads[-1].decode()
    assert head.startswith("GET /chat HTTP/1.1\r\n") and "Connection: Upgrade" in head
    assert "Upgrade: websocket" in head and "Proxy-Authorization" not in head


def _open_tunnel(proxy, session, port):
    sock = _connect(proxy)
    sock.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n{_auth(session)}\r\n".encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(1)
    assert reply.startswith(b"HTTP/1.1 200 ")
    sock.sendall(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(1)
    sock.sendall(b"ping")
    assert sock.recv(4) == b"ping"
    return sock


def test_byte_budget_cuts_every_connection_of_the_session(proxy, canary, upstream, echo):
    session = proxy.open_session(max_bytes=50_000)
    try:
        tunnel = _open_tunnel(proxy, session, echo.port)  # a live websocket of the same page
        status, _, body = _get(proxy, session, f"http://127.0.0.1:{upstream.server_address[1]}/big")
        assert status == 200 and len(body) <= 50_000  # cut: 200 KB were on offer
        assert session.over_budget and session.bytes_received > 50_000
        with tunnel:
            assert tunnel.recv(10) == b""  # the other connection was cut too
        status, headers, _ = _get(proxy, session, f"http://127.0.0.1:{upstream.server_address[1]}/hello")
        assert status == 403 and headers["x-vlcurate-blocked"] == "over_budget"
        assert "budget" in session.blocked[-1][1]
        assert session.requests == 2
    finally:
        proxy.close_session(session)


def test_request_body_passes_through(proxy, session, upstream):
    body = bytes(range(256)) * 1200  # 300 KB: more than one recv, more than a socket buffer
    with _connect(proxy) as sock:
        sock.sendall((f"POST http://127.0.0.1:{upstream.server_address[1]}/echo HTTP/1.1\r\nHost: x\r\n"
                      f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
                      f"{_auth(session)}\r\n").encode() + body)
        status, _, echoed = _read_response(sock)
    assert status == 200 and echoed == body


def test_malformed_requests_get_400_and_the_proxy_keeps_serving(proxy, session, upstream):
    for raw in [
        b"THIS IS NOT HTTP\r\n\r\n",
        b"GET http://127.0.0.1/ HTTP/2.0\r\n\r\n",
        b"GET http://127.0.0.1/ HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"GET http://127.0.0.1/ HTTP/1.1\r\nX-Fold: a\r\n b\r\n\r\n",
        b"POST http://127.0.0.1/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST http://127.0.0.1/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello
        b"GET http://127.0.0.1/ HTTP/1.1\r\nX-A:" + b" \t" * 30_000 + b"\x01\r\n\r\n",  # no regex backtracking
    ]:
        started = time.monotonic()
        assert _exchange(proxy, raw)[0] == 400, raw[:80]
        assert time.monotonic() - started < 5  # refused at once; backtracking would take minutes
    huge = b"GET http://127.0.0.1/ HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    assert _exchange(proxy, huge)[0] == 431
    status, _, body = _get(proxy, session, f"http://127.0.0.1:{upstream.server_address[1]}/hello")
    assert (status, body) == (200, b"hello from upstream")


def test_unreachable_targets_get_502(proxy, session, monkeypatch):
    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    guard = GuardProxy(AddressPolicy.from_strings([f"127.0.0.1:{port}"]), idle_timeout=TIMEOUT).start()
    try:
        closed = guard.open_session(1000)
        assert _get(guard, closed, f"http://127.0.0.1:{port}/")[0] == 502
        monkeypatch.setattr(net_guard.socket, "getaddrinfo", _fake_dns({}))
        assert _get(guard, closed, "http://nowhere.test/")[0] == 502
        assert [target for target, _ in closed.failed] == [f"127.0.0.1:{port}", "nowhere.test:80"]
        assert closed.blocked == [] and closed.requests == 0
    finally:
        guard.close()


def test_the_checked_address_is_the_one_connected_to(proxy, session, upstream, monkeypatch):
    # DNS rebinding: the first answer passes, a second would not. There must be no second lookup.
    calls = []
    port = upstream.server_address[1]
    real = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        if host != "rebind.test":
            return real(host, *args, **kwargs)
        calls.append(host)
        ip = "127.0.0.1" if len(calls) == 1 else "10.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(net_guard.socket, "getaddrinfo", rebinding)
    status, _, body = _get(proxy, session, f"http://rebind.test:{port}/rebind")
    assert (status, body) == (200, b"hello from upstream") and calls == ["rebind.test"]
    assert upstream.seen[-1][1] == "/rebind"
    names = {name.lower(): value for name, value in upstream.seen[-1][2]}
    assert names["host"] == f"rebind.test:{port}"


def test_idle_peers_cannot_hold_a_thread():
    silent = _Listener(_silent)
    guard = GuardProxy(AddressPolicy.from_strings([f"127.0.0.1:{silent.port}"]), idle_timeout=0.3).start()
    try:
        session = guard.open_session(1000)
        started = time.monotonic()
        with _connect(guard) as sock:  # a browser that never sends its request
            assert sock.recv(10) == b""
        with _connect(guard) as sock:  # a server that never answers
            sock.sendall(f"GET http://127.0.0.1:{silent.port}/ HTTP/1.1\r\n{_auth(session)}\r\n".encode())
            assert sock.recv(10) == b""
        assert time.monotonic() - started < 8  # both cut by the 1 s idle timeout, not left hanging
    finally:
        guard.close()
        silent.close()


def test_close_session_and_close_cut_live_connections(upstream, echo):
    guard = GuardProxy(AddressPolicy.from_strings([f"127.0.0.1:{echo.port}"]), idle_timeout=TIMEOUT).start()
    session = guard.open_session(1_000_000)
    tunnel = _open_tunnel(guard, session, echo.port)
    with tunnel:
        guard.close_session(session)
        assert tunnel.recv(10) == b""
    other = guard.open_session(1_000_000)
    tunnel = _open_tunnel(guard, other, echo.port)
    port = int(guard.server.rsplit(":", 1)[1])
    with tunnel:
        guard.close()
        assert tunnel.recv(10) == b""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
    with pytest.raises(RuntimeError):
        guard.server


def test_offline_policy_reaches_allowed_pairs_only_and_looks_no_name_up(monkeypatch):
    looked_up = []
    monkeypatch.setattr(net_guard.socket, "getaddrinfo", lambda *args, **kw: looked_up.append(args) or [])
    policy = AddressPolicy.from_strings(["127.0.0.1:8080"], public=False)
    assert policy.resolve("127.0.0.1", 8080) == ("127.0.0.1", 8080)
    for host, port in (("8.8.8.8", 443), ("127.0.0.1", 8081), ("2130706433", 8081), ("[2001:4860:4860::8888]", 443)):
        with pytest.raises(Blocked, match="offline"):
            policy.resolve(host, port)
    for name in ("content-autofill.googleapis.com", "example.com", "localhost"):
        with pytest.raises(Blocked, match="offline no name is looked up"):
            policy.resolve(name, 443)
    assert looked_up == []
