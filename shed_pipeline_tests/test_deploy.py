"""deploy/: the Helm values and instance config parse and say what deploy/README.md promises, the
GPU steps (and only they) carry the Kubernetes GPU request, and the prod environment of the values
loads the definitions with the k8s executor."""

from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_k8s import k8s_job_executor

from shed_pipeline.assets import ALL_ASSETS
from shed_pipeline.gpu_steps import DEFAULT_GPU_STEP_K8S, gpu_op_names, gpu_step_k8s_config, with_gpu_step_pods
from shed_pipeline.settings import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
GPU_ASSETS = {"embeddings", "clusters", "row_values", "proxy_shapley_scores", "evaluation_metrics"}
# Fields the chart's K8sRunLauncher schema accepts (it forbids others).
K8S_RUN_LAUNCHER_FIELDS = {
    "image",
    "imagePullPolicy",
    "jobNamespace",
    "loadInclusterConfig",
    "kubeconfigFile",
    "envConfigMaps",
    "envSecrets",
    "envVars",
    "volumeMounts",
    "volumes",
    "labels",
    "failPodOnRunFailure",
    "resources",
    "schedulerName",
    "securityContext",
    "runK8sConfig",
}


@pytest.fixture(scope="module")
def values():
    return yaml.safe_load((DEPLOY / "values.yaml").read_text())


def user_env(values) -> dict[str, str]:
    (dep,) = values["dagster-user-deployments"]["deployments"]
    return {e["name"]: e["value"] for e in dep["env"]}


def chart_instance_config(values) -> dict:
    """The run coordinator and concurrency sections of the dagster.yaml the chart writes from these
    values, as its templates do (helpers/instance/_run-coordinator.tpl, _concurrency.tpl), including
    the template's own refusal of run limits given in both places."""
    qrc = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"] or {}
    conc = values.get("concurrency") or {}
    pools, runs = conc.get("pools") or {}, conc.get("runs") or {}
    if runs.get("maxConcurrentRuns") is not None and qrc.get("maxConcurrentRuns") is not None:
        raise ValueError(
            "Cannot set both concurrency.runs.maxConcurrentRuns and "
            "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.maxConcurrentRuns"
        )
    coordinator = {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}
    names = {
        "maxConcurrentRuns": "max_concurrent_runs",
        "tagConcurrencyLimits": "tag_concurrency_limits",
        "dequeueIntervalSeconds": "dequeue_interval_seconds",
    }
    if any(v for v in qrc.values()):
        coordinator["config"] = {names[k]: v for k, v in qrc.items() if v}
    out = {"run_coordinator": coordinator}
    if conc.get("enabled"):
        section = {}
        if pools.get("defaultLimit") is not None:
            section["pools"] = {"default_limit": pools["defaultLimit"]}
        if runs.get("maxConcurrentRuns") is not None:
            section["runs"] = {"max_concurrent_runs": runs["maxConcurrentRuns"]}
        out["concurrency"] = section
    return out


def load_instance_config(cfg: dict, folder: Path) -> dict:
    """Dagster's own loading of an instance's dagster.yaml (schema and cross-section rules)."""
    # No public equivalent: dg.DagsterInstance.from_config would also open the storage (postgres) and give no dict.
    from dagster._core.instance.config import dagster_instance_config

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text(yaml.safe_dump(cfg))
    return dagster_instance_config(str(folder))[0]


