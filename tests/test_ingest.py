"""Ingest of layout CSVs: the real ISL sample, multi-page TIFFs, and refusal of each kind of bad input."""

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from tests.conftest import isl_sample
from vsearch.cli import app
from vsearch.data.dataset import open_dataset
from vsearch.data.layout import LayoutError, ingest
from vsearch.data.manifest import MANIFEST_FILE

HEADER = ["plate", "well", "site", "cell_type", "phenotype", "channel", "path"]


def isl_layout(path: Path) -> Path:
    rows = []
    for file in sorted(isl_sample().glob("*.png")):
        meta = dict(part.split("-", 1) for part in file.stem.split(",") if "-" in part)
        channel = meta["channel"].removesuffix("_CONFOCAL")
        if channel == "PHASE_CONTRAST":
            channel = f"bf:{meta['z_depth']}"
        rows.append(["finkbeiner", meta["well"], 0, "neuron", "condition_b", channel, str(file)])
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([HEADER, *rows])
    return path


def write_layout(path: Path, rows: list[list], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def _png_pixels(path: Path) -> np.ndarray:
    """Decoded by Pillow directly, independently of vsearch's reader."""
    with Image.open(path) as image:
        return np.array(image)


def test_isl_sample_tiles_into_16_fields_equal_to_source_crops(tmp_path):
    layout = isl_layout(tmp_path / "isl.csv")
    result = CliRunner().invoke(
        app,
        ["data", "ingest", str(layout), "--out", str(tmp_path / "ds"), "--tile", "256", "--stains", "DAPI,MAP2,NFH"],
    )
    assert result.exit_code == 0, result.output
    ds = open_dataset(str(tmp_path / "ds"))
    assert len(ds.manifest) == 16
    assert set(ds.manifest["height"]) == set(ds.manifest["width"]) == {256}
    assert ds.info.bf_planes == 13 and ds.info.stains == ["DAPI", "MAP2", "NFH"]
    phase = [_png_pixels(next(isl_sample().glob(f"*z_depth-{z},*"))) for z in range(13)]
    stains = {s: _png_pixels(next(isl_sample().glob(f"*channel-{s}_CONFOCAL*"))) for s in ("DAPI", "MAP2", "NFH")}
    by_id = ds.manifest.set_index("field_id")
    seen = set()
    for field in ds.iter_fields():
        y, x = int(by_id.loc[field.field_id, "origin_y"]), int(by_id.loc[field.field_id, "origin_x"])
        seen.add((y, x))
        crop = np.s_[y : y + 256, x : x + 256]
        assert np.array_equal(field.bf, np.stack([p[crop] for p in phase]))
        for name, image in stains.items():
            assert field.stains[name].dtype == np.uint16
            assert np.array_equal(field.stains[name], image[crop])
    assert seen == {(y, x) for y in range(0, 1024, 256) for x in range(0, 1024, 256)}


def test_multipage_tiff_pages_and_uint8(tmp_path):
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 65536, (4, 32, 48), dtype=np.uint16)
    stains = rng.integers(0, 256, (2, 32, 48), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "bf.tif", stack, photometric="minisblack")
    tifffile.imwrite(tmp_path / "stains.tif", stains, photometric="minisblack")
    header = [*HEADER, "page", "is_control"]
    layout = write_layout(
        tmp_path / "l.csv",
        [
            ["P1", "A01", 0, "lung", "toxic", "bf", "bf.tif", "", "pos"],
            ["P1", "A01", 0, "lung", "toxic", "nuclei", "stains.tif", 1, "pos"],
            ["P1", "A01", 0, "lung", "toxic", "dna", "stains.tif", 0, "pos"],
        ],
        header,
    )
    ingest(str(layout), str(tmp_path / "ds"))
    ds = open_dataset(str(tmp_path / "ds"))
    field = ds.read(ds.manifest.field_id[0])
    assert np.array_equal(field.bf, stack)
    assert np.array_equal(field.stains["nuclei"], stains[1]) and field.stains["nuclei"].dtype == np.uint16
    assert np.array_equal(field.stains["dna"], stains[0])
    assert ds.manifest.is_control[0] == "pos"


