"""Notebook plots: each plot a Jupyter notebook shows, paired with the code that drew it (web_code).

Nothing in a notebook is ever executed. It is read with nbformat and validated; each code cell
with an image output (image/png or image/jpeg in a display_data or execute_result output) is one
input unit. Its code is the cell's source, preceded by the earlier cells that bind names it reads,
as far as a static look at the source (``ast``) finds them. A cell showing several images is
filtered (a pair keeps exactly one picture), and so is a pair with fewer than ``min_code_lines``
lines of code; the image is decoded under a pixel cap and re-encoded as PNG, without metadata.

IPython magics and shell escapes (lines starting with % or !) are not Python: they are left out of
the code, and out of the sample's text. Notebooks of other kernels (R, Julia...) keep each plot
cell's source alone, as written. This module does not import Beam.
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import hashlib
from collections.abc import Sequence

import nbformat
from nbformat import reader as nbformat_reader

from vlcurate import __version__
from vlcurate.transforms.data.images import open_image
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import Sample, encode_image, make_key

# In order of preference when one output carries the same picture in both.
IMAGE_MIMES = ("image/png", "image/jpeg")
_OUTPUTS_WITH_DATA = ("display_data", "execute_result")


@dataclasses.dataclass(frozen=True)
class NotebookConfig:
    """Settings of the notebooks stage; every cap is here with a safe default."""

    max_file_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    min_code_lines: int = 5  # DeepSeek-VL keeps plot/code pairs of at least 5 lines

    def __post_init__(self):
        if min(self.max_file_bytes, self.max_image_pixels, self.min_code_lines) < 1:
            raise ValueError("notebook caps and min_code_lines must be positive")


@dataclasses.dataclass(frozen=True)
class PlotTask:
    """One code cell with image outputs, and everything its sample needs from the notebook."""

    uri: str
    file_sha256: str
    cell: int  # 0-based position among all the notebook's cells
    code: str  # the sample's text: the context cells, then the cell itself
    context_cells: tuple[int, ...]
    images: tuple[tuple[str, str], ...]  # (mime type, base64 text), one per image output
    execution_count: int | None
    language: str

    @property
    def locator(self) -> str:
        return f"cell={self.cell}"


@dataclasses.dataclass(frozen=True)
class CellNames:
    """What a code cell does with top-level names: the ones it binds, and the ones an earlier cell
    must have bound: read as the cell runs (``needs``), or by the functions and classes it
    defines, when they are called (``needs_later``)."""

    binds: frozenset[str]
    needs: frozenset[str]
    needs_later: frozenset[str]


# --- reading ----------------------------------------------------------------------------------------


def read_notebook(data: bytes) -> nbformat.NotebookNode:
    """The notebook in ``data`` as nbformat 4, validated; anything else is ``notebook_invalid``.

    This is nbformat.reads(text, as_version=4) followed by nbformat.validate, spelled out so that
    validation runs once and an invalid file is not logged as an error by nbformat itself.
    """
    try:
        text = data.decode("utf-8-sig")
        notebook = nbformat.convert(nbformat_reader.reads(text), 4)
        nbformat.validate(notebook)
    # Untrusted JSON: the reader and the converters of old formats fail on odd documents with
    # whatever error they meet (ValueError, ValidationError, AttributeError, KeyError...).
    except Exception as error:
        raise Reject("notebook_invalid", f"{type(error).__name__}: {str(error)[:300]}") from error
    return notebook


def image_outputs(cell) -> tuple[tuple[str, str], ...]:
    """(mime type, base64 text) of each output of ``cell`` that shows an image.

    nbformat has already joined the list-of-lines form of a value into one string.
    """
    found = []
    for output in cell.get("outputs", ()):
        if output.get("output_type") in _OUTPUTS_WITH_DATA:
            data = output.get("data", {})
            mime = next((mime for mime in IMAGE_MIMES if mime in data), None)
            if mime:
                found.append((mime, data[mime]))
    return tuple(found)


def plot_tasks(data: bytes, uri: str) -> list[PlotTask]:
    """One PlotTask per code cell with an image output, in notebook order.

    Raises ``notebook_invalid`` for a file that is not a valid notebook and ``notebook_no_plots``
    for a notebook without image outputs: these are the units of a notebook rejected as a whole.
    """
    notebook = read_notebook(data)
    language = _language(notebook.metadata)
    python = language in ("", "python")
    sources = [cell.source if cell.cell_type == "code" else None for cell in notebook.cells]
    if python:
        sources = [None if source is None else without_magics(source) for source in sources]
    names = [None if source is None or not python else cell_names(source) for source in sources]
    file_sha256 = hashlib.sha256(data).hexdigest()
    tasks = []
    for index, cell in enumerate(notebook.cells):
        images = image_outputs(cell) if cell.cell_type == "code" else ()
        if not images:
            continue
        context = context_cells(names, index)
        tasks.append(PlotTask(
            uri=uri,
            file_sha256=file_sha256,
            cell=index,
            code="\n\n".join(_trimmed(sources[i]) for i in (*context, index)) + "\n",
            context_cells=tuple(context),
            images=images,
            execution_count=cell.get("execution_count"),
            language=language,
        ))
    if not tasks:
        raise Reject("notebook_no_plots", f"{len(notebook.cells)} cells, none with an image/png or image/jpeg output")
    return tasks


def _language(metadata) -> str:
    """The notebook's language, lowercase ("" when it does not say)."""
    for value in (metadata.get("kernelspec", {}).get("language"), metadata.get("language_info", {}).get("name")):
        if isinstance(value, str) and value:
            return value.lower()
    return ""


