"""Multi-dimensional TIFFs: channels picked by axis, OME-TIFF z-stacks, the leak guard, and refusals that name the
file, its shape and the column that would resolve them."""

from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.test_ingest import HEADER, write_layout
from vsearch.data.dataset import open_dataset
from vsearch.data.layout import LayoutError, ingest
from vsearch.data.leak import leaked_planes
from vsearch.data.manifest import MANIFEST_FILE

LAYOUT = [*HEADER, "page", "c", "z", "axes"]
CHANNELS = ["bf", "nuclei", "dead_nuclei", "cytoplasm"]  # bright-field + Hoechst + PI + CFSE


def independent_planes(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uncorrelated uint16 planes (|r| between two 32×48 planes of noise is about 0.03)."""
    return rng.integers(0, 65536, shape, dtype=np.uint16)


@pytest.fixture
def cyx_tiff(tmp_path) -> tuple[Path, np.ndarray]:
    """A single page holding a (4, 32, 48) array, as the public screen's tiles are stored (planar samples)."""
    array = independent_planes(np.random.default_rng(0), (4, 32, 48))
    path = tmp_path / "tile.tif"
    tifffile.imwrite(path, array, planarconfig="separate", photometric="minisblack")
    return path, array


def row(channel: str, path: str, page="", c="", z="", axes="", well="A01") -> list:
    return ["P1", well, 0, "hek", "toxic", channel, path, page, c, z, axes]


def test_cyx_single_page_channels_by_stated_axes(tmp_path, cyx_tiff):
    _, array = cyx_tiff
    rows = [row(channel, "tile.tif", c=index, axes="CYX") for index, channel in enumerate(CHANNELS)]
    info = ingest(str(write_layout(tmp_path / "l.csv", rows, LAYOUT)), str(tmp_path / "ds"))
    field = open_dataset(str(tmp_path / "ds")).iter_fields().__next__()
    assert info.bf_planes == 1 and info.stains == CHANNELS[1:]
    assert np.array_equal(field.bf, array[:1])
    for index, channel in enumerate(CHANNELS[1:], start=1):
        assert np.array_equal(field.stains[channel], array[index])


def test_bright_field_row_with_a_page_that_holds_channels_is_refused(tmp_path, cyx_tiff):
    """The layout that leaked: page 0 is the whole (4, Y, X) array."""
    rows = [row("bf", "tile.tif", page=0), *(row(ch, "tile.tif", page=0) for ch in CHANNELS[1:])]
    with pytest.raises(
        LayoutError,
        match=r"row 2 \(tile.tif\): image holds 4 samples per pixel \(axes SYX, shape "
        r"\(4, 32, 48\)\), more than one plane; .* column axes \(e.g. CYX\) .* column c",
    ):
        ingest(str(write_layout(tmp_path / "l.csv", rows, LAYOUT)), str(tmp_path / "ds"))
    assert not (tmp_path / "ds" / MANIFEST_FILE).exists()


@pytest.mark.parametrize(
    ("bf_row", "plane", "stain"),
    [
        (row("bf", "tile.tif", axes="ZYX"), 1, "nuclei"),  # every channel read as a z-plane
        (row("bf", "tile.tif", c=2, axes="CYX"), 0, "dead_nuclei"),  # the wrong channel
    ],
)
def test_leaking_layout_is_refused_naming_the_field_and_plane(tmp_path, cyx_tiff, bf_row, plane, stain):
    rows = [bf_row, *(row(ch, "tile.tif", c=i, axes="CYX") for i, ch in enumerate(CHANNELS) if i)]
    message = rf"field P1/A01/site 0: bright-field plane {plane} \(row 2 \(tile.tif\)\) equals stain '{stain}'"
    with pytest.raises(LayoutError, match=message):
        ingest(str(write_layout(tmp_path / "l.csv", rows, LAYOUT)), str(tmp_path / "ds"))
    assert not (tmp_path / "ds").exists() or not list((tmp_path / "ds").rglob("*.parquet"))


def test_leak_guard_catches_rescaled_and_inverted_copies_and_passes_independent_planes():
    rng = np.random.default_rng(3)
    stain = independent_planes(rng, (64, 64))
    other = independent_planes(rng, (64, 64))
    noisy = stain.astype(float) + rng.normal(0, 0.05 * stain.std(), stain.shape)  # r ≈ 0.9988
    bf = np.stack(
        [other, (stain // 256).astype(np.uint16), (65535 - stain), np.clip(noisy, 0, 65535).astype(np.uint16)]
    )
    leaks = leaked_planes(bf, {"nuclei": stain, "other": independent_planes(rng, (64, 64))})
    assert [(z, name) for z, name, _ in leaks] == [(1, "nuclei"), (2, "nuclei"), (3, "nuclei")]
    assert leaks[1][2] == pytest.approx(-1.0)
    assert leaks[2][2] == pytest.approx(np.corrcoef(bf[3].ravel(), stain.ravel())[0, 1], abs=1e-4)
    assert leaked_planes(bf[:1], {"nuclei": stain}) == []


@pytest.fixture
def ome_zcyx(tmp_path) -> tuple[Path, np.ndarray]:
    """A multi-page OME-TIFF of (Z=3, C=3, Y, X): phase contrast, DAPI, GFP at three focal planes, 0.65 µm pixels."""
    array = independent_planes(np.random.default_rng(1), (3, 3, 32, 48))
    path = tmp_path / "field.ome.tif"
    tifffile.imwrite(path, array, ome=True, metadata={"axes": "ZCYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65})
    return path, array


def test_ome_tiff_zstack_bright_field_and_in_focus_stains(tmp_path, ome_zcyx):
    _, array = ome_zcyx
    rows = [
        row("bf", "field.ome.tif", c=0),
        row("nuclei", "field.ome.tif", c=1, z=1),
        row("cytoplasm", "field.ome.tif", c=2, z=1),
    ]
    info = ingest(str(write_layout(tmp_path / "l.csv", rows, LAYOUT)), str(tmp_path / "ds"))
    ds = open_dataset(str(tmp_path / "ds"))
    field = ds.read(ds.manifest.field_id[0])
    assert info.bf_planes == 3 and ds.info.pixel_size_um == pytest.approx(0.65)
    assert np.array_equal(field.bf, array[:, 0])
    assert np.array_equal(field.stains["nuclei"], array[1, 1])
    assert np.array_equal(field.stains["cytoplasm"], array[1, 2])


def test_imagej_hyperstack_pixel_size_and_channel_pick(tmp_path):
    array = independent_planes(np.random.default_rng(2), (2, 2, 32, 48))  # Z, C
    tifffile.imwrite(
        tmp_path / "ij.tif",
        array,
        imagej=True,
        metadata={"axes": "ZCYX", "unit": "um"},
        resolution=(1 / 0.325, 1 / 0.325),
    )
    rows = [row("bf:0", "ij.tif", c=0, z=0), row("bf:1", "ij.tif", c=0, z=1), row("nuclei", "ij.tif", c=1, z=0)]
    ingest(str(write_layout(tmp_path / "l.csv", rows, LAYOUT)), str(tmp_path / "ds"))
    ds = open_dataset(str(tmp_path / "ds"))
    field = ds.read(ds.manifest.field_id[0])
    assert ds.info.pixel_size_um == pytest.approx(0.325, rel=1e-3)
    assert np.array_equal(field.bf, array[:, 0]) and np.array_equal(field.stains["nuclei"], array[0, 1])


OME_REFUSALS = {
    "stain reads a z-stack": (
        [row("bf", "field.ome.tif", c=0), row("nuclei", "field.ome.tif", c=1)],
        r"row 3 \(field.ome.tif\): image holds 3 planes along Z \(axes ZCYX, shape \(3, 3, 32, 48\)\); pick one "
        r"with column z",
    ),
    "bright-field without a channel": (
        [row("bf", "field.ome.tif"), row("nuclei", "field.ome.tif", c=1, z=0)],
        r"row 2 \(field.ome.tif\): image holds 3 planes along C .*; pick one with column c",
    ),
    "channel past the end": (
        [row("bf", "field.ome.tif", c=0), row("nuclei", "field.ome.tif", c=3, z=0)],
        r"row 3 \(field.ome.tif\): c 3 is past the image's 3 planes along C",
    ),
    "axes that contradict the metadata": (
        [row("bf", "field.ome.tif", c=0, axes="CZYX"), row("nuclei", "field.ome.tif", c=1, z=0)],
        r"row 2 \(field.ome.tif\): axes 'CZYX' differ from the file's metadata, which says ZCYX",
    ),
    "bf:<z> row that reads a stack": (
        [row("bf:0", "field.ome.tif", c=0), row("nuclei", "field.ome.tif", c=1, z=0)],
        r"row 2 \(field.ome.tif\): image holds 3 planes along Z",
    ),
}


@pytest.mark.parametrize("case", OME_REFUSALS)
def test_ambiguous_or_wrong_plane_selection_is_refused(tmp_path, ome_zcyx, case):
    rows, message = OME_REFUSALS[case]
    with pytest.raises(LayoutError, match=message):
        ingest(str(write_layout(tmp_path / "l.csv", rows, LAYOUT)), str(tmp_path / "ds"))
    assert not (tmp_path / "ds" / MANIFEST_FILE).exists()


def test_selection_column_for_an_absent_axis_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "bf.tif", independent_planes(np.random.default_rng(4), (32, 48)))
    tifffile.imwrite(tmp_path / "nuc.tif", independent_planes(np.random.default_rng(5), (32, 48)))
    rows = [row("bf", "bf.tif"), row("nuclei", "nuc.tif", c=1)]
    with pytest.raises(LayoutError, match=r"row 3 \(nuc.tif\): column c is given but the image has no C axis"):
        ingest(str(write_layout(tmp_path / "l.csv", rows, LAYOUT)), str(tmp_path / "ds"))


def test_float_phase_bright_field_is_mapped_onto_uint16_in_order(tmp_path):
    rng = np.random.default_rng(6)
    phase = rng.normal(0, 0.3, (2, 32, 48)).astype(np.float32)  # a z-stack of phase (radians)
    tifffile.imwrite(tmp_path / "phase.tif", phase, metadata={"axes": "ZYX"})
    tifffile.imwrite(tmp_path / "nuc.tif", independent_planes(rng, (32, 48)))
    ingest(
        str(write_layout(tmp_path / "l.csv", [row("bf", "phase.tif"), row("nuclei", "nuc.tif")], LAYOUT)),
        str(tmp_path / "ds"),
    )
    ds = open_dataset(str(tmp_path / "ds"))
    bf = ds.read(ds.manifest.field_id[0]).bf
    for z in range(2):
        assert bf[z].min() == 0 and bf[z].max() == 65535
        expected = (phase[z] - phase[z].min()) / np.ptp(phase[z]) * 65535  # by hand
        assert np.abs(bf[z] - expected).max() <= 0.5 + 1e-3
