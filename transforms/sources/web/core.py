"""Web pages as web_code samples: screenshot, rendered HTML, visible text and element boxes.

``render_web_task`` runs in an isolated child process (transforms/runtime/isolation.py) that holds one
guarded Chromium (transforms/sources/web/browser.py); a fresh browser context per page. The input side
(URL checks, viewports, keys) is in config.py.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.parse
from typing import Any

from vlcurate import __version__
from vlcurate.transforms.sources.web.config import WebConfig, WebTask
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import Image, Sample

# Chromium's error names -> our reasons, for navigations that fail without a response.
_NET_ERRORS = (
    ("ERR_TOO_MANY_REDIRECTS", "too_many_redirects"),
    ("Download is starting", "download_refused"),
    ("ERR_ABORTED", "network_error"),
)


# --- rendering, in the isolated child -------------------------------------------------------

# Visible elements with a box, in document order: what grounding and OCR ground truth need.
_ELEMENTS_JS = """(limit) => {
  const implicit = {A: "link", BUTTON: "button", H1: "heading", H2: "heading", H3: "heading",
    H4: "heading", H5: "heading", H6: "heading", IMG: "img", NAV: "navigation", UL: "list",
    OL: "list", LI: "listitem", TABLE: "table", TR: "row", TD: "cell", TH: "columnheader",
    SELECT: "combobox", TEXTAREA: "textbox", FORM: "form", MAIN: "main", HEADER: "banner",
    FOOTER: "contentinfo", P: "paragraph", LABEL: "label"};
  const inputs = {checkbox: "checkbox", radio: "radio", button: "button", submit: "button",
    range: "slider", search: "searchbox"};
  const out = [];
  for (const el of document.querySelectorAll("body, body *")) {
    if (out.length >= limit) break;
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    const s = getComputedStyle(el);
    if (s.visibility === "hidden" || s.display === "none" || Number(s.opacity) === 0) continue;
    let text = "";
    for (const n of el.childNodes) if (n.nodeType === 3) text += n.textContent;
    text = (text.trim() || el.getAttribute("aria-label") || el.getAttribute("alt") ||
            (el.tagName === "INPUT" ? (el.value || el.placeholder || "") : "")).trim().slice(0, 300);
    let role = el.getAttribute("role") || implicit[el.tagName] || "";
    if (!role && el.tagName === "INPUT") role = inputs[(el.type || "").toLowerCase()] || "textbox";
    out.push({tag: el.tagName.toLowerCase(), role: role, text: text,
              bbox: [Math.round(r.left + scrollX), Math.round(r.top + scrollY),
                     Math.round(r.width), Math.round(r.height)]});
  }
  return out;
}"""


def render_web_task(task: WebTask, config: WebConfig) -> Sample | list[Sample]:
    """Render one task in this process's guarded browser (started on first use); with
    ``config.alt_text``, the page's sample and its alt-text caption samples."""

    def read(page, response, session, asked, remaining_ms):
        sample = _sample(page, response, session, asked, task, config, remaining_ms)
        # Alt-text images are listed while the page is open and fetched once it is closed; from
        # the first viewport only, so that several viewports do not give the same pairs again.
        images = None
        if config.alt_text and task.viewport == config.viewports[0]:
            from vlcurate.transforms.sources.web.alt_text import ALT_TEXT_JS, MAX_IMAGES

            images = page.evaluate(ALT_TEXT_JS, 4 * MAX_IMAGES)
        return sample, images

    sample, images = visit(task, config, read)
    if config.ocr.wanted(has_text=bool(sample.text.strip())):
        from vlcurate.transforms.ocr.core import with_ocr

        sample = with_ocr(sample, config.ocr)  # the viewport screenshot; the page's context is closed
    if images is None:
        return sample
    from vlcurate.transforms.sources.web.alt_text import ALT_IMAGES, alt_text_samples
    from vlcurate.transforms.sources.web.browser import host_for

    host = host_for(config.allow_hosts, config.recycle_pages, config.offline)  # the one visit() used
    policy = host.browser_and_proxy()[1].policy
    base = host.folder_url(task.folder, "") if task.folder else ""
    captions, summary = alt_text_samples(images, task.relative or task.uri, base, policy, ALT_IMAGES)
    return [dataclasses.replace(sample, meta={**sample.meta, "alt_text": summary}), *captions]


