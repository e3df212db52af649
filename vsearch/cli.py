"""The ``vsearch`` command: parses options, calls the library, shows progress and tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(help="Find the training data and model that make virtual staining generalise.", no_args_is_help=True)
data_app = typer.Typer(help="Create, ingest and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
# Piped output (CI logs, files) gets a fixed width wide enough for the score tables.
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


@contextmanager
def _progress(description: str) -> Iterator[Callable[[int, int], None]]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _fail(error: Exception) -> None:
    err_console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@data_app.command("synth")
def synth(
    out: Annotated[str, typer.Option(help="Folder or s3:// prefix to write the dataset to.")],
    cell_types: Annotated[str, typer.Option(help="Comma-separated cell types.")] = "lung,ovarian,breast",
    phenotypes: Annotated[str, typer.Option(help="Comma-separated phenotypes.")] = "non_toxic,toxic",
    plates: Annotated[int, typer.Option(help="Number of plates.")] = 2,
    wells_per_condition: Annotated[int, typer.Option(help="Treated wells per condition on each plate.")] = 3,
    sites: Annotated[int, typer.Option(help="Fields imaged per well.")] = 2,
    size: Annotated[int, typer.Option(help="Field height and width in pixels.")] = 256,
    bf_planes: Annotated[int, typer.Option(help="Bright-field z-planes.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same bytes.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace a dataset already at --out.")] = False,
) -> None:
    """Generate the synthetic HTS screen (cell types x phenotypes, control wells, true labels)."""
    from vsearch.data.synth import SynthSpec, synthesize

    try:
        spec = SynthSpec(_csv(cell_types), _csv(phenotypes), plates, wells_per_condition, sites, size, bf_planes, seed)
        with _progress("synthesising fields") as progress:
            synthesize(spec, out, overwrite=overwrite, progress=progress)
    except (ValueError, FileExistsError) as error:
        _fail(error)
    console.print(f"wrote synthetic screen to [bold]{out}[/bold]")


@data_app.command("ingest")
def ingest(
    sources: Annotated[
        list[str],
        typer.Argument(help="A layout CSV (one row per field and channel), or one or more OME-Zarr HCS plates."),
    ],
    out: Annotated[str, typer.Option(help="Folder or s3:// prefix to write the dataset to.")],
    conditions: Annotated[
        str | None,
        typer.Option(help="Plates: CSV giving each well its cell_type, phenotype[, treatment, concentration, ...]."),
    ] = None,
    channels: Annotated[
        str | None,
        typer.Option(help="Plates: OME channel name → bf or stain, e.g. Phase3D=bf,DAPI=nuclei,GFP=cytoplasm."),
    ] = None,
    stain_z: Annotated[
        int | None, typer.Option(help="Plates: the z-plane of the stains, when they have several.")
    ] = None,
    tile: Annotated[int | None, typer.Option(help="Cut each field into N x N fields.")] = None,
    stains: Annotated[str | None, typer.Option(help="Comma-separated stain channels; others are refused.")] = None,
    roles: Annotated[
        str | None,
        typer.Option(
            help="Which stain shows what, e.g. nuclei=DAPI,cytoplasm=FITC,foci=Cy5 (default: the synthetic "
            "screen's names nuclei, cytoplasm, dna_damage where present)."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the layout's or plate's name).")] = None,
    pixel_size_um: Annotated[
        float | None, typer.Option(help="Pixel size in micrometres (default: from the OME / ImageJ metadata).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a dataset already at --out.")] = False,
) -> None:
    """Ingest PNG / TIFF / OME-TIFF images named by a layout CSV, or OME-Zarr HCS plates."""
    from vsearch.data.layout import ingest as ingest_layout
    from vsearch.data.manifest import parse_roles
    from vsearch.data.plate import ingest_plates, parse_channels

    is_plate = conditions is not None or channels is not None or any(_is_zarr(s) for s in sources)
    skipped: list[str] = []
    try:
        parsed_roles = parse_roles(roles) if roles else None
        with _progress("ingesting fields") as progress:
            if is_plate:
                if conditions is None or channels is None:
                    raise ValueError("plates need --conditions (CSV of wells) and --channels (e.g. Phase3D=bf,...)")
                if stains:
                    raise ValueError("--stains is for layouts; a plate's stains are the targets --channels names")
                result = ingest_plates(
                    sources,
                    conditions,
                    out,
                    channels=parse_channels(channels),
                    stain_z=stain_z,
                    tile=tile,
                    roles=parsed_roles,
                    name=name,
                    pixel_size_um=pixel_size_um,
                    overwrite=overwrite,
                    progress=progress,
                )
                info, skipped = result.info, result.skipped_wells
            else:
                if len(sources) != 1:
                    raise ValueError(f"give one layout CSV, got {len(sources)}: {' '.join(sources)}")
                info = ingest_layout(
                    sources[0],
                    out,
                    tile=tile,
                    stains=list(_csv(stains)) if stains else None,
                    roles=parsed_roles,
                    name=name,
                    pixel_size_um=pixel_size_um,
                    overwrite=overwrite,
                    progress=progress,
                )
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        _fail(error)
    shown = _stains_with_roles(info.stains, info.stain_roles())
    if skipped:
        console.print(f"left out {len(skipped)} well(s) the conditions do not list: {', '.join(skipped[:8])}")
    size = f", {info.pixel_size_um:.4g} µm pixels" if info.pixel_size_um else ""
    console.print(f"wrote dataset [bold]{info.name}[/bold] ({shown}{size}) to [bold]{out}[/bold]")


def _is_zarr(uri: str) -> bool:
    return uri.rstrip("/").endswith(".zarr")


def _stains_with_roles(stains: list[str], roles: dict[str, str]) -> str:
    """``DAPI (nuclei), FITC (cytoplasm), Cy5``: each stain with its role, if it has one."""
    by_stain = {stain: role for role, stain in roles.items()}
    return ", ".join(f"{stain} ({by_stain[stain]})" if stain in by_stain else stain for stain in stains)


@data_app.command("describe")
def describe(uri: Annotated[str, typer.Argument(help="Dataset folder or s3:// prefix.")]) -> None:
    """Show fields per condition, plates, controls, stains, image size and bytes."""
    from vsearch.data.dataset import open_dataset
    from vsearch.data.summary import describe as summarise

    try:
        summary = summarise(open_dataset(uri))
    except FileNotFoundError as error:
        _fail(error)
    table = Table(title=f"{summary.name} — {summary.uri}")
    for column in ("cell type", "phenotype", "fields", "wells", "plates", "neg ctrl wells", "pos ctrl wells"):
        table.add_column(column, justify="left" if column in ("cell type", "phenotype") else "right")
    for row in summary.conditions.itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    console.print(table)
    sizes = ", ".join(f"{h}×{w}" for h, w in summary.image_sizes)
    pixel = f"{summary.pixel_size_um:.4g} µm" if summary.pixel_size_um else "not recorded"
    console.print(
        f"fields: {summary.fields}   plates: {summary.plates}   image size: {sizes}   "
        f"bright-field planes: {summary.bf_planes}   pixel size: {pixel}\n"
        f"stains: {_stains_with_roles(summary.stains, summary.roles)}   labels: {', '.join(summary.labels) or 'none'}\n"
        f"shards: {summary.shard_files} files, {summary.shard_bytes / 2**20:.1f} MiB",
        highlight=False,
    )


@app.command("evaluate")
def evaluate(
    truth: Annotated[str, typer.Option(help="Dataset with the real stains.")],
    pred: Annotated[str, typer.Option(help="Dataset with the predicted stains (same field ids).")],
    out: Annotated[str, typer.Option(help="Parquet file for per-field metrics; other tables go beside it.")],
    stains: Annotated[str | None, typer.Option(help="Comma-separated stains to score (default: all).")] = None,
    roles: Annotated[
        str | None,
        typer.Option(help="Stain roles over the truth dataset's, e.g. nuclei=DAPI,cytoplasm=FITC,foci=none."),
    ] = None,
    levels: Annotated[str, typer.Option(help="Comma-separated levels.")] = "pixel,instance,feature",
    workers: Annotated[int | None, typer.Option(help="Fields evaluated at once (default: all CPUs).")] = None,
) -> None:
    """Score predicted stains against real ones at pixel, instance, feature and assay level."""
    from vsearch.data.dataset import open_dataset
    from vsearch.data.manifest import parse_roles
    from vsearch.evaluate.features import StainRoles
    from vsearch.evaluate.field import EvaluationConfig
    from vsearch.evaluate.runner import evaluate_datasets

    try:
        info = open_dataset(truth).info
        chosen = _csv(stains) if stains else tuple(info.stains)
        overrides = parse_roles(roles) if roles else None
        stain_roles = StainRoles.resolve(info.stain_roles(), chosen, overrides)
        config = EvaluationConfig(stains=chosen, roles=stain_roles, levels=_csv(levels))
        with _progress("evaluating fields") as progress:
            result = evaluate_datasets(truth, pred, config, workers=workers, progress=progress)
        paths = result.write(out)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    _show_summary(result.summary)
    for name, path in paths.items():
        console.print(f"{name}: {path}", highlight=False)


def _score(value: float) -> str:
    return f"{value:.3f}" if value == value else "–"


def _show_summary(summary) -> None:
    table = Table(title="scores per condition and stain (1 = prediction indistinguishable from real)")
    columns = ("cell type", "phenotype", "stain", "role", "pixel", "instance", "feature", "assay", "composite")
    for column in columns:
        table.add_column(column, justify="left" if column in columns[:4] else "right")
    for row in summary.itertuples(index=False):
        scores = (getattr(row, level) for level in ("pixel", "instance", "feature", "assay", "composite"))
        role = row.role if isinstance(row.role, str) else "–"
        table.add_row(row.cell_type, row.phenotype, row.stain, role, *(_score(v) for v in scores))
    console.print(table)
    roleless = sorted(set(summary.stain[summary.role.isna()]))
    if roleless:
        console.print(f"no role (scored at the pixel level only): {', '.join(roleless)}", highlight=False)
    flat = int(summary.flat_fields.sum())
    if flat:
        console.print(f"{flat} field × stain pairs have a flat real stain and are not scored at the pixel level")


@app.command("train")
def train(
    config_file: Annotated[str, typer.Argument(metavar="CONFIG.yaml", help="Training config (see README).")],
    name: Annotated[str | None, typer.Option(help="Run name (default: the config's).")] = None,
    storage: Annotated[str | None, typer.Option(help="Folder or s3:// prefix for checkpoints.")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: RAY_ADDRESS or local).")] = None,
) -> None:
    """Train a virtual-staining model on a composition; rerunning the same name resumes from its checkpoint."""
    from vsearch.config import TrainConfig, load_yaml
    from vsearch.train.trainer import train as fit

    try:
        config = load_yaml(config_file, TrainConfig)
        config = config.model_copy(update={k: v for k, v in (("name", name), ("storage", storage)) if v})
        result = fit(config, address)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    metrics = result.metrics or {}
    if metrics:
        table = Table(title=f"{config.name}: epochs {metrics['start_epoch']}–{metrics['epoch']} of this run")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in metrics.items():
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        console.print(table)
    else:
        console.print(f"{config.name}: nothing left to train (all {config.epochs} epochs done)")
    if result.checkpoint:
        console.print(f"checkpoint: {result.checkpoint.path}", highlight=False)


@app.command("predict")
def predict(
    checkpoint: Annotated[str, typer.Argument(help="Checkpoint folder, or a run folder (its newest checkpoint).")],
    data: Annotated[str, typer.Option(help="Dataset to predict.")],
    out: Annotated[str, typer.Option(help="Folder or s3:// prefix for the predicted dataset.")],
    batch_size: Annotated[int, typer.Option(help="Fields per forward pass.")] = 4,
    overwrite: Annotated[bool, typer.Option(help="Replace a dataset already at --out.")] = False,
) -> None:
    """Predict stains for every field of a dataset; writes a dataset with the same field ids."""
    from vsearch.train.prediction import predict as run_prediction

    try:
        with _progress("predicting fields") as progress:
            info = run_prediction(checkpoint, data, out, batch_size=batch_size, overwrite=overwrite, progress=progress)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        _fail(error)
    console.print(f"wrote predictions ({', '.join(info.stains)}) to [bold]{out}[/bold]")


@app.command("run")
def run(
    space_file: Annotated[str, typer.Argument(metavar="SPACE.yaml", help="Search space (see search_spaces/).")],
    address: Annotated[str | None, typer.Option(help="Ray cluster to join (default: RAY_ADDRESS, else local).")] = None,
    resume: Annotated[bool, typer.Option(help="Resume the search in the results folder.")] = False,
    results: Annotated[str | None, typer.Option(help="Results folder or s3:// prefix (default: the space's).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset folder or s3:// prefix (default: the space's).")] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Print the plan and its estimated cost on the cluster; train nothing.")
    ] = False,
    cluster: Annotated[
        str | None,
        typer.Option(help="--dry-run: plan for this cluster-launcher YAML or KubeRay manifest at full scale."),
    ] = None,
    gpu_type: Annotated[
        str | None, typer.Option(help="--dry-run: the GPU to cost, e.g. H200 (default: the cluster's).")
    ] = None,
) -> None:
    """Search training compositions and models, scoring every trial on held-out conditions."""
    from vsearch.config import load_yaml
    from vsearch.search.space import SearchSpace
    from vsearch.search.stalls import SearchStalled
    from vsearch.search.tuner import plan_search, planned_trials, run_search

    try:
        space = load_yaml(space_file, SearchSpace)
        if dataset is not None:
            space = space.model_copy(update={"dataset": dataset})
        if dry_run:
            _show_dry_run(_dry_run(space, results, address, cluster, gpu_type), space_file)
            return
        if cluster is not None or gpu_type is not None:
            raise ValueError("--cluster and --gpu-type plan a --dry-run; a search runs on --address")
        plan = plan_search(space, results)  # every check that needs no Ray, before Ray starts
        from vsearch.cli_live import LiveTrials

        with LiveTrials(console, planned_trials(plan)) as live:
            table, where = run_search(space, results=results, resume=resume, callbacks=[live], address=address)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    except SearchStalled as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=1) from None
    _show_best(table, space.objective.mode)
    failed = table[table.status == "failed"]
    for trial in failed.itertuples():
        console.print(f"[red]trial {trial.trial_id} failed[/red]: {trial.error}")
    console.print(f"trials: [bold]{where}[/bold]   study: {space.storage or 'optuna.db in the results folder'}")
    if len(failed) == len(table):
        console.print(f"[red]error:[/red] every trial failed ({len(table)}); nothing to report")
        raise typer.Exit(code=1)
    console.print(f"report: vsearch report {results or space.results}")


def _dry_run(space, results: str | None, address: str | None, cluster: str | None, gpu_type: str | None):
    import os

    from vsearch.cluster import connect
    from vsearch.cluster_shape import connected_cluster, from_file, this_machine
    from vsearch.search.dryrun import dry_run

    if cluster is not None and address is not None:
        raise ValueError("give --cluster (a config to plan for) or --address (a running cluster), not both")
    if cluster is not None:
        shape = from_file(cluster)
    elif address or os.environ.get("RAY_ADDRESS"):
        connect(address)
        shape = connected_cluster(address or os.environ["RAY_ADDRESS"])
    else:
        shape = this_machine()
    return dry_run(space, shape, results, gpu_type)


def _hours(values: tuple[float, float, float]) -> str:
    low, mean, high = values
    return f"{mean:,.1f}" if high - low < 0.05 else f"{mean:,.1f} ({low:,.1f} to {high:,.1f})"


def _show_dry_run(dry, space_file: str) -> None:
    from vsearch.train.resources import DATA_CPUS

    space, plan, cost = dry.plan.space, dry.plan, dry.cost
    t = space.trial
    table = Table(title=f"vsearch run {space_file} --dry-run: nothing is trained", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    seeds = f" x {space.seeds_per_config} seeds" if space.seeds_per_config > 1 else ""
    table.add_row("dataset", f"{space.dataset} ({dry.fields:,} fields)")
    held = ", ".join(f"{c} ({len(ids)} fields scored)" for c, ids in plan.eval_fields.items())
    table.add_row("held out", held)
    table.add_row("trainable", ", ".join(plan.resolved.trainable))
    table.add_row("results", plan.results)
    table.add_row("trials", f"{dry.trials}{seeds}, sampler {space.sampler}, scheduler {space.scheduler.type}")
    per_trial = (
        f"{t.workers} worker(s) of {t.cpus_per_worker:g} CPU and {t.gpus_per_worker:g} GPU, "
        f"+{DATA_CPUS:g} CPU for Ray Data"
    )
    table.add_row("per trial", per_trial)
    resources = ", ".join(f"{dry.cluster.resources.get(k, 0):g} {k}" for k in ("CPU", "GPU"))
    gpu = f", {dry.cluster.gpu}" if dry.cluster.gpu else ""
    table.add_row("cluster", f"{dry.cluster.source}: {dry.cluster.nodes} node(s), {resources}{gpu}")
    table.add_row("concurrent trials", str(dry.concurrent))
    if cost is not None:
        for c in cost.configurations:
            m = c.measurement
            choices = ", ".join(f"{k} {v}" for k, v in c.choices.items())
            table.add_row(
                "cost per trial",
                f"{choices}: {c.train_patches:,} patches of {space.patch}², {c.patches_per_s:,.0f} patches/s on one "
                f"{cost.gpu} (scaled by FLOPs from {m.family} {m.patch}² batch {m.batch}: {m.patches_per_s:g}/s), "
                f"{c.gpu_hours:,.2f} GPU-hours with validation",
            )
        table.add_row(f"{cost.gpu}-hours", _hours(cost.gpu_hours()))
        if dry.concurrent:
            table.add_row("wall time (hours)", _hours(cost.wall_hours()))
    for problem in dry.problems:
        table.add_row("[yellow]note[/yellow]", problem)
    console.print(table)
    if cost is not None:
        console.print(
            "The estimate counts GPU time for training, validation and held-out prediction at measured rates "
            "(vsearch/cost/throughput.csv); not Ray start-up or the CPU side of scoring."
        )


@app.command("study")
def study(
    study_file: Annotated[str, typer.Argument(metavar="STUDY.yaml", help="Study design (see studies/).")],
    address: Annotated[str | None, typer.Option(help="Ray cluster to join (default: RAY_ADDRESS, else local).")] = None,
    resume: Annotated[bool, typer.Option(help="Resume the study in the results folder.")] = False,
    results: Annotated[str | None, typer.Option(help="Results folder or s3:// prefix (default: the study's).")] = None,
) -> None:
    """Train every training set x model x seed and test each on every condition's test wells: the
    generalisation matrix, and the paper's questions answered from it."""
    from vsearch.config import load_yaml
    from vsearch.evaluate.score import FIELD_LEVELS
    from vsearch.search.stalls import SearchStalled
    from vsearch.study.answers import answer_questions
    from vsearch.study.runner import plan_study, run_study
    from vsearch.study.spec import StudySpec

    try:
        spec = load_yaml(study_file, StudySpec)
        plan = plan_study(spec, results)  # every check that needs no Ray, before Ray starts
        from vsearch.cli_live import LiveTrials

        with LiveTrials(console, len(plan.cells)) as live:
            matrix, where = run_study(spec, results=results, resume=resume, callbacks=[live], address=address)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    except SearchStalled as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=1) from None
    trained = matrix.trial_id.nunique() if len(matrix) else 0
    console.print(f"{trained} of {len(plan.cells)} models scored on {len(plan.test_fields)} test conditions")
    console.print(
        "[bold]the paper's questions[/bold] (per level, mean over stains; transfer is scored against each test "
        "condition's own model)"
    )
    for level in FIELD_LEVELS if len(matrix) else []:
        for answer in answer_questions(matrix, level):
            console.print(
                f"- {answer.question} {level}: [bold]{answer.answer}[/bold] ({answer.model}: {answer.evidence})"
            )
    console.print(f"matrix: [bold]{where}[/bold]")
    console.print(f"report: vsearch report {results or spec.results}")


