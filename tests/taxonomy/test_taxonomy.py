"""The use-case taxonomy: Table 3 fidelity, every validation error, diff, migrate and the CLI.

Fixtures are YAML strings here, or the bundled file edited the way an editor would (a rename, a
move, a merge) and written into tmp_path.
"""

from __future__ import annotations

import json
import re

import pytest

from vlcurate.taxonomy import changes, cli
from vlcurate.taxonomy.tree import (DEFAULT_TAXONOMY, Node, Taxonomy, TaxonomyError, as_json_tree, load_taxonomy,
                                    parse_taxonomy, render_tree)

# Table 3 of DeepSeek-VL (arXiv 2403.05525), typed from the paper: main -> (description, {secondary:
# [tertiary...]}); None for a main without secondary categories, whose leaves hang under it.
TABLE_3 = {
    "Recognition": (
        "This part of the use cases mainly examines the understanding and description ability of large models for "
        "image content, which does not require high knowledge reserve and reasoning ability of the model, and some "
        "tasks can be completed using traditional machine learning models.",
        {"Global Description": ["Theme Description", "Event/Behavior Description", "Location/Scene Description",
                                "Emotion/Mood Description", "Style Recognition", "Food Recognition", "Others"],
         "Local Description": ["Pointing Description", "Position Description", "Person Recognition",
                               "Object Attribute Description", "Logo Recognition", "Counting", "Currency Recognition"],
         "OCR and Transcription": ["Printed Text Transcription", "Handwritten Text Transcription",
                                   "Specified Format Transcription", "Specified Language Transcription"]}),
    "Conversion": (
        "This type of use case requires the model to be able to describe and recognize image content, and use "
        "specific knowledge (e.g., code knowledge, prompt engineering knowledge) to convert image content into "
        "another form.",
        {"Image to Code": ["UI to Code", "Chart to Code", "Photo to SVG/p64 Encoding", "Formula to Code",
                           "Flowchart to Code"],
         "Image to Text": ["Image to Prompt", "Text Summary", "Image-based Creation", "Text Interpretation"]}),
    "Analysis": (
        "This type of use case requires the model to use specific knowledge and logical ability to make reasonable "
        "analysis and understanding based on image content, and describe the image according to instructions.",
        {"Data Chart Analysis": ["Graph Interpretation", "Table Interpretation"],
         "Professional Chart Analysis": ["Circuit Diagram", "Flowchart", "Map", "Music Score", "Financial Chart",
                                         "Floor Plan", "Others"],
         "Professional Image Analysis": ["Sensor Image", "Biological and Medical Image", "Voiceprint Image",
                                         "Point Cloud Image"],
         "Encyclopedia Knowledge Analysis": ["Art and Culture Knowledge", "Natural Environment Knowledge",
                                             "Food/Clothing/Housing/Transportation Related Knowledge",
                                             "Entertainment Related Knowledge", "Historical Knowledge"]}),
    "Commonsense Reasoning": (
        "This type of use case mainly tests the model's understanding and mastery of common sense in life, which "
        "requires reasoning based on the interpretation and analysis of image content combined with common sense.",
        {"Relationship Reasoning": ["Interpersonal Relationship", "Spatial Relationship", "Size Relationship",
                                    "Species Relationship"],
         "Function Reasoning": ["Hardware Function Reasoning", "Software Function Reasoning"],
         "Environment Reasoning": ["Environment State Analysis", "Environment-based Behavior Reasoning",
                                   "Embodied Intelligence"],
         "Anomaly Reasoning": ["Identifying Anomalies in Images", "Defect Detection", "Accident Judgment"],
         "Humor Reasoning": [],
         "Other Commonsense Reasoning": ["State Reasoning", "Cause Reasoning", "Attribute Comparison",
                                         "Optical Illusion", "Fun Games", "Intention Interpretation",
                                         "Behavior Prediction"]}),
    "Logical Reasoning": (
        "This type of use case requires the model to combine the understanding of images, comprehensively use domain "
        "knowledge and logical reasoning ability to complete corresponding tasks.",
        {"Mathematical Reasoning": ["Algebra and Operation", "Plane Geometry", "Solid Geometry"],
         "Other Logical Reasoning": ["Physics", "Chemistry", "Biology", "Code", "IQ Questions"]}),
    "Evaluation": (
        "This type of use case requires the model to evaluate the image content according to specific criteria.",
        {None: ["Reality Evaluation", "Similarity Evaluation", "Aesthetic Evaluation", "Open-ended Evaluation",
                "Improvement Suggestions"]}),
    "Multi-graph": (
        "This type of use case examines the model's ability to analyze and understand multiple images.",
        {"Temporal Sequence Understanding": ["Event Prediction", "Image Sequencing", "Behavior Analysis"],
         "Multi-graph Comparison": ["Attribute Comparison", "Image-Text Matching", "Finding Associations",
                                    "Spotting Differences", "Image Discrimination"]}),
    "Safety": (
        "This type of use case examines the model's performance in terms of safety.",
        {None: ["Suggestive Questioning", "Counterfactual Questioning", "Prompt Injection"]}),
}


