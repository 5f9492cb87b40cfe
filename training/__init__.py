"""The bundled trainer that streams vlcurate's shards (not built yet)."""