def _trimmed(source: str) -> str:
    """The source without the blank lines around it."""
    lines = source.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)


def without_magics(source: str) -> str:
    """The source without IPython's magic and shell lines (%time, %%bash, !pip ...)."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def code_lines(code: str) -> int:
    """Lines of code: neither blank nor only a comment."""
    return sum(1 for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#"))


# --- the code behind a plot ---------------------------------------------------------------------------


def cell_names(source: str) -> CellNames | None:
    """What the cell binds and needs; None when it is not Python that ``ast`` parses."""
    try:
        scope = _CellScope()
        scope.visit(ast.parse(source))
    except (SyntaxError, ValueError, RecursionError):  # RecursionError: absurdly deep expressions
        return None
    return CellNames(frozenset(scope.binds), frozenset(scope.needs), frozenset(scope.later - scope.binds))


def context_cells(names: Sequence[CellNames | None], index: int) -> list[int]:
    """Indices of the earlier cells that cell ``index`` depends on, in notebook order.

    ``names`` holds each cell's CellNames (None for markdown, and for code that does not parse: what
    it binds cannot be known). A needed name comes from the nearest earlier cell that binds it,
    and what that cell needs is needed in turn: from before it for what it reads as it runs
    (``df = df.dropna()`` takes the cell that made df before), from before cell ``index`` for what
    its functions read, as they run when cell ``index`` calls them.
    """
    if names[index] is None:
        return []
    wanted = [(name, index) for name in names[index].needs | names[index].needs_later]
    seen = set(wanted)
    taken: set[int] = set()
    while wanted:
        name, before = wanted.pop()
        source = next((i for i in range(before - 1, -1, -1) if names[i] is not None and name in names[i].binds), None)
        if source is None or source in taken:
            continue
        taken.add(source)
        cell = names[source]
        for more in [*((n, source) for n in cell.needs), *((n, index) for n in cell.needs_later)]:
            if more not in seen:
                seen.add(more)
                wanted.append(more)
    return sorted(taken)


class _CellScope(ast.NodeVisitor):
    """Walks a cell's top level in the order Python runs it: a name read before the cell binds it
    is needed from an earlier cell. Function, lambda and class bodies run later, if at all: what
    they read is needed only when the cell binds it nowhere (``later``)."""

    def __init__(self):
        self.binds: set[str] = set()
        self.needs: set[str] = set()
        self.later: set[str] = set()

    def _read(self, name: str) -> None:
        if name not in self.binds:
            self.needs.add(name)

    def _visit_all(self, nodes) -> None:
        for node in nodes:
            if node is not None:  # kw_defaults holds None for a keyword-only argument without default
                self.visit(node)

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Store):
            self.binds.add(node.id)
        else:  # Load, Del
            self._read(node.id)

    # Assignments: the value runs before the targets are bound.
    def visit_Assign(self, node):
        self._visit_all([node.value, *node.targets])

    def visit_AugAssign(self, node):
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self._read(node.target.id)
        self.visit(node.target)

    def visit_AnnAssign(self, node):
        self._visit_all([node.value, node.annotation, node.target])

    def visit_NamedExpr(self, node):
        self._visit_all([node.value, node.target])

    def visit_For(self, node):
        self._visit_all([node.iter, node.target, *node.body, *node.orelse])

    visit_AsyncFor = visit_For

    def visit_ExceptHandler(self, node):
        self._visit_all([node.type])
        if node.name:
            self.binds.add(node.name)
        self._visit_all(node.body)

    def visit_Import(self, node):
        self.binds.update(_imported(alias) for alias in node.names)

    visit_ImportFrom = visit_Import

    # Nested scopes.
    def visit_FunctionDef(self, node):
        self._visit_all([*node.decorator_list, *node.args.defaults, *node.args.kw_defaults])
        self.binds.add(node.name)
        self.later |= _free_names([*_parameters(node.args), *node.body])

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._visit_all([*node.args.defaults, *node.args.kw_defaults])
        self.later |= _free_names([*_parameters(node.args), node.body])

    def visit_ClassDef(self, node):
        self._visit_all([*node.decorator_list, *node.bases, *node.keywords])
        self.binds.add(node.name)
        self.later |= _free_names(node.body)

    def visit_ListComp(self, node):  # runs now, but its loop variables are its own
        for name in _free_names([node]):
            self._read(name)

    visit_SetComp = visit_GeneratorExp = visit_DictComp = visit_ListComp


def _parameters(args: ast.arguments) -> list[ast.arg]:
    """A function's parameters, without their defaults (those run where the function is defined)."""
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *(arg for arg in (args.vararg, args.kwarg) if arg)]


