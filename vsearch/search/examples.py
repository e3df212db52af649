"""Example predictions a trial saves when it is scored: one field of each held-out condition, on a display scale,
in ``RESULTS/examples/trial_<id>/<cell_type>__<phenotype>.npz``, so the report draws them without a model."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from vsearch.data import storage
from vsearch.data.fields import FieldImages
from vsearch.data.normalise import normalise_inputs
from vsearch.evaluate.pixel import normalise_pair

EXAMPLES_FOLDER = "examples"
# the largest side saved: a centre crop at full resolution (the report shows real pixels, not a thumbnail of a
# 2048-px field), which keeps a condition's file near 100 kB
EXAMPLE_PX = 256
GREY_LEVELS = 255  # images are saved as uint8 on their [0, 1] display scale


@dataclass
class Example:
    """One field, every image on a display scale of [0, 1]: the bright-field as the model sees it, stains by the
    real image's 0.5–99.5th percentiles (as the pixel level scores them), so a prediction that is too bright or
    too dark looks it."""

    field_id: str
    condition: str
    bright_field: np.ndarray  # the middle plane
    real: dict[str, np.ndarray]
    predicted: dict[str, np.ndarray]

    def error(self, stain: str) -> np.ndarray:
        return np.abs(self.predicted[stain] - self.real[stain])


def display_pair(real: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real, predicted = normalise_pair(real, predicted)
    return np.clip(real, 0, 1), np.clip(predicted, 0, 1)


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size``×``size`` window of ``[..., H, W]`` (the whole image along a side shorter than it)."""
    h, w = image.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[..., top : top + size, left : left + size]


def make_example(truth: FieldImages, prediction: FieldImages, condition: str, size: int = EXAMPLE_PX) -> Example:
    """The display images of one predicted field, scaled on the whole field and then cropped to ``size``."""
    middle = len(truth.bf) // 2
    bright_field = np.clip(normalise_inputs(truth.bf[middle : middle + 1])[0], 0, 1)  # as the model sees it
    pairs = {s: display_pair(truth.stains[s], prediction.stains[s]) for s in prediction.stains}
    return Example(
        truth.field_id,
        condition,
        centre_crop(bright_field, size),
        {s: centre_crop(real, size) for s, (real, _) in pairs.items()},
        {s: centre_crop(predicted, size) for s, (_, predicted) in pairs.items()},
    )


def trial_examples_folder(results: str, trial_id: str) -> str:
    return storage.join(results, EXAMPLES_FOLDER, f"trial_{trial_id}")


def _to_bytes(example: Example) -> bytes:
    def grey(image: np.ndarray) -> np.ndarray:
        return np.rint(np.clip(image, 0, 1) * GREY_LEVELS).astype(np.uint8)

    arrays = {"field_id": np.array(example.field_id), "condition": np.array(example.condition)}
    arrays["bright_field"] = grey(example.bright_field)
    arrays |= {f"real/{s}": grey(image) for s, image in example.real.items()}
    arrays |= {f"predicted/{s}": grey(image) for s, image in example.predicted.items()}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _from_npz(arrays) -> Example:
    def unit(key: str) -> np.ndarray:
        return arrays[key].astype(np.float32) / GREY_LEVELS

    stains = [key.removeprefix("real/") for key in arrays.files if key.startswith("real/")]
    return Example(
        str(arrays["field_id"]),
        str(arrays["condition"]),
        unit("bright_field"),
        {s: unit(f"real/{s}") for s in stains},
        {s: unit(f"predicted/{s}") for s in stains},
    )


def write_examples(results: str, trial_id: str, examples: list[Example]) -> list[str]:
    """One file per example (condition), each published whole; returns where they went."""
    folder = trial_examples_folder(results, trial_id)
    return [
        storage.publish(storage.join(folder, f"{e.condition.replace('/', '__')}.npz"), _to_bytes(e)) for e in examples
    ]


def read_examples(results: str, trial_id: str) -> list[Example]:
    """The trial's saved examples, by condition; ``FileNotFoundError`` naming the folder when it saved none."""
    folder = trial_examples_folder(results, trial_id)
    fs, path = storage.filesystem(folder)
    files = sorted(fs.glob(f"{path}/*.npz")) if fs.exists(path) else []
    if not files:
        raise FileNotFoundError(f"{folder} holds no example predictions (was trial {trial_id} scored?)")
    examples = []
    for file in files:
        with fs.open(file, "rb") as f, np.load(f) as arrays:
            examples.append(_from_npz(arrays))
    return examples
