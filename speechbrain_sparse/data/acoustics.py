"""Signal processing for the synthetic corpus: resampling, channel, reverb, noise.

NumPy only (no torch), so the generator's worker processes start fast, and every
function draws randomness from the ``numpy.random.Generator`` it is given, never from
global state, so an utterance is bit-identical for the same seed.

:func:`degrade` is the whole chain one utterance goes through: resample eSpeak NG's
22.05 kHz output to 16 kHz, a per-speaker first-order channel tilt, mild reverberation
with a synthetic exponentially decaying room impulse response, additive white, pink or
babble-like noise at a random SNR, and a random output level.

Example
-------
>>> rng = np.random.default_rng(0)
>>> tone = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)
>>> resample(tone, 22050, 16000).shape
(16000,)
>>> out = degrade(tone, 22050, rng, tilt=-0.3)
>>> out.dtype, out.shape
(dtype('int16'), (16000,))
"""

import functools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from speechbrain_sparse.errors import UserInputError

SAMPLE_RATE = 16000
SNR_DB_RANGE = (10.0, 30.0)
RT60_RANGE = (0.1, 0.4)
DIRECT_TO_REVERB_DB_RANGE = (4.0, 12.0)
NOISE_TYPES = ("white", "pink", "babble")
NOISE_TYPE_PROBABILITIES = (0.2, 0.4, 0.4)
PEAK_RANGE = (0.3, 0.9)


@functools.lru_cache(maxsize=8)
def _polyphase_table(up, down, half_width):
    """Kaiser-windowed sinc taps for each output phase, shape ``(up, 2*half_width)``."""
    cutoff = 0.94 * min(1.0, up / down)
    offsets = np.arange(-half_width + 1, half_width + 1)
    t = offsets[None, :] - np.arange(up)[:, None] / up  # row p: fractional delay p/up
    ratio = np.clip(t / half_width, -1.0, 1.0)
    window = np.i0(8.0 * np.sqrt(1.0 - ratio**2)) / np.i0(8.0)
    taps = cutoff * np.sinc(cutoff * t) * window
    return (taps / taps.sum(axis=1, keepdims=True)).astype(np.float32)


