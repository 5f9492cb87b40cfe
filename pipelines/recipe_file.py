"""A recipe: one YAML file that says which sources go through which stages into one dataset.

Read with the safe, line-tracking YAML reader (transforms/io/yaml_lines.py) and checked as a whole
before anything runs: every problem is reported as ``RECIPE:LINE: message`` (unknown keys, a
source's unknown option or bad value, input paths that do not exist, model files that are missing,
a target mix naming no category). ``--set key.path=value`` overrides apply first; their values are
YAML scalars (``--set stages.clip.keep-fraction=0.5``). The format is in docs/recipes.md and
examples/recipes/demo.yaml.
"""

from __future__ import annotations

import dataclasses
import glob
import os

import yaml

from vlcurate.pipelines import recipe_values
from vlcurate.pipelines.recipe_values import FlagParser
from vlcurate.pipelines.registry import BY_KIND as KINDS
from vlcurate.transforms.data.sample import CATEGORIES
from vlcurate.transforms.io.yaml_lines import Mapping, Refused, read_yaml

_TOP = {"recipe", "output", "prefix", "sources", "stages", "target_mix", "shards"}
_SOURCE = {"kind", "input", "options", "clip", "label", "language"}
_STAGES = {"dedup", "clip", "label"}
_CLIP = {"model", "checkpoint", "pretrained", "model-config", "min-score", "keep-fraction", "per-category", "max-batch"}
_LABEL = {"labeler", "taxonomy", "min-confidence", "top-k", "lid-model"}
_SHARDS = {"max-samples-per-shard", "max-shard-bytes"}
# Flags a source may not set: the recipe decides where the dataset goes and how it is cut.
_RECIPE_OWNED = {"input", "output", "overwrite", "shard-prefix", "max-samples-per-shard", "max-shard-bytes",
                 "clip-model", "clip-checkpoint", "clip-pretrained", "clip-model-config", "clip-min-score",
                 "clip-keep-fraction", "clip-per-category", "clip-max-batch", "dedup", "labeler", "taxonomy",
                 "min-confidence", "top-k", "lid-model", "target-mix"}


