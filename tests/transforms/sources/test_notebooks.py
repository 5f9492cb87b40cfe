"""The notebooks stage: plots paired with their code, the cells that code depends on, hostile
notebooks and images, and `vlcurate notebooks` end to end on FnApiRunner (totals, rejects,
determinism, the demo notebooks, the Dataflow dry run)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import pathlib

import nbformat
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystem import FileMetadata
from PIL import Image as PILImage

from fixtures import notebook as fx
from fixtures.dataflow import translate_for_dataflow
from vlcurate import __version__
from vlcurate.pipelines import cli
from vlcurate.transforms.sources.notebooks.beam import ReadNotebook
from vlcurate.transforms.sources.notebooks.core import (
    NotebookConfig, cell_names, context_cells, pair_plot, plot_tasks, without_magics,
)
from vlcurate.transforms.data.rejects import Reject, RejectRecord
from vlcurate.transforms.data.sample import make_key
from vlcurate.transforms.io.shard_reader import read_shard
from fixtures import EXAMPLES

CONFIG = NotebookConfig()
NOTEBOOKS = EXAMPLES / "notebooks"
IMPORTS_AND_DATA = "import numpy as np\nimport matplotlib.pyplot as plt\n\nx = np.arange(5)\ny = x ** 2\n\n"


def outcomes(data: bytes, uri: str = "/in/nb.ipynb") -> dict:
    """locator -> the cell's Sample, or the reason it was rejected."""
    result = {}
    for task in plot_tasks(data, uri):
        try:
            result[task.locator] = pair_plot(task, CONFIG)
        except Reject as reject:
            result[task.locator] = reject.reason
    return result


def whole_notebook_reason(data: bytes) -> str:
    with pytest.raises(Reject) as caught:
        plot_tasks(data, "/in/nb.ipynb")
    return caught.value.reason


def context_of(*sources) -> list[int]:
    """The context cells of the last source (None: a markdown cell)."""
    names = [None if source is None else cell_names(without_magics(source)) for source in sources]
    return context_cells(names, len(sources) - 1)


def png_size(data: bytes) -> tuple[int, int]:
    image = PILImage.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.size


# --- pairing ------------------------------------------------------------------------------------------


def test_every_plot_cell_is_one_unit_with_its_outcome():
    result = outcomes(fx.analysis())
    assert list(result) == ["cell=4", "cell=5", "cell=6", "cell=7"]
    assert [r if isinstance(r, str) else "sample" for r in result.values()] == [
        "sample", "sample", "plot_several_images", "plot_code_too_short",
    ]


def test_a_plot_is_paired_with_its_cell_and_the_cells_it_uses():
    data = fx.analysis()
    sample = outcomes(data)["cell=4"]
    # The import cell's %matplotlib line is left out; the unrelated cell 3 is not taken.
    assert sample.text == IMPORTS_AND_DATA + fx.LINE_PLOT + "\n"
    sha = hashlib.sha256(data).hexdigest()
    assert sample.key == make_key("notebook", sha, "cell=4")
    assert (sample.source, sample.category, sample.uri, sample.locator, sample.text_source) == (
        "notebook", "web_code", "/in/nb.ipynb", "cell=4", "notebook-code")
    assert sample.meta == {"notebook": {
        "file_sha256": sha, "cell": 4, "execution_count": 4, "language": "python", "context_cells": [1, 2],
        "image_mime": "image/png",
    }}
    assert sample.provenance == {"vlcurate": __version__, "nbformat": nbformat.__version__}  # the sink names the pipeline
    [image] = sample.images
    assert (image.format, image.width, image.height) == ("png", 400, 300)
    assert png_size(image.data) == (400, 300)
    assert "Software" not in PILImage.open(io.BytesIO(image.data)).info


def test_a_jpeg_in_an_execute_result_is_kept_as_png():
    sample = outcomes(fx.analysis())["cell=5"]
    assert sample.meta["notebook"]["image_mime"] == "image/jpeg"
    assert sample.meta["notebook"]["execution_count"] == 5
    assert png_size(sample.images[0].data) == (320, 240)
    assert sample.text.endswith('ax.set_title("Squares")\nfig\n')


