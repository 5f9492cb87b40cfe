"""A local test web site for the web stage: ordinary pages and each hostile case, on 127.0.0.1 only.

    with WebSite() as site:
        site.url("/plain.html")            # http://127.0.0.1:PORT/plain.html
        site.requests                      # request targets served, in order ("/slow.html?ms=5")
        site.canary_port                   # a listener that only counts who reached it

Standard library only. The redirects and sub-resources that aim at private, loopback or
link-local addresses point either at addresses nothing here listens on or at the canary: a
confined renderer never reaches the canary, so `site.canary_connections == 0` is the test.
Load /to-metadata, /to-private and /sub-private.html only in a confined browser (or in a
loopback-only network namespace): an unconfined one really connects to 169.254.169.254 and
10.0.0.1, and Chromium sends 169.254/16 around a --proxy-server unless the bypass list holds
<-loopback>.
"""

from __future__ import annotations

import html
import random
import re
import socket
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

WORDS = ("data model page image text vision language curation pipeline shard render quality filter "
         "layout token caption table figure browser screenshot viewport sample index corpus").split()
BIG_IMAGES, BIG_IMAGE_BYTES = 10, 300_000  # /big.html pulls about 3 MB
HTML, CSS = "text/html; charset=utf-8", "text/css; charset=utf-8"


