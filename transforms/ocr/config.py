"""The OCR stage's settings, work items and model files, importable without the OCR libraries.

The pipeline's own process plans and writes; the engines (onnxruntime, Tesseract) run in isolated
children (transforms/runtime/isolation.py). The model files are found and hashed here without importing
the engines, so the manifest can name them too.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os

from vlcurate.transforms.io.files import file_sha256

ENGINES = ("ppocr", "tesseract")
MODES = ("auto", "always", "never")
# The PP-OCR models that the rapidocr 3.x wheel ships: its default configuration, nothing fetched.
PPOCR_MODELS = {
    "det": "PP-OCRv6_det_small.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    "rec": "PP-OCRv6_rec_small.onnx",
}
# Debian's tesseract-ocr data (tesseract-ocr-eng), read by the Tesseract that tesserocr bundles.
DEBIAN_TESSDATA = "/usr/share/tesseract-ocr/5/tessdata"


@dataclasses.dataclass(frozen=True)
class OcrConfig:
    """Settings of the OCR stage; every cap is here with a safe default."""

    engine: str = "ppocr"
    mode: str = "auto"  # pdf/web: auto (only samples without text), always, never
    dpi: int = 200  # PDF pages are rendered again at this resolution for OCR
    tesseract_lang: str = "eng"
    tessdata: str = ""  # "" = $TESSDATA_PREFIX, else Debian's folder
    threads: int = 1  # native threads per OCR child (onnxruntime, OpenCV, OpenMP)
    max_file_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    timeout_s: float = 60.0
    worker_memory_mb: int | None = 4096
    keep_empty: bool = False  # `vlcurate ocr`: keep images in which no text was found

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"OCR engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.mode not in MODES:
            raise ValueError(f"OCR mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not 36 <= self.dpi <= 600:
            raise ValueError("the OCR resolution must be between 36 and 600 dpi")
        if self.threads < 1 or min(self.max_file_bytes, self.max_image_pixels) < 1 or self.timeout_s <= 0:
            raise ValueError("threads, caps and the timeout must be positive")

    @property
    def tessdata_dir(self) -> str:
        return self.tessdata or os.environ.get("TESSDATA_PREFIX") or DEBIAN_TESSDATA

    def wanted(self, has_text: bool) -> bool:
        """Whether a page or screenshot with (or without) text of its own is OCRed."""
        return self.mode == "always" or (self.mode == "auto" and not has_text)


@dataclasses.dataclass(frozen=True)
class ImageTask:
    """One image file to read (the `vlcurate ocr` input unit)."""

    uri: str
    size_in_bytes: int


def ppocr_model_paths() -> dict[str, str]:
    """The ONNX files of the installed rapidocr wheel, found without importing it."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the ppocr engine needs the rapidocr package (pip install -r requirements.txt)")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "models")
    return {role: os.path.join(folder, name) for role, name in PPOCR_MODELS.items()}


def tesseract_model_paths(config: OcrConfig) -> dict[str, str]:
    """The languages' trained data, and ``osd`` (orientation and script detection), which turns
    pages scanned sideways or upside down."""
    names = [*config.tesseract_lang.split("+"), "osd"]
    return {name: os.path.join(config.tessdata_dir, f"{name}.traineddata") for name in names}


def engine_models(config: OcrConfig) -> dict[str, dict[str, str]]:
    """{role: {"file": name, "sha256": ...}} of the engine's model files, for provenance and the
    manifest. A missing file is an error now, not a failure on every image later."""
    paths = ppocr_model_paths() if config.engine == "ppocr" else tesseract_model_paths(config)
    missing = [path for path in paths.values() if not os.path.isfile(path)]
    if missing:
        hint = ("reinstall rapidocr" if config.engine == "ppocr"
                else "install Debian's tesseract-ocr (and tesseract-ocr-LANG), or pass --tessdata")
        raise FileNotFoundError(f"OCR model files missing: {', '.join(missing)}; {hint}")
    return {role: {"file": os.path.basename(path), "sha256": model_sha256(path)} for role, path in paths.items()}


@functools.lru_cache(maxsize=None)
def model_sha256(path: str) -> str:
    """Cached: each OCR child names its model files in every sample's provenance."""
    return file_sha256(path)
