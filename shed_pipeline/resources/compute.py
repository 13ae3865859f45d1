"""The compute device resource: where heavy steps run, and in which number format."""

import dagster as dg


class ComputeResource(dg.ConfigurableResource):
    """Where heavy steps run (embedding, k-means): CUDA when present unless told otherwise."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 32  # 32 is the fastest batch for MiniLM on a 2-core CPU (measured: batch 8 and 64 are no faster)
    precision: str = "auto"  # auto (fp16 on CUDA, bf16 on a CPU with AMX, else fp32) | fp32 | fp16 | bf16

    def torch_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"compute device {self.device!r} requested but CUDA is not available")
        return self.device

    def torch_precision(self) -> str:
        from shed_pipeline.core.embedding import PRECISIONS, auto_precision

        if self.precision == "auto":
            return auto_precision(self.torch_device())
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be auto, fp32, fp16 or bf16, not {self.precision!r}")
        return self.precision