def segment(name):  # the id rule, restated here so the test doesn't check the code against itself
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


# --- Table 3 fidelity ---------------------------------------------------------------------------


def test_counts_are_table_3s(tax):
    levels = [node.level for node in tax]
    assert (levels.count("main"), levels.count("secondary"), levels.count("leaf")) == (8, 19, 88)
    assert len(tax.leaves()) == 89  # the 88 tertiary categories and Humor Reasoning
    assert [main.name for main in tax.mains()] == list(TABLE_3)
    secondaries = {main.name: sum(tax.node(kid).level == "secondary" for kid in main.children) for main in tax.mains()}
    assert secondaries == {"Recognition": 3, "Conversion": 2, "Analysis": 4, "Commonsense Reasoning": 6,
                           "Logical Reasoning": 2, "Evaluation": 0, "Multi-graph": 2, "Safety": 0}
    header = DEFAULT_TAXONOMY.read_text().split("\nversion:")[0]
    assert "88 tertiary" in header and "89 labelling leaves" in header


def test_every_name_id_and_main_description_is_table_3s(tax):
    expected = []  # (id, name, level, parent) in file order
    for main, (description, secondaries) in TABLE_3.items():
        main_id = segment(main)
        assert tax.node(main_id).paper_description == description
        expected.append((main_id, main, "main", None))
        for secondary, leaves in secondaries.items():
            parent = main_id
            if secondary is not None:
                parent = f"{main_id}/{segment(secondary)}"
                expected.append((parent, secondary, "secondary", main_id))
            expected += [(f"{parent}/{segment(leaf)}", leaf, "leaf", parent) for leaf in leaves]
    assert [(node.id, node.name, node.level, node.parent) for node in tax] == expected


def test_repeated_names_have_distinct_ids_and_sample_ids_are_the_agreed_ones(tax):
    others = [node.id for node in tax if node.name == "Others"]
    assert others == ["recognition/global-description/others", "analysis/professional-chart-analysis/others"]
    comparisons = [node.id for node in tax if node.name == "Attribute Comparison"]
    assert comparisons == ["commonsense-reasoning/other-commonsense-reasoning/attribute-comparison",
                           "multi-graph/multi-graph-comparison/attribute-comparison"]
    for node_id, name in [
        ("recognition/ocr-and-transcription/printed-text-transcription", "Printed Text Transcription"),
        ("recognition/global-description/event-behavior-description", "Event/Behavior Description"),
        ("analysis/encyclopedia-knowledge-analysis/food-clothing-housing-transportation-related-knowledge",
         "Food/Clothing/Housing/Transportation Related Knowledge"),
        ("conversion/image-to-code/photo-to-svg-p64-encoding", "Photo to SVG/p64 Encoding"),
        ("commonsense-reasoning/humor-reasoning", "Humor Reasoning"),
        ("evaluation/open-ended-evaluation", "Open-ended Evaluation"),
        ("safety/prompt-injection", "Prompt Injection"),
        ("commonsense-reasoning/environment-reasoning/environment-based-behavior-reasoning",
         "Environment-based Behavior Reasoning"),
    ]:
        assert tax.node(node_id).name == name


def test_editors_additions_are_on_every_main_and_secondary_and_kept_apart_from_the_paper(tax):
    for node in tax:
        if node.level in ("main", "secondary"):
            assert node.description and len(node.examples) >= 2 and len(node.keywords) >= 3, node.id
        assert bool(node.paper_description) == (node.level == "main"), node.id  # Table 3 describes mains only
        assert node.moved_from == ()
    assert tax.version == "1" and [entry.version for entry in tax.changelog] == ["1"]


