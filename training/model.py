"""A small model with DeepSeek-VL's structure, sized by config to train on a CPU.

    image --(1024)--> high-resolution conv branch --\\
          --(384)---> low-resolution ViT branch  ----> hybrid MLP adaptor -> image tokens
    text ids -> embeddings, image tokens put at the <image_placeholder> positions
             -> decoder-only LM (RMSNorm, SwiGLU, rotary positions) -> next-token logits

Both branches yield the same grid of tokens (DeepSeek-VL: 24x24 = 576); the adaptor projects
each to half the LM width, concatenates them per token and mixes them with a second layer, as
DeepSeek-VL's ``hybrid_split`` MLP projector does. Each branch normalises its own uint8 input.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from vlcurate.training.images import HIGH_RES_NORM, SEMANTIC_NORM, normalise
from vlcurate.training.tokenizer import IGNORE, ByteTokenizer


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Sizes. The defaults keep DeepSeek-VL's image sizes and token count with tiny widths."""

    low_size: int = 384
    high_size: int = 1024
    patch: int = 16  # low branch patch: low_size / patch tokens a side (384/16 = 24, 576 tokens)
    high_patch: int = 16  # high branch stem stride, before a stride-2 conv and pooling to the grid
    vision_dim: int = 64
    vision_layers: int = 1
    vision_heads: int = 4
    dim: int = 128
    layers: int = 2
    heads: int = 4
    vocab: int = ByteTokenizer().vocab_size
    max_len: int = 1024
    rope_theta: float = 10000.0

    def __post_init__(self):
        """Sizes the layers can be built from: what would otherwise fail deep inside torch."""
        for field in dataclasses.fields(self):
            if not getattr(self, field.name) > 0:
                raise ValueError(f"{field.name} must be positive, not {getattr(self, field.name)}")
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(f"dim {self.dim} must be heads ({self.heads}) x an even head width")
        if self.vision_dim % self.vision_heads:
            raise ValueError(f"vision_dim {self.vision_dim} must be a multiple of vision_heads ({self.vision_heads})")
        if self.low_size % self.patch or self.high_size < 2 * self.high_patch:
            raise ValueError(f"low_size ({self.low_size}) must be a multiple of patch ({self.patch}), and high_size "
                             f"({self.high_size}) at least twice high_patch ({self.high_patch})")
        if self.vocab < ByteTokenizer().vocab_size:
            raise ValueError(f"vocab must hold the tokenizer's {ByteTokenizer().vocab_size} ids")

    @property
    def grid(self) -> int:
        return self.low_size // self.patch

    @property
    def image_tokens(self) -> int:
        return self.grid * self.grid


