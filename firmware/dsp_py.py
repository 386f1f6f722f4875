# The plain-Python twins of dsp's viper loops: what CPython (the emulator) runs, and what
# `dsp.use_viper(False)` selects on MicroPython. A module of its own so that a board, which runs
# the viper loops, does not keep a second copy of every loop in RAM.


def hop_levels(buf, start, hops, hop, prev, abs_out, diff_out, peak_out):
    """Per hop of `hop` samples from buf[start]: sum |x|, sum |x[i]-x[i-1]|, max |x|.

    `prev` is the sample before buf[start] (for the first difference). Returns the last sample.
    Bounds: a hop sums at most hop*32768 (abs) and hop*65535 (diff): hop <= 8192 keeps < 2**31.
    """
    i = start
    for j in range(hops):
        a = 0
        d = 0
        p = 0
        for _ in range(hop):
            v = buf[i]
            i += 1
            m = v if v >= 0 else -v
            a += m
            if m > p:
                p = m
            e = v - prev
            d += e if e >= 0 else -e
            prev = v
        abs_out[j] = a
        diff_out[j] = d
        peak_out[j] = p
    return prev


def decimate(buf, start, count, factor, out, pos):
    """out[pos:pos+count] = floor mean of each `factor` samples from buf[start] (a box low-pass:
    its nulls sit on the multiples of the new rate, where the aliases of low tones come from)."""
    i = start
    for k in range(pos, pos + count):
        s = 0
        for _ in range(factor):
            s += buf[i]
            i += 1
        out[k] = s // factor


def goertzel(window, n, coef, bins, out):
    """Goertzel resonators over window[0:n], one per bin; writes (s1, s2) pairs to out.

    coef holds per bin (hi, lo) with 2*cos(w) in Q14 = hi*128 + lo, 0 <= lo < 128, so the
    product needs only |hi| <= 256 times |s|. The resonator state is not the DFT: it reaches
    |x| * sum|sin((k+1)w)| / sin(w), about 653 * max|x| for n = 160 at w = 2*pi*100/4000
    (the drone detector's lowest bin). With |x| <= 8192 (the caller scales by 1/4) that is
    < 2**22.4, and 256 times it stays below 2**31 on the boards' 32-bit viper ints.
    """
    for b in range(bins):
        hi = coef[2 * b]
        lo = coef[2 * b + 1]
        s1 = 0
        s2 = 0
        for i in range(n):
            s0 = window[i] + ((hi * s1) >> 7) + ((lo * s1) >> 14) - s2
            s2 = s1
            s1 = s0
        out[2 * b] = s1
        out[2 * b + 1] = s2


def apply_window(buf, n, win, shift):
    """buf[i] = buf[i] * win[i] >> shift in place (win in Q15: shift 15 keeps the scale)."""
    for i in range(n):
        buf[i] = (buf[i] * win[i]) >> shift


def first_above(buf, start, end, level):
    """Index of the first sample in buf[start:end] with |x| > level, or -1."""
    for i in range(start, end):
        v = buf[i]
        if v > level or -v > level:
            return i
    return -1


def abs_sum(buf, start, n):
    """Sum of |x| over n samples (n <= 65535 keeps it below 2**31)."""
    s = 0
    for i in range(start, start + n):
        v = buf[i]
        s += v if v >= 0 else -v
    return s


def peak(buf, start, n):
    p = 0
    for i in range(start, start + n):
        v = buf[i]
        if v < 0:
            v = -v
        if v > p:
            p = v
    return p


def zero_crossings(buf, start, n):
    """Sign changes between neighbouring samples (0 counts as positive)."""
    z = 0
    prev = buf[start] >= 0
    for i in range(start + 1, start + n):
        cur = buf[i] >= 0
        if cur != prev:
            z += 1
        prev = cur
    return z