def test_queries(tax):
    leaves = tax.leaves()
    assert leaves[0].id == "recognition/global-description/theme-description"
    assert leaves[-1].id == "safety/prompt-injection"
    humor = tax.node("commonsense-reasoning/humor-reasoning")
    assert (humor.level, humor.is_leaf, humor.children) == ("secondary", True, ())
    assert humor in leaves and leaves.index(humor) == 18 + 9 + 18 + 4 + 2 + 3 + 3
    assert tax.node("evaluation/aesthetic-evaluation").parent == "evaluation"
    assert tax.node("evaluation/aesthetic-evaluation").level == "leaf"
    assert tax.main_of("multi-graph/multi-graph-comparison/attribute-comparison").name == "Multi-graph"
    assert tax.main_of("safety").id == "safety"
    assert tax.node("recognition/local-description").children[-1] == "recognition/local-description/currency-recognition"
    with pytest.raises(KeyError):
        tax.node("recognition/nope")
    with pytest.raises(KeyError):
        tax.main_of("nope/x")
    assert tax.resolve("safety/prompt-injection") == "safety/prompt-injection"
    assert tax.resolve("safety/jailbreak") is None and tax.resolve(None) is None
    assert isinstance(tax, Taxonomy) and isinstance(humor, Node) and humor.line > 1


def test_render_tree_and_json(tax):
    text = render_tree(tax, depth=2).splitlines()
    assert text[0] == "DeepSeek-VL use-case taxonomy (version 1)"
    assert text[1] == "├── Recognition  [recognition]"
    assert text[2] == "│   ├── Global Description  [recognition/global-description]"
    assert text[-1] == "    └── Prompt Injection  [safety/prompt-injection]"
    assert len(render_tree(tax).splitlines()) == 1 + 115
    tree = as_json_tree(tax)
    assert [main["id"] for main in tree["children"]][-1] == "safety"
    assert tree["children"][3]["children"][4] == {"id": "commonsense-reasoning/humor-reasoning",
                                                  "name": "Humor Reasoning", "children": []}


# --- validation: one test per problem -----------------------------------------------------------

SMALL = """\
version: 1
changelog:
  - version: 1
    notes: [initial]
categories:
  - id: a
    name: A
    secondary:
      - id: a/b
        name: B
        leaves:
          - id: a/b/c
            name: C
          - id: a/b/d
            name: D
  - id: e
    name: E
    leaves:
      - {id: e/f, name: F}
"""


def problems_of(text):
    taxonomy, problems = parse_taxonomy(text, "t.yaml")
    assert (taxonomy is None) == bool(problems)
    return [str(problem) for problem in problems]


def test_the_small_fixture_is_valid():
    taxonomy, problems = parse_taxonomy(SMALL, "t.yaml")
    assert problems == []
    assert [node.id for node in taxonomy.leaves()] == ["a/b/c", "a/b/d", "e/f"]
    assert taxonomy.node("a/b/d").line == 14


