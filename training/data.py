"""The training loader: shards in, modality-grouped, mixed, formatted batches out.

The stages, as in open_clip's data module but with an exact position to resume from:

    shard list -> per route (category): the shards that hold it, assigned to this rank and
    worker (split by shard, or by sample when there are fewer shards than readers) -> a fresh
    shard order per (seed, route, epoch) -> samples in tar order (keys are hashes, so the order
    inside a shard is already random) -> parse -> format (chat or plain template) -> decode the
    images (size checked from the header) -> a batch that is all language or all multimodal

Step s is produced by stream ``s % workers`` of its rank (a DataLoader worker, in order), so a
batch is a function of (seed, epoch, step) and of the rank/worker split. Each batch carries
its stream's position (per route: epoch, shard, sample) after it; the trainer saves the
positions of the batches it consumed, and a resumed loader starts every stream there.
"""

from __future__ import annotations

import collections
import dataclasses
import random

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from vlcurate.training.chat import BadConversation, format_conversation, format_interleaved, format_plain
from vlcurate.training.images import BadImage, ImageConfig, preprocess
from vlcurate.training.mixing import Mixer, ModalitySchedule, language_target
from vlcurate.training.sources import (
    LANGUAGE, MAX_MEMBER_BYTES, BadSample, NoData, Record, ShardInfo, parse, read_groups, usable_shards,
)
from vlcurate.training.tokenizer import IGNORE, IMAGE, ByteTokenizer

MULTIMODAL_ROUTES = ("caption", "document_ocr", "interleaved", "scene_ocr", "table_chart", "web_code")
MAX_BAD_IN_A_ROW = 10_000  # a route that only gives bad samples is given up, not looped on forever


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What the loader reads and how it mixes; ``weights`` empty means every route found, weight 1."""

    stage: int = 2
    batch_size: int = 4
    seed: int = 0
    workers: int = 2  # DataLoader workers, and the number of streams per rank
    weights: tuple = ()  # ((route, weight), ...)
    lang_share: float | None = None  # None: text_only's share of the weights, else 0.7 (stage 1: 0)
    warmup_steps: int = 0
    warmup_shape: str = "linear"
    image: ImageConfig = ImageConfig()
    image_tokens: int = 576
    max_len: int = 1024
    max_images: int = 4
    max_member_bytes: int = MAX_MEMBER_BYTES

    @property
    def kind(self) -> str:
        return "sft" if self.stage == 3 else "pretrain"

    @property
    def streams(self) -> int:
        return max(1, self.workers)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The shards, the routes that will be read, their weights and the modality schedule."""

    shards: tuple[ShardInfo, ...]
    routes: tuple[str, ...]
    weights: dict
    schedule: ModalitySchedule
    notes: tuple[str, ...]


def make_plan(specs, config: DataConfig) -> Plan:
    """Resolve the shard specs; drop routes without data and say so in ``notes``."""
    shards = tuple(usable_shards(specs))
    unknown = any(shard.routes is None for shard in shards)
    known = {route for shard in shards if shard.routes for kind, route in shard.routes if kind == config.kind}
    weights = dict(config.weights)
    if not weights:
        candidates = (LANGUAGE, *MULTIMODAL_ROUTES) if unknown else sorted(known)
        weights = {route: 1.0 for route in candidates}
    notes = []
    for route in sorted(weights):
        if not unknown and route not in known:
            notes.append(f"no {config.kind} samples of {route} in these shards: training on what they have")
    routes = tuple(sorted(route for route in weights if (unknown or route in known) and weights[route] > 0))
    if not routes:
        raise _nothing_to_train(shards, config, known, weights)
    default = 0.0 if config.stage == 1 else 0.7
    target = language_target(dict(config.weights), config.lang_share, default)  # given weights only
    warmup = config.warmup_steps
    if LANGUAGE not in routes and target > 0:
        notes.append("no language (text-only) samples: every batch is multimodal")
        target, warmup = 0.0, 0
    if all(route == LANGUAGE for route in routes) and target < 1:
        notes.append("no multimodal samples: every batch is language")
        target, warmup = 1.0, 0
    schedule = ModalitySchedule(target, warmup, config.warmup_shape)
    return Plan(shards, routes, {route: weights[route] for route in routes}, schedule, tuple(notes))