@pytest.fixture
def images(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 65535, (32, 32), dtype=np.uint16)).save(tmp_path / "bf.png")
    Image.fromarray(rng.integers(0, 65535, (32, 32), dtype=np.uint16)).save(tmp_path / "nuc.png")
    Image.fromarray(rng.integers(0, 65535, (32, 40), dtype=np.uint16)).save(tmp_path / "wide.png")
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    tifffile.imwrite(tmp_path / "float.tif", rng.random((32, 32), dtype=np.float32))
    return tmp_path


def field(channel: str, path: str, well: str = "A01", cell_type: str = "lung") -> list:
    return ["P1", well, 0, cell_type, "toxic", channel, path]


GOOD = [field("bf", "bf.png"), field("nuclei", "nuc.png")]
BAD_LAYOUTS = {
    "missing file": ([field("bf", "bf.png"), field("nuclei", "gone.png")], r"row 3 \(gone.png\): cannot open"),
    "unknown channel": ([*GOOD, field("phalloidin", "nuc.png")], r"row 4 \(nuc.png\): unknown channel 'phalloidin'"),
    "malformed bf plane": ([field("bf:x", "bf.png"), field("nuclei", "nuc.png")], r"row 2 \(bf.png\): unknown channel"),
    "size mismatch": (
        [field("bf", "bf.png"), field("nuclei", "wide.png")],
        r"row 3 \(wide.png\): size \(32, 40\) differs",
    ),
    "float image": ([field("bf", "bf.png"), field("nuclei", "float.tif")], r"row 3 \(float.tif\): pixels are float32"),
    "rgb image": ([field("bf", "rgb.png"), field("nuclei", "nuc.png")], r"row 2 \(rgb.png\): .*RGB is refused"),
    "duplicate row": (
        [*GOOD, field("nuclei", "bf.png")],
        r"rows 3 \(nuc.png\) and 4 \(bf.png\) both give channel 'nuclei'",
    ),
    "empty condition": (
        [*GOOD, field("bf", "bf.png", "A02", cell_type="")],
        r"row 4 \(bf.png\): column 'cell_type' has an empty condition",
    ),
    "missing stain of a field": (
        [*GOOD, field("bf", "bf.png", "A02")],
        r"field P1/A02/site 0: missing channel 'nuclei' \(rows 4\)",
    ),
}


@pytest.mark.parametrize("case", BAD_LAYOUTS)
def test_bad_layout_is_refused_naming_row_and_file(images, case):
    rows, message = BAD_LAYOUTS[case]
    layout = write_layout(images / "layout.csv", rows)
    with pytest.raises(LayoutError, match=message):
        ingest(str(layout), str(images / "out"), stains=["nuclei"])
    assert not (images / "out" / MANIFEST_FILE).exists()
    assert not list((images / "out").rglob("*.parquet"))


def test_condition_with_no_fields_after_tiling_is_refused(images):
    layout = write_layout(images / "layout.csv", GOOD)
    with pytest.raises(
        LayoutError, match=r"row 2 \(bf.png\): field is 32×32, smaller than --tile 64, so condition lung/toxic"
    ):
        ingest(str(layout), str(images / "out"), tile=64)
    assert not (images / "out" / MANIFEST_FILE).exists()


def test_error_in_a_later_field_leaves_no_manifest_and_keeps_an_existing_dataset(images):
    ingest(str(write_layout(images / "good.csv", GOOD)), str(images / "out"))
    before = open_dataset(str(images / "out")).manifest
    # the second field's file is unreadable; the first field's shard must not be published
    (images / "broken.png").write_bytes(b"not a png")
    rows = [*GOOD, field("bf", "bf.png", "A02"), field("nuclei", "broken.png", "A02")]
    with pytest.raises(LayoutError, match=r"row 5 \(broken.png\): unreadable image"):
        ingest(str(write_layout(images / "bad.csv", rows)), str(images / "out"), overwrite=True, tile=16)
    after = open_dataset(str(images / "out"))
    assert after.manifest.equals(before)
    assert len(list((images / "out" / "shards").iterdir())) == 1


def test_cli_reports_bad_layout_without_traceback(images):
    layout = write_layout(images / "layout.csv", [field("bf", "bf.png")], HEADER[:-1])
    result = CliRunner().invoke(app, ["data", "ingest", str(layout), "--out", str(images / "out")])
    assert result.exit_code == 2
    assert "missing column(s) path" in result.output