def visit(task: WebTask, config: WebConfig, read, watch=None):
    """Load ``task``'s page in this process's guarded browser (started on first use) and return
    ``read(page, response, session, asked, remaining_ms)`` while the page is open; ``watch(page)``
    runs before the navigation (to listen for responses). Every failure is a Reject."""
    from vlcurate.transforms.sources.web.browser import host_for

    host = host_for(config.allow_hosts, config.recycle_pages, config.offline)
    url = host.folder_url(task.folder, task.relative) if task.folder else task.uri
    browser, proxy = host.browser_and_proxy()
    session = proxy.open_session(config.max_page_bytes)
    try:
        return _visit(browser, proxy, session, url, task.viewport, config, read, watch)
    except Reject as reject:
        if reject.reason == "browser_crash":
            host.stop_browser()
        raise
    finally:
        proxy.close_session(session)


def _visit(browser, proxy, session, url: str, viewport, config: WebConfig, read, watch):
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    deadline = time.monotonic() + config.page_timeout_s

    def remaining_ms() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Reject("timeout", f"over the {config.page_timeout_s:g}s page budget")
        return left * 1000

    width, height = viewport
    try:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            device_scale_factor=1,
            proxy={"server": proxy.server, "username": session.username, "password": session.password,
                   "bypass": "<-loopback>"},
            accept_downloads=False,
            permissions=[],
            service_workers="block",
            locale="en-US",
            timezone_id="UTC",
        )
    except PlaywrightError as error:
        raise Reject("browser_crash", f"cannot open a context: {error}") from error
    crashed, asked = [], set()
    try:
        # What the page itself asked for (requests of every frame, websockets), so that the
        # browser's own calls through the same proxy (autofill, updates) are not laid on it.
        context.on("request", lambda request: asked.add(_target(request.url)))
        page = context.new_page()
        page.on("websocket", lambda socket: asked.add(_target(socket.url)))
        # Popups are closed and dialogs dismissed; downloads never start (accept_downloads=False).
        context.on("page", lambda other: other.close() if other is not page else None)
        page.on("dialog", lambda dialog: dialog.dismiss())
        page.on("crash", lambda _: crashed.append(True))
        if watch is not None:
            watch(page)
        try:
            response = page.goto(url, wait_until="load", timeout=remaining_ms())
        except PlaywrightTimeout as error:
            raise Reject("timeout", f"no load event within {config.page_timeout_s:g}s") from error
        except PlaywrightError as error:
            raise _navigation_reject(error, session, crashed or not browser.is_connected()) from error
        if response is None:
            raise Reject("network_error", "the navigation gave no response")
        if response.headers.get("x-vlcurate-blocked"):
            # The guard refused the page itself (or a redirect on its way): its 403 is not the page.
            raise Reject("url_blocked", _blocked_detail(session, response.url))
        if session.over_budget:
            raise Reject("too_many_bytes", f"the page pulled over {config.max_page_bytes} bytes")
        if response.status >= 400:
            raise Reject("http_error", f"HTTP {response.status}")
        wait_quiet(page, session, config, remaining_ms)
        return read(page, response, session, asked, remaining_ms)
    except PlaywrightTimeout as error:
        raise Reject("timeout", f"over the {config.page_timeout_s:g}s page budget: {error}") from error
    except PlaywrightError as error:
        if crashed or not browser.is_connected() or "crash" in str(error).lower() or "closed" in str(error).lower():
            raise Reject("browser_crash", str(error)[:500]) from error
        raise
    finally:
        try:
            context.close()
        except PlaywrightError:
            pass  # a crashed browser takes its contexts with it


