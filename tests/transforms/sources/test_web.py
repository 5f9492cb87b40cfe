"""The web stage's parts: URL checks and keys, the folder server's fence, the browser host's recovery."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request

import psutil
import pytest

from vlcurate.transforms.sources.web import browser
from vlcurate.transforms.sources.web.browser import FolderServer
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import make_key
from vlcurate.transforms.sources.web.config import WebConfig, check_url, parse_viewport, url_tasks
from vlcurate.transforms.sources.web.core import render_web_task
from fixtures.web_site import WebSite


@pytest.mark.parametrize(
    "url, reason",
    [
        ("ftp://example.com/a", "url_blocked"),
        ("file:///etc/passwd", "url_blocked"),
        ("javascript:alert(1)", "url_blocked"),
        ("chrome://crash", "url_blocked"),
        ("data:text/html,<h1>x</h1>", "url_blocked"),
        ("not a url", "bad_input"),
        ("http:///no-host", "bad_input"),
        ("", "bad_input"),
        (None, "bad_input"),
        ("http://example.com/" + "a" * 9000, "bad_input"),
    ],
)
def test_check_url_takes_http_and_https_only(url, reason):
    with pytest.raises(Reject) as caught:
        check_url(url)
    assert caught.value.reason == reason


def test_url_tasks_one_per_viewport_with_stable_keys_and_metadata():
    config = WebConfig(viewports=((1024, 1024), (390, 844)))
    tasks = url_tasks(" https://example.com/a?b=1 ", {"lang": "en", "id": 3}, config)
    assert [t.locator for t in tasks] == ["viewport=1024x1024", "viewport=390x844"]
    assert [t.key for t in tasks] == [
        make_key("web", "https://example.com/a?b=1", "viewport=1024x1024"),
        make_key("web", "https://example.com/a?b=1", "viewport=390x844"),
    ]
    assert json.loads(tasks[0].metadata) == {"id": 3, "lang": "en"}
    assert all(t.uri == "https://example.com/a?b=1" for t in tasks)


def test_viewports_and_config_are_checked():
    assert parse_viewport("1280X720") == (1280, 720)
    for bad in ("1280", "x720", "wide x tall", "12.5x10"):
        with pytest.raises(ValueError):
            parse_viewport(bad)
    with pytest.raises(ValueError):
        WebConfig(viewports=((10, 10),))
    with pytest.raises(ValueError):
        WebConfig(page_timeout_s=0)


def test_folder_server_serves_the_folder_and_nothing_outside_it(tmp_path):
    (tmp_path / "site" / "sub").mkdir(parents=True)
    (tmp_path / "site" / "index.html").write_text("<h1>in</h1>")
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", tmp_path / "site" / "link.txt")
    server = FolderServer(str(tmp_path / "site"))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert opener.open(f"{base}/index.html", timeout=5).read() == b"<h1>in</h1>"
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/sub/../../secret.txt", "/link.txt", "/sub/"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                opener.open(base + path, timeout=5)
            assert caught.value.code == 404, path
    finally:
        server.close()


def _kill_browsers_of(pid: int) -> int:
    killed = 0
    for child in psutil.Process(pid).children(recursive=True):
        if "chrom" in child.name():
            child.kill()
            killed += 1
    return killed


def test_a_browser_crash_costs_one_page_and_the_next_page_gets_a_new_browser():
    with WebSite() as site:
        config = WebConfig(allow_hosts=(f"127.0.0.1:{site.port}",), offline=True, settle_s=0.2, page_timeout_s=20)
        [plain] = url_tasks(site.url("/plain.html"), {}, config)
        [slow] = url_tasks(site.url("/slow.html?ms=4000"), {}, config)
        try:
            before = render_web_task(plain, config)
            # Kill every Chromium process while the slow page is loading.
            killer = threading.Timer(1.0, _kill_browsers_of, (os.getpid(),))
            killer.start()
            started = time.monotonic()
            with pytest.raises(Reject) as caught:
                render_web_task(slow, config)
            killer.join()
            assert caught.value.reason == "browser_crash", caught.value.detail
            assert time.monotonic() - started < 10
            after = render_web_task(plain, config)  # a fresh browser
            assert after.images[0].data == before.images[0].data
        finally:
            browser._close_host()


def test_the_browser_is_recycled_after_n_pages():
    with WebSite() as site:
        config = WebConfig(allow_hosts=(f"127.0.0.1:{site.port}",), offline=True, settle_s=0.1, recycle_pages=2)
        [task] = url_tasks(site.url("/plain.html"), {}, config)
        try:
            seen = []
            for _ in range(5):
                render_web_task(task, config)
                seen.append(id(browser.host_for(config.allow_hosts, config.recycle_pages, config.offline)._browser))
            assert seen[0] == seen[1] != seen[2] == seen[3] != seen[4]
        finally:
            browser._close_host()
