import numpy as np
import pytest

from shed_pipeline.core.embedding import (
    EmbeddingCache,
    SentenceTransformerEncoder,
    auto_precision,
    compose,
    compose_many,
    cpu_flags,
    embed_texts,
    resolve_model_path,
    text_hash,
)
from shed_pipeline.core.embedding import cache as cache_module
from shed_pipeline.core.embedding import rows as rows_module


class FakeEncoder:
    """Deterministic vectors from text hashes; records what it was asked to encode."""

    model_id = "fake@1"
    dim = 8

    def __init__(self, fail_after: int | None = None):
        self.calls: list[list[str]] = []
        self.fail_after = fail_after

    def encode(self, texts):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("killed mid-embedding")
        self.calls.append(list(texts))
        out = np.stack([np.random.default_rng(int(text_hash(t)[:8], 16)).normal(size=self.dim) for t in texts]).astype(
            np.float32
        )
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    @property
    def encoded(self):
        return [t for c in self.calls for t in c]


ROWS = [(f"r{i}", f"Task {i % 3} instruction", f"input number {i}" if i % 5 else "") for i in range(40)]


def run(encoder, cache, rows=ROWS, chunk=7):
    """(vectors in row order, stats)."""
    ids, ins, inp = zip(*rows, strict=False)
    return embed_texts(list(ids), list(ins), list(inp), encoder, cache, chunk_rows=chunk)


def test_each_distinct_text_is_encoded_once_and_rows_compose(tmp_path):
    cache, enc = EmbeddingCache(tmp_path / "c.duckdb"), FakeEncoder()
    vecs, stats = run(enc, cache)
    # 3 distinct instructions + 32 non-empty inputs.
    assert sorted(enc.encoded) == sorted({r[1] for r in ROWS} | {r[2] for r in ROWS if r[2]})
    assert stats["rows_embedded"] == 40 and stats["texts_encoded"] == 35
    assert cache.count("fake@1", kind="segments") == 35
    one = FakeEncoder()
    for (_rid, ins, inp), v in zip(ROWS, vecs, strict=False):
        expect = compose(one.encode([ins])[0], one.encode([inp])[0] if inp else None)
        np.testing.assert_allclose(v, expect, rtol=1e-6)
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)


def test_rows_composed_and_read_in_small_blocks_are_the_same_vectors(tmp_path, monkeypatch):
    whole, _ = run(FakeEncoder(), EmbeddingCache(tmp_path / "whole.duckdb"))
    monkeypatch.setattr(rows_module, "COMPOSE_ROWS", 3)
    monkeypatch.setattr(cache_module, "GET_ROWS", 4)
    blocks = EmbeddingCache(tmp_path / "blocks.duckdb")
    vecs, stats = run(FakeEncoder(), blocks)
    assert stats["rows_embedded"] == 40
    np.testing.assert_array_equal(vecs, whole)
    hashes = [text_hash(r[2]) for r in ROWS if r[2]][::-1]  # any order of keys, across block edges
    np.testing.assert_array_equal(
        blocks.get("fake@1", hashes, kind="segments"), FakeEncoder().encode([r[2] for r in ROWS if r[2]][::-1])
    )
    with pytest.raises(KeyError, match="2 of 6 segments"):
        blocks.get("fake@1", [hashes[0], "gone", *hashes[1:4], "also gone"], kind="segments")


def test_many_rows_compose_as_one_row_at_a_time():
    """The vectorised composition against `compose` row by row: with and without an input, and an
    input that cancels the instruction (its vector is kept as it is)."""
    rng = np.random.default_rng(0)
    seg = rng.normal(size=(6, 5)).astype(np.float32)
    seg /= np.linalg.norm(seg, axis=1, keepdims=True)
    seg[5] = -seg[4]
    ii, xi = np.array([0, 1, 2, 0, 4, 3]), np.array([1, -1, 3, 0, 5, -1])
    got = compose_many(seg, ii, xi)
    for r in range(len(ii)):
        np.testing.assert_allclose(
            got[r], compose(seg[ii[r]], seg[xi[r]] if xi[r] >= 0 else None), rtol=1e-6, atol=1e-7
        )
    np.testing.assert_array_equal(got[1], seg[1])
    np.testing.assert_array_equal(got[4], seg[4])


