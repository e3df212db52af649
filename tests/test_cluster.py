"""``cluster/``: the AWS cluster-launcher config through Ray's own validation, the KubeRay manifests through the
project's KubeRay v1.3 schema, the RayJob's entrypoint and the image's command through the real CLI, and
``vsearch run --dry-run`` / ``vsearch run`` on clusters of one and several nodes."""

import copy
import json
import re
import shlex
import subprocess
from importlib.metadata import version
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import SMALL_SPEC
from tests.raycluster import loopback_cluster
from tests.test_search import VSEARCH, write_space
from vsearch.cli import app
from vsearch.cluster_shape import ClusterShape, from_file, quantity
from vsearch.config import load_yaml
from vsearch.data.synth import synthesize
from vsearch.search.dryrun import dry_run
from vsearch.search.space import SearchSpace

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
KUBERAY = CLUSTER / "kuberay"


def ray_validated(config: dict) -> dict:
    """What ``ray up`` checks before it touches a cloud: defaults merged, then Ray's ``ray-schema.json``."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def aws_config() -> dict:
    return yaml.safe_load((CLUSTER / "aws.yaml").read_text())


def test_aws_cluster_config_passes_rays_own_validation():
    config = ray_validated(aws_config())
    types = config["available_node_types"]
    head, workers = types[config["head_node_type"]], [t for n, t in types.items() if n != config["head_node_type"]]
    assert head["resources"]["CPU"] == 0  # no trial lands on the head
    (gpu,) = workers
    assert gpu["min_workers"] == 0 < gpu["max_workers"] and gpu["resources"]["GPU"] == 8
    assert gpu["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert all("IamInstanceProfile" in t["node_config"] for t in types.values())
    assert config["setup_commands"] == []  # the image holds everything; Ray's defaults would pip-install Ray
    assert "--dashboard-port=8265" in " ".join(config["head_start_ray_commands"])
    text = (CLUSTER / "aws.yaml").read_text()
    assert not re.search(r"aws_(access_key_id|secret_access_key)|AKIA[0-9A-Z]{16}", text, re.IGNORECASE)


@pytest.mark.parametrize(
    ("change", "unexpected"),
    [
        (lambda c: c["available_node_types"]["h200"].update(max_worker=2), "max_worker"),  # misspelt
        (lambda c: c.update(idle_timeout_minute=5), "idle_timeout_minute"),
        (lambda c: c["docker"].update(imag="x"), "imag"),
        (lambda c: c.update(InstanceType="p5en.48xlarge"), "InstanceType"),  # misplaced: belongs in node_config
    ],
    ids=["node-type", "top-level", "docker", "misplaced"],
)
def test_ray_refuses_a_misspelt_or_misplaced_key_in_the_aws_config(change, unexpected):
    config = aws_config()
    change(config)
    with pytest.raises(jsonschema.ValidationError, match=rf"'{unexpected}' was unexpected"):
        ray_validated(config)


def kuberay_errors(document: dict) -> list[str]:
    schema = json.loads((KUBERAY / "schema-v1.3.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def manifest(name: str) -> dict:
    return yaml.safe_load((KUBERAY / name).read_text())


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_kuberay_manifests_match_the_kuberay_schema(name):
    document = manifest(name)
    assert kuberay_errors(document) == []
    spec = document["spec"].get("rayClusterSpec", document["spec"])
    assert document["apiVersion"] == "ray.io/v1" and spec["enableInTreeAutoscaling"] is True
    (group,) = spec["workerGroupSpecs"]
    pod = group["template"]["spec"]
    assert group["minReplicas"] == 0 < group["maxReplicas"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def worker_group(document: dict) -> dict:
    return document["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]


def move(mapping: dict, key: str, to: dict, as_key: str | None = None) -> None:
    to[as_key or key] = mapping.pop(key)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: move(d["spec"], "shutdownAfterJobFinishes", d["spec"], "shutdownAfterJobFinish"),
         r"\$\.spec: .*'shutdownAfterJobFinish' was unexpected"),
        (lambda d: move(worker_group(d), "maxReplicas", worker_group(d), "maxReplica"),
         r"workerGroupSpecs\[0\]: .*'maxReplicas' is a required property"),
        (lambda d: move(worker_group(d)["template"]["spec"], "tolerations", worker_group(d)["template"]),
         r"workerGroupSpecs\[0\]\.template: .*'tolerations' was unexpected"),
        (lambda d: move(worker_group(d)["template"]["spec"], "nodeSelector",
                        worker_group(d)["template"]["spec"]["containers"][0]),
         r"containers\[0\]: .*'nodeSelector' was unexpected"),
        (lambda d: d["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}),
         r"rayStartParams\['num-cpus'\]: 0 is not of type 'string'"),
        (lambda d: d["spec"].update(submissionMode="K8sJob"), r"submissionMode: 'K8sJob' is not one of"),
        (lambda d: d["spec"]["rayClusterSpec"].pop("headGroupSpec"), r"'headGroupSpec' is a required property"),
        (lambda d: d.update(apiVersion="ray.io/v1alpha1"), r"apiVersion: 'ray.io/v1' was expected"),
    ],
    ids=["misspelt-spec", "misspelt-group", "tolerations-in-template", "nodeSelector-in-container",
         "start-param-not-string", "bad-enum", "no-head", "old-api"],
)  # fmt: skip
def test_kuberay_schema_refuses_misspelt_and_misplaced_keys(change, message):
    document = manifest("rayjob.yaml")
    change(document)
    errors = kuberay_errors(document)
    assert any(re.search(message, e) for e in errors), errors


def test_cluster_shapes_at_full_scale():
    aws = from_file(str(CLUSTER / "aws.yaml"))
    assert (aws.nodes, aws.resources, aws.gpu) == (3, {"CPU": 384.0, "GPU": 16.0}, "H200")  # head + 2 x p5en
    for name in ("raycluster.yaml", "rayjob.yaml"):
        shape = from_file(str(KUBERAY / name))
        assert (shape.nodes, shape.resources, shape.gpu) == (3, {"CPU": 368.0, "GPU": 16.0}, "H200")  # 2 x 184


def test_cluster_shape_refuses_what_is_not_a_cluster_config(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("kind: Deployment\n")
    with pytest.raises(ValueError, match=rf"{path}: neither a Ray cluster-launcher config nor a KubeRay"):
        from_file(str(path))
    assert [quantity(v) for v in ("8", 8, "500m", "1.5")] == [8, 8, 0.5, 1.5]
    with pytest.raises(ValueError, match="not a CPU or GPU count: '8Gi'"):
        quantity("8Gi")


def image_paths() -> tuple[str, list[str]]:
    """The Dockerfile's WORKDIR and the folders it copies there."""
    text = (CLUSTER / "Dockerfile").read_text()
    (workdir,) = re.findall(r"^WORKDIR (\S+)$", text, re.MULTILINE)
    copied = re.findall(r"^COPY (?:--\S+ )*(\S+) \./\1$", text, re.MULTILINE)
    return workdir, copied


