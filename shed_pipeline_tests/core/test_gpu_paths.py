"""The device paths on CUDA, checked against the CPU (skipped, with the reason, where no GPU is)."""

import numpy as np
import pytest
import torch

from shed_pipeline.core import lm
from shed_pipeline_tests.tiny_lm import build_tiny_lm

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

PROMPTS = ["the capital of france is", "what colour sky", "a b c d"]
TARGETS = ["paris", "blue", "e f g"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("tiny_llama"))


def test_log_likelihoods_and_features_on_cuda_match_the_cpu(tiny_dir):
    cpu, tok = lm.load_lm(tiny_dir, device="cpu")
    gpu, _ = lm.load_lm(tiny_dir, device="cuda")
    want = lm.continuation_logprobs(cpu, tok, PROMPTS, TARGETS)
    got = lm.continuation_logprobs(gpu, tok, PROMPTS, TARGETS)
    assert [n for _, n in got] == [n for _, n in want]
    assert [lp for lp, _ in got] == pytest.approx([lp for lp, _ in want], abs=1e-3)
    for a, b in zip(
        lm.penultimate_features(gpu, tok, PROMPTS, TARGETS),
        lm.penultimate_features(cpu, tok, PROMPTS, TARGETS),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, atol=1e-3)


def test_lora_on_cuda_learns_and_restores_the_base(tiny_dir):
    model, tok = lm.load_lm(tiny_dir, device="cuda")
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    base = lm.continuation_logprobs(model, tok, PROMPTS[:1], TARGETS[:1])[0][0]
    with lm.lora_finetuned(
        model, tok, PROMPTS[:1], TARGETS[:1], steps=5, lr=1e-2, rank=2, alpha=4, batch_size=1
    ) as tuned:
        assert next(tuned.parameters()).device.type == "cuda"
        assert lm.continuation_logprobs(tuned, tok, PROMPTS[:1], TARGETS[:1])[0][0] > base
    after = model.state_dict()
    assert set(after) == set(before) and all(torch.equal(after[k], before[k]) for k in before)


def test_real_minilm_on_cuda_matches_the_cpu():
    from shed_pipeline.core.embedding import SentenceTransformerEncoder

    texts = ["Translate to French: good morning", "Is this review positive? I loved it."]
    cpu = SentenceTransformerEncoder(device="cpu").encode(texts)
    gpu = SentenceTransformerEncoder(device="cuda", precision="fp16").encode(texts)
    assert (np.sum(cpu * gpu, axis=1) > 0.999).all()  # unit vectors: cosine similarity


def test_kmeans_on_cuda_recovers_the_clusters_the_cpu_finds():
    from shed_pipeline.core.clustering import kmeans, normalized_mutual_info

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4, size=(6, 16))
    x = (centres[rng.integers(6, size=600)] + rng.normal(size=(600, 16))).astype(np.float32)
    cpu, gpu = kmeans(x, 6, seed=0, device="cpu"), kmeans(x, 6, seed=0, device="cuda")
    assert gpu.inertia == pytest.approx(cpu.inertia, rel=1e-3)
    assert normalized_mutual_info(cpu.labels, gpu.labels) > 0.99