def test_base64_as_a_list_of_lines_gives_the_same_pair():
    def one_plot(lines: bool) -> bytes:
        return fx.notebook(fx.code(fx.IMPORTS), fx.code(fx.DATA),
                           fx.code(fx.LINE_PLOT, fx.figure(fx.plot(), lines=lines)))

    listed = json.loads(one_plot(True))["cells"][2]["outputs"][0]["data"]["image/png"]
    assert isinstance(listed, list) and len(listed) > 10  # stored as lines in the file
    as_lines, as_string = outcomes(one_plot(True))["cell=2"], outcomes(one_plot(False))["cell=2"]
    assert as_lines.images == as_string.images and as_lines.text == as_string.text


def test_one_output_with_png_and_jpeg_of_one_plot_is_one_image():
    both = fx.figure(fx.plot())
    both.data["image/jpeg"] = fx.b64(fx.plot(image_format="jpeg"))
    sample = outcomes(fx.notebook(fx.code(fx.IMPORTS), fx.code(fx.DATA), fx.code(fx.LINE_PLOT, both)))["cell=2"]
    assert sample.meta["notebook"]["image_mime"] == "image/png"


def test_code_lines_count_neither_blank_lines_nor_comments():
    five = "a = 1\n\n# set up\nb = 2\nc = 3\nd = 4\nplot(a, b, c, d)"
    four = five.replace("d = 4\n", "").replace(", d", "")
    data = fx.notebook(fx.code(five, fx.figure(fx.plot())), fx.code(four, fx.figure(fx.plot(slope=2))))
    result = outcomes(data)
    assert result["cell=0"].text == five + "\n"
    assert result["cell=1"] == "plot_code_too_short"
    task = plot_tasks(data, "/in/nb.ipynb")[1]
    assert pair_plot(task, NotebookConfig(min_code_lines=4)).text == four + "\n"


def test_a_notebook_of_another_language_keeps_the_cell_as_written():
    r_code = 'library(ggplot2)\ndata <- read.csv("sales.csv")\n%>% not magic in R\nggplot(data, aes(month, revenue)) +\n  geom_line()'
    data = fx.notebook(fx.code("x <- 1"), fx.code(r_code, fx.figure(fx.plot())),
                       metadata={"kernelspec": {"display_name": "R", "language": "R", "name": "ir"}})
    sample = outcomes(data)["cell=1"]
    assert sample.text == r_code + "\n"
    assert sample.meta["notebook"]["language"] == "r" and sample.meta["notebook"]["context_cells"] == []


# --- the cells behind a plot ----------------------------------------------------------------------------


def test_context_follows_names_back_transitively():
    assert context_of(
        "import numpy as np",
        None,
        "def scaled(v):\n    return v * factor",  # reads factor when called, from a later cell
        "factor = 3",
        "unrelated = np.zeros(2)",
        "ys = scaled(np.arange(3))",
        "plot(ys)",
    ) == [0, 2, 3, 5]


def test_a_rebinding_cell_takes_the_cell_before_it_and_a_fresh_binding_stops_the_walk():
    assert context_of("df = load()", "df = df.dropna()", "other = 2", "plot(df)") == [0, 1]
    assert context_of("x = 1", "x = 2", "plot(x)") == [1]
    assert context_of("total = 0", "total += 1", "plot(total)") == [0, 1]


def test_every_binding_form_is_found():
    binders = [
        "import os.path", "from math import pi as PI", "with open('f') as handle:\n    rows = handle.read()",
        "for k, v in {}.items():\n    pass", "class Box:\n    pass", "if (n := 3):\n    pass",
        "try:\n    pass\nexcept ValueError as error:\n    pass\nlast_error = error",
    ]
    plot = "print(os.path.sep, PI, rows, k, Box(), n, last_error)"
    assert context_of(*binders, plot) == list(range(len(binders)))


def test_names_a_cell_binds_itself_or_only_locally_are_not_needed():
    names = cell_names("fig, ax = plt.subplots()\nax.plot([i * i for i in range(3)])\n"
                       "def f(a, *, b=scale):\n    c = a + b\n    return c\nlambda q: q + offset")
    assert names.binds == {"fig", "ax", "f"}
    assert names.needs == {"plt", "range", "scale"} and names.needs_later == {"offset"}


def test_magics_are_left_out_and_the_rest_is_analysed():
    assert context_of("%matplotlib inline\nx = 1\n!pip install seaborn", "%%time\nplot(x)") == [0]
    data = fx.notebook(fx.code("%load_ext autoreload\n" + fx.IMPORTS), fx.code(fx.DATA),
                       fx.code("%%time\n" + fx.LINE_PLOT, fx.figure(fx.plot())))
    assert outcomes(data)["cell=2"].text == IMPORTS_AND_DATA + fx.LINE_PLOT + "\n"