def _nothing_to_train(shards, config: DataConfig, known: set, weights: dict) -> NoData:
    """Why a plan has no route to read, and what to pass instead: the data is for another stage,
    or --mix weighs only routes it does not hold."""
    other = sorted({route for shard in shards for kind, route in shard.routes or () if kind != config.kind})
    if config.weights and not any(weight > 0 for _, weight in config.weights):
        return NoData("--mix gives every route weight 0: weigh at least one", usage=True)
    if not known and other and config.kind == "pretrain":
        return NoData(f"these shards hold SFT conversations ({', '.join(other)}), not pretraining samples: "
                      f"pass --stage 3 to train on them (stage {config.stage} trains on pretraining data)", usage=True)
    if not known and other:
        return NoData(f"these shards hold pretraining samples ({', '.join(other)}), not SFT conversations: "
                      "pass --stage 1 or 2 to train on them (stage 3 trains on `vlcurate sft` data)", usage=True)
    if known:
        return NoData(f"--mix gives no weight to what these shards hold ({', '.join(sorted(known))}); "
                      f"weigh at least one of them, e.g. --mix {sorted(known)[0]}=1", usage=True)
    return NoData(f"these shards hold no {config.kind} samples")


class Exhausted(Exception):
    """A route reader went through a whole epoch of its shards without one usable sample."""


class RanDry(NoData):
    """Every route of a loader stream ran out of usable samples: every shard or sample was skipped.
    (A DataLoader worker's exception reaches the trainer rebuilt from a traceback text, so the
    trainer words its own message from the type.)"""


class RouteReader:
    """The samples of one route for one reader slot, epoch after epoch, with a resumable position."""

    def __init__(self, route: str, kind: str, shards, slot: int, slots: int, seed: int, counts,
                 owners: dict, state: dict | None = None, max_member_bytes: int = MAX_MEMBER_BYTES):
        self.route, self.kind, self.slot, self.slots, self.seed = route, kind, slot, slots, seed
        self.counts, self.owners, self.max_member_bytes = counts, owners, max_member_bytes
        shards = [shard for shard in shards if shard.routes is None or (kind, route) in shard.routes]
        self.by_sample = len(shards) < slots  # too few shards to give every reader its own
        if self.by_sample:
            self.mine = list(shards)
        else:
            order = list(shards)
            random.Random(f"{seed}:{route}:assign").shuffle(order)
            self.mine = order[slot::slots]
        state = state or {}
        self.epoch, self.position = state.get("epoch", 0), state.get("shard", 0)
        self.offset, self.base = state.get("sample", 0), state.get("base", 0)
        self.full_epoch = self.position == 0 and self.offset == 0
        self.produced = 0
        self._count_samples = False  # set per shard: whether this reader counts its problems
        self.one_epoch = False  # check_shards: stop after one pass
        self._order = self._epoch_order()
        self._groups = None

    def state(self) -> dict:
        return {"epoch": self.epoch, "shard": self.position, "sample": self.offset, "base": self.base}

    def _epoch_order(self) -> list[ShardInfo]:
        order = list(self.mine)
        who = "all" if self.by_sample else self.slot
        random.Random(f"{self.seed}:{self.route}:{self.epoch}:{who}").shuffle(order)
        return order

    def _open(self):
        shard = self._order[self.position]
        owner = self.owners.get(shard.url) == self.route
        base = self.base
        want = (lambda n: (base + n) % self.slots == self.slot) if self.by_sample else None
        count_shard = owner and (not self.by_sample or self.slot == 0)
        self._count_samples = owner
        return read_groups(shard.url, self.counts, skip=self.offset, count_errors=count_shard,
                           max_member_bytes=self.max_member_bytes, want=want)

    def __next__(self) -> Record:
        while True:
            if self.position >= len(self._order):
                if self.one_epoch or (self.full_epoch and self.produced == 0):
                    raise Exhausted(self.route)
                self.epoch, self.position, self.offset, self.base = self.epoch + 1, 0, 0, 0
                self.full_epoch, self.produced = True, 0
                self._order = self._epoch_order()
                if not self._order:
                    raise Exhausted(self.route)
            if self._groups is None:
                self._groups = self._open()
            for key, members, refused in self._groups:
                self.offset += 1
                if members is None:
                    continue
                if refused:
                    self._count(refused)
                    continue
                try:
                    record = parse(key, members)
                except BadSample as error:
                    self._count(error.reason)
                    continue
                if record.kind == self.kind and record.route == self.route:
                    self.produced += 1
                    return record
            self._groups = None
            self.base += self.offset
            self.position, self.offset = self.position + 1, 0

    def _count(self, reason: str):
        if self._count_samples:
            self.counts[reason] += 1