@pytest.mark.parametrize("edit, expected", [
    (("      - {id: e/f, name: F}", "      - {id: e/f, name: F, name: G}"),
     ["t.yaml:19: e/f: duplicate key 'name' (first at line 19)"]),
    (("            name: D", "            name: D\n            id: a/b/x"),
     ["t.yaml:16: a/b/d: duplicate key 'id' (first at line 14)"]),
    (("          - id: a/b/d\n            name: D", "          - id: a/b/c\n            name: C"),
     ["t.yaml:14: a/b/c: duplicate id (first at line 12)"]),
    (("            name: D", "            name: ''"), ["t.yaml:15: a/b/d: name is missing or empty"]),
    (("            name: D", "            name: '  '"), ["t.yaml:15: a/b/d: name is missing or empty"]),
    (("            name: D", "            title: D"),
     ["t.yaml:14: a/b/d: name is missing or empty",
      "t.yaml:15: a/b/d: unknown key 'title' for a leaf category (allowed: description, examples, id, keywords, "
      "moved_from, name, paper_description)"]),
    (("          - id: a/b/d", "          - id: a/b/D_x"),
     ["t.yaml:14: a/b/D_x: id has characters outside [a-z0-9-/]: 'D_'"]),
    (("          - id: a/b/d", "          - id: a/b/dd"),
     ["t.yaml:14: a/b/dd: id does not match its parent and name: expected 'a/b/d' (a renamed node lists its old "
      "id under moved_from)"]),
    (("          - id: a/b/d", "          - id: e/d"),
     ["t.yaml:14: e/d: id does not match its parent and name: expected 'a/b/d' (a renamed node lists its old "
      "id under moved_from)"]),
    (("          - id: a/b/d\n            name: D", "          - name: D"),
     ["t.yaml:14: a/b/leaves[1]: id is missing or not a string"]),
    (("            name: D", "            name: D\n            colour: red"),
     ["t.yaml:16: a/b/d: unknown key 'colour' for a leaf category (allowed: description, examples, id, keywords, "
      "moved_from, name, paper_description)"]),
    (("            name: D", "            name: D\n            leaves: [{id: a/b/d/x, name: X}]"),
     ["t.yaml:16: a/b/d: unknown key 'leaves' for a leaf category (allowed: description, examples, id, keywords, "
      "moved_from, name, paper_description)"]),
    (("    name: E", "    name: E\n    secondary: [{id: e/g, name: G}]"),
     ["t.yaml:19: e: a main category lists either secondary categories or leaves, not both"]),
    (("    name: E", "    name: E\n    examples: Why?"), ["t.yaml:18: e: examples must be a list of non-empty strings"]),
    (("    name: E", "    name: E\n    keywords: [ok, 3]"), ["t.yaml:18: e: keywords must be a list of non-empty strings"]),
    (("    name: E", "    name: E\n    description: [x]"), ["t.yaml:18: e: description must be a string"]),
    (("      - {id: e/f, name: F}", "      - {id: e/no, name: No}"), ["t.yaml:19: e/no: name must be a string, not bool (quote it)"]),
    (("version: 1", "version: 1\n3: x"), ["t.yaml:2: -: key 3 is not a string"]),
    (("version: 1", "version: 1\n? [x]\n: y"), ["t.yaml:2: -: key that is a list or mapping is not a string"]),
    (("      - {id: e/f, name: F}", "      - e/f"), ["t.yaml:19: e/leaves[0]: a category must be a mapping with id and name"]),
    (("    leaves:\n      - {id: e/f, name: F}", "    leaves: []"),
     ["t.yaml:18: e: leaves must be a non-empty list of categories"]),
    (("version: 1", "version: 1.10"),  # a float would read back as 1.1
     ["t.yaml:1: -: version must be a string or an integer (quote it, e.g. '1.10')"]),
    (("version: 1", "version: 2"), ["t.yaml:2: changelog: no changelog entry for version 2"]),
    (("    notes: [initial]", "    notes: [initial]\n    author: me"),
     ["t.yaml:5: changelog[0]: unknown key 'author' (allowed: date, notes, version)"]),
    (("version: 1", "version: 1\nowner: me"), ["t.yaml:2: -: unknown top-level key 'owner' (allowed: categories, "
                                               "changelog, name, source, version)"]),
    (("    name: E", "    name: E\n    description: !!python/object/apply:os.system [echo hi]"),
     ["t.yaml:18: e: tag tag:yaml.org,2002:python/object/apply:os.system is not allowed"]),
    (("    name: E", "    name: E\n    description: !!python/name:os.system ''"),
     ["t.yaml:18: e: not allowed: could not determine a constructor for the tag "
      "'tag:yaml.org,2002:python/name:os.system'"]),
])
def test_each_problem_is_reported_with_file_line_and_node(edit, expected):
    old, new = edit
    assert old in SMALL
    assert problems_of(SMALL.replace(old, new, 1)) == expected


def test_yaml_alias_inside_its_own_anchor_is_a_cycle():
    text = SMALL.replace("    leaves:\n      - {id: e/f, name: F}", "    leaves: &loop\n      - {id: e/f, name: F}\n      - *loop")
    assert problems_of(text) == ["t.yaml:20: -: alias *loop is inside its own anchor &loop: a cycle"]


def test_any_other_yaml_alias_is_refused_too():
    text = SMALL.replace("    notes: [initial]", "    notes: &n [initial]") + "    keywords: *n\n"
    assert problems_of(text) == [
        "t.yaml:20: -: alias *n: YAML aliases are not allowed, write the value out"]


