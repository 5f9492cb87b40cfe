"""The caption stage's parts: the guarded download (every failure as its reason, SSRF refused,
retries for transient failures only, opt-outs), the resize modes, and pairs made from bytes.

Every socket is on 127.0.0.1 (tests/fixtures/image_site.py). Names that would resolve to private
addresses are answered by a fake resolver; a canary listener counts any connection that a refused
redirect would have made.
"""

from __future__ import annotations

import io
import socket

import pytest
from PIL import Image

from fixtures.image_site import ImageSite, jpeg
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.resize import resize
from vlcurate.transforms.sources.captions.config import CaptionConfig, CaptionTask, row_task
from vlcurate.transforms.sources.captions.core import download_pair, folder_pair, opt_out, pair_sample
from vlcurate.transforms.sources.web.guard import policy as guard_policy
from vlcurate.transforms.sources.web.guard.fetch import FetchError, FetchLimits, fetch
from vlcurate.transforms.sources.web.guard.policy import AddressPolicy

LIMITS = FetchLimits(max_bytes=1_000_000, timeout_s=2.0, retries=2, backoff_s=0.01)


@pytest.fixture(scope="module")
def site():
    with ImageSite(slow_s=3.0) as running:
        yield running


def policy(site) -> AddressPolicy:
    return AddressPolicy.from_strings([site.allow, f"127.0.0.1:{site.closed_port}"])


def reason(site, path: str, limits: FetchLimits = LIMITS) -> str:
    with pytest.raises(FetchError) as caught:
        fetch(site.url(path), policy(site), limits, sleep=lambda s: None)
    return caught.value.reason


# --- the guarded download ---------------------------------------------------------------------------

def test_an_image_and_a_redirect_to_it_download(site):
    fetched = fetch(site.url("/redirect/ok.jpg"), policy(site), LIMITS)
    assert fetched.status == 200 and fetched.body == site.image(1)
    assert fetched.url == site.url("/img/1.jpg")
    assert fetched.values("content-type") == ["image/jpeg"]


@pytest.mark.parametrize("path, expected", [
    ("/missing.jpg", "http_error"),
    ("/broken.jpg", "http_error"),
    ("/huge.jpg", "file_too_large"),
    ("/huge-unannounced.jpg", "file_too_large"),
    ("/slow.jpg", "timeout"),
    ("/hangup.jpg", "download_error"),
    ("/loop.jpg", "too_many_redirects"),
    ("/redirect/file.jpg", "url_blocked"),
])
def test_every_failure_is_its_reason(site, path, expected):
    assert reason(site, path, FetchLimits(max_bytes=1_000_000, timeout_s=1.0, retries=0)) == expected


def test_connection_refused_is_a_download_error(site):
    with pytest.raises(FetchError) as caught:
        fetch(f"http://127.0.0.1:{site.closed_port}/x.jpg", policy(site), LIMITS)
    assert caught.value.reason == "download_error" and "refused" in caught.value.detail.lower()


@pytest.mark.parametrize("path", ["/redirect/loopback.jpg", "/redirect/localhost.jpg", "/redirect/mapped.jpg",
                                  "/redirect/decimal.jpg", "/redirect/metadata.jpg"])
def test_redirects_to_loopback_or_link_local_are_refused_before_connecting(site, path):
    before = site.canary_connections
    assert reason(site, path) == "url_blocked"
    assert site.canary_connections == before


def test_loopback_and_mapped_targets_are_refused_unless_allowed(site):
    for url in (f"http://127.0.0.1:{site.canary_port}/a.jpg", f"http://[::ffff:127.0.0.1]:{site.canary_port}/a.jpg",
                f"http://[::1]:{site.canary_port}/a.jpg", f"http://0x7f.1:{site.canary_port}/a.jpg"):
        with pytest.raises(FetchError) as caught:
            fetch(url, policy(site), LIMITS)
        assert caught.value.reason == "url_blocked", url
    assert site.canary_connections == 0


