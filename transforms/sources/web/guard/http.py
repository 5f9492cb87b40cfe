"""The HTTP/1.1 messages of the guard proxy: request heads parsed and rewritten, response heads
followed, short replies. Heads come from a hostile page or server, so parsing is single-pass (no
regex backtracking), size-capped and strict (duplicate Content-Length, or one beside
Transfer-Encoding, is refused as request smuggling).
"""

from __future__ import annotations

import dataclasses
import re
import socket
import time

from vlcurate.transforms.sources.web.guard.policy import split_host_port

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_REQUEST_LINE = re.compile(rf"({_TOKEN}) ([\x21-\x7e]+) (HTTP/1\.[01])")
_NAME = re.compile(_TOKEN)
_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")  # one pass, no backtracking: heads are hostile
_STATUS_LINE = re.compile(r"HTTP/1\.[01] (\d{3})(?: .*)?")
_ABSOLUTE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^#]*)(?:#.*)?")
# Hop-by-hop headers: they describe the browser's connection to us, not ours to the server.
HOP_BY_HOP = frozenset({"proxy-authorization", "proxy-connection", "connection", "keep-alive", "upgrade", "host"})
CHUNK = 65536
_STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 407: "Proxy Authentication Required",
                431: "Request Header Fields Too Large", 502: "Bad Gateway"}


class BadRequest(Exception):
    """The browser sent something that is not an HTTP/1 request head."""


