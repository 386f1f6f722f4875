"""Fusion: the commission's reports-to-incidents engine (pure computation, no I/O)."""
from .config import FusionConfig
from .engine import FusionEngine
from .incident import Incident
from .report import EVENT_CLASSES, Report
from .sound import speed_of_sound

__all__ = ["EVENT_CLASSES", "FusionConfig", "FusionEngine", "Incident", "Report", "speed_of_sound"]
