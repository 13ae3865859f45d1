"""LoRA fine-tuning of the target model on (prompt, target) pairs, seeded, inside a context that
restores the base weights; and FinetuneBudget, a fine-tune's steps, hyperparameters and seed."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from shed_pipeline.core.lm.tokens import encode_pairs, right_padded
from shed_pipeline.core.progress import Progress


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
                (p_ids or [tok.eos_token_id], t_ids) for p_ids, t_ids in encode_pairs(tok, prompts, targets, max_tokens)
            ]
            opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
            rng = np.random.default_rng(seed)
            order: list[int] = []
            peft_model.train()
            for _ in range(steps):
                if len(order) < batch_size:
                    order += rng.permutation(len(examples)).tolist()
                batch, order = order[:batch_size], order[batch_size:]
                ids, att = right_padded([examples[i][0] + examples[i][1] for i in batch], tok)
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
