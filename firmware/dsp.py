# The detectors' hot loops over int16 audio (array('h') or a memoryview of one).
#
# Each loop exists twice: a @micropython.viper version for the boards and the unix port, and
# a plain-Python version (dsp_py.py, loaded only when used) that CPython (the emulator) runs. Both give the same integers; the
# tests compare them on the unix port. `use_viper(False)` selects the plain loops everywhere,
# for the speed benchmark.
#
# Viper ints are machine words: 64-bit on the unix port, 32-bit on ESP32/RP2. Every sum here is
# bounded below 2**31 (bounds are given per function) so the boards never overflow, and no loop
# relies on wrap-around. Viper's ptr16 reads unsigned: `(v ^ 0x8000) - 0x8000` restores the sign.
# Viper only ever *writes* 32-bit words (ptr32 reads are unsigned on the 64-bit unix port).

import sys

# The viper decorator is read by MicroPython's compiler (ESP32, RP2 and unix have the native
# emitter); it is no attribute of the micropython module, so ask the implementation.
VIPER_AVAILABLE = sys.implementation.name == "micropython"
if VIPER_AVAILABLE:
    import micropython


# ---------------------------------------------------------------- viper loops

if VIPER_AVAILABLE:
    @micropython.viper
    def hop_levels(buf, start: int, hops: int, hop: int, prev: int,
                      abs_out, diff_out, peak_out) -> int:
        x = ptr16(buf)
        ao = ptr32(abs_out)
        do = ptr32(diff_out)
        po = ptr32(peak_out)
        i = start
        for j in range(hops):
            a = 0
            d = 0
            p = 0
            for _ in range(hop):
                v = int(x[i])
                v = (v ^ 0x8000) - 0x8000
                i += 1
                m = v
                if m < 0:
                    m = 0 - m
                a += m
                if m > p:
                    p = m
                e = v - prev
                if e < 0:
                    e = 0 - e
                d += e
                prev = v
            ao[j] = a
            do[j] = d
            po[j] = p
        return prev

    @micropython.viper
    def decimate(buf, start: int, count: int, factor: int, out, pos: int):
        x = ptr16(buf)
        o = ptr16(out)
        i = start
        for k in range(pos, pos + count):
            s = 0
            for _ in range(factor):
                v = int(x[i])
                s += (v ^ 0x8000) - 0x8000
                i += 1
            o[k] = s // factor

    @micropython.viper
    def goertzel(window, n: int, coef, bins: int, out):
        x = ptr16(window)
        c = ptr16(coef)
        o = ptr32(out)
        for b in range(bins):
            hi = int(c[2 * b])
            hi = (hi ^ 0x8000) - 0x8000
            lo = int(c[2 * b + 1])
            s1 = 0
            s2 = 0
            for i in range(n):
                v = int(x[i])
                s0 = ((v ^ 0x8000) - 0x8000) + ((hi * s1) >> 7) + ((lo * s1) >> 14) - s2
                s2 = s1
                s1 = s0
            o[2 * b] = s1
            o[2 * b + 1] = s2

    @micropython.viper
    def apply_window(buf, n: int, win, shift: int):
        x = ptr16(buf)
        w = ptr16(win)
        for i in range(n):
            v = int(x[i])
            v = (v ^ 0x8000) - 0x8000
            x[i] = (v * int(w[i])) >> shift

    @micropython.viper
    def first_above(buf, start: int, end: int, level: int) -> int:
        x = ptr16(buf)
        for i in range(start, end):
            v = int(x[i])
            v = (v ^ 0x8000) - 0x8000
            if v > level or 0 - v > level:
                return i
        return -1

    @micropython.viper
    def abs_sum(buf, start: int, n: int) -> int:
        x = ptr16(buf)
        s = 0
        for i in range(start, start + n):
            v = int(x[i])
            v = (v ^ 0x8000) - 0x8000
            if v < 0:
                v = 0 - v
            s += v
        return s

    @micropython.viper
    def peak(buf, start: int, n: int) -> int:
        x = ptr16(buf)
        p = 0
        for i in range(start, start + n):
            v = int(x[i])
            v = (v ^ 0x8000) - 0x8000
            if v < 0:
                v = 0 - v
            if v > p:
                p = v
        return p

    @micropython.viper
    def zero_crossings(buf, start: int, n: int) -> int:
        x = ptr16(buf)
        z = 0
        prev = int(x[start]) & 0x8000
        for i in range(start + 1, start + n):
            cur = int(x[i]) & 0x8000
            if cur != prev:
                z += 1
            prev = cur
        return z


# ---------------------------------------------------------------- selection
# One name per loop, whichever version runs: on a board every name a module holds is interned
# in RAM for good (firmware/README.md "Memory"), so the versions carry no _v/_py suffixes.

if VIPER_AVAILABLE:
    _viper = (hop_levels, decimate, goertzel, apply_window, first_above, abs_sum, peak,
              zero_crossings)


def use_viper(on=True):
    """Select the viper loops (default where they exist) or the plain ones; returns the choice."""
    global hop_levels, decimate, goertzel, apply_window, first_above, abs_sum, peak
    global zero_crossings
    on = bool(on) and VIPER_AVAILABLE
    if on:
        loops = _viper
    else:
        from . import dsp_py as p
        loops = (p.hop_levels, p.decimate, p.goertzel, p.apply_window, p.first_above, p.abs_sum,
                 p.peak, p.zero_crossings)
    (hop_levels, decimate, goertzel, apply_window, first_above, abs_sum, peak,
     zero_crossings) = loops
    return on


def goertzel_coefficients(freqs_hz, rate_hz):
    """array('h') of (hi, lo) pairs for `goertzel`: 2*cos(2*pi*f/rate) in Q14, split."""
    import math
    from array import array
    coef = array("h", bytearray(4 * len(freqs_hz)))
    for b, f in enumerate(freqs_hz):
        q = int(round(2.0 * math.cos(2.0 * math.pi * f / rate_hz) * 16384))
        coef[2 * b] = q >> 7
        coef[2 * b + 1] = q & 127
    return coef


def hann_q15(n):
    """array('h') Hann window in Q15 (periodic, so a tone between bins loses at most 1.4 dB)."""
    import math
    from array import array
    win = array("h", bytearray(2 * n))
    for i in range(n):
        win[i] = int(32767 * 0.5 * (1.0 - math.cos(2.0 * math.pi * i / n)) + 0.5)
    return win


def goertzel_power(s1, s2, hi, lo):
    """|X(f)|**2 of one bin from the resonator's last two states (float, not in the hot loop)."""
    c = (hi * 128 + lo) / 16384.0
    s1 = float(s1)
    s2 = float(s2)
    return s1 * s1 + s2 * s2 - c * s1 * s2


use_viper(True)