def png(width: int, height: int, pixel) -> bytes:
    """An RGB PNG built with zlib and struct; `pixel(x, y)` returns (r, g, b)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


LOGO_PNG = png(48, 48, lambda x, y: (40 + 4 * x, 90 + 3 * y, 200 - 2 * x))
BIG_BLOBS = [random.Random(i).randbytes(BIG_IMAGE_BYTES) for i in range(BIG_IMAGES)]  # incompressible
SITE_CSS = """body { font-family: "Noto Sans", sans-serif; margin: 0; background: #f4f1ea; color: #222; }
header { background: #1d4e89; color: white; padding: 16px 32px; display: flex; gap: 16px; align-items: center; }
main { display: grid; grid-template-columns: 2fr 1fr; gap: 24px; padding: 24px 32px; }
.card { background: white; border-radius: 8px; padding: 16px; box-shadow: 0 2px 6px #0003; }
a { color: #c0392b; }
"""
SVG = ('<svg width="120" height="80" viewBox="0 0 120 80" xmlns="http://www.w3.org/2000/svg">'
       '<rect x="4" y="4" width="112" height="72" rx="8" fill="#f39c12"/>'
       '<circle cx="60" cy="40" r="24" fill="#2c3e50"/></svg>')


def page(title: str, body: str, head: str = "") -> bytes:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"{head}</head>\n<body>\n{body}\n</body></html>\n").encode()


def script_page(title: str, text: str, script: str) -> bytes:
    return page(title, f"<p>{text}</p>\n<script>{script}</script>")


PLAIN = page("Plain page", """<h1>A plain page for the renderer</h1>
<p>This paragraph has Latin accents: café, naïve, façade, Ångström, señor.</p>
<p>这一段有中文：数据与模型。日本語もあります：視覚と言語。</p>
<ul><li>first item</li><li>second item</li><li>third item</li></ul>
<p><a href="/styled.html">a link to the styled page</a></p>
<button type="button">Press me</button>
<label for="name">Your name</label> <input id="name" name="name" value="">""")

STYLED = page("Styled page", f"""<header><img src="/static/logo.png" alt="logo" width="48" height="48">
<h1>Styled page</h1></header>
<main><div class="card"><h2>Stylesheet, image and SVG</h2><p>Laid out by /static/site.css.</p></div>
<div class="card">{SVG}</div></main>""", head='<link rel="stylesheet" href="/static/site.css">')

# Enough "../" to reach / from any temporary folder (extra ones stop at the root).
ESCAPE = page("Escape attempt", f"""<p>This page tries to read files outside its folder.</p>
<iframe src="{'../' * 12}etc/passwd"></iframe>
<img src="file:///etc/hostname" alt="hostname">""")


def sub_private(canary: int) -> bytes:
    return page("Private sub-resources", f"""<h1>This page tries private addresses</h1>
<img src="http://169.254.169.254/x.png" alt="metadata">
<iframe src="http://10.0.0.1/"></iframe>
<img src="http://localhost:{canary}/a.png" alt="localhost">
<script>fetch("http://2130706433:{canary}/f").catch(() => {{}});
try {{ new WebSocket("ws://127.0.0.1:{canary}/ws"); }} catch (e) {{}}</script>""")


def numbered_page(n: int) -> bytes:
    """A varied content page, the same for the same n: headings, prose, maybe a table and a logo."""
    rng = random.Random(n)

    def words(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))
    parts = [f"<h1>Page {n}: {words(4).title()}</h1>"]
    for _ in range(rng.randint(2, 5)):
        parts.append(f"<h2>{words(3).capitalize()}</h2>")
        parts += [f"<p>{words(rng.randint(30, 90)).capitalize()}.</p>" for _ in range(rng.randint(1, 3))]
    if n % 3 == 0:
        cells = "".join("<tr>" + "".join(f"<td>{rng.randint(0, 9999)}</td>" for _ in range(5)) + "</tr>"
                        for _ in range(rng.randint(3, 8)))
        parts.append(f'<table border="1"><tr><th>a</th><th>b</th><th>c</th><th>d</th><th>e</th></tr>{cells}</table>')
    if n % 4 == 0:
        parts.append('<img src="/static/logo.png" alt="logo" width="96" height="96">')
    colour, width, height = "#%06x" % rng.randrange(0x1000000), rng.randint(100, 900), rng.randint(40, 300)
    parts.append(f'<div style="background:{colour};width:{width}px;height:{height}px"></div>')
    margin, spacing = rng.randint(8, 64), rng.randint(2, 7)
    style = f"<style>body{{font-family:sans-serif;margin:{margin}px;line-height:1.{spacing}}}</style>"
    return page(f"Page {n}", "\n".join(parts), head=style)


# Everything else that is the same on every run, by path. "no-store" so that each fetch reaches
# the server and shows in site.requests (the byte-budget tests count the big images).
STATIC_FILES = {
    "/static/site.css": (CSS, SITE_CSS.encode()),
    "/static/logo.png": ("image/png", LOGO_PNG),
    **{f"/static/big/{i}.png": ("image/png", blob) for i, blob in enumerate(BIG_BLOBS)},
}
# Pages that are the same on every run, by path.
STATIC_PAGES = {
    "/plain.html": PLAIN,
    "/styled.html": STYLED,
    "/popup.html": script_page("Popup", "This page opens a popup.", 'window.open("/plain.html");'),
    "/alert.html": script_page("Dialogs", "This page shows dialogs.",
                               'alert("hi"); confirm("ok?"); prompt("name?");'
                               'document.body.insertAdjacentHTML("beforeend", "<p>after dialogs</p>");'),
    "/infinite-script.html": page("Never loads", "<p>never reached</p>", head="<script>while (true) {}</script>"),
    "/endless.html": script_page("Endless", "This page grows forever.",
                                 'setInterval(() => { const d = document.createElement("div");'
                                 'd.style.height = "200px"; d.textContent = "more";'
                                 "document.body.appendChild(d); }, 10);"),
    "/big.html": page("Big page", "<p>About 3 MB of images.</p>\n" + "\n".join(
        f'<img src="/static/big/{i}.png" width="64" height="64" alt="">' for i in range(BIG_IMAGES))),
    "/geo.html": script_page("Permissions", "This page asks for permissions.",
                             'const say = t => document.body.insertAdjacentHTML("beforeend", `<p>${t}</p>`);'
                             'navigator.geolocation.getCurrentPosition(() => say("geolocation granted"),'
                             ' () => say("geolocation denied"), {timeout: 3000});'
                             'Notification.requestPermission().then(p => say("notifications " +'
                             ' (p === "granted" ? "granted" : "denied")));'),
}


class WebSite:
    """The test site and a canary listener, both on 127.0.0.1 with ports the OS picks."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.canary_connections = 0
        self.canary_requests: list[bytes] = []  # first bytes each canary connection sent, for messages
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._canary = socket.create_server(("127.0.0.1", 0))
        self._canary.settimeout(0.2)
        self.canary_port = self._canary.getsockname()[1]
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self.port = self._server.server_address[1]
        self._threads = [threading.Thread(target=self._server.serve_forever, daemon=True),
                         threading.Thread(target=self._serve_canary, daemon=True)]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def count(self, path: str) -> int:
        """How many requests were served for `path`, whatever their query string."""
        with self._lock:
            return sum(1 for target in self.requests if target.split("?")[0] == path)

    def start(self) -> "WebSite":
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._threads[1].join(timeout=2)
        self._canary.close()

    def __enter__(self) -> "WebSite":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _record(self, target: str) -> None:
        with self._lock:
            self.requests.append(target)

    def _serve_canary(self) -> None:
        """Accept, count, answer a minimal HTTP 200 and close: whatever the client speaks."""
        while not self._stop.is_set():
            try:
                conn, _ = self._canary.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    first = conn.recv(1024)
                except OSError:
                    first = b""
                with self._lock:
                    self.canary_connections += 1
                    self.canary_requests.append(first)
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                 b"Content-Length: 7\r\nConnection: close\r\n\r\ncanary\n")
                except OSError:
                    pass

    def route(self, target: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a request target; every route of the site is here."""
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        canary = self.canary_port
        redirects = {
            "/loop": "/loop", "/redirect/3": "/redirect/2", "/redirect/2": "/redirect/1", "/redirect/1": "/plain.html",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/", "/to-private": "http://10.0.0.1/",
            "/to-localhost": f"http://localhost:{canary}/", "/to-decimal": f"http://2130706433:{canary}/",
            "/to-mapped": f"http://[::ffff:127.0.0.1]:{canary}/",
        }
        if path in redirects:
            return 302, {"Location": redirects[path], "Content-Type": HTML}, page("Redirect", "<p>moved</p>")
        if path == "/sub-private.html":
            return 200, {"Content-Type": HTML}, sub_private(canary)
        if path in STATIC_PAGES:
            return 200, {"Content-Type": HTML}, STATIC_PAGES[path]
        if path in STATIC_FILES:
            content_type, body = STATIC_FILES[path]
            return 200, {"Content-Type": content_type, "Cache-Control": "no-store"}, body
        if path == "/js-loop-redirect":
            n = _number(query, "n", 0)
            return 200, {"Content-Type": HTML}, script_page(
                "JS redirect", f"Redirect number {n}.", f'location.href = "/js-loop-redirect?n=" + {n + 1};')
        if path == "/slow.html":
            ms = min(_number(query, "ms", 1000), 120_000)
            time.sleep(ms / 1000)
            return 200, {"Content-Type": HTML}, page("Slow page", f"<p>Answered after {ms} ms.</p>")
        if path == "/download.bin":
            return 200, {"Content-Type": "application/octet-stream",
                         "Content-Disposition": 'attachment; filename="data.bin"'}, bytes(range(256)) * 16
        numbered = re.fullmatch(r"/pages/(0|[1-9][0-9]{0,2})\.html", path)  # /pages/0.html .. /pages/999.html
        if numbered:
            return 200, {"Content-Type": HTML}, numbered_page(int(numbered.group(1)))
        if path == "/500":
            return 500, {"Content-Type": HTML}, page("Server error", "<h1>500 Internal Server Error</h1>")
        return 404, {"Content-Type": HTML}, page("Not found", "<h1>404 Not Found</h1>")


def _number(query: dict[str, list[str]], name: str, default: int) -> int:
    try:
        return max(0, int(query[name][0]))
    except (KeyError, ValueError):
        return default


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # browsers open several connections at once; a full backlog stalls them

    def handle_error(self, request, client_address) -> None:
        # Browsers drop connections all the time (stopped pages, closed contexts): not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(site: WebSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30  # an idle keep-alive connection does not hold its thread for ever

        def do_GET(self) -> None:
            site._record(self.path)
            status, headers, body = site.route(self.path)
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the browser gave up: fine
                pass

        def log_message(self, *args) -> None:  # quiet: tests read site.requests instead
            pass

    return Handler


def write_html_folder(folder: Path | str) -> Path:
    """A small folder for the "folder of .html files" input mode; returns the folder."""
    folder = Path(folder)
    (folder / "assets").mkdir(parents=True, exist_ok=True)
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "assets" / "style.css").write_text(SITE_CSS, encoding="utf-8")
    (folder / "assets" / "img.png").write_bytes(LOGO_PNG)
    (folder / "index.html").write_bytes(page("Folder index", """<header><img src="assets/img.png" alt="logo">
<h1>Folder index 数据</h1></header>
<main><div class="card"><p>A local page with a relative stylesheet and image.</p>
<a href="sub/page.html">sub page</a></div></main>""", head='<link rel="stylesheet" href="assets/style.css">'))
    (folder / "sub" / "page.html").write_bytes(page("Folder sub page", """<h1>Sub page</h1>
<p>One folder down; the image is <img src="../assets/img.png" alt="logo">.</p>
<a href="../index.html">back</a>""", head='<link rel="stylesheet" href="../assets/style.css">'))
    (folder / "escape.html").write_bytes(ESCAPE)
    return folder


if __name__ == "__main__":  # self-check: every route over urllib, redirects not followed
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.ProxyHandler({}))
    routes = [*STATIC_PAGES, "/static/site.css", "/static/logo.png", "/static/big/9.png", "/redirect/3",
              "/redirect/1", "/loop", "/js-loop-redirect?n=4", "/to-metadata", "/to-private", "/to-localhost",
              "/to-decimal", "/to-mapped", "/sub-private.html", "/download.bin", "/404", "/500",
              "/slow.html?ms=200", "/slow.html?ms=x", "/pages/0.html", "/pages/999.html", "/pages/1000.html"]
    with WebSite() as site:
        for route in routes:
            t0 = time.perf_counter()
            try:
                response = opener.open(site.url(route), timeout=10)
            except urllib.error.HTTPError as error:
                response = error
            body = response.read()
            print(f"{route:26s} {response.status} {len(body):8d} B {1000 * (time.perf_counter() - t0):6.0f} ms  "
                  f"{response.headers.get('Content-Type', '')}  {response.headers.get('Location') or ''}")
        with socket.create_connection(("127.0.0.1", site.canary_port)) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\n\r\n")
            print("canary says:", conn.recv(200).split(b"\r\n")[0].decode())
        time.sleep(0.1)
        print(f"served {len(site.requests)} requests; canary connections: {site.canary_connections}")