@app.command("recommend")
def recommend(
    results: Annotated[str, typer.Argument(help="Results folder or s3:// prefix of a `vsearch run` or `study`.")],
    budget: Annotated[int | None, typer.Option(help="Training fields to image: split over the conditions.")] = None,
    objective: Annotated[str, typer.Option(help="composite, pixel, instance or feature.")] = "composite",
    top: Annotated[int, typer.Option(help="Next mixes to propose.")] = 3,
) -> None:
    """Recommend a training mix: fit a surrogate of the objective over the mix weights, report the mix it
    predicts best and whether that beats the best mix tried, and propose the next mixes to try."""
    from vsearch.recommend.mixes import recommend_mix
    from vsearch.recommend.results import write_next_space, write_recommendation
    from vsearch.recommend.sources import read_mix_scores
    from vsearch.study.results import is_study

    try:
        rec = recommend_mix(read_mix_scores(results, objective), budget=budget, top=top)
        saved = write_recommendation(results, rec)
        next_space = None if is_study(results) else write_next_space(results, rec)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    _show_recommendation(rec)
    console.print(f"recommendation: [bold]{saved}[/bold]")
    if next_space:
        console.print(f"next mixes as a search space: [bold]vsearch run {next_space}[/bold]")
    else:
        console.print("next mixes: list them under training_sets.mixes of a study to run them")


