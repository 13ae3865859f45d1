"""ifd on a tiny Llama (random weights, offline): equals PPL(response | prompt) / PPL(response)
computed directly with torch, and is cached per row and model (a second call computes nothing)."""

import json

import numpy as np
import polars as pl
import pytest
import torch

from shed_pipeline.core import lm
from shed_pipeline.core.row_values import ROW_VALUES, RowValueInputs, compute_row_values
from shed_pipeline.core.row_values.ifd import IFDSettings
from shed_pipeline_tests.tiny_lm import build_tiny_lm


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("tiny_llama"))


def pool_frame():
    chat = json.dumps([{"role": "user", "content": "what colour is the sky"}])
    return pl.DataFrame(
        {
            "row_id": ["r1", "r2", "r3", "r4"],
            "instruction": [
                "what is the capital of france",
                "what colour is the sky",
                "a b c",
                "what colour is the sky",
            ],
            "input": ["", "", "d e f", ""],
            "output": ["paris", "blue", "g", "green sky"],
            "messages": [None, None, None, chat],
        }
    )


def direct_ifd(model, tok, prompt: str, response: str) -> float:
    """exp(mean NLL of the response tokens (and EOS) after the prompt - mean NLL after one start token)."""
    r = tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]

    def mean_nll(context):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([context + r])).logits[0].float(), -1)
        return -float(sum(logp[len(context) - 1 + j, r[j]] for j in range(len(r)))) / len(r)

    start = tok.bos_token_id if tok.bos_token is not None else tok.eos_token_id
    return float(np.exp(mean_nll(tok(prompt, add_special_tokens=False)["input_ids"]) - mean_nll([start])))


def test_ifd_equals_a_direct_computation_and_is_computed_once(tiny_dir, tmp_path, monkeypatch):
    pool = pool_frame()
    settings = IFDSettings(model=str(tiny_dir), max_tokens=64)
    lines: list[str] = []
    inputs = RowValueInputs(
        pool, pl.DataFrame(), feature_cache=tmp_path / "cache.duckdb", cache_dir=tmp_path, log=lines.append
    )
    frame, stats = compute_row_values(["ifd"], {"ifd": settings}, inputs)
    model, tok = lm.load_lm(tiny_dir)
    prompts = lm.prompt_texts(tok, pool["instruction"], pool["input"], pool["messages"])
    expect = [direct_ifd(model, tok, p, o) for p, o in zip(prompts, pool["output"], strict=True)]
    assert frame["row_id"].to_list() == pool["row_id"].to_list() and stats["ifd"]["rows"] == 4
    np.testing.assert_allclose(frame["value"].to_numpy(), expect, rtol=1e-5)
    assert any("ifd: 4 rows to score" in line for line in lines)
    assert any(line.startswith("ifd: 8/8 sequences") for line in lines)  # progress: two passes per row

    # A second call, and a refresh with one new row: only what is not cached is computed.
    def no_model(*_a, **_k):
        raise AssertionError("the model was loaded although every row is cached")

    monkeypatch.setattr(lm, "load_lm", no_model)
    again, _ = compute_row_values(["ifd"], {"ifd": settings}, inputs)
    assert again.equals(frame)
    monkeypatch.undo()
    grown = pl.concat(
        [
            pool,
            pl.DataFrame(
                {"row_id": ["r5"], "instruction": ["the sky"], "input": [""], "output": ["blue"], "messages": [None]}
            ),
        ]
    )
    lines.clear()
    more, _ = compute_row_values(
        ["ifd"],
        {"ifd": settings},
        RowValueInputs(
            grown, pl.DataFrame(), feature_cache=tmp_path / "cache.duckdb", cache_dir=tmp_path, log=lines.append
        ),
    )
    assert any("ifd: 1 rows to score" in line and "(4 cached)" in line for line in lines)
    assert more.head(4).equals(frame)
    assert more["value"][4] == pytest.approx(direct_ifd(model, tok, lm.prompt_text(tok, "the sky"), "blue"), rel=1e-5)


def test_cache_entries_are_per_model_and_token_budget(tiny_dir, tmp_path):
    pool = pool_frame().head(2)
    cache = tmp_path / "cache.duckdb"
    a, _ = compute_row_values(
        ["ifd"],
        {"ifd": IFDSettings(model=str(tiny_dir), max_tokens=64)},
        RowValueInputs(pool, pl.DataFrame(), feature_cache=cache),
    )
    # A budget that cuts the prompt to one token changes the value: it must not come from the cache.
    b, _ = compute_row_values(
        ["ifd"],
        {"ifd": IFDSettings(model=str(tiny_dir), max_tokens=3)},
        RowValueInputs(pool, pl.DataFrame(), feature_cache=cache),
    )
    assert not np.allclose(a["value"].to_numpy(), b["value"].to_numpy())


def test_registry_defaults_are_the_target_lm():
    assert ROW_VALUES["ifd"].defaults() == {"model": "smollm2-135m-instruct", "max_tokens": 256}
    assert ROW_VALUES["knn_shapley"].defaults() == {"k": 5, "validation_rows": 1000}


def test_shards_computed_apart_fill_the_cache_for_the_final_pass(tiny_dir, tmp_path, monkeypatch):
    import hashlib

    from shed_pipeline.core.row_values import compute_shard, kinds_apart

    assert kinds_apart(["knn_shapley", "ifd"]) == ["ifd"]  # knn_shapley needs every row at once
    pool = pool_frame().with_columns(
        pl.col("row_id").map_elements(lambda r: hashlib.sha256(r.encode()).hexdigest(), return_dtype=pl.Utf8)
    )
    settings = {"ifd": IFDSettings(model=str(tiny_dir), max_tokens=64)}
    serial, _ = compute_row_values(
        ["ifd"],
        settings,
        RowValueInputs(pool, pl.DataFrame(), feature_cache=tmp_path / "serial.duckdb", cache_dir=tmp_path),
    )
    cache, shards = tmp_path / "sharded.duckdb", 3
    rows = [
        compute_shard(
            ["ifd"], settings, RowValueInputs(pool, pl.DataFrame(), feature_cache=cache, cache_dir=tmp_path), s, shards
        )["rows"]
        for s in range(shards)
    ]
    assert sum(rows) == pool.height and sum(r > 0 for r in rows) >= 2  # each row in one shard, the work spread

    def no_model(*_a, **_k):
        raise AssertionError("the final pass loaded the model although the shards scored every row")

    monkeypatch.setattr(lm, "load_lm", no_model)
    final, _ = compute_row_values(
        ["ifd"], settings, RowValueInputs(pool, pl.DataFrame(), feature_cache=cache, cache_dir=tmp_path)
    )
    assert final["row_id"].to_list() == serial["row_id"].to_list()
    np.testing.assert_allclose(
        final["value"].to_numpy(), serial["value"].to_numpy(), rtol=1e-5
    )  # batches differ: last bits may
    with pytest.raises(ValueError, match="none of the row value kinds knn_shapley values rows apart"):
        compute_shard(["knn_shapley"], settings, RowValueInputs(pool, pl.DataFrame()), 0, 2)
    with pytest.raises(ValueError, match="shard 2 of 2 does not exist"):
        compute_shard(["ifd"], settings, RowValueInputs(pool, pl.DataFrame()), 2, 2)
