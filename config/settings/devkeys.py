"""Development-only secrets generated into var/ on first run (never used when the environment sets them)."""

from __future__ import annotations

import base64
import json
import secrets
import sys
from pathlib import Path


def _load(var_dir: Path) -> dict[str, str]:
    path = var_dir / "dev-keys.json"
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    var_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "secret_key": secrets.token_urlsafe(50),
        "field_keys": "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "blind_index_key": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)
    print(
        f"WARNING: generated development keys into {path}. Set MEIYE_SECRET_KEY, MEIYE_FIELD_KEYS and "
        "MEIYE_BLIND_INDEX_KEY in production; losing the field keys makes personal data unreadable.",
        file=sys.stderr,
    )
    return data


def dev_secret(var_dir: Path, name: str) -> str:
    return _load(var_dir)[name]