def resample(signal, orig_sr, new_sr, half_width=16):
    """Resamples ``signal`` by a rational factor with a polyphase windowed-sinc filter.

    Arguments
    ---------
    signal : numpy.ndarray
        1-D samples.
    orig_sr, new_sr : int
        Sample rates in Hz.
    half_width : int
        Filter half-length in input samples.

    Returns
    -------
    numpy.ndarray
        float32 samples, ``ceil(len(signal) * new_sr / orig_sr)`` long.

    Example
    -------
    >>> resample(np.ones(441), 22050, 16000).round(3)[100:103]
    array([1., 1., 1.], dtype=float32)
    """
    if orig_sr == new_sr:
        return np.asarray(signal, dtype=np.float32)
    gcd = math.gcd(orig_sr, new_sr)
    up, down = new_sr // gcd, orig_sr // gcd
    table = _polyphase_table(up, down, half_width)
    length = -(-len(signal) * up // down)
    padded = np.asarray(signal, dtype=np.float32)
    padded = np.pad(padded, (half_width, half_width + 1 + down))
    # windows[i] holds the 2*half_width input samples around input position i.
    windows = sliding_window_view(padded, 2 * half_width)[1:]
    out = np.empty(length, dtype=np.float32)
    # Outputs r, r + up, r + 2*up, ... share one phase and step ``down`` inputs.
    for r in range(min(up, length)):
        count = len(range(r, length, up))
        base = r * down // up
        out[r::up] = windows[base : base + count * down : down] @ table[r * down % up]
    return out


def _fft_size(length):
    """The power of two at or above ``length`` (fast FFTs whatever the length)."""
    return 1 << max(length - 1, 1).bit_length()


def _shape_spectrum(signal, gain):
    """Filters ``signal`` by ``gain(frequencies in cycles/sample)``; unit power out."""
    size = _fft_size(len(signal))
    spectrum = np.fft.rfft(signal, size)
    frequencies = np.fft.rfftfreq(size)
    shaped = np.fft.irfft(spectrum * gain(frequencies), n=size)[: len(signal)]
    return shaped / (np.sqrt(np.mean(shaped**2)) + 1e-12)


def _pink_gain(frequencies):
    """Amplitude gain of pink (1/f power) noise, flat below 20 Hz at 16 kHz."""
    return 1.0 / np.sqrt(np.maximum(frequencies, 20.0 / SAMPLE_RATE))


def _babble_gain(frequencies):
    """Pink noise limited to a speech-like band of about 150 Hz to 4 kHz (at 16 kHz)."""
    hertz = frequencies * SAMPLE_RATE
    band = 1 / (1 + (150 / (hertz + 1)) ** 2) / (1 + (hertz / 4000) ** 2)
    return _pink_gain(frequencies) * band


def babble_noise(length, rng, sample_rate=SAMPLE_RATE, talkers=(4, 8)):
    """Babble-like noise: several streams with syllabic modulation, speech-shaped.

    Arguments
    ---------
    length : int
        Samples.
    rng : numpy.random.Generator
        The utterance's random generator.
    sample_rate : int
        Hz.
    talkers : tuple of int
        Range of the number of overlapping streams.

    Returns
    -------
    numpy.ndarray
        Unit-power noise.
    """
    # The sum of independent Gaussian streams with envelopes e_i is Gaussian noise
    # with envelope sqrt(sum e_i**2): one draw instead of one per talker. Envelopes
    # are computed every 10 ms and interpolated.
    hop = sample_rate // 100
    frame_times = np.arange(length // hop + 2) * hop / sample_rate
    power = np.zeros(len(frame_times))
    for _ in range(int(rng.integers(talkers[0], talkers[1] + 1))):
        rate, phase = rng.uniform(3.0, 6.0), rng.uniform(0, 2 * np.pi)
        gain = rng.uniform(0.5, 1.0)
        power += (gain * np.sin(2 * np.pi * rate * frame_times + phase) ** 2) ** 2
    envelope = np.interp(np.arange(length) / hop, np.arange(len(power)), power) ** 0.5
    total = rng.standard_normal(length) * envelope
    return _shape_spectrum(total, _babble_gain)


def make_noise(kind, length, rng, sample_rate=SAMPLE_RATE):
    """Returns unit-power noise of ``kind`` (``white``, ``pink`` or ``babble``).

    Example
    -------
    >>> noise = make_noise("pink", 1000, np.random.default_rng(0))
    >>> round(float(np.mean(noise**2)), 3)
    1.0
    """
    if kind == "white":
        return rng.standard_normal(length)
    if kind == "pink":
        return _shape_spectrum(rng.standard_normal(length), _pink_gain)
    if kind == "babble":
        return babble_noise(length, rng, sample_rate)
    raise UserInputError(
        f"unknown noise type {kind!r}; valid: {', '.join(NOISE_TYPES)}"
    )


def exponential_rir(rng, sample_rate=SAMPLE_RATE):
    """A short synthetic room impulse response: a direct path and a decaying tail.

    Arguments
    ---------
    rng : numpy.random.Generator
        The utterance's random generator.
    sample_rate : int
        Hz.

    Returns
    -------
    numpy.ndarray
        The impulse response; its first tap (the direct path) is 1.

    Example
    -------
    >>> rir = exponential_rir(np.random.default_rng(0))
    >>> float(rir[0]), len(rir) <= 0.4 * 16000
    (1.0, True)
    """
    rt60 = rng.uniform(*RT60_RANGE)
    length = int(rt60 * sample_rate)
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    tail[: int(0.002 * sample_rate)] = 0.0  # reflections start after 2 ms
    drr_db = rng.uniform(*DIRECT_TO_REVERB_DB_RANGE)
    tail *= 10 ** (-drr_db / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    tail[0] = 1.0
    return tail


def reverberate(signal, rir):
    """Convolves ``signal`` with ``rir`` (FFT), keeping the signal's length."""
    fft_size = _fft_size(len(signal) + len(rir) - 1)
    wet = np.fft.irfft(np.fft.rfft(signal, fft_size) * np.fft.rfft(rir, fft_size))
    return wet[: len(signal)]


def degrade(clean, orig_sr, rng, tilt=0.0):
    """Turns eSpeak NG's clean output into a noisy, reverberant 16 kHz int16 utterance.

    Arguments
    ---------
    clean : numpy.ndarray
        The synthesised samples at ``orig_sr`` (any numeric dtype).
    orig_sr : int
        Their sample rate.
    rng : numpy.random.Generator
        The utterance's random generator (the only randomness used).
    tilt : float
        The speaker's channel filter coefficient, ``y[n] = x[n] + tilt * x[n-1]``.

    Returns
    -------
    numpy.ndarray
        int16 samples at :data:`SAMPLE_RATE`.
    """
    speech = np.asarray(clean, dtype=np.float64) / 32768.0
    speech = resample(speech, orig_sr, SAMPLE_RATE).astype(np.float64)
    speech[1:] += tilt * speech[:-1]
    speech = reverberate(speech, exponential_rir(rng))
    kind = NOISE_TYPES[rng.choice(len(NOISE_TYPES), p=NOISE_TYPE_PROBABILITIES)]
    noise = make_noise(kind, len(speech), rng)
    snr_db = rng.uniform(*SNR_DB_RANGE)
    speech_power = np.mean(speech**2) + 1e-12
    mixture = speech + noise * np.sqrt(speech_power / 10 ** (snr_db / 10))
    peak = rng.uniform(*PEAK_RANGE)
    mixture *= peak / (np.max(np.abs(mixture)) + 1e-12)
    return np.round(mixture * 32767).astype(np.int16)
