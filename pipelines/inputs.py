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


def list_inputs(pipeline, path: str, extensions: str | tuple[str, ...]):
    """The input files' metadata, listed through Beam's FileSystems at run time."""
    pattern, by_extension = input_pattern(path)
    files = pipeline | "ListInputs" >> fileio.MatchFiles(pattern)
    if by_extension:
        files = files | "KeepExtension" >> beam.Filter(lambda meta: has_extension(meta.path, extensions))
    return files
