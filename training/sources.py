"""Where the samples come from: shard lists (manifest, list, glob, URL), read by the one shard reader.

A shard is opened with ``webdataset.gopen`` (local paths and every URL scheme webdataset opens)
and read as a stream by transforms/io/shard_reader.py, as every command reads shards. Shards are
untrusted: every problem is counted under a reason and skipped, never raised. A cut or corrupt
tar keeps the samples read before the damage, and its name is logged; members with pickle-like
suffixes are refused unread (nothing here ever unpickles).
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import json
import logging
import os

import braceexpand
from vlcurate.transforms.io import shard_reader
from vlcurate.transforms.io.manifest import ManifestError, read_manifest
from vlcurate.transforms.io.shard_reader import ShardError

log = logging.getLogger(__name__)

# Routes: a sample without images is language data ("text_only"); one with images goes by its
# category. Mixing weights are per route.
LANGUAGE = "text_only"
TEXT_SUFFIXES = {"txt", "md", "html", "json"}
IMAGE_SUFFIXES = {"png", "jpg", "jpeg"}
MAX_MEMBER_BYTES = 64 * 1024 * 1024
BUILD_FIRST = "build a dataset first with `vlcurate pdf` (or another pipeline command) or `vlcurate run RECIPE`"


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """One shard: its URL, and the (kind, route) pairs its index says it holds (None: unknown,
    every reader looks inside). kind is "sft" for conversations, "pretrain" otherwise."""

    url: str
    routes: frozenset | None = None
    samples: int | None = None


@dataclasses.dataclass
class Record:
    """One parsed sample, images still encoded."""

    key: str
    category: str
    kind: str
    route: str
    text: str | None
    conversation: list | None
    images: list[bytes]


class NoData(ValueError):
    """Nothing to train on: ``usage`` when the command line is the mistake (a path that is not
    there, a stage or mix the data does not fit: exit 2), else the data's (exit 1). The message
    says what to do; it is one line."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage


class BadSample(ValueError):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def route_of(category: str, image_count: int) -> str:
    """A sample without images is language data whatever its category; one with images is never
    language data (a mislabelled text_only sample with images goes with the interleaved ones)."""
    if image_count == 0:
        return LANGUAGE
    return "interleaved" if category == LANGUAGE else category


def _index_routes(path: str) -> frozenset | None:
    """(kind, route) pairs in a shard, from its parquet index; None if there is none to read."""
    if not os.path.exists(path):
        return None
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["source", "category", "image_count"]).to_pydict()
    except Exception:
        return None
    return frozenset(
        ("sft" if source == "sft" else "pretrain", route_of(category, count or 0))
        for source, category, count in zip(table["source"], table["category"], table["image_count"])
    )


def _from_manifest(folder: str) -> list[ShardInfo]:
    try:
        manifest = read_manifest(folder)
    except ManifestError as error:
        raise NoData(f"{error}") from None
    out = []
    for shard in manifest.get("shards", []):
        index = shard.get("index", {}).get("name")
        routes = _index_routes(os.path.join(folder, index)) if index else None
        out.append(ShardInfo(os.path.join(folder, shard["name"]), routes, shard.get("samples")))
    return out


def _local_tar(path: str) -> ShardInfo:
    # A shard inside a dataset folder has its index at ../index/NAME.parquet.
    folder, name = os.path.split(os.path.abspath(path))
    index = os.path.join(os.path.dirname(folder), "index", name.rsplit(".", 1)[0] + ".parquet")
    return ShardInfo(path, _index_routes(index) if os.path.basename(folder) == "shards" else None)


def list_shards(specs) -> list[ShardInfo]:
    """Shards from dataset folders (through their manifest), manifest files, local tars, globs,
    comma-separated lists, ``@FILE`` (one spec a line) and URLs (brace ranges expanded)."""
    if isinstance(specs, str):
        specs = [specs]
    out: list[ShardInfo] = []
    for spec in specs:
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            if item.startswith("@"):
                try:
                    with open(item[1:], encoding="utf-8") as handle:
                        lines = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
                except (OSError, UnicodeDecodeError) as error:
                    raise NoData(f"cannot read the shard list {item[1:]}: {getattr(error, 'strerror', None) or error}",
                                 usage=isinstance(error, FileNotFoundError)) from None
                out.extend(list_shards(lines))
            elif "://" in item or item.startswith("pipe:"):
                out.extend(ShardInfo(url) for url in braceexpand.braceexpand(item))
            elif os.path.isdir(item) and os.path.exists(os.path.join(item, "manifest.json")):
                out.extend(_from_manifest(item))
            elif os.path.isdir(item):  # a folder of shards without a manifest
                found = [_local_tar(path) for pattern in ("*.tar", "shards/*.tar")
                         for path in sorted(glob.glob(os.path.join(glob.escape(item), pattern)))]
                if not found:
                    raise NoData(f"no shards in {item} (expected {item}/shards/*.tar or {item}/*.tar); "
                                 f"{BUILD_FIRST}")
                out.extend(found)
            elif os.path.basename(item) == "manifest.json":
                out.extend(_from_manifest(os.path.dirname(item) or "."))
            else:
                paths = []
                for expanded in braceexpand.braceexpand(item):
                    paths.extend(sorted(glob.glob(expanded)) if glob.has_magic(expanded) else [expanded])
                out.extend(_local_tar(path) for path in paths)
    return out


