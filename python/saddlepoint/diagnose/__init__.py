"""The training doctor: the course's guidance for when training goes wrong, as functions.

- :func:`guide`: model bias, optimization issue, overfitting, mismatch or healthy, with the
  evidence and the course's remedies (``guide.py``).
- :func:`critical_point`, :func:`hessian`, :func:`hessian_vector_product`,
  :func:`top_eigenvalues`, :func:`trace`, :func:`spectral_density`, :func:`escape_saddle` and the
  :class:`SaddleEscape` callback: is the model at a local minimum or a saddle point, and the way
  out (``curvature.py``).
- :func:`batch_size_study`, :func:`sharpness`, :func:`loss_landscape_1d`,
  :func:`loss_landscape_2d`: small vs large batches, sharp vs flat minima, pictures of the error
  surface (``landscape.py``).

All analyses run in float64 on a copy of the model in eval mode (:class:`Objective`), under a
budget of Hessian-vector products and wall time (:mod:`.budget`), and say whether they converged.
"""

from .budget import MAX_HVPS, TIME_LIMIT
from .curvature import (
    MAX_FULL_HESSIAN,
    RESIDUAL_TOLERANCE,
    CriticalPoint,
    Eigenvalues,
    EscapeResult,
    SaddleEscape,
    SpectralDensity,
    TraceEstimate,
    critical_point,
    escape_saddle,
    gradient_norm,
    hessian,
    hessian_vector_product,
    spectral_density,
    top_eigenvalues,
    trace,
)
from .guide import VERDICTS, FeatureShift, Guidance, ModelReport, feature_shift, guide, wider
from .landscape import (
    BatchSizeStudy,
    Landscape1D,
    Landscape2D,
    Sharpness,
    batch_size_study,
    filter_normalized_direction,
    loss_landscape_1d,
    loss_landscape_2d,
    sharpness,
)
from .objective import Objective, parameters_to_vector, vector_to_parameters
from .report import write_report

__all__ = [
    "MAX_FULL_HESSIAN",
    "MAX_HVPS",
    "RESIDUAL_TOLERANCE",
    "TIME_LIMIT",
    "VERDICTS",
    "BatchSizeStudy",
    "CriticalPoint",
    "Eigenvalues",
    "EscapeResult",
    "FeatureShift",
    "Guidance",
    "Landscape1D",
    "Landscape2D",
    "ModelReport",
    "Objective",
    "SaddleEscape",
    "Sharpness",
    "SpectralDensity",
    "TraceEstimate",
    "batch_size_study",
    "critical_point",
    "escape_saddle",
    "feature_shift",
    "filter_normalized_direction",
    "gradient_norm",
    "guide",
    "hessian",
    "hessian_vector_product",
    "loss_landscape_1d",
    "loss_landscape_2d",
    "parameters_to_vector",
    "sharpness",
    "spectral_density",
    "top_eigenvalues",
    "trace",
    "vector_to_parameters",
    "wider",
    "write_report",
]
