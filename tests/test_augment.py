"""Augmentation: what each transform does, and that it reaches training batches only."""

import numpy as np
import pytest

import saddlepoint as sp
from saddlepoint.data import Compose, GaussianNoise, RandomCrop, RandomHorizontalFlip


def images(n=8):
    return np.arange(n * 2 * 4 * 5, dtype=np.float32).reshape(n, 2, 4, 5)


def test_flip_mirrors_the_chosen_images_only():
    X = images()
    out = RandomHorizontalFlip(0.5)(X, np.random.default_rng(0))
    flipped = [np.array_equal(o, x[:, :, ::-1]) for o, x in zip(out, X)]
    kept = [np.array_equal(o, x) for o, x in zip(out, X)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)
    assert np.array_equal(X, images())  # the input is untouched


def test_crop_shifts_each_image_within_the_padding():
    X = images(50)
    out = RandomCrop(padding=1)(X, np.random.default_rng(0))
    assert out.shape == X.shape
    for o, x in zip(out, X):
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
        windows = [padded[:, i : i + 4, j : j + 5] for i in range(3) for j in range(3)]
        assert any(np.array_equal(o, w) for w in windows)
    assert not np.array_equal(out, X)
    assert np.array_equal(RandomCrop(padding=0)(X, np.random.default_rng(0)), X)


def test_noise_has_the_requested_spread():
    X = np.zeros((2000, 10), np.float32)
    out = GaussianNoise(0.5)(X, np.random.default_rng(0))
    assert out.dtype == np.float32 and abs(out.std() - 0.5) < 0.01


def test_augmentation_reaches_training_batches_only():
    seen = []

    def record(X, rng):
        seen.append(len(X))
        return GaussianNoise(0.01)(X, rng)

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((100, 4)), rng.integers(0, 2, 100)
    model = sp.mlp([4, 2], rng=0)
    trainer = sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        sp.SGD(model.parameters(), lr=0.1),
        batch_size=25,
        augment=Compose([record]),
        verbose=0,
    )
    trainer.fit(X, y, epochs=2, validation_data=(X, y))
    trainer.evaluate(X, y)
    trainer.predict(X)
    assert seen == [25] * 8


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: RandomHorizontalFlip(2), r"p must be in \[0, 1\], got 2"),
        (lambda: RandomCrop(-1), "padding must be an integer >= 0, got -1"),
        (lambda: GaussianNoise(-0.1), "std must be a finite number >= 0, got -0.1"),
    ],
)
def test_arguments_are_validated(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_image_transforms_reject_flat_batches():
    with pytest.raises(ValueError, match=r"needs image batches of shape \(N, C, H, W\), got shape \(3, 4\)"):
        RandomCrop(2)(np.zeros((3, 4)), np.random.default_rng(0))
