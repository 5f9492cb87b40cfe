"""The use-case labeler: two fastText classifiers trained from the taxonomy editors' examples.

One model predicts the main category, one the leaf. A sample's leaf confidence is
P(main) x P(leaf | main), where P(leaf | main) is the leaf model's probability renormalised over
the leaves of that main category; so the leaf always lies under the predicted main category and
the leaf confidences of all leaves add up to 1. A label below ``min_confidence`` is not given:
the sample goes to the review queue with its candidates.

A model folder holds ``main.bin``, ``leaf.bin`` (fastText's own format, not pickle) and
``labeler.json`` (taxonomy version, labels, training settings, sha256 of both models).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable

from vlcurate.taxonomy.tree import Taxonomy
from vlcurate.transforms.io.files import file_sha256
from vlcurate.transforms.data.review import REVIEW_STATUS

SCHEMA = "vlcurate.labeler/1"
_TOKEN = re.compile(r"[^\W_]+|[^\w\s]", re.UNICODE)


def normalised(text: str) -> str:
    """Lowercase words and punctuation marks as separate tokens: fastText splits on whitespace
    only, and "chart?" must count as "chart"."""
    return " ".join(_TOKEN.findall(text.lower()))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """fastText settings. Buckets hold the word-bigram and character n-gram vectors: fastText's
    default 2 M makes a 400 MB model, 200 k a 40 MB one. Fewer buckets were as accurate, but
    fasttext-numpy2 0.10.4 then trains a different model on each run (measured: 50 k and 100 k
    gave 4 to 6 different models in 6 runs; 200 k and 2 M gave one), and the same examples must
    give the same labeler."""

    # Chosen by 5-fold cross-validation on examples/sft/labelled.jsonl (10 examples a leaf): many
    # passes at a low rate beat fastText's defaults (5 passes at 0.1: main 0.23, leaf 0.05) and
    # 100 at 1.0 (0.57, 0.25), at 0.61 and 0.26 (top-1 accuracy of each model alone).
    epoch: int = 300
    lr: float = 0.3
    word_ngrams: int = 2
    dim: int = 50
    minn: int = 3  # character n-grams: typos and word forms ("transcribe", "transcription")
    maxn: int = 5
    bucket: int = 200_000
    seed: int = 0

    def fasttext_args(self) -> dict:
        # One thread: fastText's Hogwild updates make multi-threaded training nondeterministic.
        return {"epoch": self.epoch, "lr": self.lr, "wordNgrams": self.word_ngrams, "dim": self.dim,
                "minn": self.minn, "maxn": self.maxn, "bucket": self.bucket, "seed": self.seed,
                "thread": 1, "minCount": 1, "loss": "softmax", "verbose": 0}


@dataclasses.dataclass(frozen=True)
class Example:
    text: str
    label: str  # a node id of the taxonomy (a leaf, or a main category: it then trains only the main model)
    line: int = 0


class ExamplesError(ValueError):
    """Bad labelled examples, one "FILE:LINE: message" per problem."""


def read_examples(path: str, taxonomy: Taxonomy) -> list[Example]:
    """``{"text": ..., "label": NODE_ID}`` lines; labels of older taxonomy versions are mapped
    through ``moved_from``. Lines whose label is null (an unreviewed review-queue row) are skipped.
    The review desk's decisions log (or a dataset folder, for its log) gives the decisions in
    force: the last label of each sample that no undo took back."""
    import os

    from vlcurate.taxonomy.desk import decisions

    if os.path.isdir(path):
        path = decisions.decisions_path(path)
    if decisions.is_decisions_log(path):
        return _decided_examples(path, taxonomy)
    examples, problems = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError as error:
                problems.append(f"{path}:{number}: not JSON: {error}")
                continue
            if not isinstance(doc, dict) or not isinstance(doc.get("text"), str) or not doc["text"].strip():
                problems.append(f"{path}:{number}: needs a non-empty string field text")
                continue
            if doc.get("label") is None:
                continue
            label = taxonomy.resolve(doc["label"]) if isinstance(doc["label"], str) else None
            if label is None:
                problems.append(f"{path}:{number}: label {doc['label']!r} is not in taxonomy {taxonomy.version}")
                continue
            examples.append(Example(doc["text"], label, number))
    if problems:
        raise ExamplesError("\n".join(problems))
    if not examples:
        raise ExamplesError(f"{path}: no labelled examples")
    return examples


def _decided_examples(path: str, taxonomy: Taxonomy) -> list[Example]:
    from vlcurate.taxonomy.desk.decisions import DecisionsError, examples

    try:
        decided = examples(path)
    except DecisionsError as error:
        raise ExamplesError(str(error)) from None
    found, problems = [], []
    for seq, text, label in decided:
        resolved = taxonomy.resolve(label)
        if resolved is None:
            problems.append(f"{path}: decision {seq}: label {label!r} is not in taxonomy {taxonomy.version}")
        elif text.strip():
            found.append(Example(text, resolved, seq))
    if problems:
        raise ExamplesError("\n".join(problems))
    if not found:
        raise ExamplesError(f"{path}: no decisions in force")
    return found


@dataclasses.dataclass(frozen=True)
class Prediction:
    main: str
    main_confidence: float
    leaf: str | None  # None when the leaf model knows no leaf of this main category
    leaf_confidence: float
    top: tuple[tuple[str, float], ...]  # the k most likely leaves, by joint confidence

    def describe(self, taxonomy: Taxonomy, min_confidence: float, model: str) -> dict:
        """The sample's ``taxonomy`` field: the leaf when sure enough, else status review."""
        sure = self.leaf is not None and self.leaf_confidence >= min_confidence
        return {
            "id": self.leaf if sure else None,
            "name": taxonomy.node(self.leaf).name if sure else None,
            "confidence": self.leaf_confidence,
            "main": self.main,
            "main_confidence": self.main_confidence,
            "status": "labelled" if sure else REVIEW_STATUS,
            "top": [{"id": leaf, "confidence": confidence} for leaf, confidence in self.top],
            "version": taxonomy.version,
            "labeler": model,
        }


