"""The one weights syntax (NAME=WEIGHT,... or a YAML file) that the report, the labeler's target
mix and the trainer's --mix all read."""

from __future__ import annotations

import pytest

from vlcurate.pipelines.tools.report import parse_mix as report_mix
from vlcurate.training.mixing import parse_mix as trainer_mix
from vlcurate.transforms.data.mix import parse_weights, shares


def test_names_and_weights_in_order():
    assert list(parse_weights(" document_ocr = 2, web_code=1 ,text_only=7 ").items()) == [
        ("document_ocr", 2.0), ("web_code", 1.0), ("text_only", 7.0)]
    assert parse_weights("") == {} and parse_weights(None) == {}
    assert shares({"a": 1.0, "b": 3.0}) == {"a": 0.25, "b": 0.75}


def test_a_yaml_file(tmp_path):
    path = tmp_path / "mix.yaml"
    path.write_text("document_ocr: 1\ntext_only: 3\n")
    assert parse_weights(str(path)) == {"document_ocr": 1.0, "text_only": 3.0}
    path.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must map names to weights"):
        parse_weights(str(path), "--mix")


@pytest.mark.parametrize("spec, message", [
    ("document_ocr: 2", "is not NAME=WEIGHT"),  # the trainer's old colon form: one syntax now
    ("=2", "is not NAME=WEIGHT"),
    ("a=1,a=2", "given twice"),
    ("a=x", "not a number"),
    ("a=-1", "negative"),
    ("a=nan", "negative"),
])
def test_mistakes_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_weights(spec, "--mix")


def test_every_reader_takes_the_same_syntax():
    spec = "document_ocr=1,text_only=3"
    assert trainer_mix(spec) == {"document_ocr": 1.0, "text_only": 3.0}
    assert report_mix(spec) == {"document_ocr": 0.25, "text_only": 0.75}
    with pytest.raises(ValueError, match="positive weight"):
        report_mix("a=0")
