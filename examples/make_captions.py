"""Regenerate the image-caption demo folder examples/captions/ (for `vlcurate captions`).

    python examples/make_captions.py [--outdir examples/captions]

A few small drawn scenes, each with its caption in a .txt beside it (sunset.jpg, sunset.txt),
the folder form of `vlcurate captions --input`; one image has no caption on purpose, so the demo
shows a caption_empty reject row. Deterministic: drawn shapes only, saved without metadata.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw


def sunset(draw: ImageDraw.ImageDraw) -> None:
    for y in range(120):
        draw.line([(0, y), (160, y)], fill=(250, 120 + y // 2, 60 + y // 3))
    draw.ellipse((55, 60, 105, 110), fill=(255, 220, 90))
    draw.rectangle((0, 95, 160, 120), fill=(30, 60, 110))


def red_boat(draw: ImageDraw.ImageDraw) -> None:
    draw.rectangle((0, 0, 160, 70), fill=(150, 200, 240))
    draw.rectangle((0, 70, 160, 120), fill=(40, 90, 160))
    draw.polygon([(40, 75), (120, 75), (105, 92), (55, 92)], fill=(200, 30, 30))
    draw.polygon([(80, 20), (80, 72), (112, 72)], fill=(245, 245, 245))


def green_tree(draw: ImageDraw.ImageDraw) -> None:
    draw.rectangle((0, 0, 160, 120), fill=(220, 235, 250))
    draw.rectangle((0, 100, 160, 120), fill=(90, 160, 70))
    draw.rectangle((74, 65, 86, 102), fill=(110, 70, 40))
    draw.ellipse((45, 15, 115, 80), fill=(40, 140, 50))


def chessboard(draw: ImageDraw.ImageDraw) -> None:
    for row in range(6):
        for col in range(8):
            colour = (235, 225, 200) if (row + col) % 2 else (90, 60, 40)
            draw.rectangle((col * 20, row * 20, col * 20 + 19, row * 20 + 19), fill=colour)


SCENES = {
    "sunset": (sunset, "A yellow sun setting over a dark blue sea under an orange sky."),
    "red-boat": (red_boat, "A small red sailing boat with a white sail on calm blue water."),
    "green-tree": (green_tree, "A lone green tree with a brown trunk standing on a grassy field."),
    "chessboard": (chessboard, None),  # no sidecar caption: a caption_empty reject row
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", default=str(Path(__file__).parent / "captions"))
    outdir = Path(parser.parse_args().outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for name, (paint, caption) in SCENES.items():
        image = Image.new("RGB", (160, 120))
        paint(ImageDraw.Draw(image))
        image.save(outdir / f"{name}.jpg", format="JPEG", quality=90, optimize=False, progressive=False)
        if caption:
            (outdir / f"{name}.txt").write_text(caption + "\n", encoding="utf-8")
        print(outdir / f"{name}.jpg")


if __name__ == "__main__":
    main()