class Labeler:
    """A trained labeler folder, loaded for prediction against ``taxonomy``."""

    def __init__(self, folder: str, taxonomy: Taxonomy):
        with open(os.path.join(folder, "labeler.json"), encoding="utf-8") as handle:
            self.info = json.load(handle)
        if self.info.get("schema") != SCHEMA:
            raise ValueError(f"{folder}: not a vlcurate labeler ({self.info.get('schema')!r})")
        self.folder = folder
        self.taxonomy = taxonomy
        self._models = None
        # A model trained on an older taxonomy still predicts the old ids: map them forward.
        self._current = {label: taxonomy.resolve(label) for label in self.info["leaves"] + self.info["mains"]}
        unknown = sorted(label for label, current in self._current.items() if current is None)
        if unknown:
            raise ValueError(f"{folder}: labels {unknown} are not in taxonomy {taxonomy.version} "
                             f"(trained on {self.info['taxonomy_version']}); retrain or migrate")
        self._main = {current: taxonomy.main_of(current).id for current in self._current.values()}

    @property
    def sha256(self) -> str:
        return self.info["models"]["leaf"]["sha256"]

    def _loaded(self):
        """Both models, each as (model, its output matrix, its labels as current ids), and for
        every leaf the index of its main category among the main model's labels."""
        if self._models is None:
            import fasttext
            import numpy

            parts = []
            for part in ("main", "leaf"):
                model = fasttext.load_model(os.path.join(self.folder, f"{part}.bin"))
                labels = [self._current[label[len("__label__"):]] for label in model.get_labels()]
                parts.append((model, model.get_output_matrix(), labels))
            (_, _, mains), (_, _, leaves) = parts
            main_index = {label: i for i, label in enumerate(mains)}
            self._leaf_main = numpy.array([main_index[self._main[leaf]] for leaf in leaves])
            self._models = tuple(parts)
        return self._models

    def predict(self, text: str, k: int = 3) -> Prediction:
        import numpy

        (main_model, main_out, mains), (leaf_model, leaf_out, leaves) = self._loaded()
        line = normalised(text) or "."
        # fastText's softmax, computed here over all labels at once in a fixed order (what
        # model.predict(k=-1) gives, without building 89 label strings per text).
        main_p = _softmax(main_out @ main_model.get_sentence_vector(line))
        leaf_p = _softmax(leaf_out @ leaf_model.get_sentence_vector(line))
        by_main = numpy.bincount(self._leaf_main, weights=leaf_p, minlength=len(mains))
        # P(main) x P(leaf | main), with the leaf model renormalised within each main category.
        joint = main_p[self._leaf_main] * leaf_p / numpy.maximum(by_main[self._leaf_main], 1e-30)
        main = int(numpy.argmax(main_p))
        inside = numpy.flatnonzero(self._leaf_main == main)
        leaf = int(inside[numpy.argmax(joint[inside])]) if len(inside) else None
        ranked = numpy.argsort(-joint, kind="stable")[:k]
        return Prediction(
            main=mains[main],
            main_confidence=_rounded(main_p[main]),
            leaf=None if leaf is None else leaves[leaf],
            leaf_confidence=0.0 if leaf is None else _rounded(joint[leaf]),
            top=tuple((leaves[i], _rounded(joint[i])) for i in ranked),
        )


