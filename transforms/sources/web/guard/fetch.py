"""A guarded HTTP(S) GET for stages that download files themselves (image-caption pairs, alt-text images).

Every hop (the URL, then each redirect) is checked by the ``AddressPolicy``: the host is resolved
once, every address it has is judged, and the connection goes to the judged address (TLS still
checks the certificate against the host name), so a DNS answer that changes between check and
connect reaches nothing. Bytes, redirects and time are capped: the whole fetch, redirects
included, has one deadline, and a slow drip cannot hold a thread past it. Failures are
``FetchError``s with a reason code and whether trying again could help (``transient``).
"""

from __future__ import annotations

import dataclasses
import http.client
import ssl
import time
import urllib.parse

from vlcurate.transforms.sources.web.guard.policy import AddressPolicy, Blocked, Unreachable
from vlcurate.transforms.sources.web.guard.proxy import _connect

_REDIRECTS = (301, 302, 303, 307, 308)
# Statuses worth another try (the server is busy or briefly broken); any other 4xx/5xx is final.
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_CHUNK = 65536
_TLS = ssl.create_default_context()  # loading the CA store costs milliseconds: once per process


@dataclasses.dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 16 * 1024 * 1024
    timeout_s: float = 20.0  # the whole fetch, redirects included
    max_redirects: int = 5
    retries: int = 2  # further tries after a transient failure
    backoff_s: float = 0.5  # before try n+1: backoff_s * 2**n
    user_agent: str = "vlcurate (+https://github.com/vlcurate)"

    def __post_init__(self):
        if self.max_bytes < 1 or self.timeout_s <= 0 or self.max_redirects < 0 or self.retries < 0 \
                or self.backoff_s < 0:
            raise ValueError("fetch limits must be positive (retries, redirects and backoff: >= 0)")


@dataclasses.dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int
    headers: tuple[tuple[str, str], ...]  # (lowercased name, value), in the server's order
    body: bytes

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


class FetchError(Exception):
    """A download that failed: ``reason`` is a reject code, ``transient`` says whether to try again."""

    def __init__(self, reason: str, detail: str, transient: bool = False):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.transient = reason, detail, transient


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to an address the policy judged, whatever the name resolves to now."""

    def __init__(self, host: str, port: int, ip: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self):
        # Kept beside ``sock``, which http.client drops once a response says Connection: close.
        self.sock = self.pinned = _connect(self._ip, self.port, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, ip: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=_TLS)
        self._ip = ip

    def connect(self):
        # The certificate is checked against the URL's host name (SNI too), not the address.
        sock = _connect(self._ip, self.port, self.timeout)
        self.sock = self.pinned = self._context.wrap_socket(sock, server_hostname=self.host)


def fetch(url: str, policy: AddressPolicy, limits: FetchLimits = FetchLimits(), sleep=time.sleep) -> Fetched:
    """GET ``url`` within ``limits``, trying again with backoff after transient failures only."""
    for attempt in range(limits.retries + 1):
        try:
            return fetch_once(url, policy, limits)
        except FetchError as error:
            if not error.transient or attempt == limits.retries:
                raise
        sleep(limits.backoff_s * 2 ** attempt)
    raise AssertionError("unreachable")


def fetch_once(url: str, policy: AddressPolicy, limits: FetchLimits) -> Fetched:
    deadline = time.monotonic() + limits.timeout_s
    for _ in range(limits.max_redirects + 1):
        status, headers, body, location = _get(url, policy, limits, deadline)
        if location is None:
            if status >= 400:
                raise FetchError("http_error", f"HTTP {status}", transient=status in _TRANSIENT_STATUSES)
            return Fetched(url, status, headers, body)
        url = urllib.parse.urljoin(url, location)
    raise FetchError("too_many_redirects", f"more than {limits.max_redirects} redirects")


def _get(url: str, policy: AddressPolicy, limits: FetchLimits, deadline: float):
    """One request: (status, headers, body, redirect location or None)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError("url_blocked", f"scheme {scheme or '(none)'!r} is not http or https")
    try:
        host, port = parts.hostname, parts.port or (443 if scheme == "https" else 80)
    except ValueError as error:  # a port that is not a number
        raise FetchError("bad_input", f"{url[:200]!r}: {error}") from None
    if not host:
        raise FetchError("bad_input", f"{url[:200]!r} has no host")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
        ip, port = policy.resolve(host, port)
    except (UnicodeError, Blocked) as error:
        raise FetchError("url_blocked", getattr(error, "detail", str(error))) from None
    except Unreachable as error:
        raise FetchError("download_error", error.detail) from None
    kind = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    connection = kind(host, port, ip, timeout=_left(deadline, limits))
    try:
        path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        connection.request("GET", path, headers={"User-Agent": limits.user_agent, "Accept": "image/*,*/*;q=0.5",
                                                 "Accept-Encoding": "identity"})
        response = connection.getresponse()
        headers = tuple((name.lower(), value) for name, value in response.getheaders())
        if response.status in _REDIRECTS and response.getheader("location"):
            return response.status, headers, b"", response.getheader("location")
        if response.status >= 400:
            return response.status, headers, b"", None
        declared = response.getheader("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_bytes:
            raise FetchError("file_too_large", f"Content-Length {declared} is over {limits.max_bytes} bytes")
        return response.status, headers, _read(connection, response, limits, deadline), None
    except FetchError:
        raise
    except ssl.SSLError as error:
        raise FetchError("download_error", f"TLS: {error}") from None
    except TimeoutError:
        raise FetchError("timeout", f"no answer within the {limits.timeout_s:g}s download budget",
                         transient=True) from None
    except (http.client.IncompleteRead, ConnectionResetError, ConnectionAbortedError,
            http.client.RemoteDisconnected) as error:
        raise FetchError("download_error", f"{type(error).__name__}: {error}", transient=True) from None
    except (OSError, http.client.HTTPException) as error:
        raise FetchError("download_error", f"{type(error).__name__}: {error}") from None
    finally:
        connection.close()


def _read(connection, response, limits: FetchLimits, deadline: float) -> bytes:
    chunks, size = [], 0
    while True:
        connection.pinned.settimeout(_left(deadline, limits))
        chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limits.max_bytes:
            raise FetchError("file_too_large", f"the body is over {limits.max_bytes} bytes")
        chunks.append(chunk)


def _left(deadline: float, limits: FetchLimits) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError("timeout", f"over the {limits.timeout_s:g}s download budget", transient=True)
    return left