def test_moved_from_cycles_and_conflicts():
    two = SMALL.replace("            name: C", "            name: C\n            moved_from: [a/b/d]").replace(
        "            name: D", "            name: D\n            moved_from: [a/b/c]")
    assert problems_of(two) == ["t.yaml:12: a/b/c: moved_from cycle: a/b/c <- a/b/d <- a/b/c"]
    itself = SMALL.replace("            name: C", "            name: C\n            moved_from: [a/b/c]")
    assert problems_of(itself) == ["t.yaml:12: a/b/c: moved_from cycle: a/b/c <- a/b/c"]
    live = SMALL.replace("            name: C", "            name: C\n            moved_from: [e/f]")
    assert problems_of(live) == ["t.yaml:12: a/b/c: moved_from 'e/f' is a current id: an id is either live or retired"]
    twice = SMALL.replace("            name: C", "            name: C\n            moved_from: [a/x]").replace(
        "            name: D", "            name: D\n            moved_from: [a/x]")
    assert problems_of(twice) == ["t.yaml:15: a/b/d: moved_from 'a/x' is also claimed by 'a/b/c'"]
    bad = SMALL.replace("            name: C", "            name: C\n            moved_from: [A/X]")
    assert problems_of(bad) == ["t.yaml:12: a/b/c: moved_from id 'A/X' has characters outside [a-z0-9-/]"]


def test_every_problem_is_collected_not_only_the_first():
    text = (SMALL.replace("            name: D", "            name: ''")
            .replace("      - {id: e/f, name: F}", "      - {id: e/F, name: F, name: G}")
            .replace("version: 1", "version: 1\nextra: x", 1))
    assert [line.split(": ")[0] for line in problems_of(text)] == ["t.yaml:2", "t.yaml:16", "t.yaml:20", "t.yaml:20"]


def test_syntax_errors_and_non_taxonomies():
    assert problems_of("version: 1\ncategories: [\n") == [
        "t.yaml:3: -: YAML syntax: while parsing a flow node expected the node content, but found '<stream end>'"]
    assert problems_of("") == ["t.yaml: -: a taxonomy file is a mapping with version, changelog and categories"]
    assert problems_of("!!python/object:os.system {}\n") == [
        "t.yaml:1: -: tag tag:yaml.org,2002:python/object:os.system is not allowed",
        "t.yaml: -: a taxonomy file is a mapping with version, changelog and categories"]
    assert problems_of("- a\n- b\n") == ["t.yaml:1: -: a taxonomy file is a mapping with version, changelog and categories"]
    assert problems_of("version: 1\nchangelog: [{version: 1, notes: [x]}]\n") == [
        "t.yaml:1: -: categories must be a non-empty list of categories"]


def test_load_taxonomy_raises_a_value_error_listing_every_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(SMALL.replace("            name: D", "            name: ''").replace("name: F", "name: F, x: 1"))
    with pytest.raises(TaxonomyError) as caught:
        load_taxonomy(path)
    assert isinstance(caught.value, ValueError)
    assert [(p.file, p.line, p.node) for p in caught.value.problems] == [(str(path), 15, "a/b/d"), (str(path), 19, "e/f")]
    assert str(caught.value).splitlines() == [str(problem) for problem in caught.value.problems]
    assert str(caught.value).startswith(f"{path}:15: a/b/d: name is missing or empty")
    with pytest.raises(TaxonomyError, match="cannot read"):
        load_taxonomy(tmp_path / "missing.yaml")


# --- diff and migrate ---------------------------------------------------------------------------

V2_NOTE = "  - {version: 2, notes: [an editor's change]}\n"


def edited(tmp_path, *replacements, name="v2.yaml"):
    """The bundled taxonomy as version 2 with ``replacements`` (old, new) made, written to tmp_path."""
    text = DEFAULT_TAXONOMY.read_text().replace("version: 1\n", "version: 2\n", 1).replace(
        "changelog:\n", "changelog:\n" + V2_NOTE, 1)
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


RENAME = ("{id: recognition/global-description/others, name: Others}",
          "{id: recognition/global-description/other-global-description, name: Other Global Description, "
          "moved_from: [recognition/global-description/others]}")