def test_a_name_resolving_to_a_private_address_is_refused(site, monkeypatch):
    asked = []

    def private_dns(host, port, *args, **kwargs):
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port or 0))]

    monkeypatch.setattr(guard_policy.socket, "getaddrinfo", private_dns)
    with pytest.raises(FetchError) as caught:
        fetch("http://images.example.test/cat.jpg", AddressPolicy(), LIMITS)
    assert caught.value.reason == "url_blocked" and "10.0.0.7" in caught.value.detail
    assert asked == ["images.example.test"]


def test_the_checked_address_is_the_one_connected_to(site, monkeypatch):
    """A name is resolved once; the connection goes to that address (no second lookup to rebind)."""
    real, asked = socket.getaddrinfo, []

    def once_loopback(host, port, *args, **kwargs):
        if host == "rebind.test":
            asked.append(host)
            ip = "127.0.0.1" if len(asked) == 1 else "10.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(guard_policy.socket, "getaddrinfo", once_loopback)
    fetched = fetch(f"http://rebind.test:{site.port}/img/7.jpg", policy(site), LIMITS)
    assert fetched.body == site.image(7) and asked == ["rebind.test"]


def test_transient_failures_are_tried_again_with_backoff_and_final_ones_are_not(site):
    slept = []
    fetched = fetch(site.url("/flaky/9.jpg"), policy(site), LIMITS, sleep=slept.append)
    assert fetched.body == site.image(4) and site.count("/flaky/9.jpg") == 2 and slept == [0.01]
    before = site.count("/missing.jpg")
    assert reason(site, "/missing.jpg") == "http_error"
    assert site.count("/missing.jpg") == before + 1  # a 404 is final
    before = site.count("/broken.jpg")
    assert reason(site, "/broken.jpg") == "http_error"
    assert site.count("/broken.jpg") == before + 3  # a 500 is tried 1 + retries times


@pytest.mark.parametrize("values, directive", [
    (["noai"], "noai"),
    (["noindex, NoImageAI"], "noimageai"),
    (["vlcurate: noai"], "vlcurate: noai"),
    (["*: noimageai"], "*: noimageai"),
    (["otherbot: noai"], None),
    (["noindex", "nofollow"], None),
    ([], None),
])
def test_opt_out_directives(values, directive):
    assert opt_out(values) == directive


def test_opt_out_headers_are_rejects_and_other_agents_are_not(site):
    config = CaptionConfig(allow_hosts=(site.allow,), retries=0)
    for path in ("/optout/noai.jpg", "/optout/noimageai.jpg"):
        with pytest.raises(Reject) as caught:
            download_pair(row_task({"url": site.url(path), "caption": "a cat"}, config), config)
        assert caught.value.reason == "opt_out"
    sample = download_pair(row_task({"url": site.url("/optout/other-agent.jpg"), "caption": "a dog"}, config), config)
    assert sample.text == "a dog" and sample.category == "caption"


# --- rows, pairs and resizing ------------------------------------------------------------------------

def test_a_row_keeps_its_other_columns_and_needs_a_caption():
    config = CaptionConfig(url_column="URL", caption_column="TEXT")
    task = row_task({"URL": "https://example.org/a.jpg", "TEXT": "  a red bus ", "similarity": 0.31}, config)
    assert task.caption == "a red bus" and task.metadata == '{"similarity": 0.31}'
    with pytest.raises(Reject, match="caption_empty"):
        row_task({"URL": "https://example.org/a.jpg", "TEXT": "   "}, config)
    with pytest.raises(Reject, match="url_blocked"):
        row_task({"URL": "ftp://example.org/a.jpg", "TEXT": "x"}, config)
    with pytest.raises(Reject, match="bad_input"):
        row_task({"TEXT": "x"}, config)


