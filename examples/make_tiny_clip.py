"""Write the weights of the tiny CLIP model the demo and the tests use (random, seeded).

    python examples/make_tiny_clip.py --output out/demo/tiny-clip.pt

examples/models/tiny-clip.json is an open_clip model config (a 2-layer ViT on 64x64 images and a
2-layer text tower, 32-dim embeddings): small enough to score on a CPU in milliseconds. Its
weights are random: the scores mean nothing, the machinery around them is real. No package ships
CLIP weights and nothing is downloaded; real runs pass a real checkpoint (`vlcurate models fetch`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

CONFIG = Path(__file__).resolve().parent / "models" / "tiny-clip.json"


def write(output: Path, seed: int = 0) -> Path:
    import open_clip
    import torch

    open_clip.add_model_config(str(CONFIG))
    torch.manual_seed(seed)
    model = open_clip.create_model(CONFIG.stem, pretrained=None)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), output)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    print(f"wrote {write(args.output)}")


if __name__ == "__main__":
    main()
