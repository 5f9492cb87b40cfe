"""The bundled trainer (`vlcurate train`): a small DeepSeek-VL-shaped model on vlcurate's shards.

tokenizer (bytes and reserved special tokens), chat (DeepSeek-VL's "deepseek" chat template and
the plain pretraining template; chat_cli is `vlcurate chat-format`), images (the 384 and 1024
mean-padded squares, checked from the header before decoding), sources (shard lists from
manifests, lists, globs and URLs; a hardened tar reader that skips and counts bad members),
mixing (the modality warm-up schedule and per-category weights), data (the loader:
modality-grouped, mixed, formatted batches with a position to resume from), model (low- and
high-resolution vision branches, the hybrid adaptor, a decoder-only LM), checkpoint (safetensors
and JSON, nothing pickled) and train (the command: stages 1-3, one process or under torchrun).
See docs/training.md.
"""
