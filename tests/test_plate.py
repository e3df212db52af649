"""OME-Zarr HCS plates written by ome-zarr-py (NGFF 0.4 and 0.5), ingested locally and from moto S3."""

from pathlib import Path

import numpy as np
import pytest
import zarr
from ome_zarr.format import FormatV04, FormatV05
from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata
from typer.testing import CliRunner

from vsearch.cli import app
from vsearch.data import storage
from vsearch.data.dataset import open_dataset
from vsearch.data.layout import LayoutError
from vsearch.data.manifest import MANIFEST_FILE
from vsearch.data.plate import ingest_plates, parse_channels, well_name

CHANNELS = ["Phase3D", "DAPI", "GFP"]
WELLS = ["A/1", "B/2", "C/3"]
CONDITIONS = (
    "well,cell_type,phenotype,treatment,concentration,is_control\n"
    "A01,lung,non_toxic,DMSO,,neg\n"
    "B2,lung,toxic,doxorubicin,1.5,none\n"
)


def write_plate(path: Path, fmt, *, copy_dapi_into_phase: bool = False) -> dict[tuple[str, int], np.ndarray]:
    """Three wells of two fields, each a (C=3, Z=3, 32, 48) uint16 image at 0.325 µm; returns the arrays."""
    rng = np.random.default_rng(0)
    root = zarr.open_group(str(path), mode="w", zarr_format=2 if fmt.version == "0.4" else 3)
    write_plate_metadata(root, ["A", "B", "C"], ["1", "2", "3"], WELLS, fmt=fmt, name="screen-01")
    omero = {
        "channels": [
            {"label": label, "color": "FFFFFF", "window": {"min": 0, "max": 65535, "start": 0, "end": 65535}}
            for label in CHANNELS
        ]
    }
    arrays = {}
    for well in WELLS:
        row, column = well.split("/")
        well_group = root.require_group(row).require_group(column)
        write_well_metadata(well_group, ["0", "1"], fmt=fmt)
        for site in range(2):
            image = rng.integers(0, 65536, (3, 3, 32, 48), dtype=np.uint16)
            if copy_dapi_into_phase:
                image[0, 2] = image[1, 1]
            arrays[well_name(well), site] = image
            write_image(
                image,
                well_group.require_group(str(site)),
                axes="czyx",
                scale_factors=(2,),
                fmt=fmt,
                scale={"c": 1.0, "z": 2.0, "y": 0.325, "x": 0.325},
                axes_units={"z": "micrometer", "y": "micrometer", "x": "micrometer"},
                omero=omero,
            )
    return arrays


def check_dataset(uri: str, arrays: dict[tuple[str, int], np.ndarray]) -> None:
    ds = open_dataset(uri)
    assert ds.info.stains == ["nuclei", "cytoplasm"] and ds.info.bf_planes == 3
    assert ds.info.pixel_size_um == pytest.approx(0.325)
    assert ds.info.roles == {"nuclei": "nuclei", "cytoplasm": "cytoplasm"}
    by_id = ds.manifest.set_index("field_id")
    assert sorted(ds.manifest.field_id) == [
        "screen-01-A01-s0",
        "screen-01-A01-s1",
        "screen-01-B02-s0",
        "screen-01-B02-s1",
    ]
    assert by_id.loc["screen-01-B02-s1", "phenotype"] == "toxic"
    assert by_id.loc["screen-01-B02-s1", "concentration"] == 1.5
    assert by_id.loc["screen-01-A01-s0", "is_control"] == "neg"
    for field in ds.iter_fields():
        well, site = by_id.loc[field.field_id, "well"], int(by_id.loc[field.field_id, "site"])
        source = arrays[well, site]
        assert np.array_equal(field.bf, source[0])  # Phase3D, every z-plane
        assert np.array_equal(field.stains["nuclei"], source[1, 1])  # DAPI at z = 1
        assert np.array_equal(field.stains["cytoplasm"], source[2, 1])