def test_helm_values_run_steps_as_pods_with_postgres_s3_logs_and_one_lineage_writer(values, tmp_path):
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert set(launcher) <= K8S_RUN_LAUNCHER_FIELDS
    assert values["postgresql"]["enabled"] is True and values["postgresql"]["postgresqlDatabase"]
    logs = values["computeLogManager"]
    assert logs["type"] == "S3ComputeLogManager" and logs["config"]["s3ComputeLogManager"]["bucket"]
    # One run at a time and every pool at one step, in the instance config the chart renders, as
    # Dagster itself loads it (it refuses run limits in both the coordinator and `concurrency`).
    loaded = load_instance_config(chart_instance_config(values), tmp_path / "chart_home")
    assert loaded["concurrency"] == {"runs": {"max_concurrent_runs": 1}, "pools": {"default_limit": 1}}
    assert "config" not in loaded["run_coordinator"] or not loaded["run_coordinator"]["config"]
    # Everything that reads S3 has the credentials: the webserver reads step logs back from S3.
    for holder in (values["dagsterWebserver"], values["dagsterDaemon"], launcher):
        assert {"name": "shed-pipeline-s3"} in holder["envSecrets"]
    (dep,) = values["dagster-user-deployments"]["deployments"]
    # includeConfigInLaunchedRuns would pass the code server's size to every run and step pod.
    assert dep["includeConfigInLaunchedRuns"]["enabled"] and "resources" not in dep
    assert {"name": "shed-pipeline-s3"} in dep["envSecrets"]
    assert dep["dagsterApiGrpcArgs"] == ["-m", "shed_pipeline.definitions"]
    env = user_env(values)
    assert env["SHED_ENV"] == "prod" and env["SHED_EXECUTOR"] == "k8s"
    assert env["SHED_PIPELINE_OUT"].startswith("s3://") and env["SHED_PIPELINE_SOURCE"].startswith("s3://")
    # Caches, state and lineage on the shared volume, mounted where SHED_PIPELINE_HOME points, in
    # the user-code pod (the sensor reads lineage) and in run and step pods.
    claim = yaml.safe_load((DEPLOY / "pvc.yaml").read_text())
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for holder in (dep, launcher):
        (vol,) = holder["volumes"]
        assert vol["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        assert [m["mountPath"] for m in holder["volumeMounts"] if m["name"] == vol["name"]] == [
            env["SHED_PIPELINE_HOME"]
        ]


def test_chart_values_with_run_limits_in_both_places_are_refused(tmp_path):
    # What the chart's template and Dagster both refuse: the check above would catch a regression.
    both = yaml.safe_load((DEPLOY / "values.yaml").read_text())
    both["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"] = {"maxConcurrentRuns": 1}
    with pytest.raises(ValueError, match="Cannot set both"):
        chart_instance_config(both)
    cfg = {
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {"max_concurrent_runs": 1},
        },
        "concurrency": {"pools": {"default_limit": 1}},
    }
    with pytest.raises(dg.DagsterInvalidConfigError, match="incompatible with the `concurrency > runs` config"):
        load_instance_config(cfg, tmp_path)


def test_the_images_and_extras_carry_the_postgres_storage_the_instance_names():
    import tomllib

    extras = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "'.[k8s]'" in (DEPLOY / "Dockerfile").read_text()
    assert any(d.startswith("dagster-postgres") for d in extras["k8s"]) and any(
        d.startswith("dagster-postgres") for d in extras["prod"]
    )
    from dagster_postgres import DagsterPostgresStorage  # noqa: F401  (what `storage: postgres` loads)