def test_rayjob_entrypoint_runs_with_the_real_cli_as_a_dry_run(small_screen):
    argv = shlex.split(manifest("rayjob.yaml")["spec"]["entrypoint"])
    assert argv[:2] == ["vsearch", "run"]
    workdir, copied = image_paths()
    space_in_image = Path(argv[2])
    assert space_in_image.is_relative_to(workdir) and space_in_image.relative_to(workdir).parts[0] in copied
    local_space = ROOT / space_in_image.relative_to(workdir)
    options = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert options["--dataset"].startswith("s3://") and options["--results"].startswith("s3://")
    options["--dataset"] = small_screen  # a local copy; nothing is read from or written to --results
    args = ["run", str(local_space), *(x for kv in options.items() for x in kv), "--dry-run", "--gpu-type", "H200"]
    ran = CliRunner().invoke(app, args)
    assert ran.exit_code == 0, ran.output
    assert "nothing is trained" in ran.output and options["--results"] in ran.output
    assert re.search(r"trials\s+│ 48, sampler nsga2", ran.output)
    assert re.search(r"H200-hours\s+│ [\d.]+", ran.output)


def test_dockerfile_is_rays_gpu_image_of_this_ray_and_its_command_runs_with_the_real_cli():
    text = (CLUSTER / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)$", text, re.MULTILINE)
    assert base == f"rayproject/ray:{version('ray')}-py311-gpu"
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    (command,) = re.findall(r"^CMD (\[.*\])$", text, re.MULTILINE)
    argv = json.loads(command)
    assert argv[0] == "vsearch"
    ran = CliRunner().invoke(app, argv[1:])
    assert ran.exit_code == 0, ran.output
    assert re.search(rf"^ray\s+{re.escape(version('ray'))}$", ran.output, re.MULTILINE)
    assert re.search(rf"^vsearch\s+{re.escape(version('vsearch'))}$", ran.output, re.MULTILINE)