def _show_recommendation(rec) -> None:
    import numpy as np

    mix = ", ".join(f"{k} {v:.2f}" for k, v in rec.weights.items())
    low, high = rec.interval
    console.print(f"[bold]recommended mix[/bold] ({rec.objective}, {rec.trials} trials): {mix}")
    console.print(f"  predicted {rec.objective} {rec.predicted:.3f} (95% interval {low:.3f}–{high:.3f})")
    if rec.fields:
        console.print("  fields to image: " + ", ".join(f"{k} {n}" for k, n in rec.fields.items()))
    best = ", ".join(f"{k} {v:.2f}" for k, v in rec.best_tried.items())
    console.print(f"  best mix tried: {best}: {rec.best_tried_score:.3f} over {rec.best_tried_runs} run(s)")
    noise = f"; seed noise SD {rec.noise_sd:.3f} from {rec.noise_source}" if np.isfinite(rec.noise_sd) else ""
    console.print(f"  {rec.verdict}{noise}")
    console.print(
        f"  surrogate: leave-one-trial-out rank correlation {rec.loo_spearman:.2f}"
        + ("" if rec.trusted else " (too few trials, or too low, to trust its ranking)")
    )
    shown = Table(title="next mixes worth trying (expected improvement)")
    for column in ("mix", "predicted", "sd", "expected improvement"):
        shown.add_column(column)
    for proposed in rec.next_mixes:
        weights = ", ".join(f"{k} {v:.2f}" for k, v in proposed.weights.items())
        shown.add_row(
            weights, f"{proposed.predicted:.3f}", f"{proposed.sd:.3f}", f"{proposed.expected_improvement:.4f}"
        )
    console.print(shown)