def test_a_cell_that_does_not_parse_stands_alone_and_binds_nothing_visible():
    plot = "x = np.arange(5)\ny = x ** 2\nplt.plot(x, y)\nplt.title('Squares')\nplt.xlabel('x')\ny?"
    data = fx.notebook(fx.code(fx.IMPORTS), fx.code(plot, fx.figure(fx.plot())))
    sample = outcomes(data)["cell=1"]
    assert sample.text == plot + "\n" and sample.meta["notebook"]["context_cells"] == []
    assert context_of("x = 1", "x = (2", "plot(x)") == [0]


# --- hostile images and notebooks -----------------------------------------------------------------------


def test_bad_images_are_rejected_cell_by_cell():
    png = fx.plot()
    cells = [fx.code(fx.IMPORTS), fx.code(fx.DATA)]
    for output in (
        fx.raw_image_output("image/png", "iVBORw0KGgo*not base64*"),
        fx.raw_image_output("image/png", "ünïcode"),
        fx.raw_image_output("image/png", base64.b64encode(b"plain text, not an image").decode()),
        fx.raw_image_output("image/png", fx.b64(png[:400])),  # truncated
        fx.figure(fx.bomb_png()),
        fx.figure(png),
    ):
        cells.append(fx.code(fx.LINE_PLOT, output))
    result = outcomes(fx.notebook(*cells))
    assert {locator: r if isinstance(r, str) else "sample" for locator, r in result.items()} == {
        "cell=2": "image_unreadable", "cell=3": "image_unreadable", "cell=4": "image_unreadable",
        "cell=5": "image_unreadable", "cell=6": "image_too_large", "cell=7": "sample",
    }


def _invalid_cell_notebook() -> bytes:
    document = json.loads(fx.notebook(fx.code("x = 1", fx.figure(fx.plot()))))
    del document["cells"][0]["outputs"]
    return json.dumps(document).encode()


@pytest.mark.parametrize("data", [
    b"{not json", b"", b"\xff\xfe\x00garbage", b'"a string"', b"[1, 2]", b'{"hello": "world"}',
    b'{"nbformat": 4, "nbformat_minor": 5}', b'{"nbformat": 99, "cells": []}', _invalid_cell_notebook(),
], ids=["not-json", "empty", "not-utf8", "string", "list", "other-json", "no-cells", "future", "invalid-cell"])
def test_what_is_not_a_valid_notebook_is_rejected_whole(data):
    assert whole_notebook_reason(data) == "notebook_invalid"


def test_a_notebook_without_png_or_jpeg_outputs_has_no_plots():
    svg = fx.raw_image_output("image/svg+xml", "<svg xmlns='http://www.w3.org/2000/svg'/>")
    data = fx.notebook(fx.markdown("# Notes"), fx.code("print(1)", fx.text_output("1\n")), fx.code("svg()", svg))
    assert whole_notebook_reason(data) == "notebook_no_plots"
    assert whole_notebook_reason(fx.notebook()) == "notebook_no_plots"


def test_the_read_stage_rejects_a_file_over_the_cap_unread(tmp_path):
    path = tmp_path / "big.ipynb"
    path.write_bytes(fx.analysis())
    metadata = FileMetadata(str(path), path.stat().st_size)
    [row] = list(ReadNotebook(NotebookConfig(max_file_bytes=1000)).process(metadata))
    assert row.tag == "rejects"
    assert row.value == RejectRecord(stage="notebook", reason="file_too_large", uri=str(path),
                                     detail="over 1000 bytes")
    assert len(list(ReadNotebook(CONFIG).process(metadata))) == 4  # one task per plot cell


# --- the pipeline -------------------------------------------------------------------------------------


def run_cli(argv) -> dict:
    assert cli.main(["notebooks", *argv]) == 0
    output = pathlib.Path(argv[argv.index("--output") + 1])
    return json.loads((output / "manifest.json").read_text())


def samples_of(output: pathlib.Path, manifest: dict, inputs: pathlib.Path) -> dict:
    """(path relative to the input folder, locator) -> Sample."""
    return {
        (str(pathlib.Path(sample.uri).relative_to(inputs)), sample.locator): sample
        for shard in manifest["shards"]
        for sample in read_shard(str(output / shard["name"]))
    }


