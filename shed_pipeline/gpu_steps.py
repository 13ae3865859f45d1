"""Where the steps that use the compute device run: the `gpu` pool, a tag to find them by, and the
pod a GPU step asks Kubernetes for under the k8s executor (one pod per step)."""

import functools
from pathlib import Path

from shed_pipeline.settings import Settings

# What a GPU step's pod asks Kubernetes for under k8s_job_executor (one pod per step; run-level tags do
# not reach step pods, op tags do). deploy/gpu-step.yaml holds the same; SHED_K8S_GPU_STEP names a
# YAML file that replaces it (other node labels, more GPUs). Other executors ignore the tag.
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
    """The `dagster-k8s/config` of GPU steps: DEFAULT_GPU_STEP_K8S, or the YAML file at `path`
    (default: `Settings.k8s_gpu_step`, SHED_K8S_GPU_STEP), checked so a typo fails when the
    definitions load, not on the cluster."""
    import yaml

    if path is None:
        path = Settings.from_env().k8s_gpu_step
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


@functools.cache
def _gpu_pod() -> dict:
    # Read once, when the first asset module is defined (op tags are part of the definitions).
    return gpu_step_k8s_config()


def gpu_step() -> dict:
    """Arguments of every asset that uses the compute device: the `gpu` pool (one GPU step at a time
    across runs: `dagster instance concurrency set gpu 1`), a tag to find them by, the K8s pod config."""
    return {"pool": "gpu", "tags": {"shed/gpu": "true"}, "op_tags": {"dagster-k8s/config": _gpu_pod()}}


def gpu_op() -> dict:
    """Arguments of an op of a graph asset that uses the compute device: gpu_step's pool, and its K8s
    pod config as the op's tags (each op is a step, a pod under the k8s executor)."""
    step = gpu_step()
    return {"pool": step["pool"], "tags": step["op_tags"]}
