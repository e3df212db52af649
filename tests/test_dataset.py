import numpy as np
import pandas as pd
import pytest

from vsearch.data.dataset import DatasetWriter, open_dataset
from vsearch.data.fields import FieldImages
from vsearch.data.manifest import MANIFEST_FILE, DatasetInfo

INFO = DatasetInfo(name="t", stains=["a", "b"], labels=["nuclei"], bf_planes=2)


def _field(rng: np.random.Generator, i: int, h: int = 40, w: int = 56) -> tuple[dict, FieldImages]:
    images = FieldImages(
        f"f{i}",
        rng.integers(0, 65536, (2, h, w), dtype=np.uint16),
        {"a": rng.integers(0, 65536, (h, w), dtype=np.uint16), "b": rng.integers(0, 65536, (h, w), dtype=np.uint16)},
        {"nuclei": rng.integers(-5, 2**31 - 1, (h, w), dtype=np.int32)},
    )
    meta = {
        "plate": "P1",
        "well": f"A{i % 3:02d}",
        "site": i,
        "tile": 0,
        "origin_y": 0,
        "origin_x": 0,
        "cell_type": "x",
        "phenotype": "y",
        "treatment": "",
        "concentration": 0.0,
        "is_control": "none",
        "split_group": f"P1/A{i % 3:02d}",
    }
    return meta, images


def _write(uri: str, fields: list, **kwargs) -> None:
    with DatasetWriter(uri, INFO, **kwargs) as writer:
        for meta, images in fields:
            writer.add(meta, images)


def _assert_same(a: FieldImages, b: FieldImages) -> None:
    assert a.field_id == b.field_id
    assert a.bf.dtype == b.bf.dtype == np.uint16 and np.array_equal(a.bf, b.bf)
    assert a.stains.keys() == b.stains.keys() and a.labels.keys() == b.labels.keys()
    for k in a.stains:
        assert b.stains[k].dtype == np.uint16 and np.array_equal(a.stains[k], b.stains[k])
    for k in a.labels:
        assert b.labels[k].dtype == np.int32 and np.array_equal(a.labels[k], b.labels[k])


def test_round_trip_across_shards_and_row_groups(tmp_path):
    rng = np.random.default_rng(0)
    fields = [_field(rng, i) for i in range(11)]
    # tiny shard and row-group targets force several shards with several row groups each
    _write(str(tmp_path / "ds"), fields, shard_bytes=4 * fields[0][1].nbytes, row_group_bytes=2 * fields[0][1].nbytes)
    ds = open_dataset(str(tmp_path / "ds"))
    assert ds.manifest["shard"].nunique() == 3
    assert list(ds.manifest["field_id"]) == [f"f{i}" for i in range(11)]
    for _, images in fields:
        _assert_same(images, ds.read(images.field_id))
    streamed = {f.field_id: f for f in ds.iter_fields()}
    assert len(streamed) == 11
    for _, images in fields:
        _assert_same(images, streamed[images.field_id])
    subset = [f.field_id for f in ds.iter_fields(["f9", "f2"])]
    assert sorted(subset) == ["f2", "f9"]


def test_iter_fields_reads_only_the_columns_asked_for(tmp_path):
    rng = np.random.default_rng(2)
    fields = [_field(rng, i) for i in range(5)]
    _write(str(tmp_path / "ds"), fields, row_group_bytes=2 * fields[0][1].nbytes)
    ds = open_dataset(str(tmp_path / "ds"))
    for subset in (["f3", "f1"], None):  # some row groups, and whole shards
        for field in ds.iter_fields(subset, stains=["b"], labels=False):
            images = fields[int(field.field_id[1:])][1]
            assert list(field.stains) == ["b"] and field.labels == {}
            assert np.array_equal(field.stains["b"], images.stains["b"]) and np.array_equal(field.bf, images.bf)
    assert all(f.stains == {} for f in ds.iter_fields(stains=[], labels=False))
    with pytest.raises(KeyError, match="stain 'dapi' is not in"):
        next(ds.iter_fields(stains=["dapi"]))


def test_manifest_columns_and_types(tmp_path):
    rng = np.random.default_rng(1)
    _write(str(tmp_path / "ds"), [_field(rng, i) for i in range(2)])
    m = open_dataset(str(tmp_path / "ds")).manifest
    row = m.iloc[1]
    assert (row["height"], row["width"], row["bf_planes"]) == (40, 56, 2)
    assert list(row["stains"]) == ["a", "b"]
    assert row["row"] == 1 and row["split_group"] == "P1/A01"


def test_refuses_existing_dataset_and_mismatched_fields(tmp_path):
    rng = np.random.default_rng(2)
    uri = str(tmp_path / "ds")
    _write(uri, [_field(rng, 0)])
    with pytest.raises(FileExistsError, match="already holds a dataset"):
        DatasetWriter(uri, INFO)
    meta, images = _field(rng, 1)
    bad = FieldImages(images.field_id, images.bf, {"a": images.stains["a"]}, images.labels)
    with pytest.raises(ValueError, match=r"field 'f1': stains \['a'\] differ"):
        DatasetWriter(str(tmp_path / "other"), INFO).add(meta, bad)
    wrong_shape = FieldImages("f2", images.bf, {"a": images.stains["a"][:3], "b": images.stains["b"]}, images.labels)
    with pytest.raises(ValueError, match="stain 'a' has shape"):
        DatasetWriter(str(tmp_path / "other"), INFO).add(meta, wrong_shape)


def test_failed_overwrite_keeps_the_old_dataset(tmp_path):
    rng = np.random.default_rng(3)
    uri = str(tmp_path / "ds")
    old = [_field(rng, i) for i in range(3)]
    _write(uri, old)
    old_files = sorted(p.name for p in (tmp_path / "ds" / "shards").iterdir())
    with pytest.raises(RuntimeError, match="boom"), DatasetWriter(uri, INFO, overwrite=True, shard_bytes=1) as writer:
        writer.add(*_field(rng, 5))  # flushed to a shard at once
        raise RuntimeError("boom")
    assert sorted(p.name for p in (tmp_path / "ds" / "shards").iterdir()) == old_files
    ds = open_dataset(uri)
    _assert_same(old[2][1], ds.read("f2"))


def test_overwrite_replaces_and_removes_old_shards(tmp_path):
    rng = np.random.default_rng(4)
    uri = str(tmp_path / "ds")
    _write(uri, [_field(rng, i) for i in range(3)])
    new = [_field(rng, i) for i in range(10, 12)]
    _write(uri, new, overwrite=True)
    ds = open_dataset(uri)
    assert list(ds.manifest["field_id"]) == ["f10", "f11"]
    assert len(list((tmp_path / "ds" / "shards").iterdir())) == 1
    _assert_same(new[1][1], ds.read("f11"))


def test_missing_dataset_and_field_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} is not a vsearch dataset: {MANIFEST_FILE}"):
        open_dataset(str(tmp_path))
    rng = np.random.default_rng(5)
    _write(str(tmp_path / "ds"), [_field(rng, 0)])
    with pytest.raises(KeyError, match="'nope'"):
        open_dataset(str(tmp_path / "ds")).read("nope")


def test_manifest_is_plain_parquet(tmp_path):
    rng = np.random.default_rng(6)
    _write(str(tmp_path / "ds"), [_field(rng, 0)])
    m = pd.read_parquet(tmp_path / "ds" / MANIFEST_FILE)
    assert m.loc[0, "field_id"] == "f0"
