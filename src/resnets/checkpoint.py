"""Checkpoints that load without executing code.

File layout: one header line ``RESNETS-CKPT 1 <sha256 of payload>\\n`` followed by the payload, a
``torch.save`` archive holding only tensors and plain Python values, read back with
``torch.load(weights_only=True)``. Writes go to a temporary file in the same folder, are flushed
and fsync'ed, then renamed over the old file (and the folder fsync'ed), so a crash or a full disk
at any moment leaves either the previous checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, DataError, WeightsError
from .io import MAX_WEIGHTS_BYTES, atomic_write_bytes, first_line, read_bounded

MAGIC = b"RESNETS-CKPT 1 "


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> str:
    """Serialise ``state`` (tensors and plain values only) atomically; returns its SHA-256."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    atomic_write_bytes(path, MAGIC + digest.encode() + b"\n" + payload)
    return digest


def safe_torch_load(data: bytes | str | os.PathLike, label: str) -> Any:
    """``torch.load(weights_only=True)``, turning refusals into a clear :class:`WeightsError`."""
    src = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        return torch.load(src, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "disallowed content"
        raise WeightsError(
            f"{label}: refused to load: the file holds objects that would execute code or are not "
            f"plain weights ({first[:200]})"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        raise WeightsError(
            f"{label}: not a readable PyTorch file ({first_line(e) or type(e).__name__})"
        ) from None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, verifying its SHA-256."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        raw = read_bounded(path, MAX_WEIGHTS_BYTES, "checkpoint")
    except DataError as e:
        raise CheckpointError(str(e)) from None
    if not raw.startswith(MAGIC):
        raise CheckpointError(f"{path}: not a resnets checkpoint (missing header)")
    nl = raw.find(b"\n", len(MAGIC))
    if nl < 0:
        raise CheckpointError(f"{path}: truncated checkpoint header")
    expected = raw[len(MAGIC) : nl].decode(errors="replace")
    payload = raw[nl + 1 :]
    got = hashlib.sha256(payload).hexdigest()
    if got != expected:
        raise CheckpointError(
            f"{path}: checksum mismatch (file is corrupt or truncated: sha256 {got[:16]}..., "
            f"expected {expected[:16]}...)"
        )
    state = safe_torch_load(payload, str(path))
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: checkpoint payload is not a dict")
    return state
