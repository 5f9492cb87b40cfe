"""The web renderer's network guard: a forward proxy that lets a browser reach public addresses only.

A web page is untrusted input. Left alone, Chromium would follow it to http://127.0.0.1:8080/admin,
to http://169.254.169.254/ (cloud metadata), to a printer on 192.168.0.9, or to a name whose DNS
answer points at any of them, and the screenshot would carry what it found into the shards.
Checking the page's URL before ``page.goto`` is not enough: redirects, subresources, iframes,
fetch() and websockets open connections the stage never sees, and a name's DNS answer can change
between a check and the browser's own lookup (DNS rebinding).

So the browser gets no network of its own. Every connection goes through ``GuardProxy``: HTTPS and
websockets as CONNECT, plain HTTP in absolute form. The proxy resolves the host itself, checks
*every* address the name resolves to (``AddressPolicy``) and connects to the very address it
checked, so Chromium's own DNS and connections never see a private address. Each page gets a
``Session`` (its own proxy credentials) that counts the bytes it downloads, cuts it off over its
budget and records what was refused, so the stage can write a reject with the reason.

Launching Chromium for it (Playwright):
- ``browser.new_context(proxy={"server": proxy.server, "username": s.username, "password":
  s.password})``. Chromium sends loopback around any proxy unless the bypass list holds
  ``<-loopback>``: launch with ``--proxy-bypass-list=<-loopback>`` and never bypass anything else
  (Playwright adds it itself, but not when ``bypass`` names a loopback host or when
  PLAYWRIGHT_DISABLE_FORCED_CHROMIUM_PROXIED_LOOPBACK is set).
- ``--force-webrtc-ip-handling-policy=disable_non_proxied_udp``: WebRTC would otherwise send UDP
  (STUN, to any address) around the proxy.
"""

from __future__ import annotations

import base64
import logging
import secrets
import selectors
import socket
import socketserver
import threading
import time

from vlcurate.transforms.sources.web.guard.http import (
    BadRequest, CHUNK, ProxyRequest, Refused, ResponseHeads, origin_head, read_head, reply, request_target,
)
from vlcurate.transforms.sources.web.guard.policy import AddressPolicy, Blocked, Unreachable

_LOG = logging.getLogger(__name__)

