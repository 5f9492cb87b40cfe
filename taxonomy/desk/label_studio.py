"""The Label Studio round trip: the review queue out as Label Studio tasks, its JSON export back in
as decisions.

Export: one task per sample, ``data`` = {key, image, images, text}, the labeler's best candidate as
a prediction, and a labelling config (one ``Choice`` per leaf, value = the leaf's id) written beside
the tasks. Images travel as data URIs, or as files under a local files root (``--files-root DIR``:
images are written to DIR/vlcurate-images/ and named ``/data/local-files/?d=vlcurate-images/...``,
for Label Studio started with LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=DIR).

Import: Label Studio's JSON export (a list of tasks, each with ``annotations[].result[].value
.choices``); per task the latest annotation that was not cancelled counts. A task without our key,
a key not in the dataset or a choice that is not a leaf is refused with its task id; nothing of it
is stored. A decision equal to the one in force is not stored again, so importing twice is harmless.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from xml.sax.saxutils import quoteattr

from vlcurate.taxonomy.desk.desk import Desk, DeskError, check_editor
from vlcurate.transforms.data.sample import Sample
from vlcurate.transforms.io.files import read_capped
from vlcurate.transforms.data.rejects import Reject

MAX_EXPORT_BYTES = 1 << 30  # a Label Studio export we read whole: capped like any input
IMAGES = "vlcurate-images"
_MIME = {"png": "image/png", "jpeg": "image/jpeg"}


def flat_text(conversation, text: str) -> str:
    if not conversation:
        return text
    return "\n\n".join(f"{turn['role']}: {turn['content']}" for turn in conversation)


def label_config(desk: Desk) -> str:
    """Label Studio's labelling config: the image, the text, and one choice per labelling leaf."""
    choices = "\n".join(
        f'    <Choice value={quoteattr(node.id)} hint={quoteattr(" > ".join(desk.taxonomy_path(node.id)))}/>'
        for node in desk.taxonomy.leaves())
    return ('<View>\n  <Image name="image" value="$image"/>\n  <Text name="text" value="$text"/>\n'
            f'  <Choices name="label" toName="text" choice="single" showInline="false">\n{choices}\n'
            '  </Choices>\n</View>\n')


def export_tasks(dataset: str, output: str, taxonomy: str | None = None, files_root: str | None = None,
                 every: bool = False) -> int:
    desk = Desk(dataset, taxonomy)
    items = [item for item in desk.queue.items if every or item.row is not None]
    tasks = []
    for number, item in enumerate(items, 1):
        view = desk.view(item)
        sample = desk.samples.sample(item.key, item.shard, item.number) if view["images"] else None
        images = [_image_ref(sample, i, files_root) for i in range(len(sample.images))] if sample else []
        task = {"id": number, "data": {"key": item.key, "image": images[0] if images else "", "images": images,
                                       "text": flat_text(view["conversation"], view["text"])}}
        if view["candidates"]:
            best = view["candidates"][0]
            task["predictions"] = [{"model_version": "vlcurate-labeler", "score": best.get("confidence"),
                                    "result": [_choice(best["id"])]}]
        tasks.append(task)
    with open(output, "w", encoding="utf-8") as handle:
        json.dump(tasks, handle, ensure_ascii=False, indent=1)
    with open(output.rsplit(".", 1)[0] + ".label-config.xml", "w", encoding="utf-8") as handle:
        handle.write(label_config(desk))
    return len(tasks)


def _choice(label: str) -> dict:
    return {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}


def _image_ref(sample: Sample, position: int, files_root: str | None) -> str:
    image = sample.images[position]
    if files_root is None:
        return f"data:{_MIME[image.format]};base64,{base64.b64encode(image.data).decode('ascii')}"
    name = f"{sample.key}.{position}.{image.extension}"
    os.makedirs(os.path.join(files_root, IMAGES), exist_ok=True)
    with open(os.path.join(files_root, IMAGES, name), "wb") as handle:
        handle.write(image.data)
    return f"/data/local-files/?d={IMAGES}/{name}"


@dataclasses.dataclass
class Imported:
    tasks: int = 0
    stored: int = 0
    unchanged: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)


def import_annotations(dataset: str, path: str, taxonomy: str | None = None, editor: str | None = None) -> Imported:
    desk = Desk(dataset, taxonomy)
    if editor is not None:
        check_editor(editor)
    try:
        tasks = json.loads(read_capped(path, MAX_EXPORT_BYTES).decode("utf-8"))
    except Reject as error:
        raise DeskError(f"{path}: {error.detail}") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise DeskError(f"{path}: not a Label Studio JSON export ({error})") from None
    if not isinstance(tasks, list):
        raise DeskError(f"{path}: not a Label Studio JSON export (a list of tasks)")
    result = Imported(len(tasks))
    for position, task in enumerate(tasks):
        where = f"{path}: task {task.get('id', position) if isinstance(task, dict) else position}"
        try:
            key, label, who = _decision_of(task)
            label = desk.check_label(label)
            item = desk.queue.by_key.get(key)
            if item is None:
                raise DeskError(f"sample {key} is not in {dataset}")
            name = check_editor(editor or f"label-studio:{who}")
        except DeskError as error:
            result.problems.append(f"{where}: {error}")
            continue
        if label is None:
            continue
        current = desk.log.current(key)
        if (current["label"] if current else item.label) == label:
            result.unchanged += 1
            continue
        desk.log.label(key, label, name, desk.text_of(item), item.label, via="label-studio")
        result.stored += 1
    return result


def _decision_of(task) -> tuple[str, str | None, str]:
    """(key, the chosen label or None when no annotation counts, who annotated) of one task."""
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict) or not isinstance(task["data"].get("key"), str):
        raise DeskError("no data.key: not a task that `vlcurate review export` wrote")
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not annotations:
        return task["data"]["key"], None, ""
    latest = max(enumerate(annotations), key=lambda pair: (str(pair[1].get("updated_at") or pair[1].get("created_at") or ""),
                                                           pair[0]))[1]
    choices = [choice for result in latest.get("result") or [] if isinstance(result, dict)
               and result.get("type") == "choices" for choice in (result.get("value") or {}).get("choices") or []]
    if len(choices) != 1:
        raise DeskError(f"the annotation holds {len(choices)} choices, not one")
    who = latest.get("completed_by")
    who = who.get("email") or who.get("id") if isinstance(who, dict) else who
    return task["data"]["key"], choices[0], str(who if who is not None else "unknown")