def test_a_pair_keeps_the_original_facts_and_is_the_same_bytes_every_time():
    data = jpeg(3, 800, 400)
    config = CaptionConfig(image_size=256, resize_mode="center_crop")
    task = CaptionTask("https://example.org/a.jpg", "a gradient", "caption-0123456789abcdef01234567")
    first = pair_sample(task.key, "caption", task.uri, task.caption, data, config, {})
    second = pair_sample(task.key, "caption", task.uri, task.caption, data, config, {})
    assert first.members() == second.members()
    image = first.images[0]
    assert (image.width, image.height, image.format) == (256, 256, "jpeg")
    original = first.to_json()["original"]
    assert original["width"] == 800 and original["height"] == 400 and original["format"] == "jpeg"
    assert original["bytes"] == len(data) and len(original["sha256"]) == 64
    with pytest.raises(Reject, match="image_too_large"):
        pair_sample(task.key, "caption", task.uri, "x", data, CaptionConfig(max_image_pixels=1000), {})
    with pytest.raises(Reject, match="image_unreadable"):
        pair_sample(task.key, "caption", task.uri, "x", b"GIF89a broken", config, {})


@pytest.mark.parametrize("mode, only_if_bigger, size, expected", [
    ("keep_ratio", False, (400, 200), (200, 100)),
    ("keep_ratio", False, (50, 80), (100, 160)),
    ("keep_ratio", True, (50, 80), (50, 80)),
    ("center_crop", False, (400, 200), (100, 100)),
    ("border", False, (400, 200), (100, 100)),
    ("border", True, (40, 20), (100, 100)),
    ("no", False, (400, 200), (400, 200)),
])
def test_resize_modes(mode, only_if_bigger, size, expected):
    image = Image.new("RGB", size, (250, 250, 250))
    assert resize(image, mode, 100, only_if_bigger).size == expected


def test_border_pads_black_around_the_centred_picture():
    out = resize(Image.new("RGB", (400, 200), (255, 255, 255)), "border", 100)
    assert out.getpixel((50, 0)) == (0, 0, 0) and out.getpixel((50, 50)) == (255, 255, 255)
    assert out.getpixel((50, 99)) == (0, 0, 0)


def test_downscaling_averages_each_output_pixels_area():
    # img2dataset's INTER_AREA: halving makes each pixel the mean of its 2x2 block, with no
    # ringing past the block (a Lanczos filter would reach into the neighbours and overshoot).
    values = [[0, 40, 200, 200], [80, 120, 200, 200], [10, 10, 255, 255], [10, 10, 255, 255]]
    image = Image.frombytes("L", (4, 4), bytes(v for row in values for v in row)).convert("RGB")
    out = resize(image, "keep_ratio", 2)
    assert [out.getpixel((x, y))[0] for y in range(2) for x in range(2)] == [60, 200, 10, 255]


def test_upscaling_is_lanczos():
    image = Image.frombytes("L", (2, 1), bytes([0, 255])).convert("RGB")
    row = [resize(image, "keep_ratio", 4).getpixel((x, 0))[0] for x in range(8)]
    assert row[0] == 0 and row[-1] == 255 and 0 < row[3] < row[4] < 255  # a ramp between the two, not a copy


def test_a_folder_image_takes_its_sidecar_caption(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "cat.jpg").write_bytes(jpeg(1))
    (tmp_path / "sub" / "cat.txt").write_text("\ufeffa cat on a mat\n", encoding="utf-8")
    (tmp_path / "dog.png").write_bytes(_png())
    config = CaptionConfig(image_size=64)
    sample = folder_pair(str(tmp_path / "sub" / "cat.jpg"), str(tmp_path), config)
    assert sample.text == "a cat on a mat" and sample.to_json()["file"] == "sub/cat.jpg"
    with pytest.raises(Reject, match="caption_empty"):
        folder_pair(str(tmp_path / "dog.png"), str(tmp_path), config)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buffer, format="PNG")
    return buffer.getvalue()
