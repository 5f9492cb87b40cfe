"""How a stage runs: the DoFn base classes (all outputs or one reject), isolated child processes for native code, native thread caps, progress counts."""
