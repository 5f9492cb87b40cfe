"""One sample of the dataset, read from its shard by position through the shard reader, for the
desk's item view and its images.

Reaching the 900th sample of a shard means stepping over the 899 before it (a tar has no table of
contents), about 0.1 s here. So where each sample starts is remembered from every pass over a
shard, and a background pass at start-up notes them for all shards (headers only); a sample whose
start is known is read from there, the reader opening the shard at that offset. The last few
samples are kept, since an item's page asks for its images one request each.
"""

from __future__ import annotations

import collections
import threading

from vlcurate.transforms.data.sample import Sample, sample_from_members
from vlcurate.transforms.io.files import open_for_reading
from vlcurate.transforms.io.shard_reader import ShardError, read_groups

CACHED = 64  # samples kept: an editor's next items and their images


class SampleReader:
    def __init__(self, dataset: str):
        self._dataset = dataset.rstrip("/")
        self._cache: collections.OrderedDict[str, Sample] = collections.OrderedDict()
        self._starts: dict[str, dict[int, int]] = collections.defaultdict(dict)  # shard -> number -> offset
        self._lock = threading.Lock()

    def path(self, shard: str) -> str:
        return f"{self._dataset}/shards/{shard}.tar"

    def note_starts(self, shards) -> threading.Thread:
        """Note where every sample of ``shards`` starts, in a background thread (headers only)."""

        def run():
            for shard in shards:
                try:
                    for group in read_groups(self.path(shard), want=lambda n: False):
                        self._starts[shard][group.number] = group.offset
                except ShardError:  # a damaged shard: its samples are found (or not) when asked for
                    continue

        thread = threading.Thread(target=run, name="vlcurate-desk-starts", daemon=True)
        thread.start()
        return thread

    def sample(self, key: str, shard: str, number: int) -> Sample:
        """The sample ``key``, the ``number``-th of ``shard``; a ShardError if the shard is damaged
        or does not hold it there."""
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        path = self.path(shard)
        start = self._starts[shard].get(number)
        if start is None:
            groups, wanted = read_groups(path, want=lambda n: n == number), number
        else:
            groups, wanted = read_groups(path, want=lambda n: n == 0, opener=lambda p: _opened_at(p, start)), 0
        try:
            sample = self._decode(groups, wanted, key, shard, path, 0 if start is None else start)
        finally:
            groups.close()
        with self._lock:
            self._cache[key] = sample
            while len(self._cache) > CACHED:
                self._cache.popitem(last=False)
        return sample

    def _decode(self, groups, wanted: int, key: str, shard: str, path: str, base: int) -> Sample:
        for group in groups:
            if base == 0:
                self._starts[shard][group.number] = group.offset
            if group.number == wanted:
                if group.key != key:
                    raise ShardError(path, base + group.offset, "bad_sample", f"{group.key} where {key} was expected")
                try:
                    return sample_from_members(group.members)
                except (KeyError, ValueError) as error:  # hostile bytes: any decoding error is a bad sample
                    raise ShardError(path, base + group.offset, "bad_sample", f"sample {key}: {error}") from error
        raise ShardError(path, base, "bad_sample", f"no sample {key} there")


def _opened_at(path: str, offset: int):
    handle = open_for_reading(path)
    handle.seek(offset)
    return handle