MOVE = ("          - {id: commonsense-reasoning/other-commonsense-reasoning/attribute-comparison, name: Attribute Comparison}\n", "")
MOVE_TO = ("          - {id: commonsense-reasoning/relationship-reasoning/species-relationship, name: Species Relationship}\n",
           "          - {id: commonsense-reasoning/relationship-reasoning/species-relationship, name: Species Relationship}\n"
           "          - {id: commonsense-reasoning/relationship-reasoning/attribute-comparison, name: Attribute Comparison,"
           " moved_from: [commonsense-reasoning/other-commonsense-reasoning/attribute-comparison]}\n")


def test_diff_and_resolve_a_renamed_leaf(tax, tmp_path):
    new = load_taxonomy(edited(tmp_path, RENAME))
    assert new.resolve("recognition/global-description/others") == "recognition/global-description/other-global-description"
    assert new.resolve("analysis/professional-chart-analysis/others") == "analysis/professional-chart-analysis/others"
    found = changes.diff(tax, new)
    assert [(c.kind, c.old_ids, c.new_id, c.old_name, c.new_name) for c in found] == [
        ("renamed", ("recognition/global-description/others",), "recognition/global-description/other-global-description",
         "Others", "Other Global Description")]
    assert str(found[0]) == ("renamed  recognition/global-description/others -> recognition/global-description/"
                             "other-global-description  (Others -> Other Global Description)")


def test_diff_a_moved_leaf(tax, tmp_path):
    new = load_taxonomy(edited(tmp_path, MOVE, MOVE_TO))
    found = changes.diff(tax, new)
    assert [(c.kind, c.old_ids, c.new_id, c.old_parent, c.new_parent) for c in found] == [
        ("moved", ("commonsense-reasoning/other-commonsense-reasoning/attribute-comparison",),
         "commonsense-reasoning/relationship-reasoning/attribute-comparison",
         "commonsense-reasoning/other-commonsense-reasoning", "commonsense-reasoning/relationship-reasoning")]


def test_diff_renamed_secondary_takes_its_leaves_along_and_display_only_renames(tax, tmp_path):
    text_ids = [(f"recognition/ocr-and-transcription/{leaf}", f"recognition/text-transcription/{leaf}")
                for leaf in ("printed-text-transcription", "handwritten-text-transcription",
                             "specified-format-transcription", "specified-language-transcription")]
    new = load_taxonomy(edited(
        tmp_path,
        ("      - id: recognition/ocr-and-transcription\n        name: OCR and Transcription\n",
         "      - id: recognition/text-transcription\n        name: Text Transcription\n"
         "        moved_from: [recognition/ocr-and-transcription]\n"),
        *text_ids,
        ("chart-analysis/others, name: Others}", "chart-analysis/others, name: OTHERS}"),  # same id: display-only
    ))
    assert new.resolve("recognition/ocr-and-transcription/counting") is None
    assert new.resolve(text_ids[0][0]) == text_ids[0][1]
    found = changes.diff(tax, new)
    assert [(c.kind, c.old_ids[0], c.new_id) for c in found] == [
        ("renamed", "recognition/ocr-and-transcription", "recognition/text-transcription"),
        *[("renamed", old, new_id) for old, new_id in text_ids],
        ("renamed", "analysis/professional-chart-analysis/others", "analysis/professional-chart-analysis/others")]
    assert found[-1].new_name == "OTHERS"


def test_diff_merged_removed_and_added(tax, tmp_path):
    new = load_taxonomy(edited(
        tmp_path,
        ("          - {id: analysis/data-chart-analysis/table-interpretation, name: Table Interpretation}\n", ""),
        ("{id: analysis/data-chart-analysis/graph-interpretation, name: Graph Interpretation}",
         "{id: analysis/data-chart-analysis/graph-interpretation, name: Graph Interpretation, "
         "moved_from: [analysis/data-chart-analysis/table-interpretation]}"),
        ("      - {id: safety/prompt-injection, name: Prompt Injection}\n",
         "      - {id: safety/jailbreak, name: Jailbreak}\n"),
    ))
    found = {c.kind: c for c in changes.diff(tax, new)}
    assert found["merged"].old_ids == ("analysis/data-chart-analysis/graph-interpretation",
                                       "analysis/data-chart-analysis/table-interpretation")
    assert found["merged"].new_id == "analysis/data-chart-analysis/graph-interpretation"
    assert (found["removed"].old_ids, found["removed"].new_id) == (("safety/prompt-injection",), None)
    assert (found["added"].new_id, found["added"].new_name) == ("safety/jailbreak", "Jailbreak")
    mapping = changes.label_map(tax, new)
    assert mapping["analysis/data-chart-analysis/table-interpretation"] == "analysis/data-chart-analysis/graph-interpretation"
    assert mapping["safety/prompt-injection"] is None and mapping["safety"] == "safety"