def _softmax(scores):
    import numpy

    exp = numpy.exp(scores - scores.max())
    return exp / exp.sum()


def _rounded(value) -> float:
    return round(min(max(float(value), 0.0), 1.0), 4)


def _fit(fasttext, data: str, config: TrainConfig):
    """fastText's model, and the learning rate that trained it: at a high rate on few examples its
    gradients can blow up ("Encountered NaN"); the rate is then halved, up to five times."""
    args = config.fasttext_args()
    for _ in range(5):
        try:
            return fasttext.train_supervised(input=data, **args), args["lr"]
        except RuntimeError as error:
            if "NaN" not in str(error):
                raise
            args["lr"] /= 2
    raise ExamplesError(f"fastText diverged even at lr {args['lr'] * 2}; lower --lr")


def train(examples: Iterable[Example], taxonomy: Taxonomy, folder: str, config: TrainConfig = TrainConfig()) -> dict:
    """Train both models into ``folder``; returns what labeler.json records."""
    import fasttext

    examples = list(examples)
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        lines = {
            "main": [(taxonomy.main_of(e.label).id, e.text) for e in examples],
            "leaf": [(e.label, e.text) for e in examples if not taxonomy.node(e.label).children],
        }
        models = {}
        for part, labelled in lines.items():
            if len({label for label, _ in labelled}) < 2:
                raise ExamplesError(f"the {part} model needs examples of at least two {part} labels")
            data = os.path.join(work, f"{part}.txt")
            with open(data, "w", encoding="utf-8") as handle:
                for label, text in labelled:
                    handle.write(f"__label__{label} {normalised(text)}\n")
            model, used = _fit(fasttext, data, config)
            path = os.path.join(folder, f"{part}.bin")
            model.save_model(path)
            models[part] = {"file": f"{part}.bin", "sha256": file_sha256(path), "examples": len(labelled),
                            "lr": used}
    info = {
        "schema": SCHEMA,
        "taxonomy_version": taxonomy.version,
        "mains": sorted({taxonomy.main_of(e.label).id for e in examples}),
        "leaves": sorted({label for label, _ in lines["leaf"]}),
        "examples": dict(sorted(Counter(e.label for e in examples).items())),
        "train": dataclasses.asdict(config),
        "models": models,
    }
    with open(os.path.join(folder, "labeler.json"), "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return info