def _owners(shards, routes, kind) -> dict:
    """shard url -> the one route whose reader counts that shard's problems (so a bad sample in
    a shard read by several route readers is counted once)."""
    owners = {}
    for shard in shards:
        held = [r for r in routes if shard.routes is None or (kind, r) in shard.routes]
        if held:
            owners[shard.url] = min(held)
    return owners


def format_record(record: Record, config: DataConfig, tokenizer: ByteTokenizer):
    """(ids, labels, low images, high images) of a record; raises BadSample with a reason."""
    try:
        if record.kind == "sft":
            formatted = format_conversation(record.conversation, tokenizer, config.image_tokens)
        elif record.category == "interleaved" and IMAGE in record.text:
            # Images where the document had them; over max_images is too_many_images below.
            formatted = format_interleaved(record.text, len(record.images), tokenizer, config.image_tokens)
        else:
            formatted = format_plain(record.text, min(len(record.images), config.max_images), tokenizer,
                                     config.image_tokens)
    except BadConversation as error:
        raise BadSample("bad_conversation", str(error)) from error
    if len(formatted.images) > config.max_images:
        raise BadSample("too_many_images")
    if any(index >= len(record.images) for index in formatted.images):
        raise BadSample("missing_member", "conversation names an image the sample lacks")
    ids, labels = formatted.ids, formatted.labels
    if len(ids) > config.max_len:
        # Cut the tail, never an image's tokens, and keep something to learn from.
        last_image = max((i for i, t in enumerate(ids) if t == tokenizer.image_id), default=-1)
        ids, labels = ids[:config.max_len], labels[:config.max_len]
        if last_image >= config.max_len or all(label == IGNORE for label in labels[1:]):
            raise BadSample("too_long")
    low, high = [], []
    for index in formatted.images:
        try:
            a, b = preprocess(record.images[index], config.image)
        except BadImage as error:
            raise BadSample(error.reason, str(error)) from error
        low.append(a)
        high.append(b)
    return ids, labels, low, high


def collate(items, tokenizer: ByteTokenizer, config: DataConfig) -> dict:
    """Pad to the longest sample (right padding: causal attention never looks at it)."""
    length = max(len(ids) for ids, _, _, _ in items)
    ids = torch.full((len(items), length), tokenizer.pad_id, dtype=torch.long)
    labels = torch.full((len(items), length), IGNORE, dtype=torch.long)
    for row, (sample_ids, sample_labels, _, _) in enumerate(items):
        ids[row, :len(sample_ids)] = torch.tensor(sample_ids)
        labels[row, :len(sample_labels)] = torch.tensor(sample_labels)
    low = [image for _, _, images, _ in items for image in images]
    high = [image for _, _, _, images in items for image in images]
    lo, hi = config.image.low_size, config.image.high_size
    return {
        "ids": ids, "labels": labels,
        "low": torch.stack(low) if low else torch.zeros((0, 3, lo, lo), dtype=torch.uint8),
        "high": torch.stack(high) if high else torch.zeros((0, 3, hi, hi), dtype=torch.uint8),
    }


