"""Evaluation of a prediction dataset against its truth: fields fan out as Ray tasks, then per-well features,
feature comparisons, assay quality and the per-(condition, stain) summary are assembled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pandas as pd

from vsearch.cluster import connect
from vsearch.data import storage
from vsearch.data.dataset import Dataset, open_dataset, open_dataset_cached
from vsearch.evaluate.assay import assay_table
from vsearch.evaluate.features import aggregate_wells, compare_features, feature_scales
from vsearch.evaluate.field import EvaluationConfig, FieldEvaluation, evaluate_field
from vsearch.evaluate.score import feature_agreement, summarise

T = TypeVar("T")
WELL_KEYS = ["plate", "well"]
CONDITION_KEYS = ["cell_type", "phenotype"]


@dataclass
class EvaluationResult:
    metrics: pd.DataFrame  # one row per field × stain × metric
    wells: pd.DataFrame  # per-well median features, real and predicted (column ``source``)
    features: pd.DataFrame  # per condition × feature: nmae, error, coverage, score, pearson_r, wasserstein
    assay: pd.DataFrame  # per cell type × assay feature: robust Z′ real / predicted, call agreement
    summary: pd.DataFrame  # per condition × stain: role, level scores in [0, 1], composite, flat_fields

    def write(self, out: str) -> dict[str, str]:
        """``out`` (a local path or ``s3://`` URI) gets the metrics; the other tables go beside it as
        ``<stem>_<table>.parquet``. Each file is published whole."""
        folder, _, name = str(out).rstrip("/").rpartition("/")
        stem = name.removesuffix(".parquet")
        uris = {"metrics": str(out)}
        uris |= {table: f"{folder}/{stem}_{table}.parquet" if folder else f"{stem}_{table}.parquet"
                 for table in ("wells", "features", "assay", "summary")}  # fmt: skip
        return {table: storage.publish_table(uri, getattr(self, table)) for table, uri in uris.items()}


def evaluate_fields(
    field_ids: list[str], truth_uri: str, pred_uri: str, config: EvaluationConfig
) -> list[FieldEvaluation]:
    """Evaluate some fields (decoding each once); the body of one Ray task."""
    truth, pred = open_dataset_cached(truth_uri), open_dataset_cached(pred_uri)
    predicted = {f.field_id: f for f in pred.iter_fields(field_ids)}
    return [evaluate_field(t, predicted[t.field_id], config) for t in truth.iter_fields(field_ids)]


def fan_out(
    task: Callable[..., list[T]],
    field_ids: list[str],
    args: tuple,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[T]:
    """``task(chunk, *args)`` for chunks of ``field_ids`` as Ray tasks (one CPU each, at most ``workers`` at
    once, default all CPUs); their lists joined in completion order. ``progress(fields done, fields)``."""
    import ray

    connect()
    in_flight_limit = workers or max(1, int(ray.available_resources().get("CPU", 1)))
    chunk = max(1, min(8, len(field_ids) // (4 * in_flight_limit)))
    chunks = [field_ids[i : i + chunk] for i in range(0, len(field_ids), chunk)]
    remote = ray.remote(num_cpus=1, max_retries=2)(task)
    arg_refs = [ray.put(a) for a in args]
    results: list[T] = []
    pending: dict = {}
    done_fields = 0
    for ids in chunks:
        if len(pending) >= in_flight_limit:
            done_fields += _collect(pending, results)
            if progress:
                progress(done_fields, len(field_ids))
        pending[remote.remote(ids, *arg_refs)] = len(ids)
    while pending:
        done_fields += _collect(pending, results)
        if progress:
            progress(done_fields, len(field_ids))
    return results


def _collect(pending: dict, results: list) -> int:
    """Wait for one task of ``pending`` (ref → its field count), add its list to ``results``; its field count."""
    import ray

    (done,), _ = ray.wait(list(pending), num_returns=1)
    results += ray.get(done)
    return pending.pop(done)


def _check_datasets(truth: Dataset, pred: Dataset, stains: tuple[str, ...]) -> None:
    missing = sorted(set(truth.manifest.field_id) - set(pred.manifest.field_id))
    if missing:
        raise ValueError(f"{pred.uri} lacks {len(missing)} field(s) of {truth.uri}, e.g. {missing[0]!r}")
    for name, ds in (("truth", truth), ("prediction", pred)):
        absent = [s for s in stains if s not in ds.info.stains]
        if absent:
            raise ValueError(f"{name} dataset {ds.uri} has no stain {absent[0]!r} (it has {ds.info.stains})")
    shape = ["field_id", "height", "width"]
    joined = truth.manifest[shape].merge(pred.manifest[shape], on="field_id", suffixes=("", "_pred"))
    wrong = joined[(joined.height != joined.height_pred) | (joined.width != joined.width_pred)]
    if len(wrong):
        raise ValueError(f"field {wrong.field_id.iloc[0]!r} differs in size between {truth.uri} and {pred.uri}")


def evaluate_datasets(
    truth_uri: str,
    pred_uri: str,
    config: EvaluationConfig,
    *,
    field_ids: list[str] | None = None,
    workers: int | None = None,
    weights: dict[str, float] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Score every field of ``truth_uri`` (or ``field_ids``) against the same field of ``pred_uri``."""
    truth, pred = open_dataset(truth_uri), open_dataset(pred_uri)
    _check_datasets(truth, pred, config.stains)
    ids = list(truth.manifest.field_id) if field_ids is None else list(field_ids)
    results = fan_out(evaluate_fields, ids, (truth_uri, pred_uri, config), workers, progress)
    return assemble(results, truth.manifest, config, weights)


def assemble(
    results: list[FieldEvaluation],
    manifest: pd.DataFrame,
    config: EvaluationConfig,
    weights: dict[str, float] | None = None,
) -> EvaluationResult:
    """The evaluation tables from per-field evaluations (however they were computed) and the truth's manifest."""
    meta = manifest.set_index("field_id")[[*WELL_KEYS, *CONDITION_KEYS, "is_control", "split_group"]]
    ids = [r.field_id for r in results]
    metrics = pd.DataFrame(
        [{"field_id": r.field_id, **row} for r in results for row in r.metrics],
        columns=["field_id", "stain", "level", "metric", "value"],
    )
    metrics = meta.reset_index().merge(metrics, on="field_id")
    wells, features, assay = _feature_tables(results, meta, config)
    conditions = sorted(set(zip(meta.loc[ids, "cell_type"], meta.loc[ids, "phenotype"], strict=True)))
    summary = summarise(conditions, metrics, features, assay, list(config.stains), config.roles, weights)
    return EvaluationResult(metrics, wells, features, assay, summary)


def _feature_tables(
    results: list[FieldEvaluation], meta: pd.DataFrame, config: EvaluationConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    if "feature" not in config.levels or not results:
        no_features = pd.DataFrame(columns=[*CONDITION_KEYS, "feature", "nmae", "error", "coverage", "score"])
        return pd.DataFrame(), no_features, pd.DataFrame(columns=["cell_type", "feature", "call_agreement"])
    per_source_objects, per_source_wells, per_source_counts = {}, [], {}
    for source in ("real", "pred"):
        frames = [r.objects[source].assign(field_id=r.field_id) for r in results if len(r.objects.get(source, []))]
        objects = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"field_id": pd.Series(dtype=str)})
        objects = objects.merge(meta, left_on="field_id", right_index=True)
        counts = pd.DataFrame([{"field_id": r.field_id, "n_nuclei": r.nuclei_counts[source]} for r in results])
        counts = counts.merge(meta, left_on="field_id", right_index=True)
        wells = aggregate_wells(objects, WELL_KEYS, counts)
        well_meta = meta.drop_duplicates(WELL_KEYS).set_index(WELL_KEYS)[[*CONDITION_KEYS, "is_control"]]
        wells = well_meta.join(wells, how="inner").reset_index().assign(source=source)
        per_source_objects[source], per_source_counts[source] = objects, counts
        per_source_wells.append(wells)
    wells = pd.concat(per_source_wells, ignore_index=True)
    feature_columns = [c for c in wells.columns if c not in {*WELL_KEYS, *CONDITION_KEYS, "is_control", "source"}]
    real_wells = wells[wells.source == "real"]
    scales = feature_scales(
        real_wells.set_index(WELL_KEYS)[feature_columns],
        per_source_objects["real"],
        WELL_KEYS,
        per_source_counts["real"],
    )

    comparisons = []
    for condition, block in wells.groupby(CONDITION_KEYS, sort=True):
        real = block[block.source == "real"].set_index(WELL_KEYS)[feature_columns]
        pred = block[block.source == "pred"].set_index(WELL_KEYS)[feature_columns]
        objects = {
            s: per_source_objects[s][
                (per_source_objects[s].cell_type == condition[0]) & (per_source_objects[s].phenotype == condition[1])
            ]
            for s in ("real", "pred")
        }
        comparison = compare_features(real, pred, objects["real"], objects["pred"], scales)
        comparisons.append(comparison.assign(cell_type=condition[0], phenotype=condition[1]))
    features = pd.concat(comparisons, ignore_index=True)
    features["score"] = feature_agreement(features["error"], features["coverage"])
    assay = assay_table(wells, assay_features(config, feature_columns))
    return wells, features, assay


def assay_features(config: EvaluationConfig, available: list[str]) -> list[str]:
    """Toxicity read-outs a screener would use: cells per field, nuclear area and intensity, foci per nucleus,
    cell area."""
    roles = config.roles
    wanted = ["Count_Nuclei", "Nuclei_Area", f"Nuclei_{roles.nuclei}_MeanIntensity"]
    if roles.foci:
        wanted.append(f"Nuclei_{roles.foci}_FociCount")
    if roles.cytoplasm:
        wanted.append("Cells_Area")
    return [f for f in wanted if f in available]
