"""The quality stages after the sources: CLIP scoring and filtering (clip, clip_config), deduplication (dedup), and Quality, which chains them."""
