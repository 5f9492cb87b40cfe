"""`vlcurate taxonomy diff` and `check-labels` (and `stats --labels`) as an editor runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fixtures import REPO
from vlcurate.taxonomy.tree import DEFAULT_TAXONOMY

THEME = "recognition/global-description/theme-description"


def vlcurate(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "vlcurate.pipelines.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def edited(path, *replacements, version="2"):
    """The bundled taxonomy as ``version`` with ``replacements`` (old, new) made, written to ``path``."""
    text = DEFAULT_TAXONOMY.read_text()
    if version != "1":
        text = text.replace("version: 1\n", f"version: {version}\n", 1).replace(
            "changelog:\n", f"changelog:\n  - {{version: {version}, notes: [an editor's change]}}\n", 1)
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


EDITS = (
    ("    description: Say what is in the image (objects, people, text, scene) without needing expert knowledge "
     "or reasoning.\n", "    description: Say what the image shows, without expert knowledge.\n"),
    ('      - "Describe this photo."\n', '      - "Describe this photo."\n      - "What is this?"\n'
                                         '      - "Name the thing in the middle."\n'),
    ("keywords: [describe, identify, what is, recognize, read, transcribe, count]",
     "keywords: [describe, identify, recognize, read, transcribe, count, name it, caption]"),
    ("        keywords: [describe the image, scene, theme, mood, style, atmosphere]\n", ""),
)


def test_diff_lists_edited_descriptions_examples_and_keywords(tmp_path):
    new = edited(tmp_path / "v2.yaml", *EDITS)
    done = vlcurate("taxonomy", "diff", DEFAULT_TAXONOMY, new)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "taxonomy diff: version 1 -> 2",
        "edited   recognition: description changed",
        "edited   recognition: +2 examples",
        "edited   recognition: keywords +'name it' +caption -'what is'",
        "edited   recognition/global-description: keywords -'describe the image' -scene -theme -mood -style "
        "-atmosphere",
        "0 added, 0 removed, 0 renamed, 0 moved, 0 merged, 4 edited",
    ]
    found = json.loads(vlcurate("taxonomy", "diff", DEFAULT_TAXONOMY, new, "--format", "json").stdout)
    assert found["edited"][0] == {"node": "recognition", "field": "description", "added": [], "removed": [],
                                  "old": "Say what is in the image (objects, people, text, scene) without needing "
                                         "expert knowledge or reasoning.",
                                  "new": "Say what the image shows, without expert knowledge."}
    assert found["edited"][1]["added"] == ["What is this?", "Name the thing in the middle."]


def test_diff_warns_when_only_the_words_changed_but_not_the_version(tmp_path):
    same = edited(tmp_path / "same.yaml", EDITS[0], version="1")
    done = vlcurate("taxonomy", "diff", DEFAULT_TAXONOMY, same)
    assert done.returncode == 0 and "edited   recognition: description changed" in done.stdout
    assert done.stderr == "warning: the taxonomies differ but both are version 1: bump version\n"


def write_lines(path, *records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_check_labels_names_each_bad_label_with_its_line_and_what_to_do(tmp_path):
    moved = edited(tmp_path / "v2.yaml", (
        "{id: recognition/global-description/others, name: Others}",
        "{id: recognition/global-description/other-global-description, name: Other Global Description, "
        "moved_from: [recognition/global-description/others]}"))
    labels = write_lines(
        tmp_path / "labels.jsonl",
        {"text": "what is the theme?", "label": THEME},
        {"text": "a typo", "label": "recogniton/global-description/theme-description"},
        "",
        {"text": "a level left out", "label": "recognition/counting"},
        {"text": "nothing like it", "label": "safety/jailbreak"},
        {"text": "a main category", "label": "recognition"},
        {"text": "an old id", "label": "recognition/global-description/others"},
        {"text": "a queue row not yet labelled", "label": None},
        {"text": "no label at all"},
        "{broken",
    )
    done = vlcurate("taxonomy", "check-labels", labels, "--taxonomy", moved)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"{labels}:2: unknown label 'recogniton/global-description/theme-description' (did you mean '{THEME}'?)",
        f"{labels}:4: unknown label 'recognition/counting' (did you mean 'recognition/local-description/counting'?)",
        f"{labels}:5: unknown label 'safety/jailbreak' (no leaf of taxonomy 2 is close; vlcurate taxonomy show "
        "lists them)",
        f"{labels}:6: 'recognition' is a main category, not a labelling leaf: use one of its 18 leaves",
        f"{labels}:7: 'recognition/global-description/others' is an old id, now "
        "'recognition/global-description/other-global-description' in taxonomy 2: run vlcurate taxonomy migrate",
        f"{labels}:9: no 'label' field",
        f"{labels}:10: not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        f"{labels}: 9 lines, 1 labelled with a leaf of taxonomy 2, 1 unlabelled (null), 7 problems",
    ]


def test_check_labels_of_clean_files_counts_them_and_exits_0(tmp_path):
    first = write_lines(tmp_path / "a.jsonl", {"text": "t", "label": THEME}, {"text": "u", "label": None})
    second = write_lines(tmp_path / "b.jsonl", {"taxonomy": {"id": THEME}})
    done = vlcurate("taxonomy", "check-labels", first, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"{first}: 2 lines, 1 labelled with a leaf of taxonomy 1, 1 unlabelled (null), 0 problems\n"
    done = vlcurate("taxonomy", "check-labels", "--field", "taxonomy.id", second)
    assert done.returncode == 0 and done.stdout.startswith(f"{second}: 1 lines, 1 labelled")


@pytest.mark.parametrize("argv, status, message", [
    (["check-labels", "missing.jsonl"], 2,
     "vlcurate taxonomy check-labels: cannot read missing.jsonl: No such file or directory\n"),
    (["stats", "--labels", "missing.jsonl"], 2,
     "vlcurate taxonomy stats: cannot read missing.jsonl: No such file or directory\n"),
])
def test_an_unreadable_labels_file_is_one_line_and_exit_2(tmp_path, argv, status, message):
    done = vlcurate("taxonomy", *argv, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (status, message)


def test_stats_exits_non_zero_on_the_labels_check_labels_refuses(tmp_path):
    labels = write_lines(tmp_path / "l.jsonl", {"label": THEME}, {"label": "recogniton/global-description/others"})
    done = vlcurate("taxonomy", "stats", "--labels", labels)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"       1  {THEME}" in done.stdout.splitlines()
    assert done.stderr == (f"{labels}:2: unknown label 'recogniton/global-description/others' "
                           "(did you mean 'recognition/global-description/others'?)\n")
