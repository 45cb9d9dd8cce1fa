"""Distil the packaged static word-piece vectors from all-MiniLM-L6-v2.

    .venv/bin/python scripts/build_static_vectors.py [--out PATH] [--dim 128]

Needs the ``embeddings`` extra (PyTorch, transformers) and the verified MiniLM folder
(found as the accurate pipeline finds it, or ``INTENTBRIDGE_EMBEDDINGS``). For every
word piece of MiniLM's vocabulary, the model reads ``[CLS] piece [SEP]`` and the
piece's output vector is kept; the vectors are centred, reduced by PCA to ``--dim``
dimensions (signs fixed so that a rebuild gives the same file) and stored as int8 rows
with one float32 scale each. What was compared before choosing this is in docs/nlu.md
("Round 3"). Takes ~15 s on two cores.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np

from intentbridge.understanding.encoders import SentenceEncoder, import_torch
from intentbridge.understanding.static_vectors import table_path


def piece_outputs(encoder: SentenceEncoder, batch: int = 1024) -> np.ndarray:
    """``(vocab, 384)``: each piece's output when the model reads it alone."""
    torch = import_torch()
    tok = encoder.tokenizer
    size = len(tok.get_vocab())
    out = np.zeros((size, encoder.dimension), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, size, batch):
            ids = torch.arange(start, min(size, start + batch))
            inputs = torch.stack(
                [
                    torch.full_like(ids, tok.cls_token_id),
                    ids,
                    torch.full_like(ids, tok.sep_token_id),
                ],
                dim=1,
            )
            hidden = encoder.model(input_ids=inputs, attention_mask=torch.ones_like(inputs))
            out[start : start + len(ids)] = hidden.last_hidden_state[:, 1].float().numpy()
    return out


def reduce(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Centre and project on the first ``dim`` principal axes, with fixed signs."""
    centred = vectors - vectors.mean(axis=0)
    _, _, axes = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    axes = axes[:dim]
    # an axis's sign is arbitrary; make its largest coordinate positive
    signs = np.sign(axes[np.arange(dim), np.abs(axes).argmax(axis=1)])
    return (centred @ (axes * signs[:, None]).T).astype(np.float32)


def quantise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and the float32 scale of each (``row * scale`` ≈ the vector)."""
    scales = np.abs(vectors).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    rows = np.round(vectors / scales[:, None]).astype(np.int8)
    return rows, scales.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=table_path())
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    started = time.perf_counter()
    encoder = SentenceEncoder(num_threads=2)
    vocab = [p for p, _ in sorted(encoder.tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    if any("\n" in piece for piece in vocab):
        raise SystemExit("a word piece holds a newline; the vocabulary format cannot store it")
    rows, scales = quantise(reduce(piece_outputs(encoder), args.dim))
    buffer = io.BytesIO()
    np.savez(
        buffer,
        vocab=np.frombuffer("\n".join(vocab).encode("utf-8"), dtype=np.uint8),
        vectors=rows,
        scales=scales,
    )
    args.out.write_bytes(buffer.getvalue())
    print(
        f"{args.out}: {len(vocab)} pieces x {args.dim}, "
        f"{args.out.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