def paper_space(dataset: str) -> SearchSpace:
    space = load_yaml(str(ROOT / "search_spaces" / "paper.yaml"), SearchSpace)
    return space.model_copy(update={"dataset": dataset})


def test_dry_run_on_aws_plans_16_concurrent_trials_in_3_waves(s3_bucket):
    """Two p5en nodes hold 16 one-GPU trials (8 CPUs + 1 for Ray Data each: 9 x 16 of 384 CPUs), so 48 trials
    take three waves."""
    dataset = f"{s3_bucket}/screen"
    synthesize(SMALL_SPEC, dataset)
    planned = dry_run(paper_space(dataset), from_file(str(CLUSTER / "aws.yaml")))
    assert planned.problems == []
    assert (planned.trials, planned.concurrent, planned.gpu) == (48, 16, "H200")
    assert planned.trial_needs == {"CPU": 9, "GPU": 1}
    (trial,) = planned.cost.configurations
    assert planned.cost.wall_hours()[1] == pytest.approx(3 * trial.gpu_hours)
    assert planned.cost.gpu_hours()[1] == pytest.approx(48 * trial.gpu_hours)


def test_dry_run_refuses_a_local_dataset_for_a_cluster_of_several_nodes(small_screen):
    ran = CliRunner().invoke(
        app, ["run", str(ROOT / "search_spaces" / "paper.yaml"), "--dry-run", "--dataset", small_screen,
              "--cluster", str(CLUSTER / "aws.yaml")],
    )  # fmt: skip
    assert ran.exit_code == 2
    assert f"dataset: {small_screen} is a local path, but the cluster has 3 nodes" in ran.output


def test_dry_run_here_says_no_gpu_trial_fits_and_why_there_is_no_cost(small_screen):
    here = ClusterShape("this machine (a local Ray)", 1, {"CPU": 2.0, "GPU": 0.0})
    planned = dry_run(paper_space(small_screen), here)
    assert planned.concurrent == 0 and planned.cost is None
    assert planned.problems == [
        "no trial fits this machine (a local Ray): trial.workers: 1 worker(s) x 1 GPU need 1 GPU(s); the cluster has 0",
        "no cost estimate: this machine (a local Ray) names no GPU model; give one with --gpu-type",
    ]
    cpu_trials = paper_space(small_screen).model_copy(
        update={
            "trial": paper_space(small_screen).trial.model_copy(update={"gpus_per_worker": 0, "cpus_per_worker": 1})
        }
    )
    planned = dry_run(cpu_trials, here, gpu="H200")
    assert planned.concurrent == 1 and planned.cost is None  # 2 CPUs hold one trial of 1 + 1 for Ray Data
    assert planned.problems == [
        "no cost estimate: the trials train on CPUs, and the throughput table holds GPU figures"
    ]


@pytest.mark.slow
def test_run_on_two_nodes_refuses_local_paths_before_anything_starts(small_screen, tmp_path):
    results = tmp_path / "results"
    path = write_space(tmp_path / "s.yaml", small_screen, str(results))
    with loopback_cluster(nodes=2, cpus_per_node=1) as cluster:
        run = subprocess.run([VSEARCH, "run", str(path), "--address", cluster.address], capture_output=True,
                             text=True, env=cluster.env, timeout=300)  # fmt: skip
        dry = subprocess.run([VSEARCH, "run", str(path), "--address", cluster.address, "--dry-run"],
                             capture_output=True, text=True, env=cluster.env, timeout=300)  # fmt: skip
    for ran in (run, dry):
        assert ran.returncode == 2, ran.stdout[-2000:] + ran.stderr[-2000:]
        assert f"dataset: {small_screen} is a local path, but the cluster has 2 nodes" in ran.stderr
    assert not results.exists()  # nothing written: no results folder, no lock, no study
