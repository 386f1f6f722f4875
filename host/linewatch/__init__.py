"""LineWatch host software: the commission's aggregator, the emulator and the command line."""
from lwproto.version import RELEASE as __version__

__all__ = ["__version__"]