def rejects_of(output: pathlib.Path, inputs: pathlib.Path) -> list:
    [path] = (output / "rejects").iterdir()
    return sorted((str(pathlib.Path(row["uri"]).relative_to(inputs)), row["locator"], row["stage"], row["reason"])
                  for row in pq.read_table(path).to_pylist())


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebooks")
    (folder / "analysis.ipynb").write_bytes(fx.analysis())
    (folder / "twin").mkdir()
    (folder / "twin" / "analysis.ipynb").write_bytes(fx.analysis())  # same bytes, same keys
    (folder / "nested" / "deeper").mkdir(parents=True)
    (folder / "nested" / "deeper" / "bad-images.ipynb").write_bytes(fx.notebook(
        fx.code(fx.IMPORTS), fx.code(fx.DATA),
        fx.code(fx.LINE_PLOT, fx.raw_image_output("image/png", "not base64!")),
        fx.code(fx.LINE_PLOT, fx.figure(fx.bomb_png())),
        fx.code(fx.LINE_PLOT.replace("Squares", "Squares, as lines"), fx.figure(fx.plot(200, 150), lines=True)),
    ))
    (folder / "broken.ipynb").write_bytes(b'{"cells": [')
    (folder / "not-a-notebook.ipynb").write_bytes(b'{"hello": "world"}')
    (folder / "no-plots.ipynb").write_bytes(fx.notebook(fx.code("print(1)", fx.text_output("1\n"))))
    (folder / "notes.txt").write_text("not listed: a folder input takes .ipynb files only")
    return folder


@pytest.fixture(scope="module")
def notebooks_run(notebooks, tmp_path_factory):
    output = tmp_path_factory.mktemp("run") / "out"
    return output, run_cli(["--input", str(notebooks), "--output", str(output)])


@pytest.mark.e2e
def test_every_plot_cell_and_rejected_notebook_is_counted_once(notebooks_run, notebooks):
    output, manifest = notebooks_run
    assert manifest["totals"] == {"inputs": 14, "samples": 3, "rejected": 4, "filtered": 7, "balanced": True}
    assert manifest["counts"] == {"files": 6, "inputs": 14}
    assert manifest["rejects"]["by_reason"] == {
        "duplicate_key": 2, "image_too_large": 1, "image_unreadable": 1, "notebook_invalid": 2,
        "notebook_no_plots": 1, "plot_code_too_short": 2, "plot_several_images": 2,
    }
    assert rejects_of(output, notebooks) == [
        ("analysis.ipynb", "cell=6", "notebook_plot", "plot_several_images"),
        ("analysis.ipynb", "cell=7", "notebook_plot", "plot_code_too_short"),
        ("broken.ipynb", "", "notebook", "notebook_invalid"),
        ("nested/deeper/bad-images.ipynb", "cell=2", "notebook_plot", "image_unreadable"),
        ("nested/deeper/bad-images.ipynb", "cell=3", "notebook_plot", "image_too_large"),
        ("no-plots.ipynb", "", "notebook", "notebook_no_plots"),
        ("not-a-notebook.ipynb", "", "notebook", "notebook_invalid"),
        ("twin/analysis.ipynb", "cell=4", "sink", "duplicate_key"),
        ("twin/analysis.ipynb", "cell=5", "sink", "duplicate_key"),
        ("twin/analysis.ipynb", "cell=6", "notebook_plot", "plot_several_images"),
        ("twin/analysis.ipynb", "cell=7", "notebook_plot", "plot_code_too_short"),
    ]
    assert manifest["categories"] == {"web_code": 3} and manifest["text_sources"] == {"notebook-code": 3}
    assert manifest["pipeline"] == "notebooks"
    assert manifest["config"]["notebooks"] == {
        "max_file_bytes": 64 * 1024 * 1024, "max_image_pixels": 40_000_000, "min_code_lines": 5,
    }
    assert [shard["name"] for shard in manifest["shards"]] == ["shards/notebook-000000.tar"]