def _navigation_reject(error, session, crashed: bool) -> Reject:
    message = str(error)
    if crashed or "crash" in message.lower() or "has been closed" in message:
        return Reject("browser_crash", message[:500])
    if session.over_budget:
        return Reject("too_many_bytes", "the page pulled more bytes than allowed")
    if "ERR_TUNNEL_CONNECTION_FAILED" in message and session.blocked:
        # An https (CONNECT) navigation the guard refused: Chromium only says the tunnel failed.
        return Reject("url_blocked", _blocked_detail(session, url_of_error(message)))
    for marker, reason in _NET_ERRORS:
        if marker in message:
            return Reject(reason, message.splitlines()[0][:500])
    return Reject("network_error", message.splitlines()[0][:500])


# The network counts as quiet after this long without a new connection or a received byte.
_QUIET_S = 0.1


def wait_quiet(page, session, config: WebConfig, remaining_ms) -> None:
    """Wait, at most ``settle_s``, until the page's traffic through the guard has stopped.

    Playwright's "networkidle" waits for 500 ms of silence on every page; the guard sees every
    byte, so a page that is done at load costs a fifth of that (100 ms; measured in bench/web.py,
    where the settle was the largest cost per page). Pages that poll forever
    never go quiet; what has loaded by the end of ``settle_s`` is the page.
    """
    until = time.monotonic() + min(config.settle_s, remaining_ms() / 1000)
    while time.monotonic() < until and session.quiet_for < _QUIET_S:
        page.wait_for_timeout(50)  # lets Playwright's event loop run (dialogs, popups)


def url_of_error(message: str) -> str:
    """The URL Playwright names in a navigation error ('... at https://host/path')."""
    for line in message.splitlines():
        if " at " in line:
            return line.rsplit(" at ", 1)[1].strip()
    return ""


def _target(url: str) -> str:
    """"host:port" of a URL as the guard names a connection ("[v6]:port" for IPv6)."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme in ("https", "wss") else 80)
    host = (parts.hostname or "").lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _blocked_detail(session, url: str) -> str:
    """The guard's reason for the refused target of ``url`` (or the first refusals if unknown)."""
    wanted = _target(url)
    for target, detail in session.blocked:
        if target.lower() == wanted:
            return f"{target}: {detail}"
    return "; ".join(f"{target}: {detail}" for target, detail in session.blocked[:3]) or "refused by the guard"


def _sample(page, response, session, asked: set, task: WebTask, config: WebConfig, remaining_ms) -> Sample:
    width, height = task.viewport
    shot = page.screenshot(type="png", animations="disabled", caret="hide", timeout=remaining_ms())
    images = [Image(shot, "png", width, height)]
    page_height = int(page.evaluate("Math.max(document.documentElement.scrollHeight, "
                                    "document.body ? document.body.scrollHeight : 0)"))
    if config.full_page:
        full_height = max(1, min(page_height, config.max_page_height))
        full = page.screenshot(type="png", full_page=True, animations="disabled", caret="hide",
                               clip={"x": 0, "y": 0, "width": width, "height": full_height}, timeout=remaining_ms())
        images.append(Image(full, "png", width, full_height))
    html = page.content()
    if len(html.encode("utf-8")) > config.max_html_bytes:
        raise Reject("too_many_bytes", f"rendered HTML over {config.max_html_bytes} bytes")
    text = page.evaluate("document.body ? document.body.innerText : ''")
    elements = page.evaluate(_ELEMENTS_JS, config.max_elements)
    title = page.title()
    meta: dict[str, Any] = {
        "web": {
            "title": title,
            "final_url": page.url if not task.folder else task.relative,
            "status": response.status,
            "viewport": {"width": width, "height": height},
            "page_height": page_height,
            "full_page": config.full_page,
            # Which refusals happened, not how many or in what order: those depend on timing,
            # and the shards must not. (Byte and request counts are left out for the same reason.)
            "blocked_requests": sorted({target for target, _ in session.blocked} & asked),
        },
        "elements": elements,
    }
    extra = json.loads(task.metadata)
    if extra:
        meta["input"] = extra
    return Sample(
        key=task.key,
        source="web",
        category="web_code",
        uri=task.uri,
        locator=task.locator,
        images=tuple(images),
        text=text,
        html=html,
        text_source="html",
        provenance={"vlcurate": __version__, "browser": page.context.browser.version},
        meta=meta,
    )
