"""Checkpoints without pickles: tensors in safetensors files, everything else in small JSON files.

    CKPT_DIR/model.safetensors       every model tensor
    CKPT_DIR/optimizer.safetensors   AdamW's moments and step per trained parameter
    CKPT_DIR/data-rank{R}.json       rank R's loader position (per stream, per route) and counters
    CKPT_DIR/state.json              step, configs, world size; written last, so a checkpoint
                                     whose state.json is there is complete
Each file is written under a temporary name and renamed, so a crash leaves the last checkpoint.
"""

from __future__ import annotations

import glob
import json
import os

import torch
from safetensors.torch import load_file, save_file

STATE = "state.json"
# What a checkpoint is made of (and the temporary names they are written under): all that
# `vlcurate train --overwrite` removes from a folder.
_PARTS = (STATE, "model.safetensors", "optimizer.safetensors", "data-rank*.json")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: a file missing, damaged, or of other model sizes."""


def remove_checkpoint(folder: str) -> None:
    """Delete the checkpoint in ``folder``, state.json first (so a crash half way leaves no
    folder that claims to be a whole checkpoint); other files there are left alone."""
    escaped = glob.escape(folder)
    for part in _PARTS:
        for path in sorted(glob.glob(os.path.join(escaped, part)) + glob.glob(os.path.join(escaped, part + ".tmp-*"))):
            os.remove(path)


def _replace(path: str, write) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    write(temporary)
    os.replace(temporary, path)


def write_json(path: str, doc: dict) -> None:
    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=1, sort_keys=True)
            handle.write("\n")

    _replace(path, write)


def read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"{path}: {getattr(error, 'strerror', None) or error}") from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"{path}: not a checkpoint file (a JSON object)")
    return doc


def save_tensors(folder: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """The model's and the optimizer's tensors (rank 0 only: ranks hold the same values)."""
    os.makedirs(folder, exist_ok=True)
    tensors = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in model.state_dict().items()}
    _replace(os.path.join(folder, "model.safetensors"), lambda tmp: save_file(tensors, tmp))
    names = {parameter: name for name, parameter in model.named_parameters()}
    moments = {}
    for parameter, state in optimizer.state.items():
        for field, value in state.items():
            value = value if torch.is_tensor(value) else torch.tensor(float(value))
            moments[f"{names[parameter]}:{field}"] = value.detach().cpu().contiguous().clone()
    _replace(os.path.join(folder, "optimizer.safetensors"), lambda tmp: save_file(moments, tmp))


def load_tensors(folder: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    """The weights (and the optimiser's moments) of the checkpoint in ``folder``; CheckpointError
    names the file when one is missing, damaged, or does not fit the model."""
    path = os.path.join(folder, "model.safetensors")
    try:
        model.load_state_dict(load_file(path))
        if optimizer is None:
            return
        path = os.path.join(folder, "optimizer.safetensors")
        parameters = dict(model.named_parameters())
        for key, value in load_file(path).items():
            name, _, field = key.rpartition(":")
            parameter = parameters[name]
            optimizer.state[parameter][field] = value.to(parameter.device) if field != "step" else value
    except KeyError as error:
        raise CheckpointError(f"{path}: {error} is not a parameter of this model") from None
    except Exception as error:  # OSError, safetensors' own errors, a size mismatch, a foreign name
        why = getattr(error, "strerror", None) or str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path}: {why}") from None