class RecipeError(ValueError):
    """Every problem of a recipe, one ``RECIPE:LINE: message`` per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    kind: str
    input: str
    flags: tuple[str, ...]  # the pipeline's own flags, e.g. ("--ocr", "auto", "--figures")
    clip: bool
    label: bool
    language: bool


@dataclasses.dataclass(frozen=True)
class Recipe:
    path: str
    output: str
    prefix: str
    sources: tuple[Source, ...]
    dedup: tuple[str, ...]
    clip: dict  # the --clip-* flags' values by flag name without "clip-" ({} = no CLIP)
    label: dict  # labeler, taxonomy, min-confidence, top-k, lid-model ({} = no labelling)
    target_mix: dict  # category -> share (adds up to 1), {} = none
    shards: dict
    document: dict  # the recipe as read (after --set), for the run's plan

    def flags(self, section: str) -> list[str]:
        """A stages section as the CLI flags of the single-source commands."""
        values = {"clip": {f"clip-{k}": v for k, v in self.clip.items()}, "label": self.label,
                  "shards": self.shards}[section]
        return _as_flags(values)


def _parsed(parser: FlagParser, flag: str, value) -> tuple[list[str], str]:
    """(the command-line arguments of ``--flag value``, "") if the flag's own type takes the value,
    else ([], the parser's words refusing it): a recipe value is checked as its flag is."""
    one = _as_flags({flag: value})
    try:
        parser.parse_args(one)
    except ValueError as error:
        return [], str(error)
    return one, ""


def _as_flags(values: dict) -> list[str]:
    out = []
    for name, value in values.items():
        if value is True:
            out.append(f"--{name}")
        elif value is not False and value is not None:
            out += [f"--{name}", ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return out


def apply_overrides(doc: dict, overrides: list[str]) -> list[str]:
    """``key.path=value`` into ``doc`` (in place); returns the problems."""
    problems = []
    for override in overrides:
        path, equals, raw = override.partition("=")
        if not equals or not path:
            problems.append(f"--set {override}: not key.path=value")
            continue
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as error:
            problems.append(f"--set {override}: {error}")
            continue
        node, parts = doc, path.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = Mapping(0, node)
            node = node[part]
        node[parts[-1]] = value
        if isinstance(node, Mapping):
            node.lines[parts[-1]] = 0
    return problems


def load_recipe(path: str, overrides: list[str] = (), check_paths: bool = True) -> Recipe:
    """The recipe at ``path`` with ``overrides``, checked; RecipeError lists every problem.
    ``check_paths`` (off for a dry run) checks that local inputs and model files exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise RecipeError([f"{path}: {error.strerror or error}"]) from None
    try:
        doc, notes = read_yaml(text)
    except Refused as refused:
        raise RecipeError([f"{path}:{refused.line}: {refused.message}"]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise RecipeError([f"{path}:{mark.line + 1 if mark else 0}: YAML syntax: {getattr(error, 'problem', error)}"]) from None
    problems = [f"{path}:{line}: {message}" for _, line, message in notes]
    if not isinstance(doc, dict):
        raise RecipeError(problems + [f"{path}: a recipe is a mapping with output and sources"])
    problems += [f"{path}: {problem}" for problem in apply_overrides(doc, list(overrides))]
    check = _Checker(path, problems, check_paths)
    recipe = check.recipe(doc)
    if problems:
        raise RecipeError(problems)
    return recipe


class _Checker:
    def __init__(self, path, problems, check_paths):
        # Paths in a recipe are taken as they are: relative to the folder the command runs in,
        # as on the command line.
        self.path, self.problems, self.check_paths = path, problems, check_paths

    def add(self, mapping, key, message):
        line = mapping.lines.get(key, mapping.line) if isinstance(mapping, Mapping) else 0
        where = f"{self.path}:{line}" if line else f"{self.path} (--set)" if isinstance(mapping, Mapping) else self.path
        self.problems.append(f"{where}: {message}")

    def keys(self, mapping, allowed, what):
        for key in mapping:
            if key not in allowed:
                self.add(mapping, key, f"unknown key '{key}' in {what} (allowed: {', '.join(sorted(allowed))})")

    def mapping(self, parent, key, what) -> dict:
        value = parent.get(key, {})
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(parent, key, f"{what} must be a mapping")
            return {}
        return value

    def recipe(self, doc) -> Recipe:
        self.keys(doc, _TOP, "the recipe")
        if doc.get("recipe", 1) != 1:
            self.add(doc, "recipe", f"recipe format {doc.get('recipe')!r} is not 1")
        output = doc.get("output")
        if not isinstance(output, str) or not output:
            self.add(doc, "output", "output (the dataset folder) is required")
            output = ""
        prefix = doc.get("prefix", "data")
        if not isinstance(prefix, str) or not prefix or not all(c.isalnum() or c == "-" for c in prefix):
            self.add(doc, "prefix", f"prefix {prefix!r} must be letters, digits and -")
        sources = self.sources(doc)
        stages = self.mapping(doc, "stages", "stages")
        self.keys(stages, _STAGES, "stages")
        dedup = self.dedup(stages)
        clip = self.clip(stages)
        label = self.label(stages, sources)
        shards = self.mapping(doc, "shards", "shards")
        self.keys(shards, _SHARDS, "shards")
        from vlcurate.pipelines.options import DatasetOptions

        self.settings(shards, "shards", "", (DatasetOptions,), recipe_values.shard_settings)
        return Recipe(self.path, output.rstrip("/"), prefix, tuple(sources), dedup, clip, label,
                      self.target_mix(doc), dict(shards), _plain(doc))

    def sources(self, doc) -> list[Source]:
        sources = self.mapping(doc, "sources", "sources")
        if not sources:
            self.add(doc, "sources", "sources must name at least one source")
        out = []
        for name, spec in sources.items():
            if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
                self.add(sources, name, f"source name {name!r} must be letters, digits, - and _")
                continue
            if not isinstance(spec, dict):
                self.add(sources, name, f"source {name} must be a mapping with kind and input")
                continue
            self.keys(spec, _SOURCE, f"source {name}")
            kind = spec.get("kind")
            if kind not in KINDS:
                self.add(spec if "kind" in spec else sources, "kind" if "kind" in spec else name,
                         f"source {name}: kind {kind!r} is not one of {', '.join(KINDS)}")
                continue
            source_input = spec.get("input")
            if not isinstance(source_input, str) or not source_input:
                self.add(spec, "input", f"source {name}: input is required")
                continue
            if self.check_paths and "://" not in source_input and not glob.glob(source_input):
                self.add(spec, "input", f"source {name}: input {source_input} does not exist")
            options = self.mapping(spec, "options", f"source {name}: options")
            flags = self.options(name, kind, source_input, options)
            if kind == "web":
                self.web_input(spec, name, source_input, options)
            if kind == "captions":
                self.captions_input(spec, name, source_input, options)
            pairs = KINDS[kind].pairs
            out.append(Source(name, kind, source_input, tuple(flags),
                              self.boolean(spec, "clip", pairs, name), self.boolean(spec, "label", kind == "sft", name),
                              self.boolean(spec, "language", True, name)))
        return out

    def web_input(self, spec, name, source_input, options) -> None:
        """A web source's input in a form `vlcurate web` reads; a URL table's header names its URL column."""
        from vlcurate.transforms.sources.web.inputs import input_problem

        column = str(options.get("url-column", options.get("url_column", "url")))
        problem = input_problem(source_input, column, read_tables=self.check_paths)
        if problem:
            self.add(spec, "input", f"source {name}: {problem}")

    def captions_input(self, spec, name, source_input, options) -> None:
        """A captions source's input in a form `vlcurate captions` reads; a table's header names both columns."""
        from vlcurate.pipelines.captions import input_problem
        from vlcurate.transforms.sources.captions.config import CaptionConfig

        try:
            config = CaptionConfig(url_column=str(options.get("url-column", options.get("url_column", "url"))),
                                   caption_column=str(options.get("caption-column",
                                                                  options.get("caption_column", "caption"))))
        except ValueError:
            return  # the options' own check names it
        problem = input_problem(source_input, config, read_tables=self.check_paths)
        if problem:
            self.add(spec, "input", f"source {name}: {problem}")

    def boolean(self, spec, key, default, name) -> bool:
        value = spec.get(key, default)
        if not isinstance(value, bool):
            self.add(spec, key, f"source {name}: {key} must be true or false")
            return default
        return value

    def options(self, name, kind, source_input, options) -> list[str]:
        parser = _options_parser(kind)
        flags, by_key, before = [], {}, len(self.problems)
        for key, value in options.items():
            if key in _RECIPE_OWNED or key not in parser.flag_names:
                why = "is set by the recipe itself" if key in _RECIPE_OWNED else \
                    f"is not a flag of `vlcurate {_command(kind)}`"
                self.add(options, key, f"source {name}: option '{key}' {why}")
                continue
            if isinstance(value, (dict, list)):
                self.add(options, key, f"source {name}: option '{key}' must be a single value")
                continue
            if parser.is_switch(key) and not isinstance(value, bool):
                self.add(options, key, f"source {name}: option '{key}' is a switch: true or false")
                continue
            one, refusal = _parsed(parser, key, value)
            if refusal:
                self.add(options, key, f"source {name}: option '{key}': {refusal}")
                continue
            flags += one
            by_key[key] = one
            if self.check_paths and key in ("tessdata", "image-root") and value and not os.path.isdir(str(value)):
                self.add(options, key, f"source {name}: {key} {value} is not a folder")
        if len(self.problems) == before:  # each value fits its flag: now what the command makes of them
            self.refused(options, f"source {name}: option", by_key,
                         recipe_values.configure_source(KINDS[kind].load(), source_input, not self.check_paths))
        return flags

    def settings(self, mapping, section, flag_prefix, options_classes, build) -> None:
        """A stages or shards section, checked as the flags it stands for (``--{flag_prefix}KEY``)."""
        parser = FlagParser(options_classes)
        by_key, before = {}, len(self.problems)
        for key, value in mapping.items():
            flag = flag_prefix + str(key)
            if flag not in parser.flag_names:
                continue  # an unknown key: already reported
            if isinstance(value, (dict, list)) or (parser.is_switch(flag) and not isinstance(value, bool)):
                self.add(mapping, key, f"{section}.{key} must be " + ("true or false" if parser.is_switch(flag) else
                                                                        "a single value"))
                continue
            one, refusal = _parsed(parser, flag, value)
            if refusal:
                self.add(mapping, key, f"{section}.{key}: {refusal}")
                continue
            by_key[key] = one
        if len(self.problems) == before:
            self.refused(mapping, section, by_key, build)

    def refused(self, mapping, what, by_key, build) -> None:
        """The refusal ``build`` gives these values, on the line of the key that causes it."""
        found = recipe_values.refusal(build, by_key)
        if found is not None:
            key, words = found
            self.add(mapping, key, f"{what} '{key}': {words}" if key is not None and what.endswith("option") else
                     f"{what}.{key}: {words}" if key is not None else f"{what}: {words}")

    def dedup(self, stages) -> tuple[str, ...]:
        from vlcurate.transforms.filters.quality import DEDUP_KINDS

        value = stages.get("dedup", [])
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or any(kind not in DEDUP_KINDS for kind in value):
            self.add(stages, "dedup", f"dedup is a list of {', '.join(DEDUP_KINDS)}")
            return ()
        return tuple(value)

    def clip(self, stages) -> dict:
        clip = self.mapping(stages, "clip", "stages.clip")
        self.keys(clip, _CLIP, "stages.clip")
        if clip and not clip.get("model"):
            self.add(stages, "clip", "stages.clip needs a model (an open_clip architecture)")
        for key in ("checkpoint", "model-config"):
            if self.check_paths and clip.get(key) and "://" not in str(clip[key]) and not os.path.isfile(str(clip[key])):
                self.add(clip, key, f"stages.clip.{key}: {clip[key]} is missing (a CLIP model file)")
        from vlcurate.pipelines.options import QualityOptions

        self.settings(clip, "stages.clip", "clip-", (QualityOptions,), recipe_values.clip_settings)
        return {key: value for key, value in clip.items() if key in _CLIP}

    def label(self, stages, sources) -> dict:
        label = self.mapping(stages, "label", "stages.label")
        self.keys(label, _LABEL, "stages.label")
        labeler = label.get("labeler")
        if any(source.label for source in sources) and not labeler:
            self.add(stages if not label else label, "label" if not label else "labeler",
                     "a source asks for labels (label: true, the default for sft): stages.label.labeler is required")
        if self.check_paths and labeler and "://" not in str(labeler) and \
                not os.path.isfile(os.path.join(str(labeler), "labeler.json")):
            self.add(label, "labeler", f"stages.label.labeler: {labeler} is not a labeler folder "
                                       "(make one with `vlcurate taxonomy train`)")
        for key in ("taxonomy", "lid-model"):
            if self.check_paths and label.get(key) and "://" not in str(label[key]) and not os.path.isfile(str(label[key])):
                self.add(label, key, f"stages.label.{key}: {label[key]} is missing")
        from vlcurate.pipelines.sft import SftOptions

        self.settings(label, "stages.label", "", (SftOptions,), recipe_values.label_settings)
        return {key: value for key, value in label.items() if key in _LABEL}

    def target_mix(self, doc) -> dict:
        mix = self.mapping(doc, "target_mix", "target_mix")
        weights = {}
        for category, weight in mix.items():
            if category not in CATEGORIES:
                self.add(mix, category, f"target_mix: {category!r} is not a category ({', '.join(sorted(CATEGORIES))})")
            elif isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                self.add(mix, category, f"target_mix: the weight of {category} must be a number >= 0")
            else:
                weights[category] = float(weight)
        total = sum(weights.values())
        if mix and total <= 0:
            self.add(doc, "target_mix", "target_mix needs a positive weight")
            return {}
        return {category: weight / total for category, weight in weights.items()}


def _command(kind: str) -> str:
    """The `vlcurate` command a kind of source runs as (images are `vlcurate ocr`)."""
    return {"images": "ocr"}.get(kind, kind)


def _options_parser(kind: str) -> FlagParser:
    """The flags of one pipeline command, for checking a source's options."""
    from vlcurate.pipelines.options import DatasetOptions

    return FlagParser((*KINDS[kind].load().OPTIONS, DatasetOptions))


def _plain(value):
    """The document as plain dicts and lists (for JSON)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
