import numpy as np
import pytest
import soundfile as sf
import torch

from audiosds.audio import AudioError, fit_length, load_audio, match_channels, resample, save_wav


def test_save_then_load_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    audio = (0.5 * rng.standard_normal((2, 1234))).astype(np.float32)
    path = tmp_path / "x.wav"
    save_wav(path, audio, 22050)
    loaded, sr = load_audio(path)
    assert sr == 22050
    np.testing.assert_array_equal(loaded, audio)
    # atomic write leaves no temporary files behind
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b"this is not audio at all"), "not a readable audio file"),
        (lambda p: sf.write(str(p), np.zeros((0, 1), np.float32), 16000), "zero-length"),
        (lambda p: sf.write(str(p), np.array([[0.1], [np.nan]], np.float32), 16000, subtype="FLOAT"), "NaN"),
    ],
)
def test_load_audio_rejects_bad_files_with_a_clear_message(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message):
        load_audio(path)


@pytest.mark.parametrize("fraction", [0.01, 0.3, 0.99])
@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_16")])
def test_truncated_files_are_rejected(tmp_path, fmt, subtype, fraction):
    path = tmp_path / f"t.{fmt.lower()}"
    audio = 0.1 * np.random.default_rng(1).standard_normal((4000, 1)).astype(np.float32)
    sf.write(str(path), audio, 16000, format=fmt, subtype=subtype)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(AudioError, match="truncated|not a readable"):
        load_audio(path)


def test_match_channels_duplicates_mono_and_keeps_gradients():
    x = torch.randn(3, 1, 100, requires_grad=True)
    y = match_channels(x, 2)
    assert y.shape == (3, 2, 100)
    torch.testing.assert_close(y[:, 0], y[:, 1])
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 2.0))
    with pytest.raises(ValueError, match="expected"):
        match_channels(torch.randn(3, 100), 2)


def test_fit_length_crops_and_pads():
    x = torch.arange(10.0).view(1, 1, 10)
    assert fit_length(x, 4).tolist() == [[[0.0, 1.0, 2.0, 3.0]]]
    padded = fit_length(x, 12)
    assert padded.shape[-1] == 12 and padded[..., 10:].abs().sum() == 0


def test_resample_keeps_a_sine_at_its_frequency():
    sr_in, sr_out, f = 22050, 16000, 440.0
    t = np.arange(sr_in) / sr_in
    x = np.sin(2 * np.pi * f * t).astype(np.float32)[None]
    y = resample(x, sr_in, sr_out)
    assert y.shape == (1, sr_out)
    spectrum = np.abs(np.fft.rfft(y[0] * np.hanning(y.shape[1])))
    assert abs(np.argmax(spectrum) * sr_out / y.shape[1] - f) <= 1.0
