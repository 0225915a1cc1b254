"""The Hugging Face Hub for mmoe folders: load by hub id (through the local cache), push a folder.

``push`` uploads exactly the files it lists; ``dry_run`` writes that list (path, size, sha256) instead
of uploading, so what would be published can be checked without network.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mmoe.errors import MMoEError


class PushError(MMoEError):
    """A folder that cannot be published as it is."""


def model_dir(name_or_path: str | Path) -> Path:
    """A local model directory for a path, or the (cached) snapshot of a hub id."""
    if Path(name_or_path).is_dir():
        return Path(name_or_path)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=str(name_or_path)))


def load(name_or_path: str | Path, device: str = "cpu"):
    """``mmoe.load``: a saved mmoe model from a local directory or a hub id."""
    from mmoe.model.checkpoint import load_model

    return load_model(model_dir(name_or_path), device)


def upload_list(folder: str | Path) -> list[dict]:
    """Every regular file under ``folder`` with its size and sha256; symlinks and hidden paths are refused."""
    root = Path(folder)
    if not root.is_dir():
        raise PushError(f"not a directory: {root}")
    if not ((root / "mmoe_config.yaml").is_file() or (root / "config.json").is_file()):
        raise PushError(f"{root} is neither an mmoe model folder (mmoe_config.yaml) nor a Hugging Face one (config.json)")
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_symlink():
            raise PushError(f"{relative} is a symlink; push uploads regular files inside the folder only")
        if any(part.startswith(".") for part in relative.parts):
            raise PushError(f"{relative} is a hidden path; remove it before pushing")
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files.append({"path": relative.as_posix(), "size": path.stat().st_size, "sha256": digest})
    return files


def push(folder: str | Path, repo_id: str, *, private: bool = False, dry_run: str | Path | None = None,
         message: str = "Upload mmoe model") -> list[dict]:
    """Create ``repo_id`` (if needed) and upload ``folder``'s files; with ``dry_run``, write the plan there instead."""
    files = upload_list(folder)
    plan = {"repo_id": repo_id, "repo_type": "model", "private": private, "commit_message": message, "files": files}
    if dry_run is not None:
        Path(dry_run).write_text(json.dumps(plan, indent=1))
        return files
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=message,
                      allow_patterns=[f["path"] for f in files])
    return files
