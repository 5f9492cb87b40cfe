"""The stages: each a pure core function plus a thin Beam wrapper around it."""
