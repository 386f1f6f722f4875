"""The detectors' DSP loops: plain Python against numpy, viper against plain on the unix port."""
from array import array

import numpy as np
import pytest

from lwnode import dsp, dsp_py


def _samples(seed=1, n=1024):
    rng = np.random.default_rng(seed)
    x = rng.integers(-32768, 32768, n).astype(np.int16)
    x[:4] = (-32768, 32767, 0, -1)          # the extremes must not overflow
    return x


def test_hop_levels_match_numpy():
    x = _samples()
    hop, hops = 16, 64
    a, d, p = (array("i", [0] * hops) for _ in range(3))
    last = dsp_py.hop_levels(array("h", x.tobytes()), 0, hops, hop, 123, a, d, p)
    xi = x.astype(np.int64)
    diffs = np.abs(np.diff(np.concatenate(([123], xi))))
    assert last == x[-1]
    assert list(a) == list(np.abs(xi).reshape(hops, hop).sum(1))
    assert list(d) == list(diffs.reshape(hops, hop).sum(1))
    assert list(p) == list(np.abs(xi).reshape(hops, hop).max(1))


def test_small_loops_match_numpy():
    x = _samples(2)
    buf = array("h", x.tobytes())
    xi = x.astype(np.int64)
    assert dsp_py.abs_sum(buf, 10, 500) == np.abs(xi[10:510]).sum()
    assert dsp_py.peak(buf, 10, 500) == np.abs(xi[10:510]).max()
    signs = xi[10:510] >= 0
    assert dsp_py.zero_crossings(buf, 10, 500) == np.count_nonzero(signs[1:] != signs[:-1])
    level = 30000
    above = np.nonzero(np.abs(xi[5:900]) > level)[0]
    assert dsp_py.first_above(buf, 5, 900, level) == (5 + above[0] if len(above) else -1)
    assert dsp_py.first_above(buf, 5, 900, 40000) == -1
    out = array("h", [0] * 256)
    dsp_py.decimate(buf, 0, 256, 4, out, 0)
    assert list(out) == list(xi.reshape(256, 4).sum(1) // 4)


@pytest.mark.parametrize("freq", [100.0, 212.5, 975.0, 1999.0])
def test_goertzel_power_matches_dft(freq):
    rate, n = 4000, 160
    rng = np.random.default_rng(3)
    t = np.arange(n) / rate
    x = (12000 * np.sin(2 * np.pi * freq * t + 0.3) + rng.normal(0, 2000, n)).astype(np.int16)
    coef = dsp.goertzel_coefficients([freq], rate)
    state = array("i", [0, 0])
    dsp_py.goertzel(array("h", x.tobytes()), n, coef, 1, state)
    got = dsp.goertzel_power(state[0], state[1], coef[0], coef[1])
    want = abs(np.sum(x * np.exp(-2j * np.pi * freq * t))) ** 2
    assert got == pytest.approx(want, rel=0.02)


@pytest.mark.parametrize("square", [False, True])
def test_goertzel_worst_case_stays_in_32_bits(square):
    # the boards' viper ints are 32-bit: the drone detector's lowest bin (100 Hz at 4 kHz, 160
    # samples) with its largest input (8192 after the window's 1/4), as a tone and as the
    # square wave that drives the resonator hardest
    n, rate = 160, 4000
    wave = np.sin(2 * np.pi * 100 * (np.arange(n) + 1) / rate)
    x = 8192 * (np.sign(wave) if square else wave)
    coef = dsp.goertzel_coefficients([100.0], rate)
    hi, lo = coef[0], coef[1]
    s1 = s2 = 0
    for v in x.astype(int):
        assert abs(hi * s1) < 2 ** 31 and lo * abs(s1) < 2 ** 31
        s1, s2 = int(v) + ((hi * s1) >> 7) + ((lo * s1) >> 14) - s2, s1
    assert abs(s1) > 2 ** 20       # the bound is nearly reached: it is no idle check


def test_use_viper_is_off_under_cpython():
    assert dsp.use_viper(True) is False
    assert dsp.hop_levels is dsp_py.hop_levels


VIPER_VS_PLAIN = r"""
from array import array
from lwnode import dsp
seed = 12345
def rnd():
    global seed
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return (seed >> 8) % 65536 - 32768
x = array('h', [rnd() for _ in range(1024)])
x[0] = -32768; x[1] = 32767; x[2] = 0
def both(name, *args):
    dsp.use_viper(False); a = getattr(dsp, name)(*args)
    dsp.use_viper(True); b = getattr(dsp, name)(*args)
    return a, b
bad = []
for name, args in (("abs_sum", (x, 3, 900)), ("peak", (x, 3, 900)),
                   ("zero_crossings", (x, 3, 900)), ("first_above", (x, 3, 900, 32000)),
                   ("first_above", (x, 3, 900, 40000))):
    a, b = both(name, *args)
    if a != b:
        bad.append((name, a, b))
outs = []
for on in (False, True):
    dsp.use_viper(on)
    a = array('i', [0] * 64); d = array('i', [0] * 64); p = array('i', [0] * 64)
    last = dsp.hop_levels(x, 0, 64, 16, -5, a, d, p)
    dec = array('h', [0] * 256); dsp.decimate(x, 0, 200, 4, dec, 20)
    win = array('h', dec); dsp.apply_window(win, 160, dsp.hann_q15(160), 17)
    coef = dsp.goertzel_coefficients([100, 225, 1200, 1975], 4000)
    st = array('i', [0] * 8); dsp.goertzel(dec, 160, coef, 4, st)
    outs.append((last, list(a), list(d), list(p), list(dec), list(win), list(st)))
if outs[0] != outs[1]:
    bad.append("block loops differ")
print("ok" if not bad else bad)
"""


def test_viper_matches_plain_on_unix_port(micropython):
    proc = micropython.run_code(VIPER_VS_PLAIN, timeout=60)
    assert proc.stdout.strip() == "ok", proc.stdout + proc.stderr


def test_dronesetup_repeats_the_drone_constants_it_shares():
    # const() values are not importable on a board, so dronesetup has its own copies
    from lwnode import drone, dronesetup
    for name in ("_GRID_HZ", "_HARMONICS", "_F0_MIN_HZ"):
        assert getattr(dronesetup, name) == getattr(drone, name), name
