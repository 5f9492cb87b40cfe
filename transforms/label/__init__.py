"""The labelling stage: language id, the taxonomy label of each sample, and the review queue."""