@app.command("version")
def version() -> None:
    """Print the versions of vsearch, Python, Ray, PyTorch and CUDA, and the GPUs this machine has."""
    from vsearch.versions import software_versions

    for name, value in software_versions().items():
        console.print(f"{name:8} {value}", highlight=False)


@app.command("report")
def report(
    results: Annotated[str, typer.Argument(help="Results folder or s3:// prefix of a `vsearch run` or `study`.")],
    out: Annotated[str | None, typer.Option(help="HTML file to write (default: RESULTS/report.html).")] = None,
) -> None:
    """Write a self-contained HTML report: a study's generalisation matrix and answers, or a search's trials."""
    from vsearch.report.page import write_report

    try:
        where = write_report(results, out)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    console.print(f"report: [bold]{where}[/bold]")


def _show_best(table, mode: str) -> None:
    from vsearch.evaluate.score import FIELD_LEVELS
    from vsearch.search.results import best_trials

    counts = ", ".join(f"{n} {s}" for s, n in table.status.value_counts().items())
    console.print(f"{len(table)} trials: {counts}")
    best = best_trials(table, mode)
    if best.empty:
        return
    title = "Pareto front (held-out conditions)" if mode == "multi" else "best trials (held-out conditions)"
    shown = Table(title=title)
    for column in ("", "trial", "composite", *FIELD_LEVELS, "composition", "model"):
        shown.add_column(column)
    for row in best.itertuples():
        mix = ", ".join(f"{k} {v:.2f}" for k, v in json.loads(row.composition).items())
        model = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in json.loads(row.config).items()
        )
        scores = (_score(getattr(row, level)) for level in ("composite", *FIELD_LEVELS))
        shown.add_row(row.why, row.trial_id, *scores, mix, model)
    console.print(shown)


if __name__ == "__main__":
    app()