def test_instance_config_for_prod_outside_kubernetes_sends_compute_logs_to_s3(s3_bucket, monkeypatch, tmp_path):
    cfg = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert "postgres" in cfg["storage"] and cfg["telemetry"]["enabled"] is False
    assert load_instance_config(cfg, tmp_path / "home")["concurrency"] == {
        "runs": {"max_concurrent_runs": 1},
        "pools": {"default_limit": 1},
    }
    for k, v in {
        "DAGSTER_PG_HOST": "db",
        "DAGSTER_PG_USER": "u",
        "DAGSTER_PG_PASSWORD": "p",
        "DAGSTER_PG_DB": "d",
        "SHED_COMPUTE_LOG_BUCKET": s3_bucket.name,
    }.items():
        monkeypatch.setenv(k, v)
    # No public equivalent: Dagster exports neither its config processing nor the instance schema.
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config_schema

    checked = process_config(dagster_instance_config_schema(), cfg)  # Dagster's own schema and env resolution
    assert checked.success, checked.errors
    logs = checked.value["compute_logs"]
    assert logs["class"] == "S3ComputeLogManager"
    # The configured manager, pointed at the test S3 server, uploads a step's output there.
    from dagster._core.storage.compute_log_manager import ComputeIOType  # not exported publicly
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    resolved = process_config(dg.Field(S3ComputeLogManager.config_type()).config_type, logs["config"])
    assert resolved.success, resolved.errors
    # No endpoint in the file (a required {env: ...} would break real AWS): boto3 takes an
    # S3-compatible store's from AWS_ENDPOINT_URL_S3, which the fixture points at the test server.
    assert "endpoint_url" not in resolved.value
    manager = S3ComputeLogManager(**resolved.value, local_dir=str(tmp_path / "logs"))
    # A step's captured stdout as the local manager leaves it, then the upload the manager does at
    # the step's end (capture_logs itself redirects file descriptors, which pytest's capture owns).
    key = ["run-1", "compute_logs", "embeddings"]
    local = Path(manager.local_manager.get_captured_local_path(key, "out"))
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text("embedding 120 rows\n")
    manager.upload_to_cloud_storage(key, ComputeIOType.STDOUT)
    key = f"{resolved.value['prefix']}/storage/run-1/compute_logs/embeddings.out"
    assert b"embedding 120 rows" in s3_bucket.get(key)


GPU_OPS = [  # the ops of the GPU assets; row_values and proxy_shapley_scores are graphs
    "clusters",
    "embeddings",
    "evaluate_share_of_coalitions",
    "evaluation_metrics",
    "score_row_shard",
    "value_cluster_proxies",
    "value_rows",
]


def test_gpu_steps_and_only_they_are_in_the_gpu_pool():
    shipped = yaml.safe_load((DEPLOY / "gpu-step.yaml").read_text())
    assert shipped == DEFAULT_GPU_STEP_K8S  # the file documents the built-in default
    assert gpu_step_k8s_config(str(DEPLOY / "gpu-step.yaml")) == shipped
    # Every op (a step under the k8s executor), by asset; proxy_shapley_scores is a graph whose planning
    # op uses no device, and whose share and value ops do.
    ops = [
        (a.key.to_user_string(), op)
        for a in ALL_ASSETS
        for op in (a.node_def.node_defs if isinstance(a.node_def, dg.GraphDefinition) else [a.op])
    ]
    assert {name for name, op in ops if op.pool == "gpu"} == GPU_ASSETS
    assert {op.name for name, op in ops if name == "proxy_shapley_scores" and op.pool == "gpu"} == {
        "evaluate_share_of_coalitions",
        "value_cluster_proxies",
    }
    assert all((op.pool == "gpu") == (op.tags.get("shed/gpu") == "true") for _, op in ops)
    assert gpu_op_names(ALL_ASSETS) == GPU_OPS
    # The pod config is the executor's, never an op tag: nothing reads a file when the assets are imported.
    assert not any("dagster-k8s/config" in op.tags for _, op in ops)


def a_job() -> dg.JobDefinition:
    """A job for an executor's init context (the context takes a reconstructable one)."""

    @dg.op
    def nothing() -> None:
        pass

    @dg.job
    def one_op():
        nothing()

    return one_op


def k8s_executor_config(executor: dg.ExecutorDefinition, run_config: dict) -> dict:
    """The executor config `executor` hands to k8s_job_executor for `run_config`'s `execution.config`."""
    handed = []
    capture = dg.ExecutorDefinition(
        name="k8s",
        config_schema=executor.config_schema,
        executor_creation_fn=lambda ctx: handed.append(dict(ctx.executor_config)) or dg.in_process_executor,
    )
    wrapped = with_gpu_step_pods(capture, op_names=GPU_OPS, pod=DEFAULT_GPU_STEP_K8S)
    context = dg.InitExecutorContext(
        job=dg.reconstructable(a_job),
        executor_def=wrapped,
        executor_config=run_config,
        instance=dg.DagsterInstance.ephemeral(),
    )
    wrapped.executor_creation_fn(context)
    return handed[0]


