"""bench/scaling.py reads each benchmark's --json: the element count and the vCPUs come from the
JSON where it records them, and from the flags only for a JSON written before it did."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import scaling  # noqa: E402  (bench/scaling.py: a script, not a package)


def _write(folder: Path, name: str, document: dict) -> Path:
    path = folder / name
    path.write_text(json.dumps(document))
    return path


def _ocr(images: int | None) -> dict:
    figures = {"seconds": {"(a0) beam, 1 image": 5.0, "(a) beam, default local": 35.0,
                           "(b) Pool(2), same engine": 30.0}}
    if images is not None:
        figures["images"] = images
    return {"cores": 2, "ppocr": figures}


def test_ocr_images_come_from_the_json(tmp_path):
    source, rate, how = scaling.rate_from_bench(_write(tmp_path, "ocr.json", _ocr(60)), ocr_images=150,
                                                bench_cores=2, end_to_end=True)
    assert source == "ocr"
    assert rate == pytest.approx(60 / 35.0 * 3600 / 2)  # 60 images, not the flag's 150
    assert how == "60 in 35.0s end to end, on 2 vCPUs"


def test_an_older_ocr_json_takes_the_flag(tmp_path):
    _, rate, _ = scaling.rate_from_bench(_write(tmp_path, "ocr.json", _ocr(None)), ocr_images=150,
                                         bench_cores=2, end_to_end=True)
    assert rate == pytest.approx(150 / 35.0 * 3600 / 2)


@pytest.mark.parametrize("cores, expected_cores", [(4, 4), (None, 2)])
def test_charts_cores_come_from_the_json_else_the_flag(tmp_path, cores, expected_cores):
    document = {"pages": 60, "seconds": {"(a) vlcurate charts": 12.0, "(c) Pool(2), same extraction": 8.0}}
    if cores is not None:
        document["cores"] = cores
    source, rate, how = scaling.rate_from_bench(_write(tmp_path, "charts.json", document), ocr_images=150,
                                                bench_cores=2, end_to_end=False)
    assert source == "charts"
    assert rate == pytest.approx(60 / 12.0 * 3600 / expected_cores)  # no fixed-cost run: end to end
    assert how.endswith(f"on {expected_cores} vCPUs")


def test_clip_cores_come_from_the_json(tmp_path):
    document = {"cores": 8, "pairs": 128, "model": "ViT-B-32", "seconds": {"a0": 12.0, "a": 28.0, "b": 14.0}}
    source, rate, how = scaling.rate_from_bench(_write(tmp_path, "clip.json", document), ocr_images=150,
                                                bench_cores=2, end_to_end=False)
    assert source == "clip"
    # steady: 128 / (28 - 12) = 8/s, under the cap max(128/14, 128/28) = 9.14/s
    assert rate == pytest.approx(8.0 * 3600 / 8)
    assert how == "128 in 28.0s - 12.0s fixed cost, on 8 vCPUs"
