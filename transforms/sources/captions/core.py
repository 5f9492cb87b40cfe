"""Image-caption pairs made: the image downloaded through the network guard (or read beside its
sidecar caption), decoded under the one decoder's caps, resized and re-encoded deterministically.

Runs in the pipeline's worker processes, on a thread per download (beam.py): the work is mostly
waiting on the network, and Pillow's decoders and resamplers release the GIL.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading

from vlcurate import __version__
from vlcurate.transforms.data.images import open_image
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.resize import resize
from vlcurate.transforms.data.sample import Sample, encode_image, make_key
from vlcurate.transforms.io.files import read_capped
from vlcurate.transforms.sources.captions.config import MAX_CAPTION_CHARS, SOURCE, CaptionConfig, CaptionTask, \
    clean_caption
from vlcurate.transforms.sources.web.guard.fetch import FetchError, fetch
from vlcurate.transforms.sources.web.guard.policy import AddressPolicy

# The X-Robots-Tag directives the field honours for training data (img2dataset, spawning.ai).
OPT_OUT_DIRECTIVES = frozenset({"noai", "noimageai"})
_AGENTS = frozenset({"*", "vlcurate"})  # "agent: directive" forms that speak to us
_POLICIES: dict = {}  # one policy per process and settings: resolving --allow-host names once
# Decoding is CPU work: more at once than cores gains nothing, and each may hold a picture of up
# to --max-image-pixels (120 MB at the default), so the download threads take turns here.
_DECODING = threading.BoundedSemaphore(max(2, os.cpu_count() or 1))


def policy_for(allow_hosts: tuple[str, ...], offline: bool) -> AddressPolicy:
    key = (tuple(allow_hosts), offline)
    if key not in _POLICIES:
        _POLICIES[key] = AddressPolicy.from_strings(list(allow_hosts), public=not offline)
    return _POLICIES[key]


def opt_out(values: list[str]) -> str | None:
    """The X-Robots-Tag directive that opts the resource out ("noai", "vlcurate: noimageai"), or None."""
    for value in values:
        for directive in value.lower().split(","):
            agent, colon, rule = directive.rpartition(":")
            if colon and agent.strip() not in _AGENTS:
                continue
            if rule.strip() in OPT_OUT_DIRECTIVES:
                return directive.strip()
    return None


def download(url: str, config: CaptionConfig, policy: AddressPolicy | None = None):
    """The image's response through the guard (``policy``, else the config's); a failure or an
    opt-out is its Reject."""
    policy = policy or policy_for(config.allow_hosts, config.offline)
    try:
        fetched = fetch(url, policy, config.limits())
    except FetchError as error:
        raise Reject(error.reason, error.detail) from None
    directive = opt_out(fetched.values("x-robots-tag"))
    if directive:
        raise Reject("opt_out", f"X-Robots-Tag: {directive}")
    return fetched


def download_pair(task: CaptionTask, config: CaptionConfig) -> Sample:
    """A listed URL's caption sample."""
    fetched = download(task.uri, config)
    meta = {"download": {"final_url": fetched.url, "status": fetched.status,
                         "content_type": (fetched.values("content-type") or [""])[0][:200]}}
    extra = json.loads(task.metadata)
    if extra:
        meta["input"] = extra
    return pair_sample(task.key, SOURCE, task.uri, task.caption, fetched.body, config, meta)


def folder_pair(path: str, folder: str, config: CaptionConfig) -> Sample:
    """An image file of a folder and the caption in the .txt beside it (same name)."""
    sidecar = path.rsplit(".", 1)[0] + ".txt"
    try:
        raw = read_capped(sidecar, 4 * MAX_CAPTION_CHARS)
    except Reject as reject:
        if reject.reason == "read_error":
            raise Reject("caption_empty", f"no caption file {sidecar.rsplit('/', 1)[-1]} beside the image") from None
        raise Reject("bad_input", f"{sidecar}: {reject.detail}") from None
    try:
        caption = clean_caption(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise Reject("bad_input", f"{sidecar} is not UTF-8 text") from None
    data = read_capped(path, config.max_file_bytes)
    relative = path[len(folder):].lstrip("/")
    key = make_key(SOURCE, relative, hashlib.sha256(data).hexdigest())
    return pair_sample(key, SOURCE, path, caption, data, config, {"file": relative})


def pair_sample(key: str, source: str, uri: str, caption: str, data: bytes, config: CaptionConfig,
                meta: dict, locator: str = "", text_source: str = "caption") -> Sample:
    """The caption sample of image bytes: the original's facts kept, the picture resized and re-encoded."""
    with _DECODING:
        image, image_format = open_image(data, config.max_image_pixels)
        original = {"width": image.width, "height": image.height, "format": image_format.lower(),
                    "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        image = resize(image, config.resize_mode, config.image_size, config.resize_only_if_bigger)
        encoded = encode_image(image, config.image_format, config.jpeg_quality)
    return Sample(key=key, source=source, category="caption", uri=uri, locator=locator, images=(encoded,),
                  text=caption, text_source=text_source, provenance={"vlcurate": __version__},
                  meta={"original": original, **meta})