class Stream:
    """One rank-and-worker stream: a reader per route, the counters, and the batch of a step."""

    def __init__(self, plan: Plan, config: DataConfig, rank: int, world: int, stream: int,
                 state: dict | None = None):
        self.plan, self.config, self.rank, self.stream = plan, config, rank, stream
        self.tokenizer = ByteTokenizer()
        self.mixer = Mixer(plan.schedule, plan.weights, config.seed)
        state = state or {}
        self.counts = collections.Counter(state.get("counts", {}))
        slot, slots = rank * config.streams + stream, world * config.streams
        owners = _owners(plan.shards, plan.routes, config.kind)
        positions = state.get("routes", {})
        self.readers = {
            route: RouteReader(route, config.kind, plan.shards, slot, slots, config.seed, self.counts, owners,
                               positions.get(route), config.max_member_bytes)
            for route in plan.routes
        }
        self.empty = set(state.get("empty", []))

    def state(self) -> dict:
        return {"routes": {route: reader.state() for route, reader in self.readers.items()},
                "counts": dict(self.counts), "empty": sorted(self.empty)}

    def _available(self):
        return [route for route in self.plan.routes if route not in self.empty]

    def _take(self, route: str):
        """The next usable sample of a route, formatted; None when the route has none left."""
        for _ in range(MAX_BAD_IN_A_ROW):
            try:
                record = next(self.readers[route])
            except Exhausted:
                self.empty.add(route)
                self.counts[f"route_empty:{route}"] += 1
                return None
            try:
                return record.key, format_record(record, self.config, self.tokenizer)
            except BadSample as error:
                self.counts[error.reason] += 1
        self.empty.add(route)
        return None

    def batch(self, step: int) -> dict:
        language = self.mixer.is_language(step)
        taken = []
        while len(taken) < self.config.batch_size:
            available = self._available()
            has_language = LANGUAGE in available
            has_images = any(route != LANGUAGE for route in available)
            if not available:
                raise RanDry(f"rank {self.rank} stream {self.stream}: no route has usable samples")
            if (language and not has_language) or (not language and not has_images):
                self.counts["modality_fallback"] += 1  # this stream ran dry of one modality
                language = not language
                taken = []
                continue
            need = self.config.batch_size - len(taken)
            routes = [LANGUAGE] * need if language else self.mixer.routes(step, self.rank, need, available)
            # When a route runs dry the rest is drawn again among those left: still a function of
            # the step and of what the data holds.
            for route in routes:
                item = self._take(route)
                if item is None:
                    break
                taken.append((route, *item))
        batch = collate([item for _, _, item in taken], self.tokenizer, self.config)
        batch.update(language=language, keys=[key for _, key, _ in taken], routes=[route for route, _, _ in taken],
                     stream=self.stream, state=self.state())
        return batch


class ShardLoader(IterableDataset):
    """The batches of one rank from ``start_step`` on, forever; with DataLoader workers, worker w
    produces steps start+w, start+w+W, ... (DataLoader hands them out in that order)."""

    def __init__(self, plan: Plan, config: DataConfig, rank: int = 0, world: int = 1, start_step: int = 0,
                 positions: dict | None = None):
        self.plan, self.config, self.rank, self.world = plan, config, rank, world
        self.start_step, self.positions = start_step, positions or {}

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        streams: dict[int, Stream] = {}
        step = self.start_step + worker
        while True:
            stream_id = step % self.config.streams
            if stream_id not in streams:
                streams[stream_id] = Stream(self.plan, self.config, self.rank, self.world, stream_id,
                                            self.positions.get(str(stream_id)))
            batch = streams[stream_id].batch(step)
            batch["step"] = step
            yield batch
            step += workers


def check_shards(plan: Plan, config: DataConfig) -> dict:
    """One pass over every route's shards in a single reader, formatting every sample as training
    would: {"usable": {route: n}, "skipped": {reason: n}}. Finds what training would skip."""
    counts: collections.Counter = collections.Counter()
    owners = _owners(plan.shards, plan.routes, config.kind)
    tokenizer, usable = ByteTokenizer(), {}
    for route in plan.routes:
        reader = RouteReader(route, config.kind, plan.shards, 0, 1, config.seed, counts, owners,
                             max_member_bytes=config.max_member_bytes)
        reader.one_epoch = True
        usable[route] = 0
        while True:
            try:
                record = next(reader)
            except Exhausted:
                break
            try:
                format_record(record, config, tokenizer)
                usable[route] += 1
            except BadSample as error:
                counts[error.reason] += 1
    return {"usable": usable, "skipped": dict(counts)}


def _as_is(batch):
    return batch


def make_loader(plan: Plan, config: DataConfig, rank: int = 0, world: int = 1, start_step: int = 0,
                positions: dict | None = None) -> DataLoader:
    """A DataLoader over ``ShardLoader`` with ``config.workers`` worker processes (0: in process)."""
    dataset = ShardLoader(plan, config, rank, world, start_step, positions)
    extra = {"prefetch_factor": 2} if config.workers else {}
    return DataLoader(dataset, batch_size=None, num_workers=config.workers, collate_fn=_as_is, **extra)
