"""Alt-text captions of a rendered page (`vlcurate web --alt-text`): each visible image whose alt
text reads as a caption becomes a ``caption`` sample beside the page's screenshot.

The page lists its images (``ALT_TEXT_JS``, while it is open); the images are then fetched through
the page's own address policy with the guarded client (guard/fetch.py), a few at once, and made
into pairs as `vlcurate captions` makes them (captions/core.py). An image that cannot be had is
left out, and counted by reason in the page sample's ``alt_text`` field.
"""

from __future__ import annotations

import concurrent.futures
import re
import urllib.parse

from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import Sample, make_key
from vlcurate.transforms.sources.captions.config import CaptionConfig
from vlcurate.transforms.sources.captions.core import download, pair_sample
from vlcurate.transforms.sources.web.guard.policy import AddressPolicy

MAX_IMAGES = 16  # alt-text images taken from one page
# How alt-text images are fetched and stored: as `vlcurate captions` stores them by default, with
# a shorter budget and no retries (the page's own time limit is spent already).
ALT_IMAGES = CaptionConfig(timeout_s=10.0, retries=0)
_FETCHERS = 8
# Alt texts that name a kind of image rather than describe one (web accessibility's usual filler).
_FILLER = frozenset({"image", "img", "picture", "photo", "photograph", "logo", "icon", "banner", "spacer", "avatar",
                     "placeholder", "thumbnail", "graphic", "illustration", "figure", "untitled", "blank", "null"})
_FILE_NAME = re.compile(r"\S+\.(?:jpe?g|png|gif|webp|svg|bmp|tiff?)", re.IGNORECASE)

# Rendered images with an alt attribute, in document order, at most ``limit``.
ALT_TEXT_JS = """(limit) => {
  const out = [];
  for (const img of document.images) {
    if (out.length >= limit) break;
    const r = img.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    const s = getComputedStyle(img);
    if (s.visibility === "hidden" || s.display === "none" || Number(s.opacity) === 0) continue;
    const alt = (img.getAttribute("alt") || "").replace(/\\s+/g, " ").trim();
    if (!alt) continue;
    out.push({src: img.currentSrc || img.src, alt: alt.slice(0, 2000),
              bbox: [Math.round(r.left + scrollX), Math.round(r.top + scrollY), Math.round(r.width),
                     Math.round(r.height)]});
  }
  return out;
}"""


def is_caption(alt: str) -> bool:
    """Non-trivial alt text: two words or more besides filler ("company logo" is one), not a file name."""
    words = [word for word in re.findall(r"\w+", alt.lower()) if word not in _FILLER]
    return len(words) >= 2 and not _FILE_NAME.fullmatch(alt.strip())


def alt_text_samples(images: list[dict], page_uri: str, base: str, policy: AddressPolicy,
                     config: CaptionConfig) -> tuple[list[Sample], dict]:
    """(the caption samples of ``images`` as the page listed them, the page's alt_text summary).

    ``base``: the folder server's root URL for a page from a folder (image URIs are then the
    files' places in the folder, the same on every run), else "". ``policy``: the page's own
    (its guard proxy's), so an image reaches exactly what the page could."""
    wanted, seen = [], set()
    for image in images[:MAX_IMAGES]:
        if is_caption(image["alt"]) and (image["src"], image["alt"]) not in seen:
            seen.add((image["src"], image["alt"]))
            wanted.append(image)
    with concurrent.futures.ThreadPoolExecutor(_FETCHERS) as pool:
        made = list(pool.map(lambda image: _pair(image, page_uri, base, policy, config), wanted))
    samples = [sample for sample in made if isinstance(sample, Sample)]
    skipped: dict[str, int] = {}
    for outcome in made:
        if isinstance(outcome, str):
            skipped[outcome] = skipped.get(outcome, 0) + 1
    summary = {"images": len(images), "captions": len(wanted), "samples": len(samples), "skipped": skipped}
    return samples, summary


def _pair(image: dict, page_uri: str, base: str, policy: AddressPolicy, config: CaptionConfig) -> Sample | str:
    """The image's caption sample, or the reason it was left out."""
    src, alt = image["src"], image["alt"]
    uri = urllib.parse.unquote(src[len(base):]) if base and src.startswith(base) else src
    try:
        fetched = download(src, config, policy)
        final = fetched.url
        final = urllib.parse.unquote(final[len(base):]) if base and final.startswith(base) else final
        meta = {"alt_text": {"page": page_uri, "bbox": image["bbox"]},
                "download": {"final_url": final, "status": fetched.status,
                             "content_type": (fetched.values("content-type") or [""])[0][:200]}}
        key = make_key("web", page_uri, "alt-text", uri, alt)
        return pair_sample(key, "web", uri, alt, fetched.body, config, meta, text_source="alt-text")
    except Reject as reject:
        return reject.reason
