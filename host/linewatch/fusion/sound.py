"""Speed of sound in air: the one physical constant fusion depends on."""
from __future__ import annotations

import math


def speed_of_sound(temperature_c: float) -> float:
    """Metres per second in dry air at the given temperature (c = 331.3 sqrt(1 + T/273.15))."""
    if not math.isfinite(temperature_c) or temperature_c <= -273.15:
        raise ValueError("air temperature %r C is not physical" % (temperature_c,))
    return 331.3 * math.sqrt(1.0 + temperature_c / 273.15)