def _imported(alias: ast.alias) -> str:
    """The name an import binds: ``import a.b`` binds a, ``import a.b as c`` binds c."""
    return (alias.asname or alias.name).split(".")[0]


def _free_names(nodes) -> set[str]:
    """Names read in a nested scope that the scope (or one nested in it) does not bind itself."""
    bound, read = set(), set()
    for node in nodes:
        for sub in ast.walk(node):  # iterative: no recursion limit on deep code
            if isinstance(sub, ast.Name):
                (bound if isinstance(sub.ctx, ast.Store) else read).add(sub.id)
            elif isinstance(sub, ast.arg):
                bound.add(sub.arg)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(sub.name)
            elif isinstance(sub, ast.alias):
                bound.add(_imported(sub))
            elif isinstance(sub, ast.ExceptHandler) and sub.name:
                bound.add(sub.name)
    return read - bound


# --- the pair -----------------------------------------------------------------------------------------


def pair_plot(task: PlotTask, config: NotebookConfig) -> Sample:
    """The web_code sample of one plot cell: its image as PNG, its code as text.

    Cheap checks first: several images (``plot_several_images``) and too little code
    (``plot_code_too_short``) are filtered before any image is decoded.
    """
    if len(task.images) > 1:
        raise Reject("plot_several_images", f"{len(task.images)} image outputs")
    lines = code_lines(task.code)
    if lines < config.min_code_lines:
        raise Reject("plot_code_too_short", f"{lines} lines of code, fewer than {config.min_code_lines}")
    [(mime, encoded)] = task.images
    image, _ = open_image(_base64_bytes(encoded), config.max_image_pixels)
    return Sample(
        key=make_key("notebook", task.file_sha256, task.locator),
        source="notebook",
        category="web_code",
        uri=task.uri,
        locator=task.locator,
        images=(encode_image(image, "png"),),
        text=task.code,
        text_source="notebook-code",
        provenance={"vlcurate": __version__, "nbformat": nbformat.__version__},
        meta={
            "notebook": {
                "file_sha256": task.file_sha256,
                "cell": task.cell,
                "execution_count": task.execution_count,
                "language": task.language,
                "context_cells": list(task.context_cells),
                "image_mime": mime,
            },
        },
    )


def _base64_bytes(text: str) -> bytes:
    """Strict base64 (line breaks allowed, as Jupyter writes them); anything else is unreadable."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except ValueError as error:  # binascii.Error, or characters outside ASCII
        raise Reject("image_unreadable", f"the image output is not base64: {error}") from error
