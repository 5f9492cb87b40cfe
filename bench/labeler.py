"""Quality and speed of the use-case labeler on the project's labelled examples.

    .venv/bin/python bench/labeler.py [--folds 5] [--records 5000] [--repeat 1] [--json out.json]

Quality: k-fold cross-validation over examples/sft/labelled*.jsonl (written by hand for vlcurate,
every leaf of the taxonomy the same number of times). Fold i holds out every leaf's examples whose
index within the leaf is i modulo k, so each fold tests every leaf on texts it never saw. Reports
top-1 main-category accuracy, top-1 and top-3 leaf accuracy, for
  - the vlcurate labeler (two fastText models, default settings), and
  - the peer: scikit-learn's TF-IDF (word 1-2 grams and character 3-5 grams) with logistic
    regression, one model per level, trained on the same folds;
  - and the majority class, as the floor.

Speed, on the same texts repeated into --records SFT records (text only):
  (a) `vlcurate sft --labeler` end to end, via its CLI in a subprocess (FnApiRunner, one worker),
  (a') the same without --labeler (ingest and language id only): a - a' is what labelling costs,
  (b) the raw library loop: lid.176, then both fastText models, predicting on pre-normalised text,
  (c) the labeler's core loop: LanguageId.predict and Labeler.predict per text, as the stage runs,
  (d) the peer's loop: scikit-learn predict_proba per text (and batched, for reference),
and prints c/b and a/c. Numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from timing import add_run_flags, best_time, finish, run_main, work_folder  # bench/timing.py: this script's folder is on sys.path

from vlcurate.taxonomy.labeler import Example, Labeler, normalised, train
from vlcurate.taxonomy.langid import LanguageId
from vlcurate.taxonomy.tree import load_taxonomy

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO_ROOT / "examples" / "sft").glob("labelled*.jsonl"))


def load_examples() -> list[tuple[Example, int]]:
    """(example, its index among its leaf's examples), over every labelled file."""
    seen: collections.Counter = collections.Counter()
    out = []
    for path in EXAMPLES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                doc = json.loads(line)
                out.append((Example(doc["text"], doc["label"]), seen[doc["label"]]))
                seen[doc["label"]] += 1
    return out


# --------------------------------------------------------------------------- quality


def peer_model(texts, labels):
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    features = hstack([words.fit_transform(texts), chars.fit_transform(texts)]).tocsr()
    model = LogisticRegression(C=20, max_iter=2000).fit(features, labels)

    def vectorise(batch):
        return hstack([words.transform(batch), chars.transform(batch)]).tocsr()

    return model, vectorise


def cross_validate(examples, taxonomy, folds: int, work: Path) -> dict:
    hits = collections.Counter()
    tested = 0
    for fold in range(folds):
        train_set = [e for e, i in examples if i % folds != fold]
        test_set = [e for e, i in examples if i % folds == fold]
        tested += len(test_set)
        folder = work / f"fold-{fold}"
        train(train_set, taxonomy, str(folder))
        labeler = Labeler(str(folder), taxonomy)
        texts = [normalised(e.text) for e in train_set]
        peer_main, main_vec = peer_model(texts, [taxonomy.main_of(e.label).id for e in train_set])
        peer_leaf, leaf_vec = peer_model(texts, [e.label for e in train_set])
        test_texts = [normalised(e.text) for e in test_set]
        peer_mains = peer_main.predict(main_vec(test_texts))
        leaf_probabilities = peer_leaf.predict_proba(leaf_vec(test_texts))
        majority = collections.Counter(taxonomy.main_of(e.label).id for e in train_set).most_common(1)[0][0]
        for example, peer_main_label, probabilities in zip(test_set, peer_mains, leaf_probabilities):
            main = taxonomy.main_of(example.label).id
            prediction = labeler.predict(example.text, k=3)
            hits["fasttext main"] += prediction.main == main
            hits["fasttext leaf"] += prediction.leaf == example.label
            hits["fasttext leaf top-3"] += example.label in [leaf for leaf, _ in prediction.top]
            ranked = [peer_leaf.classes_[i] for i in probabilities.argsort()[::-1][:3]]
            hits["peer main"] += peer_main_label == main
            hits["peer leaf"] += ranked[0] == example.label
            hits["peer leaf top-3"] += example.label in ranked
            hits["majority main"] += majority == main
    return {name: count / tested for name, count in sorted(hits.items())} | {"tested": tested}


# --------------------------------------------------------------------------- speed


def write_records(examples, count: int, path: Path) -> list[str]:
    texts = []
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            text = f"{examples[n % len(examples)][0].text} (request {n})"  # distinct keys: no duplicates
            texts.append(text)
            record = {"conversation": [{"role": "User", "content": text}, {"role": "Assistant", "content": "Sure."}]}
            out.write(json.dumps(record) + "\n")
    return texts


def run_cli(records: Path, out: Path, labeler: Path | None) -> None:
    command = [str(REPO_ROOT / ".venv" / "bin" / "vlcurate"), "sft", "--input", str(records), "--output", str(out),
               "--overwrite"] + (["--labeler", str(labeler)] if labeler else [])
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONHASHSEED": "0"})


def loop_time(fn, texts, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for text in texts:
            fn(text)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--records", type=int, default=5000)
    add_run_flags(parser, seed=False)
    args = parser.parse_args()
    work, tmp = work_folder(args, "vlcurate-bench-labeler-")
    taxonomy = load_taxonomy()
    examples = load_examples()
    per_leaf = collections.Counter(e.label for e, _ in examples)
    print(f"examples: {len(examples)} in {', '.join(p.name for p in EXAMPLES)}; {len(per_leaf)} leaves, "
          f"{min(per_leaf.values())}-{max(per_leaf.values())} each; {args.folds}-fold cross-validation")

    start = time.perf_counter()
    quality = cross_validate(examples, taxonomy, args.folds, work / "cv")
    print(f"\nquality over {quality['tested']} held-out examples ({time.perf_counter() - start:.0f}s):")
    print(f"  {'':<28}{'main':>8}{'leaf':>8}{'leaf top-3':>12}")
    for name in ("fasttext", "peer"):
        label = {"fasttext": "vlcurate labeler (fastText)", "peer": "peer: TF-IDF + logistic reg."}[name]
        print(f"  {label:<28}{quality[name + ' main']:>8.3f}{quality[name + ' leaf']:>8.3f}"
              f"{quality[name + ' leaf top-3']:>12.3f}")
    print(f"  {'majority class':<28}{quality['majority main']:>8.3f}{1 / len(per_leaf):>8.3f}   (leaf: chance)")

    model = work / "model"
    train([e for e, _ in examples], taxonomy, str(model))
    records = work / "records.jsonl"
    texts = write_records(examples, args.records, records)
    labeler, lid = Labeler(str(model), taxonomy), LanguageId()
    labeler.predict("warm up")
    lid.predict("warm up")
    (main_model, _, _), (leaf_model, _, _) = labeler._loaded()
    lid_model = lid._model
    prepared = [normalised(text) for text in texts]
    one_line = [" ".join(text.split()) for text in texts]

    def raw(i):
        lid_model.predict(one_line[i], k=1)
        main_model.predict(prepared[i], k=-1)
        leaf_model.predict(prepared[i], k=-1)

    def core(text):
        lid.predict(text)
        labeler.predict(text)

    b = loop_time(raw, range(len(texts)), args.repeat)
    c = loop_time(core, texts, args.repeat)
    peer_texts = [normalised(e.text) for e, _ in examples]
    peer, vectorise = peer_model(peer_texts, [e.label for e, _ in examples])
    d = loop_time(lambda text: peer.predict_proba(vectorise([normalised(text)])), texts[:1000], 1) * len(texts) / 1000
    start = time.perf_counter()
    peer.predict_proba(vectorise([normalised(text) for text in texts]))
    d_batch = time.perf_counter() - start
    a = best_time(lambda out: run_cli(records, out, model), work / "out-labelled", args.repeat)
    a_plain = best_time(lambda out: run_cli(records, out, None), work / "out-plain", args.repeat)

    n = len(texts)
    print(f"\nspeed over {n} records (texts/s):")
    print(f"  (a)  vlcurate sft --labeler, end to end   {n / a:>10.0f}   ({a:.1f}s)")
    print(f"  (a') vlcurate sft, no labeler             {n / a_plain:>10.0f}   ({a_plain:.1f}s; labelling adds "
          f"{(a - a_plain) / n * 1e6:.0f} us a record)")
    print(f"  (b)  raw fastText loop (lid + 2 models)    {n / b:>10.0f}")
    print(f"  (c)  labeler core loop (lid + labeler)     {n / c:>10.0f}")
    print(f"  (d)  peer TF-IDF + LR, one text at a time  {n / d:>10.0f}   (batched: {n / d_batch:.0f})")
    print(f"\nc/b = {b / c:.2f}  (the labeler's own Python around fastText)")
    print(f"c/d = {d / c:.1f}  (labeler vs the peer, per text)")
    return finish(args, tmp, {"quality": quality, "records": n, "a_s": a, "a_plain_s": a_plain, "b_s": b, "c_s": c,
                              "d_s": d, "d_batch_s": d_batch})


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    run_main(main)