class LowResViT(nn.Module):
    """The semantic branch (SigLIP's place in DeepSeek-VL): a small ViT at ``low_size``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embed = nn.Conv2d(3, config.vision_dim, config.patch, stride=config.patch)
        self.position = nn.Parameter(torch.randn(1, config.image_tokens, config.vision_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(config.vision_dim, config.vision_heads, 4 * config.vision_dim,
                                           dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.vision_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.vision_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.embed(normalise(pixels, SEMANTIC_NORM)).flatten(2).transpose(1, 2)
        return self.norm(self.blocks(x + self.position))


class HighResConv(nn.Module):
    """The high-resolution branch (SAM-B's place): a strided conv stack at ``high_size``, pooled
    to the low branch's grid so both give the same number of tokens."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.grid = config.grid
        self.stem = nn.Conv2d(3, config.vision_dim, config.high_patch, stride=config.high_patch)
        self.down = nn.Conv2d(config.vision_dim, config.vision_dim, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm(config.vision_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.stem(normalise(pixels, HIGH_RES_NORM)))
        x = F.adaptive_avg_pool2d(F.gelu(self.down(x)), self.grid)
        return self.norm(x.flatten(2).transpose(1, 2))


class HybridAdaptor(nn.Module):
    """Two-layer hybrid MLP: each branch up-projected to half the LM width, concatenated, GELU,
    then a linear layer to the LM width."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.high_up = nn.Linear(config.vision_dim, config.dim // 2)
        self.low_up = nn.Linear(config.vision_dim, config.dim - config.dim // 2)
        self.out = nn.Linear(config.dim, config.dim)

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        return self.out(F.gelu(torch.cat([self.high_up(high), self.low_up(low)], dim=-1)))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary(length: int, head_dim: int, theta: float, device) -> tuple[torch.Tensor, torch.Tensor]:
    freqs = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    angles = torch.outer(torch.arange(length, device=device).float(), freqs)
    return angles.cos(), angles.sin()


def apply_rotary(x, cos, sin):
    """Rotate pairs (first half, second half) of each head's features by position."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class Block(nn.Module):
    """Pre-norm decoder block: causal attention with rotary positions, then a SwiGLU MLP."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.heads = config.heads
        hidden = 64 * math.ceil(8 * config.dim / 3 / 64)
        self.attn_norm, self.mlp_norm = RMSNorm(config.dim), RMSNorm(config.dim)
        self.qkv = nn.Linear(config.dim, 3 * config.dim, bias=False)
        self.proj = nn.Linear(config.dim, config.dim, bias=False)
        self.gate_up = nn.Linear(config.dim, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, config.dim, bias=False)

    def forward(self, x, cos, sin):
        batch, length, dim = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, length, dim))
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class VisionLanguageModel(nn.Module):
    """The whole model; ``forward`` returns the mean next-token loss over labelled positions."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.image_id = ByteTokenizer().image_id
        self.low = LowResViT(config)
        self.high = HighResConv(config)
        self.adaptor = HybridAdaptor(config)
        self.embed = nn.Embedding(config.vocab, config.dim)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = RMSNorm(config.dim)
        self.head = nn.Linear(config.dim, config.vocab, bias=False)
        self.apply(_init)

    def groups(self) -> dict[str, list[nn.Module]]:
        return {"low": [self.low], "high": [self.high], "adaptor": [self.adaptor],
                "lm": [self.embed, self.blocks, self.norm, self.head]}

    def image_features(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        def run(branch, pixels):
            if any(p.requires_grad for p in branch.parameters()):
                return branch(pixels)
            with torch.no_grad():  # a frozen branch keeps no activations for backward
                return branch(pixels)

        return self.adaptor(run(self.high, high), run(self.low, low))

    def forward(self, ids, labels, low=None, high=None):
        x = self.embed(ids)
        if low is not None and low.shape[0]:
            features = self.image_features(low, high).to(x.dtype)
            mask = ids == self.image_id
            if int(mask.sum()) != features.shape[0] * features.shape[1]:
                raise ValueError(f"{int(mask.sum())} image tokens for {features.shape[0]} images")
            x = x.masked_scatter(mask.unsqueeze(-1), features.reshape(-1, x.shape[-1]))
        cos, sin = rotary(ids.shape[1], self.config.dim // self.config.heads, self.config.rope_theta, ids.device)
        for block in self.blocks:
            x = block(x, cos, sin)
        logits = self.head(self.norm(x))
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
                               ignore_index=IGNORE)


def _init(module):
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


STAGE_TRAINED = {1: ("adaptor",), 2: ("adaptor", "lm"), 3: ("adaptor", "lm", "low")}


def set_stage(model: VisionLanguageModel, stage: int) -> list[str]:
    """Freeze everything but what the stage trains (DeepSeek-VL: 1 adaptor; 2 LM + adaptor;
    3 LM, adaptor and the low-resolution branch). Returns the trained groups."""
    trained = STAGE_TRAINED[stage]
    for name, modules in model.groups().items():
        for module in modules:
            for parameter in module.parameters():
                parameter.requires_grad_(name in trained)
    return list(trained)
