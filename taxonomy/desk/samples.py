"""One sample of the dataset, read from its shard by position through the shard reader, for the
desk's item view and its images; the last few are kept, since an item's page asks for its images
one request each."""

from __future__ import annotations

import collections
import threading

from vlcurate.transforms.data.sample import Sample, sample_from_members
from vlcurate.transforms.io.shard_reader import ShardError, read_groups

CACHED = 64  # samples kept: an editor's next items and their images


class SampleReader:
    def __init__(self, dataset: str):
        self._dataset = dataset.rstrip("/")
        self._cache: collections.OrderedDict[str, Sample] = collections.OrderedDict()
        self._lock = threading.Lock()

    def sample(self, key: str, shard: str, number: int) -> Sample:
        """The sample ``key``, the ``number``-th of ``shard``; a ShardError if the shard is damaged
        or does not hold it there. Samples before it are stepped over unread."""
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        path = f"{self._dataset}/shards/{shard}.tar"
        groups = read_groups(path, want=lambda n: n == number)
        try:
            for group in groups:
                if group.number == number:
                    if group.key != key:
                        raise ShardError(path, group.offset, "bad_sample", f"sample {number} is {group.key}, not {key}")
                    sample = sample_from_members(group.members)
                    break
            else:
                raise ShardError(path, 0, "bad_sample", f"no sample {number} ({key})")
        except (KeyError, ValueError) as error:
            if isinstance(error, ShardError):
                raise
            raise ShardError(path, 0, "bad_sample", f"sample {key}: {error}") from error
        finally:
            groups.close()
        with self._lock:
            self._cache[key] = sample
            while len(self._cache) > CACHED:
                self._cache.popitem(last=False)
        return sample