def test_the_k8s_executor_gives_gpu_steps_and_only_them_the_gpu_pod():
    per_step = k8s_executor_config(k8s_job_executor, {"job_namespace": "ml"})["per_step_k8s_config"]
    assert per_step == {name: DEFAULT_GPU_STEP_K8S for name in GPU_OPS}
    # A run config's own entries: merged over the GPU pod for a GPU op, kept as given for another.
    # A run config's entry adds to the GPU pod as dagster-k8s adds to an op tag: lists appended.
    spot = {"key": "spot", "operator": "Exists"}
    env = {
        "container_config": {"env": [{"name": "HF_HOME", "value": "/cache"}]},
        "pod_spec_config": {"tolerations": [spot]},
    }
    cpu = {"container_config": {"resources": {"limits": {"memory": "4Gi"}}}}
    config = k8s_executor_config(
        k8s_job_executor, {"job_namespace": "ml", "per_step_k8s_config": {"embeddings": env, "curated_subset": cpu}}
    )
    assert config["job_namespace"] == "ml" and config["per_step_k8s_config"]["curated_subset"] == cpu
    embeddings = config["per_step_k8s_config"]["embeddings"]
    assert embeddings["container_config"]["env"] == env["container_config"]["env"]
    assert embeddings["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert embeddings["pod_spec_config"]["node_selector"] == DEFAULT_GPU_STEP_K8S["pod_spec_config"]["node_selector"]
    assert embeddings["pod_spec_config"]["tolerations"] == [
        *DEFAULT_GPU_STEP_K8S["pod_spec_config"]["tolerations"],
        spot,
    ]


def test_the_gpu_pod_is_valid_k8s_executor_config(tmp_path):
    from shed_pipeline.definitions import build_definitions

    settings = Settings.from_env({}).replace(home=tmp_path, executor="k8s", k8s_gpu_step=DEPLOY / "gpu-step.yaml")
    job = build_definitions(settings).resolve_job_def("shed_curation_job")
    pods = {name: DEFAULT_GPU_STEP_K8S for name in GPU_OPS}
    dg.validate_run_config(job, {"execution": {"config": {"per_step_k8s_config": pods}}})


def test_a_wrong_gpu_step_file_fails_when_the_k8s_definitions_load(tmp_path):
    from shed_pipeline.definitions import build_definitions

    bad = tmp_path / "gpu.yaml"
    bad.write_text("container_config:\n  resources:\n    limits:\n      cpu: 2\n")
    with pytest.raises(ValueError, match="must ask for nvidia.com/gpu"):
        gpu_step_k8s_config(str(bad))
    bad.write_text("nodeSelector: {}\n")
    with pytest.raises(ValueError, match="keys among"):
        gpu_step_k8s_config(str(bad))
    settings = Settings.from_env({}).replace(home=tmp_path, k8s_gpu_step=bad)
    with pytest.raises(ValueError, match=f"^{bad}: a GPU step config is a mapping"):
        build_definitions(settings.replace(executor="k8s"))
    build_definitions(settings.replace(executor="multiprocess"))  # no pods, so the file is not read


def test_the_prod_environment_of_the_values_loads_with_the_k8s_executor(values, monkeypatch, tmp_path):
    for k, v in user_env(values).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("SHED_PIPELINE_HOME", str(tmp_path / "home"))  # a writable stand-in for the volume
    from shed_pipeline.definitions import build_definitions
    from shed_pipeline.resources import S3ParquetIOManager

    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("shed_curation_job").executor_def.name == "k8s"
    assert isinstance(defs.resources["io_manager"], S3ParquetIOManager)
    assert defs.resources["io_manager"].prefix == "s3://shed-data/curated/_assets"
