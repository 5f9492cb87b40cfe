"""Image preprocessing as DeepSeek-VL feeds its hybrid encoder: square, mean-padded, two sizes.

An image is checked from its header before any pixel is decoded (bytes, pixels, format), then
resized so its long side is the branch's size and padded to a square with the mean colour
(DeepSeek-VL's ``expand2square`` with the processor's mean as background). The loader hands the
squares over as uint8 (a quarter of the bytes of float32 between processes); each branch of the
model normalises its own input with its own mean and std, as DeepSeek-VL's hybrid tower does
(SigLIP's 0.5/0.5 for the 384 semantic branch, ImageNet's for the 1024 high-resolution one).
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import torch
from PIL import Image

# CLIP's mean, the background DeepSeek-VL's processor pads with.
PAD_MEAN = (0.48145466, 0.4578275, 0.40821073)
SEMANTIC_NORM = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
HIGH_RES_NORM = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
FORMATS = ("PNG", "JPEG")


class BadImage(ValueError):
    """An image the loader will not decode: ``reason`` is the counter it is skipped under."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """Sizes of the two branches and the caps on untrusted images."""

    low_size: int = 384
    high_size: int = 1024
    max_pixels: int = 40_000_000
    max_bytes: int = 64 * 1024 * 1024


def open_checked(data: bytes, config: ImageConfig) -> Image.Image:
    """Decode an image after checking its size from the header (``Image.open`` reads only that)."""
    if len(data) > config.max_bytes:
        raise BadImage("image_too_large", f"{len(data)} bytes")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as error:  # PIL's own cap, far above ours
        raise BadImage("image_too_large", str(error)[:200]) from error
    except Exception as error:  # PIL raises several types for junk
        raise BadImage("image_undecodable", str(error)[:200]) from error
    width, height = image.size
    if width * height > config.max_pixels or width <= 0 or height <= 0:
        raise BadImage("image_too_large", f"{width}x{height}")
    try:
        return image.convert("RGB")  # the decode happens here, after the check
    except Exception as error:
        raise BadImage("image_undecodable", str(error)[:200]) from error


def square(image: Image.Image, size: int) -> np.ndarray:
    """Resize so the long side is ``size``, pad to ``size`` x ``size`` with the mean colour
    (the image centred), as HWC uint8."""
    width, height = image.size
    scale = size / max(width, height)
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = image.resize(new, Image.BICUBIC, reducing_gap=3.0)
    background = tuple(round(channel * 255) for channel in PAD_MEAN)
    canvas = Image.new("RGB", (size, size), background)
    canvas.paste(resized, ((size - new[0]) // 2, (size - new[1]) // 2))
    return np.asarray(canvas)


def preprocess(data: bytes, config: ImageConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high): CHW uint8 squares at the two branch sizes."""
    image = open_checked(data, config)
    # numpy's transpose copy, not torch's permute: the latter spins up torch's thread pool.
    low, high = (np.ascontiguousarray(square(image, size).transpose(2, 0, 1))
                 for size in (config.low_size, config.high_size))
    return torch.from_numpy(low), torch.from_numpy(high)


def normalise(pixels: torch.Tensor, norm) -> torch.Tensor:
    """uint8 NCHW -> float, scaled to 0..1 and normalised with (mean, std) per channel."""
    mean = torch.tensor(norm[0], dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(norm[1], dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
    return (pixels.float() / 255.0 - mean) / std
