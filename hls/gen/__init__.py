"""The RTL generator: a qdet build's folded graph -> a stitched, self-contained RTL accelerator."""

from hls.gen.generate import BuildView, GenConfig, generate_rtl, load_manifest
from hls.gen.ops import GenerateError, MVAUParams, view_of

__all__ = ["BuildView", "GenConfig", "GenerateError", "MVAUParams", "generate_rtl", "load_manifest", "view_of"]
