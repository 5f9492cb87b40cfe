"""The commands that are not pipelines: inspect a dataset, write its report, fetch model weights."""
