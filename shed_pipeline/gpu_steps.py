"""Where the steps that use the compute device run: the `gpu` pool, a tag to find them by, and the
pod each asks Kubernetes for under the k8s executor (one pod per step).

The pod config is not an op tag: the k8s executor that `executors.executor_for(settings)`
builds gives each GPU op's pod `settings.k8s_gpu_step` (SHED_K8S_GPU_STEP, a YAML file) or
DEFAULT_GPU_STEP_K8S, through its `per_step_k8s_config`. So the file is read when the definitions
are built with that executor (a typo fails there, not on the cluster), never on import, and only
there: other executors have no pods to configure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import dagster as dg

GPU_POOL = "gpu"
GPU_TAG = {"shed/gpu": "true"}

# What a GPU step's pod asks Kubernetes for under k8s_job_executor. deploy/gpu-step.yaml holds the same.
DEFAULT_GPU_STEP_K8S: dict = {
    "container_config": {
        "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "24Gi"}, "requests": {"cpu": "4", "memory": "16Gi"}}
    },
    "pod_spec_config": {
        "node_selector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}
K8S_CONFIG_KEYS = {
    "container_config",
    "pod_spec_config",
    "pod_template_spec_metadata",
    "job_spec_config",
    "job_metadata",
    "merge_behavior",
}


def gpu_step_k8s_config(path: str | Path | None = None) -> dict:
    """The pod config of GPU steps: DEFAULT_GPU_STEP_K8S, or the YAML file at `path`, checked so a
    typo fails when the definitions load, not on the cluster."""
    import yaml

    if not path:
        return DEFAULT_GPU_STEP_K8S
    try:
        cfg = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the GPU step config ({exc})") from exc
    if not isinstance(cfg, dict) or not set(cfg) <= K8S_CONFIG_KEYS:
        raise ValueError(f"{path}: a GPU step config is a mapping with keys among {sorted(K8S_CONFIG_KEYS)}")
    limits = ((cfg.get("container_config") or {}).get("resources") or {}).get("limits") or {}
    if not limits.get("nvidia.com/gpu"):
        raise ValueError(f"{path}: container_config.resources.limits must ask for nvidia.com/gpu")
    return cfg


def gpu_step() -> dict:
    """Arguments of every asset that uses the compute device: the `gpu` pool (one GPU step at a time
    across runs: `dagster instance concurrency set gpu 1`) and a tag to find them by."""
    return {"pool": GPU_POOL, "tags": dict(GPU_TAG), "op_tags": dict(GPU_TAG)}


def gpu_op() -> dict:
    """Arguments of an op of a graph asset that uses the compute device (each op is a step, a pod
    under the k8s executor): the `gpu` pool and the tag."""
    return {"pool": GPU_POOL, "tags": dict(GPU_TAG)}


def gpu_op_names(assets: Iterable[dg.AssetsDefinition]) -> list[str]:
    """The ops in the `gpu` pool among `assets`, a graph asset's ops included: the steps that get a GPU pod."""
    ops = (
        op
        for asset in assets
        for op in (asset.node_def.node_defs if isinstance(asset.node_def, dg.GraphDefinition) else [asset.op])
    )
    return sorted({op.name for op in ops if op.pool == GPU_POOL})


def k8s_merged(base: Mapping, over: Mapping) -> dict:
    """`over` merged onto `base` the way dagster-k8s merges a step's pod configs (mappings merged, lists
    such as tolerations, env and volumes appended without duplicates, `over`'s merge_behavior honoured),
    so a run config's entry for a GPU op adds to the GPU pod as it would to an op tag."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import UserDefinedDagsterK8sConfig

    def context(config: Mapping) -> K8sContainerContext:
        return K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(config))

    out = context(base).merge(context(over)).run_k8s_config.to_dict()
    # Without merge_behavior the result merges DEEP onto the executor's own step config, as the op tag did.
    return {key: value for key, value in out.items() if value and key != "merge_behavior"}


def with_gpu_step_pods(inner: dg.ExecutorDefinition, *, op_names: Iterable[str], pod: Mapping) -> dg.ExecutorDefinition:
    """`inner` (k8s_job_executor) with `pod` as the `per_step_k8s_config` of each of `op_names`. A run
    config's own `per_step_k8s_config` entry for one of them is merged onto `pod` (`k8s_merged`: an
    extra toleration or env var keeps the GPU request); its entries for other ops are kept as given."""
    create = inner.executor_creation_fn
    if create is None:
        raise ValueError(f"executor {inner.name} has no creation function to wrap")
    names = list(op_names)

    def create_with_pods(init_context: dg.InitExecutorContext):
        config = dict(init_context.executor_config)
        per_step = dict(config.get("per_step_k8s_config") or {})
        for name in names:
            per_step[name] = k8s_merged(pod, per_step.get(name) or {})
        return create(init_context._replace(executor_config={**config, "per_step_k8s_config": per_step}))

    return dg.ExecutorDefinition(
        name=inner.name,
        config_schema=inner.config_schema,
        requirements=inner.get_requirements,
        executor_creation_fn=create_with_pods,
        description=f"{inner.description or inner.name} (GPU steps in GPU pods)",
    )