def test_migrate_a_renamed_and_a_moved_label_and_reject_the_rest(tax, tmp_path):
    new = load_taxonomy(edited(tmp_path, RENAME, MOVE, MOVE_TO,
                               ("      - {id: safety/prompt-injection, name: Prompt Injection}\n", "")))
    lines = [
        '{"key": "k1", "label": "recognition/global-description/others", "confidence": 0.9}',
        '{"key": "k2", "label": "safety/suggestive-questioning"}',
        '{"key": "k3", "label": "commonsense-reasoning/other-commonsense-reasoning/attribute-comparison"}',
        '{"key": "k4", "label": "safety/prompt-injection"}',
        '{"key": "k5", "label": "recognition/made-up"}',
        '',
        '{"key": "k6"}',
        'not json',
        '{"key": "k7", "label": "évaluation"}',
    ]
    source, out, rejects = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = changes.migrate_file(source, out, rejects, tax, new)
    assert (report.lines_in, report.unchanged, report.migrated, report.blank) == (9, 1, 2, 1)
    assert report.rejected == {"label_removed": 1, "label_unknown": 2, "label_missing": 1, "bad_json": 1}
    assert report.lines_in == report.unchanged + report.migrated + report.blank + report.rejected_total
    written = out.read_text().splitlines()
    assert written == [
        '{"key": "k1", "label": "recognition/global-description/other-global-description", "confidence": 0.9}',
        lines[1],  # byte for byte
        '{"key": "k3", "label": "commonsense-reasoning/relationship-reasoning/attribute-comparison"}']
    rejected = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["reason"], r["label"]) for r in rejected] == [
        (4, "label_removed", "safety/prompt-injection"), (5, "label_unknown", "recognition/made-up"),
        (7, "label_missing", None), (8, "bad_json", None), (9, "label_unknown", "évaluation")]
    assert rejected[0]["input"] == lines[3] and rejected[0]["to_version"] == "2"


def test_migrate_a_nested_field_through_two_versions(tax, tmp_path):
    v2 = load_taxonomy(edited(tmp_path, RENAME, name="v2.yaml"))
    renamed_again = ("{id: recognition/global-description/other-global-description, name: Other Global Description, "
                     "moved_from: [recognition/global-description/others]}",
                     "{id: recognition/global-description/other-description, name: Other Description, "
                     "moved_from: [recognition/global-description/others, "
                     "recognition/global-description/other-global-description]}")
    v3 = load_taxonomy(edited(tmp_path, RENAME, renamed_again, name="v3.yaml"))
    line = '{"taxonomy": {"id": "recognition/global-description/others", "version": "1"}}'
    for old in (tax, v2):  # from v1 or from v2, labels written against v1 still land
        assert [status for status, _ in changes.migrate_lines([line], old, v3, "taxonomy.id")] == ["migrated"]
    status, text = next(changes.migrate_lines([line], tax, v3, "taxonomy.id"))
    assert json.loads(text)["taxonomy"]["id"] == "recognition/global-description/other-description"


# --- the CLI ------------------------------------------------------------------------------------


