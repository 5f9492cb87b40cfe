"""`vlcurate taxonomy train` and `vlcurate taxonomy predict`: the labeler from the command line."""

from __future__ import annotations

import json
import sys

from vlcurate.taxonomy.labeler import ExamplesError, Labeler, TrainConfig, read_examples, train
from vlcurate.taxonomy.tree import TaxonomyError, load_taxonomy
from vlcurate.transforms.data.review import REVIEW_STATUS

_TRAIN = TrainConfig()


def add_commands(subparsers) -> None:
    trainer = subparsers.add_parser("train", help="train the fastText labeler from labelled examples")
    trainer.add_argument("--examples", required=True, nargs="+", metavar="FILE",
                         help='JSONL, one {"text": ..., "label": NODE_ID} per line, or the review desk\'s '
                              'decisions (DATASET/review/decisions.jsonl, or DATASET); several files (say, the '
                              'examples and the editors\' decisions) train together')
    trainer.add_argument("--output", required=True, help="model folder to write")
    trainer.add_argument("--taxonomy", default=None, help="taxonomy YAML (default: the bundled one)")
    trainer.add_argument("--test", default=None, help="labelled JSONL to report accuracy on after training")
    trainer.add_argument("--epoch", type=int, default=_TRAIN.epoch, help="fastText's training epochs")
    trainer.add_argument("--lr", type=float, default=_TRAIN.lr, help="fastText's learning rate")
    trainer.add_argument("--word-ngrams", type=int, default=_TRAIN.word_ngrams, help="fastText's longest word n-gram")
    trainer.add_argument("--dim", type=int, default=_TRAIN.dim, help="fastText's vector size")
    trainer.add_argument("--seed", type=int, default=_TRAIN.seed, help="fastText's seed (one thread: the same model)")
    trainer.set_defaults(func=train_command)

    predictor = subparsers.add_parser("predict", help="label texts or conversations with a trained labeler")
    predictor.add_argument("--model", required=True, help="model folder from `vlcurate taxonomy train`")
    predictor.add_argument("--input", required=True, help='JSONL: {"text": ...} or an SFT record per line')
    predictor.add_argument("--output", default="-", help="JSONL to write (default: standard output)")
    predictor.add_argument("--taxonomy", default=None, help="taxonomy YAML (default: the bundled one)")
    predictor.add_argument("--top-k", type=int, default=3, help="candidate leaves written per line")
    predictor.add_argument("--min-confidence", type=float, default=0.5,
                           help="below it a line gets status review and no leaf")
    predictor.set_defaults(func=predict_command)


def train_command(args) -> int:
    try:
        taxonomy = load_taxonomy(args.taxonomy)
        examples = [example for path in args.examples for example in read_examples(path, taxonomy)]
        config = TrainConfig(epoch=args.epoch, lr=args.lr, word_ngrams=args.word_ngrams, dim=args.dim, seed=args.seed)
        info = train(examples, taxonomy, args.output, config)
        test = read_examples(args.test, taxonomy) if args.test else None
    except (TaxonomyError, ExamplesError, OSError) as error:
        print(f"vlcurate taxonomy train: {error}", file=sys.stderr)
        return 1
    print(f"trained on {len(examples)} examples ({len(info['leaves'])} leaves, {len(info['mains'])} main "
          f"categories) of taxonomy {taxonomy.version} -> {args.output}")
    if test:
        main, leaf = accuracy(Labeler(args.output, taxonomy), test)
        print(f"accuracy on {args.test} ({len(test)} examples): main {main:.3f}, leaf {leaf:.3f}")
    return 0


def accuracy(labeler: Labeler, examples) -> tuple[float, float]:
    """(main, leaf) accuracy of the top prediction over labelled examples; an example labelled
    with a main category only counts for the main accuracy."""
    taxonomy = labeler.taxonomy
    main_hits = leaf_hits = leaf_total = 0
    for example in examples:
        prediction = labeler.predict(example.text)
        main_hits += prediction.main == taxonomy.main_of(example.label).id
        if not taxonomy.node(example.label).children:
            leaf_total += 1
            leaf_hits += prediction.leaf == example.label
    return main_hits / len(examples), leaf_hits / max(leaf_total, 1)


def predict_command(args) -> int:
    from vlcurate.transforms.data.rejects import Reject
    from vlcurate.transforms.sources.sft import parse_record, user_text

    try:
        taxonomy = load_taxonomy(args.taxonomy)
        labeler = Labeler(args.model, taxonomy)
        source = open(args.input, encoding="utf-8")
    except (TaxonomyError, ValueError, OSError) as error:
        print(f"vlcurate taxonomy predict: {error}", file=sys.stderr)
        return 1
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    errors = 0
    with source, out:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                text = doc["text"] if isinstance(doc, dict) and isinstance(doc.get("text"), str) else \
                    user_text(parse_record(doc).messages)
            except (ValueError, Reject) as error:  # one bad line gets an error line, the rest go on
                errors += 1
                out.write(json.dumps({"line": number, "error": str(error)}) + "\n")
                continue
            prediction = labeler.predict(text, args.top_k)
            out.write(json.dumps({
                "line": number,
                **({"id": doc["id"]} if isinstance(doc, dict) and "id" in doc else {}),
                "main": prediction.main,
                "main_confidence": prediction.main_confidence,
                "leaf": prediction.leaf,
                "leaf_confidence": prediction.leaf_confidence,
                # The best leaf is always named; below --min-confidence the pipeline would not give it.
                "status": "labelled" if prediction.leaf_confidence >= args.min_confidence else REVIEW_STATUS,
                "top": [{"id": leaf, "confidence": confidence} for leaf, confidence in prediction.top],
            }, ensure_ascii=False) + "\n")
    if errors:
        print(f"vlcurate taxonomy predict: {errors} lines could not be read (error lines written)", file=sys.stderr)
    return 0
