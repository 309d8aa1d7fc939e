"""Data layer: the synthetic source, lake I/O and the data contract."""