def test_the_samples_hold_the_plot_and_its_code(notebooks_run, notebooks):
    output, manifest = notebooks_run
    samples = samples_of(output, manifest, notebooks)
    assert set(samples) == {("analysis.ipynb", "cell=4"), ("analysis.ipynb", "cell=5"),
                            ("nested/deeper/bad-images.ipynb", "cell=4")}
    analysis_sha = hashlib.sha256((notebooks / "analysis.ipynb").read_bytes()).hexdigest()
    bad_sha = hashlib.sha256((notebooks / "nested/deeper/bad-images.ipynb").read_bytes()).hexdigest()
    expected = {  # file sha256, context cells, image size, text
        ("analysis.ipynb", "cell=4"): (analysis_sha, [1, 2], (400, 300), IMPORTS_AND_DATA + fx.LINE_PLOT + "\n"),
        ("analysis.ipynb", "cell=5"): (analysis_sha, [1, 2], (320, 240),
                                       IMPORTS_AND_DATA + fx.LINE_PLOT.replace("plt.show()", "fig") + "\n"),
        ("nested/deeper/bad-images.ipynb", "cell=4"): (
            bad_sha, [0, 1], (200, 150), IMPORTS_AND_DATA + fx.LINE_PLOT.replace("Squares", "Squares, as lines") + "\n"),
    }
    for (name, locator), (sha, context, (width, height), text) in expected.items():
        sample = samples[name, locator]
        assert sample.key == make_key("notebook", sha, locator)
        assert sample.text == text and sample.text_source == "notebook-code"
        assert sample.meta["notebook"]["context_cells"] == context
        [image] = sample.images
        assert image.format == "png" and png_size(image.data) == (width, height) == (image.width, image.height)


@pytest.mark.e2e
def test_a_rerun_in_two_processes_writes_byte_identical_files(notebooks_run, notebooks, tmp_path):
    output, manifest = notebooks_run
    # Two worker processes: other bundles, other order, same bytes.
    again = run_cli(["--input", str(notebooks), "--output", str(tmp_path / "again"),
                     "--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert again["shards"] == manifest["shards"] and again["totals"] == manifest["totals"]
    for folder in ("shards", "index", "rejects"):
        names = sorted(path.name for path in (output / folder).iterdir())
        assert names == sorted(path.name for path in (tmp_path / "again" / folder).iterdir())
        for name in names:
            assert (output / folder / name).read_bytes() == (tmp_path / "again" / folder / name).read_bytes()


@pytest.mark.e2e
def test_the_pixel_and_file_caps_come_from_the_shared_flags(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    data = fx.analysis()
    (folder / "analysis.ipynb").write_bytes(data)
    (folder / "big.ipynb").write_bytes(b"{" + b" " * len(data) + b"}")  # rejected unread
    output = tmp_path / "out"
    # The 400x300 plot is over the pixel cap, the 320x240 one under it.
    manifest = run_cli(["--input", str(folder), "--output", str(output), "--max-image-pixels", "100000",
                        "--max-file-bytes", str(len(data))])
    assert manifest["config"]["notebooks"]["max_image_pixels"] == 100_000
    assert manifest["config"]["notebooks"]["max_file_bytes"] == len(data)
    assert rejects_of(output, folder) == [
        ("analysis.ipynb", "cell=4", "notebook_plot", "image_too_large"),
        ("analysis.ipynb", "cell=6", "notebook_plot", "plot_several_images"),
        ("analysis.ipynb", "cell=7", "notebook_plot", "plot_code_too_short"),
        ("big.ipynb", "", "notebook", "file_too_large"),
    ]
    assert manifest["totals"] == {"inputs": 5, "samples": 1, "rejected": 2, "filtered": 2, "balanced": True}


@pytest.mark.e2e
def test_the_demo_notebooks_give_four_pairs(tmp_path):
    manifest = run_cli(["--input", str(NOTEBOOKS), "--output", str(tmp_path / "demo")])
    assert manifest["totals"] == {"inputs": 6, "samples": 4, "rejected": 0, "filtered": 2, "balanced": True}
    assert manifest["rejects"]["by_reason"] == {"plot_code_too_short": 1, "plot_several_images": 1}
    samples = samples_of(tmp_path / "demo", manifest, NOTEBOOKS)
    contexts = {where: sample.meta["notebook"]["context_cells"] for where, sample in samples.items()}
    assert contexts == {
        ("sales-review.ipynb", "cell=5"): [1, 2], ("sales-review.ipynb", "cell=6"): [1, 2],
        ("greenhouse-sensors.ipynb", "cell=5"): [1, 2, 3], ("greenhouse-sensors.ipynb", "cell=6"): [1, 3, 4],
    }
    assert all(png_size(sample.images[0].data) == (400, 300) for sample in samples.values())
    assert samples["greenhouse-sensors.ipynb", "cell=5"].meta["notebook"]["image_mime"] == "image/jpeg"


@pytest.mark.e2e
def test_the_notebooks_pipeline_translates_for_dataflow(monkeypatch):
    from vlcurate.pipelines import notebooks

    translate_for_dataflow(notebooks.run, "gs://vlcurate-test/notebooks/", "gs://vlcurate-test/nb", monkeypatch,
                           ["ListInputs", "NotebookPlots"])