def usable_shards(specs) -> list[ShardInfo]:
    """``list_shards`` for a command line: NoData when the specs name nothing that could be read.
    A missing shard among others is only skipped and counted (a manifest may list one that is
    gone), but specs that are all missing paths are a mistake to stop at."""
    shards = list_shards(specs)
    named = ", ".join([specs] if isinstance(specs, str) else specs)
    if not shards:
        if any(os.path.exists(spec) for spec in ([specs] if isinstance(specs, str) else specs)):
            raise NoData(f"no shards in {named}: no run of it kept a sample; {BUILD_FIRST}")  # an empty manifest
        raise NoData(f"no shards match {named}; {BUILD_FIRST}", usage=True)
    if all("://" not in shard.url and not shard.url.startswith("pipe:") and not os.path.exists(shard.url)
           for shard in shards):
        raise NoData(f"no shards in {named}: no such file or folder; {BUILD_FIRST}", usage=True)
    return shards


def _unknown_suffix(members: dict) -> str | None:
    """"unknown_extension" if a member's suffix is not one the trainer reads (pickle-like ones never
    get here: the shard reader refuses them unread), else None."""
    for suffix in members:
        last = suffix.rsplit(".", 1)[-1].lower()
        if last not in TEXT_SUFFIXES and last not in IMAGE_SUFFIXES:
            return "unknown_extension"
    return None


def _open(url: str):
    import webdataset

    return webdataset.gopen(url, "rb")


def _shard_count(error: ShardError) -> str:
    """The skip count a bad shard goes under: unreadable (nothing of it is a tar: missing, junk),
    truncated (cut short), or corrupt (a damaged header or member after good ones)."""
    if error.reason == "unreadable" or error.offset == 0:
        return "shard_unreadable"
    return "truncated_shard" if error.reason == "truncated" else "corrupt_shard"


_LOGGED: set = set()  # the shards already named in the log, by this process: once each, not per epoch


def read_groups(url: str, counts: collections.Counter, skip: int = 0, count_errors: bool = True,
                max_member_bytes: int = MAX_MEMBER_BYTES, want=None):
    """Yield (key, members, refused) for each sample of a shard, in tar order, read by the project's
    one shard reader (transforms/io/shard_reader.py).

    ``members`` is ``{suffix: bytes}``, or None for a sample skipped unread: one of the first
    ``skip`` (resuming) or one ``want(group_number)`` declines (another reader's share).
    ``refused`` is the reason a member made the whole sample unusable (pickle, too large, unknown
    extension), or None. A shard that cannot be read whole ends after the samples before the damage;
    it is counted (with ``count_errors``) as skipped and its name logged once.
    """
    def wanted(number: int) -> bool:
        return number >= skip and (want is None or want(number))

    try:
        for group in shard_reader.read_groups(url, max_member_bytes=max_member_bytes, want=wanted, lenient=True,
                                              opener=_open):
            if not wanted(group.number):
                yield group.key, None, None
            elif group.refused:
                yield group.key, {}, group.refused
            else:
                yield group.key, group.members, _unknown_suffix(group.members)
    except ShardError as error:
        if count_errors:
            counts[_shard_count(error)] += 1
            if url not in _LOGGED:
                _LOGGED.add(url)
                log.warning("skipping the rest of a bad shard: %s", error)


def parse(key: str, members: dict) -> Record:
    """A Record from a sample's members; BadSample names what is wrong."""
    if "json" not in members:
        raise BadSample("missing_member", f"{key}: no json")
    try:
        doc = json.loads(members["json"].decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as error:
        raise BadSample("bad_json", f"{key}: {error}") from error
    described = [doc["image"]] if isinstance(doc.get("image"), dict) else list(doc.get("images") or [])
    images = []
    for i, facts in enumerate(described):
        fmt = facts.get("format") if isinstance(facts, dict) else None
        ext = {"png": "png", "jpeg": "jpg"}.get(fmt)
        name = ext if len(described) == 1 and "image" in doc else f"{i}.{ext}"
        if ext is None or name not in members:
            raise BadSample("missing_member", f"{key}: image {name}")
        images.append(members[name])
    conversation = doc.get("conversation")
    text = members.get("txt")
    try:
        text = None if text is None else text.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadSample("bad_text", key) from error
    if conversation is None and text is None:
        raise BadSample("missing_member", f"{key}: no txt")
    category = str(doc.get("category", ""))
    return Record(key=key, category=category, kind="sft" if conversation is not None else "pretrain",
                  route=route_of(category, len(images)), text=text, conversation=conversation, images=images)
