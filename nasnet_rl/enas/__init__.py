"""ENAS shared-weight search: supernet, its trainer, and the alternating search loop."""
