"""Checkpoints without pickles: tensors in safetensors files, everything else in small JSON files.

    CKPT_DIR/model.safetensors       every model tensor
    CKPT_DIR/optimizer.safetensors   AdamW's moments and step per trained parameter
    CKPT_DIR/data-rank{R}.json       rank R's loader position (per stream, per route) and counters
    CKPT_DIR/state.json              step, configs, world size; written last, so a checkpoint
                                     whose state.json is there is complete
Each file is written under a temporary name and renamed, so a crash leaves the last checkpoint.
"""

from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file, save_file

STATE = "state.json"


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
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


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
    model.load_state_dict(load_file(os.path.join(folder, "model.safetensors")))
    if optimizer is None:
        return
    parameters = dict(model.named_parameters())
    for key, value in load_file(os.path.join(folder, "optimizer.safetensors")).items():
        name, _, field = key.rpartition(":")
        parameter = parameters[name]
        optimizer.state[parameter][field] = value.to(parameter.device) if field != "step" else value