def test_cli_validate(tmp_path, capsys):
    assert cli.run(["validate"]) == 0
    assert capsys.readouterr().out.endswith(
        "ok, version 1: 8 main, 19 secondary, 88 tertiary categories, 89 labelling leaves\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.replace("      - {id: e/f, name: F}", "      - {id: e/f, name: F, name: G}"))
    assert cli.run(["validate", str(DEFAULT_TAXONOMY), str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"{bad}:19: e/f: duplicate key 'name' (first at line 19)", f"{bad}: 1 problem(s)"]
    assert "deepseek_vl.yaml: ok" in captured.out


def test_cli_show(capsys):
    assert cli.run(["show", "--format", "json"]) == 0
    tree = json.loads(capsys.readouterr().out)
    assert tree["version"] == "1" and len(tree["children"]) == 8

    def walk(obj):
        assert set(obj) == {"id", "name", "children"}
        return 1 + sum(walk(kid) for kid in obj["children"])

    assert sum(walk(main) for main in tree["children"]) == 115
    assert cli.run(["show", "--depth", "1", "--no-ids"]) == 0
    assert capsys.readouterr().out.splitlines()[1:3] == ["├── Recognition", "├── Conversion"]
    assert cli.run(["show", "--depth", "0"]) == 2
    assert "--depth" in capsys.readouterr().err


def test_cli_diff_and_migrate(tmp_path, capsys):
    v2 = edited(tmp_path, RENAME)
    assert cli.run(["diff", str(DEFAULT_TAXONOMY), str(v2), "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert (found["old_version"], found["new_version"]) == ("1", "2")
    assert [r["new_id"] for r in found["renamed"]] == ["recognition/global-description/other-global-description"]
    assert found["added"] == found["removed"] == found["moved"] == found["merged"] == found["edited"] == []
    assert cli.run(["diff", str(DEFAULT_TAXONOMY), str(v2)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 added, 0 removed, 1 renamed, 0 moved, 0 merged, 0 edited"

    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"label": "recognition/global-description/others"}\n{"label": "safety"}\n')
    out = tmp_path / "out.jsonl"
    argv = ["migrate", "--from", str(DEFAULT_TAXONOMY), "--to", str(v2), "--input", str(labels), "--output", str(out)]
    assert cli.run(argv) == 0
    assert out.read_text() == '{"label": "recognition/global-description/other-global-description"}\n{"label": "safety"}\n'
    assert (tmp_path / "out.rejects.jsonl").read_text() == ""
    labels.write_text('{"label": "nope"}\n')
    assert cli.run(argv) == 1
    assert "rejected label_unknown: 1" in capsys.readouterr().out
    assert cli.run(argv[:-4] + ["--input", str(tmp_path / "missing.jsonl"), "--output", str(out)]) == 2
    assert cli.run(argv[:-4] + ["--input", str(labels), "--output", str(labels)]) == 2
    assert "three different files" in capsys.readouterr().err
    assert labels.read_text() == '{"label": "nope"}\n'  # not emptied


def test_cli_reports_a_bad_taxonomy_and_bad_usage(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.replace("name: F", "name: F, colour: red"))
    for argv in (["show", str(bad)], ["diff", str(DEFAULT_TAXONOMY), str(bad)], ["stats", str(bad)]):
        assert cli.run(argv) == 1
        assert capsys.readouterr().err.startswith(f"{bad}:19: e/f: unknown key 'colour'")
    assert cli.run([]) == 2
    assert cli.run(["frobnicate"]) == 2
    assert cli.run(["--help"]) == 0


def test_cli_stats_with_labels(tmp_path, capsys):
    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join(json.dumps({"taxonomy": {"id": label}}) for label in [
        "safety/prompt-injection", "safety/prompt-injection", "commonsense-reasoning/humor-reasoning",
        "recognition", "recognition/gone"]) + "\n{}\n")
    assert cli.run(["stats", "--labels", str(labels), "--field", "taxonomy.id"]) == 1  # not all are leaves
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert captured.err.splitlines() == [
        f"{labels}:4: 'recognition' is a main category, not a labelling leaf: use one of its 18 leaves",
        f"{labels}:5: unknown label 'recognition/gone' (no leaf of taxonomy 1 is close; vlcurate taxonomy show "
        "lists them)",
        f"{labels}:6: no 'taxonomy.id' field",
    ]
    assert out[0] == "DeepSeek-VL use-case taxonomy version 1: 8 main, 19 secondary, 88 tertiary, 89 labelling leaves"
    assert out[3].split() == ["Recognition", "3", "18", "18", "1"]
    assert out[10].split() == ["Safety", "0", "3", "3", "2"]
    assert "labels in" in out[12] and out[12].endswith(": 6")
    assert "       2  safety/prompt-injection" in out
    assert "       1  commonsense-reasoning/humor-reasoning" in out
    assert "       1  recognition  (not a labelling leaf)" in out
    assert "       1  recognition/gone  (unknown id)" in out
    assert "       1  (missing)  (no label field / not JSON)" in out
