"""Untrusted image bytes in, an upright RGB picture out: the one decoder every stage uses.

Each stage that opens an input image (OCR, notebooks, SFT, dedup, CLIP) goes through
``open_image``: the common raster formats only, the pixel count checked from the header before
anything is decoded, EXIF orientation applied, transparency laid over white.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image as PILImage
from PIL import ImageOps

from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import Image, encode_image

# Formats an input image may have. Pillow would also open EPS (through Ghostscript), PSD, ICO,
# and more; untrusted bytes get the common raster decoders only.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
_LOSSY = ("JPEG",)

# Our own cap (checked from the header) decides; Pillow's process-wide warning would only repeat
# it. Its error above 2 x MAX_IMAGE_PIXELS (178 M pixels) stays, and is caught as image_too_large.
# Set once here rather than per call: Pillow's limit and the warning filters are process-global,
# and changing them per call is not safe across threads.
warnings.filterwarnings("ignore", category=PILImage.DecompressionBombWarning)


def open_image(data: bytes, max_pixels: int) -> tuple[PILImage.Image, str]:
    """Decode untrusted bytes into an upright RGB image, checking the size before decoding.

    Returns (image, source format). A header that claims more than ``max_pixels`` pixels is
    rejected (``image_too_large``) before any decoding; anything undecodable is ``image_unreadable``.
    """
    try:
        image = PILImage.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        width, height = image.size
        if width * height > max_pixels:
            raise Reject("image_too_large", f"{width}x{height} pixels, cap {max_pixels}")
        if width < 1 or height < 1:
            raise Reject("image_unreadable", f"image is {width}x{height} pixels")
        image_format = image.format
        image.load()
        image = ImageOps.exif_transpose(image)
        return rgb(image), image_format
    except PILImage.DecompressionBombError as error:
        raise Reject("image_too_large", str(error)) from error
    except Reject:
        raise
    except Exception as error:  # UnidentifiedImageError, truncated data, bad headers...
        raise Reject("image_unreadable", f"{type(error).__name__}: {error}") from error


def rgb(image: PILImage.Image) -> PILImage.Image:
    """RGB, with transparency laid over white (dark text on a transparent background stays legible)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = PILImage.new("RGBA", image.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def reencoded(image: PILImage.Image, source_format: str) -> Image:
    """The picture as the dataset stores it, without the input's metadata (EXIF, GPS, ICC): lossy
    sources stay JPEG (quality 95), the rest become PNG."""
    return encode_image(image, "jpeg" if source_format in _LOSSY else "png", jpeg_quality=95)
