"""The RTL generator: a qdet build's folded graph -> a stitched, self-contained RTL accelerator (BUILD/rtl)."""

from hls.gen.generate import GenConfig, generate_rtl, load_manifest, step_checkpoint
from hls.gen.ops import GenerateError, MVAUParams, view_of

__all__ = ["GenConfig", "GenerateError", "MVAUParams", "generate_rtl", "load_manifest", "step_checkpoint", "view_of"]