def test_second_run_embeds_nothing_and_new_rows_only_their_texts(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.duckdb")
    first, _ = run(FakeEncoder(), cache)
    again = FakeEncoder()
    vecs, stats = run(again, cache)
    assert stats["rows_embedded"] == 0 and again.encoded == []
    np.testing.assert_array_equal(vecs, first)
    more = ROWS + [
        ("new1", "Task 0 instruction", "fresh input"),
        ("new2", "Brand new task", ""),
        ("new3", "Task 1 instruction", "input number 1"),
    ]
    enc = FakeEncoder()
    vecs, stats = run(enc, cache, more)
    # new3 repeats texts already encoded (another response): nothing to encode for it.
    assert (
        stats["rows_embedded"] == 2
        and stats["rows_reused"] == 41
        and sorted(enc.encoded) == ["Brand new task", "fresh input"]
    )
    np.testing.assert_array_equal(vecs[:40], first)
    np.testing.assert_array_equal(vecs[42], first[1])


def test_interrupted_run_keeps_finished_chunks_and_resumes_to_the_same_result(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.duckdb")
    with pytest.raises(KeyboardInterrupt):
        run(FakeEncoder(fail_after=2), cache)
    assert cache.count("fake@1", kind="segments") == 14  # two chunks of 7 were written
    resumed = FakeEncoder()
    vecs, stats = run(resumed, cache)
    assert stats["texts_encoded"] == 35 - 14 and len(resumed.encoded) == 21
    fresh, _ = run(FakeEncoder(), EmbeddingCache(tmp_path / "fresh.duckdb"))
    np.testing.assert_array_equal(vecs, fresh)


def test_buffered_writes_land_by_count_by_time_and_at_the_end(tmp_path):
    """Small chunks are written in few transactions (each costs a checkpoint), never held longer
    than flush_seconds, and what is still held is written when the block ends, even by an error."""
    cache = EmbeddingCache(tmp_path / "c.duckdb")
    vec = np.eye(4, dtype=np.float32)
    flushed = []
    with cache.buffered("m", kind="segments", on_flush=flushed.append) as w:
        w.flush_rows, w.flush_seconds = 6, 3600.0
        for i in range(4):  # 4 x 2 keys: one write of 6 (at the third add), the rest at the end
            w.add([f"k{i}a", f"k{i}b"], vec[:2])
            assert cache.count("m", kind="segments") == (6 if i >= 2 else 0)
    assert flushed == [6, 2] and cache.count("m", kind="segments") == 8
    with cache.buffered("t") as w:
        w.flush_rows, w.flush_seconds = 1000, 0.0  # every add is past the time limit
        w.add(["a"], vec[:1])
        assert cache.count("t") == 1
    with pytest.raises(RuntimeError), cache.buffered("e") as w:
        w.flush_rows, w.flush_seconds = 1000, 3600.0
        w.add(["a", "b"], vec[:2])
        raise RuntimeError("the encoder failed")
    np.testing.assert_array_equal(cache.get("e", ["b", "a"]), vec[[1, 0]])


def test_cache_get_reports_missing_rows(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.duckdb")
    with pytest.raises(KeyError, match="1 of 1"):
        cache.get("fake@1", ["nope"])


def test_real_minilm_loads_offline_and_embeds(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = SentenceTransformerEncoder("all-MiniLM-L6-v2", device="cpu", batch_size=8)
    v = enc.encode(["Translate to French: cat", "Translate to French: dog", "Add 2 and 3"])
    assert v.shape == (3, 384) and enc.dim == 384
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]  # related prompts are nearer


def test_unknown_model_names_are_refused_not_fetched():
    with pytest.raises(ValueError, match="never fetched"):
        resolve_model_path("some-org/some-hub-model")


def test_auto_precision_is_bf16_only_on_a_cpu_with_amx_and_fp16_on_cuda(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f amx_bf16 amx_tile\n")
    assert cpu_flags(str(info)) >= {"amx_bf16", "avx2"}
    assert auto_precision("cpu", cpu_flags(str(info))) == "bf16"
    assert (
        auto_precision("cpu", {"avx2", "avx512_bf16"}) == "fp32"
    )  # bf16 dot products without AMX tiles: not measured, so not chosen
    assert auto_precision("cuda", set()) == auto_precision("cuda:1", {"amx_bf16"}) == "fp16"
    assert cpu_flags(str(tmp_path / "absent")) == set()
    with pytest.raises(ValueError, match="precision must be one of fp32, fp16, bf16, not 'int4'"):
        SentenceTransformerEncoder(precision="int4")


def test_bf16_on_the_cpu_gives_unit_vectors_close_to_fp32_under_their_own_cache_key():
    texts = ["Translate the sentence into French.", "What is the capital of Peru?", "A much longer input " * 40]
    fp32 = SentenceTransformerEncoder(precision="fp32")
    bf16 = SentenceTransformerEncoder(precision="bf16")
    a, b = fp32.encode(texts), bf16.encode(texts)
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-6)
    assert (a * b).sum(1).min() > 0.999
    assert fp32.model_id != bf16.model_id  # their vectors differ in the last bits: never mixed in the cache