class Refused(Exception):
    """A request the proxy will not carry: (header reason, detail)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclasses.dataclass
class ProxyRequest:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]

    @classmethod
    def parse(cls, head: bytes) -> ProxyRequest:
        lines = head[:-4].decode("latin-1").split("\r\n")
        match = _REQUEST_LINE.fullmatch(lines[0])
        if match is None:
            raise BadRequest(f"not an HTTP/1 request line: {lines[0][:80]!r}")
        headers = []
        for line in lines[1:]:
            # No obs-fold, bare CR/LF or NUL: what we do not parse we must not forward.
            name, colon, value = line.partition(":")
            value = value.strip(" \t")
            if not colon or not _NAME.fullmatch(name) or not _VALUE.fullmatch(value):
                raise BadRequest(f"malformed header line: {line[:80]!r}")
            headers.append((name, value))
        request = cls(match.group(1), match.group(2), match.group(3), headers)
        lengths = set(request.values("content-length"))
        # Framing the server could read differently from the browser (request smuggling): refuse.
        if len(lengths) > 1 or (lengths and not re.fullmatch(r"[0-9]{1,18}", next(iter(lengths)))):
            raise BadRequest("invalid Content-Length")
        if lengths and request.values("transfer-encoding"):
            raise BadRequest("both Content-Length and Transfer-Encoding")
        return request

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]

    def tokens(self, name: str) -> set[str]:
        return {t.strip().lower() for value in self.values(name) for t in value.split(",") if t.strip()}

    @property
    def has_body(self) -> bool:
        return bool(self.values("transfer-encoding")) or any(v != "0" for v in self.values("content-length"))

    @property
    def keep_alive(self) -> bool:
        closing = "close" in self.tokens("connection") | self.tokens("proxy-connection")
        return self.version == "HTTP/1.1" and not closing


def request_target(request: ProxyRequest) -> tuple[str, int, str | None, str]:
    """(host, port, origin-form path or None for CONNECT, "host:port") of what the request asks for."""
    if request.method == "CONNECT":
        authority, path = request.target, None
    else:
        match = _ABSOLUTE.fullmatch(request.target)
        if match is None:
            raise Refused("url_blocked", f"not an absolute http:// URL: {request.target[:100]!r}")
        if match.group(1).lower() != "http":
            raise Refused("url_blocked", f"scheme {match.group(1)[:20]!r} is not carried (https comes as CONNECT)")
        authority, path = match.group(2), match.group(3) or "/"
        path = path if path.startswith("/") else "/" + path
        if ":" not in authority.rsplit("]", 1)[-1]:
            authority += ":80"
    try:
        host, port = split_host_port(authority)
    except ValueError:
        raise Refused("url_blocked", f"not a host:port: {authority[:100]!r}") from None
    return host, port, path, authority


def read_head(sock: socket.socket, buffer: bytes, limit: int, timeout: float) -> tuple[bytes, bytes]:
    """(the request head through its blank line, the bytes after it); OSError if the browser goes."""
    deadline = time.monotonic() + timeout  # for the whole head: a slow drip cannot hold a thread
    try:
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end >= 0 and end + 4 <= limit:
                return buffer[:end + 4], buffer[end + 4:]
            if end >= 0 or len(buffer) > limit:
                raise Refused("head_too_large", f"request head over {limit} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request head timed out")
            sock.settimeout(remaining)
            chunk = sock.recv(CHUNK)
            if not chunk:
                raise ConnectionAbortedError("client closed the connection")
            buffer += chunk
    finally:
        sock.settimeout(timeout)


def origin_head(request: ProxyRequest, path: str, authority: str) -> bytes:
    """The request head for the server: origin-form, our Host, no proxy headers, one request only."""
    upgrade = "upgrade" in request.tokens("connection") and bool(request.values("upgrade"))
    drop = HOP_BY_HOP | (request.tokens("connection") - {"content-length", "transfer-encoding"})
    if upgrade:  # websockets: the handshake needs its Upgrade and Connection: Upgrade
        drop = drop - {"upgrade"}
    host = authority[:-3] if authority.endswith(":80") else authority
    lines = [f"{request.method} {path} {request.version}", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in request.headers if name.lower() not in drop]
    lines.append("Connection: Upgrade" if upgrade else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class ResponseHeads:
    """Passes the server's response through, adding Connection: close to its final head.

    The server closes after one response (we asked it to); the browser must not reuse the
    connection either, or its next request, for any host, would reach this server unchecked.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.buffer = b""
        self.passing = False
        self.sent = False

    def feed(self, data: bytes) -> bytes:
        if self.passing:
            return data
        self.buffer += data
        out = []
        while not self.passing:
            ends = [i + len(t) for t in (b"\r\n\r\n", b"\n\n") if (i := self.buffer.find(t)) >= 0]
            if not ends:
                if len(self.buffer) > self.limit:
                    raise Refused("bad_gateway", f"response head over {self.limit} bytes")
                break
            head, self.buffer = self.buffer[:min(ends)], self.buffer[min(ends):]
            lines = re.split(r"\r?\n", head.decode("latin-1").rstrip("\r\n"))
            status = _STATUS_LINE.fullmatch(lines[0])
            if status is None or any(":" not in line or line[0] in " \t" for line in lines[1:]):
                raise Refused("bad_gateway", f"not an HTTP/1 response: {lines[0][:80]!r}")
            code = int(status.group(1))
            if code >= 200 or code == 101:  # other 1xx are interim; 101 switches protocols as it is
                self.passing = True
                if code != 101:
                    kept = [line for line in lines[1:] if line.split(":", 1)[0].strip().lower()
                            not in ("connection", "keep-alive", "proxy-connection")]
                    head = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
            out += [head, self.buffer] if self.passing else [head]
        self.buffer = b"" if self.passing else self.buffer
        data = b"".join(out)
        self.sent = self.sent or bool(data)
        return data


def reply(sock: socket.socket, status: int, reason: str = "", keep_alive: bool = False) -> None:
    """A response of our own. The body is generic: a page's screenshot must not show our DNS answers."""
    body = f"vlcurate proxy: {status} {_STATUS_TEXT[status]}{' (' + reason + ')' if reason else ''}\n".encode()
    lines = [f"HTTP/1.1 {status} {_STATUS_TEXT[status]}", "Content-Type: text/plain; charset=utf-8",
             f"Content-Length: {len(body)}", "Connection: " + ("keep-alive" if keep_alive else "close")]
    if status == 403:
        lines.append(f"X-Vlcurate-Blocked: {reason}")
    if status == 407:
        lines.append('Proxy-Authenticate: Basic realm="vlcurate"')
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body)
    except OSError:
        pass
