"""Generated images for the dedup tests: photo-like scenes and text images, and the copies that
near-duplicate detection must catch (re-encoded, resized, cropped, brightened)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

FONT = "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"

SIGNS = (
    ("Platform 3", "to Cambridge"),
    ("Open daily", "from 9 to 5", "closed on Sundays"),
    ("EXIT",),
    ("Please keep", "this door closed"),
)


def scene(seed: int, size=(240, 180)) -> Image.Image:
    """A photo-like picture: a two-colour gradient, a dozen filled shapes, a little blur and noise."""
    rng = np.random.RandomState(seed)
    width, height = size
    start, end = rng.randint(0, 256, (2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width]
    t = (xs * np.cos(angle) + ys * np.sin(angle)) / np.hypot(width, height) + 0.5
    pixels = start + np.clip(t, 0, 1)[..., None] * (end - start)
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.randint(-40, width), rng.randint(-40, height)
        box = (x0, y0, x0 + rng.randint(20, width // 2), y0 + rng.randint(20, height // 2))
        colour = tuple(int(c) for c in rng.randint(0, 256, 3))
        if rng.rand() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1.5))
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def sign(lines, background=(30, 60, 120), ink=(250, 250, 250), size=(270, 180)) -> Image.Image:
    """A text image: ``lines`` set in large type on a flat background, as a photographed sign."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    face = ImageFont.truetype(FONT, 30)
    for i, line in enumerate(lines):
        draw.text((18, 18 + 42 * i), line, font=face, fill=ink)
    return image


def reencoded(image: Image.Image, quality: int = 70) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def resized(image: Image.Image, factor: float) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.BICUBIC)


def cropped(image: Image.Image, share: float) -> Image.Image:
    """``share`` of the width and height cut off each side."""
    dx, dy = round(image.width * share), round(image.height * share)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def brightened(image: Image.Image, factor: float = 1.1) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(factor)


COPIES = {
    "jpeg-q70": reencoded,
    "half-size": lambda image: resized(image, 0.5),
    "one-and-a-half-size": lambda image: resized(image, 1.5),
    "crop-1%": lambda image: cropped(image, 0.01),
    "crop-2%": lambda image: cropped(image, 0.02),
    "crop-3%": lambda image: cropped(image, 0.03),
    "crop-4%": lambda image: cropped(image, 0.04),
    "crop-5%": lambda image: cropped(image, 0.05),
    "brighter-10%": brightened,
}


def originals() -> dict[str, Image.Image]:
    """Distinct pictures: eight scenes and the signs, in two colour schemes."""
    out = {f"scene-{seed}": scene(seed) for seed in range(8)}
    for i, lines in enumerate(SIGNS):
        out[f"sign-{i}"] = sign(lines)
        out[f"light-sign-{i}"] = sign(lines, background=(245, 240, 225), ink=(20, 20, 20))
    return out
