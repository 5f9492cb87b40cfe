"""Image-caption pairs: URL lists and folders with sidecar captions into caption samples."""
