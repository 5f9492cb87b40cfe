"""The DeepSeek-VL use-case taxonomy as data, and its tools (not built yet)."""
