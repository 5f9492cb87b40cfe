"""One guarded Chromium per process: Playwright, the network guard proxy, folder servers, recycling.

Runs inside an isolated child (transforms/runtime/isolation.py), on that child's only thread, which is
what Playwright's sync API needs (its greenlet is bound to the thread that started it). Every
connection the browser makes goes through ``GuardProxy`` (transforms/sources/web/guard/proxy.py): contexts get
per-page proxy credentials, the browser-wide proxy is a loopback port that refuses every
connection, so traffic outside a context fails closed, and Chromium resolves no names itself.
"""

from __future__ import annotations

import atexit
import functools
import http.server
import logging
import os
import posixpath
import socket
import threading
import urllib.parse

from vlcurate.transforms.sources.web.guard.proxy import AddressPolicy, GuardProxy

_LOG = logging.getLogger(__name__)

# Debian's binary itself, not the /usr/bin/chromium wrapper, which adds flags of its own
# (remote extensions, GPU rasterisation) and exports Google API keys.
CHROMIUM = "/usr/lib/chromium/chromium" if os.path.exists("/usr/lib/chromium/chromium") else "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",  # we run as root in containers; the child process and the proxy are the fence
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-quic",
    "--dns-prefetch-disable",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--font-render-hinting=none",
    "--force-color-profile=srgb",
    # Loopback is not bypassed implicitly, and WebRTC may not send UDP around the proxy.
    "--proxy-bypass-list=<-loopback>",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    # Chromium resolves no name itself (the guard proxy does): no DNS query ever leaves it.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)


class _FolderHandler(http.server.SimpleHTTPRequestHandler):
    """Serves one folder and nothing outside it (no .., no symlinks out, no listings)."""

    def log_message(self, *args):
        pass

    def translate_path(self, path):
        root = os.path.realpath(self.directory)
        relative = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(path).path)).lstrip("/")
        full = os.path.realpath(os.path.join(root, relative))
        if full != root and not full.startswith(root + os.sep):
            return os.path.join(root, ".vlcurate-outside-the-folder")  # answers 404
        return full

    def list_directory(self, path):
        self.send_error(404)
        return None


class FolderServer:
    """A folder of HTML files and their assets over HTTP on loopback, for the renderer only."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)
        handler = functools.partial(_FolderHandler, directory=self.root)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="vlcurate-folder").start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, relative: str) -> str:
        return f"http://127.0.0.1:{self.port}/{urllib.parse.quote(relative)}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class BrowserHost:
    """Playwright, one Chromium, its guard proxy and the folder servers, restarted as needed."""

    def __init__(self, allow_hosts: tuple[str, ...], recycle_pages: int, offline: bool = False,
                 executable: str = CHROMIUM):
        self._allow_hosts = tuple(allow_hosts)
        self._offline = offline
        self._recycle_pages = recycle_pages
        self._executable = executable
        self._folders: dict[str, FolderServer] = {}
        self._playwright = None
        self._browser = None
        self._proxy = None
        self._pages = 0
        # The browser-wide proxy: a loopback port that is bound but never listens, so traffic
        # outside a page's context (Chromium's own update and sync calls) is refused at once,
        # without a DNS lookup. Only the per-context guard proxy carries anything.
        self._dead_end = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._dead_end.bind(("127.0.0.1", 0))

    def folder_url(self, root: str, relative: str) -> str:
        """The URL of ``relative`` under ``root``; a new folder restarts the proxy to allow it."""
        root = os.path.realpath(root)
        if root not in self._folders:
            self._folders[root] = FolderServer(root)
            self._stop_proxy()
        return self._folders[root].url(relative)

    def browser_and_proxy(self):
        """The running browser and proxy, launched or relaunched when due."""
        if self._browser is not None and (not self._browser.is_connected() or self._pages >= self._recycle_pages):
            self.stop_browser()
        if self._proxy is None:
            allowed = list(self._allow_hosts) + [f"127.0.0.1:{f.port}" for f in self._folders.values()]
            self._proxy = GuardProxy(AddressPolicy.from_strings(allowed, public=not self._offline))
            self._proxy.start()
        if self._browser is None:
            if self._playwright is None:
                from playwright.sync_api import sync_playwright

                self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=self._executable,
                args=list(CHROMIUM_ARGS),
                proxy={"server": f"http://127.0.0.1:{self._dead_end.getsockname()[1]}"},
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
            self._pages = 0
        self._pages += 1
        return self._browser, self._proxy

    def stop_browser(self) -> None:
        """Close the browser (after a crash, a hang or N pages); the next page launches a new one."""
        browser, self._browser = self._browser, None
        if browser is not None:
            try:
                browser.close()
            except Exception as error:  # a crashed browser may not close cleanly
                _LOG.warning("closing the browser failed: %s", error)

    def _stop_proxy(self) -> None:
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            proxy.close()

    def close(self) -> None:
        self.stop_browser()
        self._stop_proxy()
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None
        for server in self._folders.values():
            server.close()
        self._folders.clear()
        self._dead_end.close()


_HOST: dict[tuple, BrowserHost] = {}  # at most one: Playwright's sync API runs once per thread


def host_for(allow_hosts: tuple[str, ...], recycle_pages: int, offline: bool = False,
             executable: str = CHROMIUM) -> BrowserHost:
    """This process's BrowserHost, made on first use; other settings replace it (a child serves
    one pipeline at a time, but a long-lived one may serve the next run too)."""
    key = (allow_hosts, recycle_pages, offline, executable)
    if key not in _HOST:
        _close_host()
        _HOST[key] = BrowserHost(allow_hosts, recycle_pages, offline, executable)
    return _HOST[key]


@atexit.register
def _close_host() -> None:
    for host in _HOST.values():
        try:
            host.close()
        except Exception as error:  # a crashed browser or driver; the process group goes anyway
            _LOG.warning("closing the browser host failed: %s", error)
    _HOST.clear()
