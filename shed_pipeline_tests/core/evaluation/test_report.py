"""core/evaluation/report.py: the held-out rows the model-free metrics use, and the LM arms' prompts."""

import numpy as np

from shed_pipeline.core.evaluation import evaluation_report, lm_arms_report, subset_report
from shed_pipeline_tests.tiny_lm import build_tiny_lm


def test_the_heldout_utility_uses_the_first_heldout_rows_test_rows_by_id():
    """Its cost is test rows x pool rows per arm: evaluation_report caps the test rows at
    `heldout_rows` (the first by row id, a fixed sample), and 0 means the whole test split."""
    from types import SimpleNamespace

    import polars as pl

    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pool = pl.DataFrame(
        {
            "row_id": [f"p{i:02d}" for i in range(30)],
            "output": [f"w{i % 5} w{i % 3}" for i in range(30)],
            "task": [f"t{i % 4}" for i in range(30)],
        }
    )
    test_x = rng.normal(size=(9, 4))
    test = pl.DataFrame(
        {
            "row_id": [f"q{i}" for i in (5, 2, 8, 0, 7, 1, 3, 6, 4)],
            "output": [f"w{i % 5}" for i in range(9)],
            "embedding": list(test_x),
        }
    )
    clusters = [i % 6 for i in range(30)]
    curated = np.array([0, 3, 7, 12])
    first3 = test.sort("row_id").head(3)  # q0, q1, q2
    for rows, held in ((3, first3), (0, test), (50, test)):
        settings = SimpleNamespace(seed=0, random_seeds=2, k=2, include_full_pool=True, heldout_rows=rows, lm=False)
        got = evaluation_report(
            settings,
            pool,
            x,
            pool_clusters=clusters,
            test=test,
            curated_idx=curated,
            baselines={},
            device="cpu",
            cache_dir=None,
            arms_cache=None,
            log=lambda _m: None,
        )
        want = subset_report(
            curated,
            x,
            pool_outputs=pool["output"].to_list(),
            pool_clusters=clusters,
            pool_tasks=pool["task"].to_list(),
            test_vectors=np.stack(held["embedding"].to_list()),
            test_references=held["output"].to_list(),
            k=2,
            random_seeds=[0, 1],
            include_full_pool=True,
        )
        assert got["test_rows"] == held.height
        assert {key: got[key] for key in want} == want


def test_lm_arms_report_prompts_chat_rows_with_their_turns(tmp_path, monkeypatch):
    """The evaluation report's pool and test prompts: a chat row's turns through the chat template (the
    fine-tune's loss stays on the output: the last assistant turn); frames without the column as before."""
    import json

    import polars as pl
    from transformers import AutoTokenizer

    from shed_pipeline.assets.evaluate import EvaluationConfig
    from shed_pipeline.core.evaluation import lm_arms
    from shed_pipeline_tests.core.lm.chat_templates import CHAT

    model_dir = build_tiny_lm(tmp_path / "chat_llama")
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = CHAT
    tok.save_pretrained(model_dir)
    conv = json.dumps(
        [
            {"role": "system", "content": "a b"},
            {"role": "user", "content": "what colour"},
            {"role": "assistant", "content": "blue"},
            {"role": "user", "content": "the sky"},
        ]
    )
    pool = pl.DataFrame(
        {
            "row_id": ["p1", "p2", "p3"],
            "instruction": ["system: a b\n\nuser: what colour\n\nassistant: blue\n\nuser: the sky", "c", "d"],
            "input": ["", "e", ""],
            "output": ["blue", "f", "g"],
            "messages": [conv, None, None],
        }
    )
    test = pl.DataFrame(
        {"row_id": ["t1"], "instruction": ["the capital of france is"], "input": [""], "output": ["paris"]}
    )  # no messages column
    seen, done = {}, []
    real = lm_arms.evaluate_arms

    def spy(model, tok, arms, **kw):
        seen.update(pool=kw["pool_prompts"], pool_targets=kw["pool_targets"], test=kw["test_prompts"])
        return real(model, tok, arms, **kw)

    monkeypatch.setattr(lm_arms, "evaluate_arms", spy)
    config = EvaluationConfig(
        lm_model=str(model_dir),
        steps=1,
        lm_batch_size=2,
        lm_max_tokens=48,
        benchmarks=[],
        random_seeds=2,
        include_full_pool=False,
    )
    report = lm_arms_report(
        config,
        pool,
        test,
        curated_idx=[0],
        baselines={},
        device="cpu",
        cache_dir=tmp_path,
        log=lambda m: None,
        arms_cache=tmp_path / "arms",
        on_arm_done=lambda *a: done.append(a),
    )
    assert seen["pool"] == [
        "<|system|>a b\n<|user|>what colour\n<|assistant|>blue\n<|user|>the sky\n<|assistant|>",
        "<|user|>c\n\ne\n<|assistant|>",
        "<|user|>d\n<|assistant|>",
    ]
    assert seen["pool_targets"] == ["blue", "f", "g"] and seen["test"] == [
        "<|user|>the capital of france is\n<|assistant|>"
    ]
    assert [d[:2] for d in done] == [(1, 4), (2, 4), (3, 4), (4, 4)] and {r["arm"] for r in report["records"]} == {
        "base",
        "curated",
        "random",
    }
    assert [(c["arm"], c["benchmark"]) for c in report["comparisons"]] == [
        ("base", "test_split"),
        ("curated", "test_split"),
    ] and report["training"]["steps"] == 1
