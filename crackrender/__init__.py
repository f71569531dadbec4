"""crackrender: fine-grained segmentation and measurement of cracks in high-resolution images."""

from crackrender.errors import CrackRenderError, InputError

__version__ = "0.1.0"
__all__ = ["CrackRenderError", "InputError", "__version__"]
