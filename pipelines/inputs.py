"""What a pipeline reads: a file, a glob, or a folder (any depth) filtered by the command's extensions."""

from __future__ import annotations

import os

import apache_beam as beam
from apache_beam.io import fileio


def input_pattern(path: str) -> tuple[str, bool]:
    """A folder (or a prefix ending in /) means every file of the pipeline's extensions under it, at any depth;
    anything else is a file or a glob, taken as it is. Returns (pattern, filter_by_extension)."""
    if path.endswith("/") or _is_local_folder(path):
        return f"{path.rstrip('/')}/**", True
    return path, False


def _is_local_folder(path: str) -> bool:
    return "://" not in path and os.path.isdir(path)


def has_extension(path: str, extensions: str | tuple[str, ...]) -> bool:
    extensions = (extensions,) if isinstance(extensions, str) else extensions
    return path.lower().endswith(tuple(f".{extension}" for extension in extensions))


def as_paths(source: str | tuple[str, ...]) -> tuple[str, ...]:
    """A command's input: one path (a str) or several (``--input`` repeated)."""
    return (source,) if isinstance(source, str) else tuple(source)


def list_inputs(pipeline, source: str | tuple[str, ...], extensions: str | tuple[str, ...]):
    """The input files' metadata, listed through Beam's FileSystems at run time. Several inputs are
    listed each by its own form and merged; a file that two of them match is listed once."""
    paths = as_paths(source)
    if len(paths) == 1:  # one input keeps its step names (a resumed or updated job matches them)
        return _listed(pipeline, paths[0], extensions, "")
    listed = [_listed(pipeline, path, extensions, f"[{number}]") for number, path in enumerate(paths)]
    return (
        tuple(listed)
        | "AllInputs" >> beam.Flatten()
        | "ByPath" >> beam.Map(lambda meta: (meta.path, meta))
        | "SamePath" >> beam.GroupByKey()
        | "OncePerPath" >> beam.Map(lambda item: next(iter(item[1])))
    )


def _listed(pipeline, path: str, extensions, suffix: str):
    pattern, by_extension = input_pattern(path)
    files = pipeline | f"ListInputs{suffix}" >> fileio.MatchFiles(pattern)
    if by_extension:
        files = files | f"KeepExtension{suffix}" >> beam.Filter(lambda meta: has_extension(meta.path, extensions))
    return files
