"""compare/mel.py: Slaney's mel scale, the filterbank on cases worked out by hand, the framed FFT,
and pure tones landing in the band that holds their frequency."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantzoo.compare import mel as MEL


def test_the_scale_is_linear_below_1_khz_and_logarithmic_above():
    # 3 mels per 200 Hz up to 1 kHz (15 mels), then 27 mels per factor 6.4
    assert MEL.hz_to_mel([0.0, 200.0, 500.0]).tolist() == pytest.approx([0.0, 3.0, 7.5])
    assert float(MEL.hz_to_mel(1000.0 * 6.4 ** 2)) == pytest.approx(15.0 + 54.0)
    hz = np.array([20.0, 999.0, 1000.0, 1001.0, 4321.0, 11025.0])
    assert MEL.mel_to_hz(MEL.hz_to_mel(hz)) == pytest.approx(hz, rel=1e-12)


def test_one_and_two_band_filterbanks_worked_out_by_hand():
    # rate 2000, n_fft 8: FFT bins at 0, 250, 500, 750, 1000 Hz; the mel range 0–15 (0–1000 Hz)
    # one band: corners 0, 500, 1000 Hz; triangle heights 0, .5, 1, .5, 0, times 2 / (1000 − 0)
    assert MEL.mel_filters(2000, 8, 1) == pytest.approx(np.array([[0.0, 0.001, 0.002, 0.001, 0.0]]))
    # two bands: corners at 0, 5, 10, 15 mels = 0, 333⅓, 666⅔, 1000 Hz, heights scaled by 2 / 666⅔
    # band 0 at 250 Hz: 250 / 333⅓ = .75, at 500 Hz: (666⅔ − 500) / 333⅓ = .5; band 1 mirrored
    s = 2 / (2000 / 3)
    assert MEL.mel_filters(2000, 8, 2) == pytest.approx(np.array([[0, .75 * s, .5 * s, 0, 0], [0, 0, .5 * s, .75 * s, 0]]))
    # fmin / fmax: one band over 250–750 Hz (3.75–11.25 mels, linear region) peaks at 500 Hz, 2 / 500
    assert MEL.mel_filters(2000, 8, 1, 250.0, 750.0) == pytest.approx(np.array([[0, 0, 0.004, 0, 0]]))


def test_slaney_filters_have_unit_area_in_hz():
    # every triangle integrates to 1 over Hz where it spans enough FFT bins to be sampled well
    rate, n_fft = 22050, 1024
    areas = MEL.mel_filters(rate, n_fft, 80).sum(axis=1) * rate / n_fft
    assert np.allclose(areas[20:], 1.0, rtol=0.05) and np.allclose(areas[40:], 1.0, rtol=0.01)


@pytest.mark.parametrize("band", [3, 17, 29])
def test_a_pure_tone_lands_in_the_band_that_holds_its_frequency(band):
    rate, n_fft, n_mels = 16000, 512, 32
    corners = MEL.mel_to_hz(np.linspace(0.0, float(MEL.hz_to_mel(rate / 2)), n_mels + 2))
    hz = corners[band + 1]  # the band's peak
    x = np.sin(2 * np.pi * hz * np.arange(rate) / rate)
    energy = (np.abs(MEL.stft(x, n_fft, 128)) ** 2 @ MEL.mel_filters(rate, n_fft, n_mels).T).mean(axis=0)
    assert int(np.argmax(energy)) == band
    assert energy[np.abs(np.arange(n_mels) - band) >= 3].max() < 1e-3 * energy[band]


def test_stft_frames_padding_and_a_known_spectrum():
    n_fft, hop = 16, 4
    # frames start every hop: 1 + (len + 2·pad − n_fft) // hop of them; none when shorter than a frame
    assert MEL.stft(np.zeros(40), n_fft, hop).shape == (7, 9)
    assert MEL.stft(np.zeros(40), n_fft, hop, n_fft // 2, "reflect").shape == (11, 9)
    assert MEL.stft(np.zeros(10), n_fft, hop).shape == (0, 9)
    # a cosine on bin 2: the periodic Hann window spreads it over bins 1–3 as n_fft/4 · (½, 1, ½)
    x = np.cos(2 * np.pi * 2 * np.arange(64) / n_fft)
    mag = np.abs(MEL.stft(x, n_fft, hop))
    assert mag[:, 1:4] == pytest.approx(np.tile([n_fft / 8, n_fft / 4, n_fft / 8], (len(mag), 1)))
    assert np.abs(np.delete(mag, [1, 2, 3], axis=1)).max() < 1e-12
    # zero padding ("constant") versus reflect: the first frame of a ramp differs only in its padded half
    ramp = np.arange(1.0, 33.0)
    zero, refl = (np.fft.irfft(MEL.stft(ramp, n_fft, hop, 8, m)[0], n_fft) for m in ("constant", "reflect"))
    window = MEL.hann(n_fft)
    assert zero[8:] == pytest.approx(window[8:] * ramp[:8])
    assert zero[:8] == pytest.approx(np.zeros(8)) and refl[:8] == pytest.approx(window[:8] * ramp[8:0:-1])


def test_hann_is_periodic():
    w = MEL.hann(8)
    assert w[0] == 0.0 and w[4] == 1.0 and w[1:4] == pytest.approx(w[7:4:-1])
    assert w == pytest.approx([math.sin(math.pi * k / 8) ** 2 for k in range(8)])
