"""The fictional demo borough, Northmere: generated from a seed in the real source formats."""

from .borough import DEMO_DIR, DEMO_SEED, generate_demo, regenerate

__all__ = ["DEMO_DIR", "DEMO_SEED", "generate_demo", "regenerate"]
