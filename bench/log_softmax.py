"""log_softmax (logprobs) over an LLM vocabulary: bench/softmax.py's sweep with the other op."""
from __future__ import annotations

from bench import softmax

OP = "log_softmax"
SIZE, CPU_SIZE = softmax.SIZE, softmax.CPU_SIZE
LINES = softmax.lines(OP)


def title(dtype: str, vocab: int) -> str:
    return softmax.title(dtype, vocab, OP)


def run(tokens_sweep, vocab: int, dtype: str, reps: int) -> tuple[dict, list[dict]]:
    return softmax.run(tokens_sweep, vocab, dtype, reps, OP)
