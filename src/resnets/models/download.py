"""The weights cache: files downloaded from their real addresses into ``$RESNETS_WEIGHTS`` (or
``~/.cache/resnets/weights``) and checked against their SHA-256 on every load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsError
from ..io import DownloadError, download, env_folder, file_digest

WEIGHTS_ENV = "RESNETS_WEIGHTS"


@dataclass(frozen=True)
class RemoteFile:
    """A file the weights need besides themselves, fetched into the weights cache."""

    url: str
    file: str
    sha256: str
    about: str


def weights_cache() -> Path:
    return env_folder(WEIGHTS_ENV, Path.home() / ".cache" / "resnets" / "weights")


def cached_download(
    url: str, file: str, sha256: str, label: str, download_ok: bool, progress: bool
) -> Path:
    """``file`` in the weights cache, downloaded from ``url`` when missing, and checked against
    the SHA-256 its name promises on every load (a cached file can be damaged or replaced)."""
    dest = weights_cache() / file
    if dest.is_file():
        if not file_digest(dest).startswith(sha256):
            raise WeightsError(
                f"{label}: {dest} does not match its SHA-256 {sha256[:12]}... (damaged or "
                "replaced); delete it to download it again"
            )
        return dest
    if not download_ok:
        raise WeightsError(f"{label}: not downloaded yet; fetch {url} into {dest}")
    try:
        return download(
            url,
            dest,
            sha256_prefix=sha256,
            progress=progress,
            offline_hint=f"Offline? Download {url} and put it at {dest}",
        )
    except DownloadError as e:
        raise WeightsError(f"{label}: {e}") from None


def remote_file(rf: RemoteFile, *, download_ok: bool = True, progress: bool = False) -> Path:
    """The cached copy of ``rf`` (downloaded and checked when missing)."""
    return cached_download(rf.url, rf.file, rf.sha256, rf.file, download_ok, progress)