class Session:
    """One page's use of the proxy: its credentials, its byte budget, what it was refused. Thread-safe."""

    def __init__(self, max_bytes: int):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be a non-negative integer, got {max_bytes!r}")
        self.username = secrets.token_hex(16)
        self.password = secrets.token_hex(16)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._bytes = 0
        self._over = False
        self._closed = False
        self._requests = 0
        self._blocked: list[tuple[str, str]] = []
        self._failed: list[tuple[str, str]] = []
        self._live: set[socket.socket] = set()
        self._last_activity = time.monotonic()

    @property
    def quiet_for(self) -> float:
        """Seconds since the session last opened a connection or received a byte."""
        with self._lock:
            return time.monotonic() - self._last_activity

    @property
    def bytes_received(self) -> int:
        """Bytes from upstream servers, over all of the session's connections."""
        with self._lock:
            return self._bytes

    @property
    def over_budget(self) -> bool:
        with self._lock:
            return self._over

    @property
    def requests(self) -> int:
        """Connections the proxy opened to upstream servers for this session."""
        with self._lock:
            return self._requests

    @property
    def blocked(self) -> list[tuple[str, str]]:
        """(target "host:port", detail) for every connection refused (403)."""
        with self._lock:
            return list(self._blocked)

    @property
    def failed(self) -> list[tuple[str, str]]:
        """(target "host:port", detail) for every connection that failed (502): DNS, refused, timeout."""
        with self._lock:
            return list(self._failed)

    def _record_blocked(self, target: str, detail: str) -> None:
        with self._lock:
            self._blocked.append((target, detail))

    def _record_failed(self, target: str, detail: str) -> None:
        with self._lock:
            self._failed.append((target, detail))

    def _attach(self, *sockets: socket.socket) -> bool:
        with self._lock:
            if self._over or self._closed:
                return False
            self._live.update(sockets)
            self._requests += 1
            self._last_activity = time.monotonic()
            return True

    def _detach(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._live.difference_update(sockets)

    def _count(self, received: int, own: tuple[socket.socket, ...]) -> int:
        """Add upstream bytes; how many of them fit the budget. Over it, the session's other
        connections are cut here and the caller, after passing on what fits, ends ``own``."""
        with self._lock:
            fits = min(received, max(0, self.max_bytes - self._bytes))
            self._bytes += received
            self._last_activity = time.monotonic()
            if fits == received:
                return fits
            cut, self._over = (not self._over), True
            live = [sock for sock in self._live if sock not in own] if cut else []
        for sock in live:
            _shutdown(sock)
        return fits

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            live = list(self._live)
        for sock in live:
            _shutdown(sock)


def _shutdown(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    # Only shutdown from another thread: it wakes the thread that owns the socket, which closes it.
    try:
        sock.shutdown(how)
    except OSError:
        pass


def _connect(ip: str, port: int, timeout: float) -> socket.socket:
    """A connection to this numeric address: AI_NUMERICHOST, so no resolver is asked again."""
    flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    family, kind, proto, _, sockaddr = socket.getaddrinfo(ip, port, type=socket.SOCK_STREAM, flags=flags)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.settimeout(timeout)
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # a page opens many connections at once

    def __init__(self, guard: GuardProxy):
        self.guard = guard
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request, client_address):
        _LOG.exception("net_guard: connection from %s failed", client_address)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.guard._serve(self.request)


class GuardProxy:
    """A forward HTTP proxy on 127.0.0.1 that connects only where its ``AddressPolicy`` allows."""

    def __init__(self, policy: AddressPolicy, *, idle_timeout: float = 30.0, connect_timeout: float = 10.0,
                 max_head_bytes: int = 64 * 1024):
        self.policy = policy
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.max_head_bytes = max_head_bytes
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._clients: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> GuardProxy:
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                            name="net_guard", daemon=True)
            self._thread.start()
        return self

    @property
    def server(self) -> str:
        """The proxy's URL, "http://127.0.0.1:PORT", for Chromium's proxy settings."""
        if self._server is None:
            raise RuntimeError("GuardProxy is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def open_session(self, max_bytes: int) -> Session:
        session = Session(max_bytes)
        with self._lock:
            self._sessions[session.username] = session
        return session

    def close_session(self, session: Session) -> None:
        """Forget the credentials and cut the session's connections; its records stay readable."""
        with self._lock:
            self._sessions.pop(session.username, None)
        session._close()

    def close(self) -> None:
        """Stop listening and cut every connection; sessions' records stay readable."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(5)
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
            clients = list(self._clients)
        for session in sessions:
            session._close()
        for client in clients:
            _shutdown(client)

    def __enter__(self) -> GuardProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _session_for(self, request: ProxyRequest) -> Session | None:
        credentials = request.values("proxy-authorization")
        if len(credentials) != 1:
            return None
        scheme, _, token = credentials[0].partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return None
        with self._lock:
            session = self._sessions.get(username)
        if session is None or not secrets.compare_digest(session.password.encode(), password.encode()):
            return None
        return session

    def _serve(self, client: socket.socket) -> None:
        """One browser connection: requests until one is carried (or refused, closing)."""
        with self._lock:
            if self._server is None:  # closing: close() may have taken its list of clients already
                return
            self._clients.add(client)
        buffered = b""
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                try:
                    head, buffered = read_head(client, buffered, self.max_head_bytes, self.idle_timeout)
                    request = ProxyRequest.parse(head)
                except Refused:
                    return reply(client, 431)
                except BadRequest as error:
                    _LOG.debug("net_guard: bad request: %s", error)
                    return reply(client, 400)
                session = self._session_for(request)
                if session is not None:
                    return self._carry(client, session, request, buffered)
                # Chromium answers 407 with the credentials, on this connection if we keep it.
                keep = request.keep_alive and not request.has_body
                reply(client, 407, keep_alive=keep)
                if not keep:
                    return
        except OSError:  # timeouts, resets: the browser's connection is gone or stuck
            return
        finally:
            with self._lock:
                self._clients.discard(client)

    def _carry(self, client: socket.socket, session: Session, request: ProxyRequest, buffered: bytes) -> None:
        """Check the target, connect to the checked address, and pipe the bytes both ways."""
        target = request.target[:200]
        try:
            host, port, path, authority = request_target(request)
            target = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
            if session.over_budget:
                raise Refused("over_budget", f"the session is over its budget of {session.max_bytes} bytes")
            ip, port = self.policy.resolve(host, port)
        except Refused as error:
            session._record_blocked(target, error.detail)
            return reply(client, 403, error.reason)
        except Blocked as error:
            session._record_blocked(target, error.detail)
            return reply(client, 403, error.reason)
        except Unreachable as error:
            session._record_failed(target, error.detail)
            return reply(client, 502)
        try:
            upstream = _connect(ip, port, self.connect_timeout)
        except OSError as error:
            session._record_failed(target, f"connecting to {ip} port {port}: {error}")
            return reply(client, 502)
        try:
            upstream.settimeout(self.idle_timeout)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not session._attach(client, upstream):
                session._record_blocked(target, "the session is over its budget or closed")
                return reply(client, 403, "over_budget")
            if path is None:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                upstream.sendall(buffered)
                self._pipe(session, client, upstream, None)
            else:
                upstream.sendall(origin_head(request, path, authority) + buffered)
                self._pipe(session, client, upstream, ResponseHeads(self.max_head_bytes))
        except Refused as error:  # the server's answer was not HTTP: nothing of it reached the browser
            session._record_failed(target, error.detail)
            reply(client, 502)
        except OSError:
            pass
        finally:
            session._detach(client, upstream)
            upstream.close()

    def _pipe(self, session: Session, client: socket.socket, upstream: socket.socket,
              response: ResponseHeads | None) -> None:
        """Copy bytes both ways until both sides are done, a side idles out, or the budget is spent."""
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            while peers:
                events = selector.select(self.idle_timeout)
                if not events:
                    return
                for key, _ in events:
                    source = key.fileobj
                    if source not in peers:
                        continue
                    data = source.recv(CHUNK)
                    if not data:
                        if source is upstream and response is not None:
                            if not response.sent:
                                raise Refused("bad_gateway", "the server closed without a response")
                            return  # plain HTTP: the response ends with the server's connection
                        selector.unregister(source)
                        _shutdown(peers.pop(source), socket.SHUT_WR)
                        continue
                    fits = session._count(len(data), (client, upstream)) if source is upstream else len(data)
                    if response is not None and source is upstream:
                        peers[source].sendall(response.feed(data[:fits]))
                    else:
                        peers[source].sendall(data[:fits])
                    if fits < len(data):
                        return  # over the budget: what fitted is passed on, the rest is cut
