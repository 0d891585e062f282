"""Data augmentation for training batches: pass one (or a :class:`Compose` of several) as
``Trainer(augment=...)``. Each is called as ``augment(X_batch, rng)`` on training batches only,
never on validation or test data, and returns a new array (the batch buffer is not changed).

Image batches are ``(N, C, H, W)``. These are vectorized NumPy: on the course's data sets they
take a small fraction of a training step, so they have no Rust kernels.
"""

from __future__ import annotations

import numpy as np

from ..validation import Integer, Real, check_params


def _check_images(X: np.ndarray, name: str) -> None:
    if X.ndim != 4:
        raise ValueError(f"{name} needs image batches of shape (N, C, H, W), got shape {X.shape}")


class RandomHorizontalFlip:
    """Mirrors each image left-right with probability ``p``.

    Examples
    --------
    >>> flip = sp.data.RandomHorizontalFlip(p=1.0)
    >>> flip(np.arange(4.0).reshape(1, 1, 1, 4), np.random.default_rng(0))
    array([[[[3., 2., 1., 0.]]]])
    """

    constraints = {"p": Real(0, 1)}

    def __init__(self, p: float = 0.5):
        self.p = check_params({"p": p}, self.constraints)["p"]

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_images(X, "RandomHorizontalFlip")
        flip = rng.random(len(X)) < self.p
        out = X.copy()
        out[flip] = X[flip, :, :, ::-1]
        return out


class RandomCrop:
    """Pads each image by ``padding`` pixels of ``fill`` on every side and crops a random window
    of the original size (a random shift of up to ``padding`` pixels).

    Examples
    --------
    >>> crop = sp.data.RandomCrop(padding=1)
    >>> crop(np.ones((2, 1, 4, 4)), np.random.default_rng(0)).shape
    (2, 1, 4, 4)
    """

    constraints = {"padding": Integer(0), "fill": Real()}

    def __init__(self, padding: int = 4, fill: float = 0.0):
        checked = check_params({"padding": padding, "fill": fill}, self.constraints)
        self.padding, self.fill = checked["padding"], checked["fill"]

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_images(X, "RandomCrop")
        n, _, h, w = X.shape
        p = self.padding
        padded = np.pad(X, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.fill)
        top = rng.integers(0, 2 * p + 1, n)
        left = rng.integers(0, 2 * p + 1, n)
        rows = top[:, None] + np.arange(h)  # (N, H)
        cols = left[:, None] + np.arange(w)  # (N, W)
        batch = np.arange(n)[:, None, None, None]
        channel = np.arange(X.shape[1])[None, :, None, None]
        return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


class GaussianNoise:
    """Adds N(0, ``std``²) noise to every input value (for tabular data).

    Examples
    --------
    >>> noisy = sp.data.GaussianNoise(std=0.1)(np.zeros((2, 3)), np.random.default_rng(0))
    >>> noisy.shape, bool(np.all(np.abs(noisy) < 1))
    ((2, 3), True)
    """

    constraints = {"std": Real(0)}

    def __init__(self, std: float = 0.1):
        self.std = check_params({"std": std}, self.constraints)["std"]

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return X + rng.normal(0.0, self.std, X.shape).astype(X.dtype)


class Compose:
    """Applies several augmentations in order.

    Examples
    --------
    >>> augment = sp.data.Compose([sp.data.RandomCrop(padding=2), sp.data.RandomHorizontalFlip()])
    >>> augment(np.zeros((8, 1, 8, 8)), np.random.default_rng(0)).shape
    (8, 1, 8, 8)
    """

    def __init__(self, augmentations):
        self.augmentations = list(augmentations)

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for augment in self.augmentations:
            X = augment(X, rng)
        return X


class ImageRows:
    """Applies an image augmentation to a batch of flat rows ``(N, C·H·W)``: each row seen as
    a ``(C, H, W)`` image (NumPy's row-major order, as ``nn.Unflatten`` reads it), augmented,
    and flattened back. For models that take images as table rows (``saddlepoint train
    --model cnn``)."""

    def __init__(self, augment, image_shape):
        if not callable(augment):
            raise TypeError(
                f"augment must be a callable (X_batch, rng) -> X_batch, got {type(augment).__name__}"
            )
        shape = tuple(int(n) for n in image_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"image_shape must be three positive sizes (C, H, W), got {tuple(image_shape)}")
        self.augment, self.image_shape = augment, shape

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if X.ndim != 2 or X.shape[1] != int(np.prod(self.image_shape)):
            raise ValueError(
                f"ImageRows needs rows of {int(np.prod(self.image_shape))} = "
                f"{'·'.join(map(str, self.image_shape))} values, got shape {X.shape}"
            )
        images = self.augment(X.reshape((len(X),) + self.image_shape), rng)
        return np.ascontiguousarray(images.reshape(len(X), -1))
