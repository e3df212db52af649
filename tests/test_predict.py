"""Predictions back to uint16: through the training set's ranges, or a per-field model's own field's range."""

import numpy as np
import pytest
import torch
from torch import nn

from vsearch.data.fields import FieldImages
from vsearch.train.prediction import predict_fields

STAINS = ["nuclei", "cytoplasm"]


class Constant(nn.Module):
    """Predicts ``value`` for every stain pixel (in normalised units)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((len(x), len(STAINS), *x.shape[-2:]), self.value)


def field() -> FieldImages:
    rng = np.random.default_rng(0)
    stains = {s: rng.integers(100 * (i + 1), 4000 * (i + 1), (32, 32), dtype=np.uint16) for i, s in enumerate(STAINS)}
    return FieldImages("f", rng.integers(0, 65535, (2, 32, 32), dtype=np.uint16), stains)


def meta(normalisation: str) -> dict:
    ranges = {"nuclei": [1000.0, 3000.0], "cytoplasm": [0.0, 10000.0]}
    return {"stains": STAINS, "target_ranges": ranges, "config": {"data": {"target_normalisation": normalisation}}}


def test_dataset_normalised_model_maps_back_through_the_training_ranges():
    (pred,) = predict_fields(Constant(0.25), meta("dataset"), [field()])
    assert np.all(pred.stains["nuclei"] == 1500) and np.all(pred.stains["cytoplasm"] == 2500)


def test_per_field_model_maps_back_through_the_fields_own_percentiles():
    real = field()
    (pred,) = predict_fields(Constant(0.25), meta("field"), [real])
    for name in STAINS:
        low, high = np.percentile(real.stains[name], [0.5, 99.9])  # numpy's, not vsearch's percentiles
        assert np.all(pred.stains[name] == np.rint(low + 0.25 * (high - low)))


def test_per_field_model_without_the_real_stain_is_refused():
    bare = FieldImages("f", field().bf, {})
    with pytest.raises(ValueError, match="field 'f' has no real 'nuclei': a model trained with target_norm"):
        list(predict_fields(Constant(0.25), meta("field"), [bare]))