@pytest.mark.parametrize("fmt", [FormatV04(), FormatV05()], ids=["ngff-0.4", "ngff-0.5"])
def test_cli_ingests_a_local_plate_with_the_right_planes(tmp_path, fmt):
    arrays = write_plate(tmp_path / "plate.zarr", fmt)
    (tmp_path / "conditions.csv").write_text(CONDITIONS)
    result = CliRunner().invoke(
        app,
        [
            "data",
            "ingest",
            str(tmp_path / "plate.zarr"),
            "--conditions",
            str(tmp_path / "conditions.csv"),
            "--channels",
            "Phase3D=bf,DAPI=nuclei,GFP=cytoplasm",
            "--stain-z",
            "1",
            "--out",
            str(tmp_path / "ds"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "left out 1 well(s) the conditions do not list: screen-01/C03" in result.output
    assert "0.325 µm pixels" in result.output
    check_dataset(str(tmp_path / "ds"), arrays)


def test_plate_on_s3_ingests_to_s3(tmp_path, s3_bucket):
    arrays = write_plate(tmp_path / "plate.zarr", FormatV05())
    fs, root = storage.filesystem(s3_bucket)
    fs.put(str(tmp_path / "plate.zarr"), f"{root}/plates/plate.zarr", recursive=True)
    fs.pipe(f"{root}/plates/conditions.csv", CONDITIONS.encode())
    result = ingest_plates(
        [f"{s3_bucket}/plates/plate.zarr"],
        f"{s3_bucket}/plates/conditions.csv",
        f"{s3_bucket}/ds",
        channels=parse_channels("Phase3D=bf,DAPI=nuclei,GFP=cytoplasm"),
        stain_z=1,
    )
    assert result.skipped_wells == ["screen-01/C03"]
    check_dataset(f"{s3_bucket}/ds", arrays)


REFUSALS = {
    "unknown channel": (
        "Phase3D=bf,Hoechst=nuclei",
        1,
        r"plate.zarr/A/1/0: no channel 'Hoechst'; its channels are Phase3D, DAPI, GFP",
    ),
    "stain z-stack": ("Phase3D=bf,DAPI=nuclei", None, r"A/1/0: image holds 3 planes along Z .*; give --stain-z"),
    "stain z past the end": ("Phase3D=bf,DAPI=nuclei", 3, r"A/1/0: z 3 is past the image's 3 planes along Z"),
    "no bright-field": ("DAPI=nuclei", 1, r"--channels: map exactly one OME channel to bf"),
}


def ingest_local_plate(tmp_path: Path, mapping: str, stain_z: int | None, conditions: str = CONDITIONS) -> None:
    (tmp_path / "conditions.csv").write_text(conditions)
    ingest_plates(
        [str(tmp_path / "plate.zarr")],
        str(tmp_path / "conditions.csv"),
        str(tmp_path / "ds"),
        channels=parse_channels(mapping),
        stain_z=stain_z,
    )


@pytest.mark.parametrize("case", REFUSALS)
def test_bad_channel_mapping_is_refused_and_nothing_is_published(tmp_path, case):
    mapping, stain_z, message = REFUSALS[case]
    write_plate(tmp_path / "plate.zarr", FormatV04())
    with pytest.raises(LayoutError, match=message):
        ingest_local_plate(tmp_path, mapping, stain_z)
    assert not (tmp_path / "ds" / MANIFEST_FILE).exists()


def test_conditions_naming_an_absent_well_are_refused(tmp_path):
    write_plate(tmp_path / "plate.zarr", FormatV04())
    with pytest.raises(LayoutError, match=r"conditions.csv: well screen-01/H12 is not in the plate"):
        ingest_local_plate(tmp_path, "Phase3D=bf,DAPI=nuclei", 1, CONDITIONS + "H12,lung,toxic,,,none\n")


def test_plate_whose_phase_plane_copies_a_stain_is_refused(tmp_path):
    write_plate(tmp_path / "plate.zarr", FormatV04(), copy_dapi_into_phase=True)
    message = r"field screen-01/A01/site 0 \(.*A/1/0\): bright-field plane 2 equals stain 'nuclei'"
    with pytest.raises(LayoutError, match=message):
        ingest_local_plate(tmp_path, "Phase3D=bf,DAPI=nuclei", 1)
    assert not (tmp_path / "ds" / MANIFEST_FILE).exists()
