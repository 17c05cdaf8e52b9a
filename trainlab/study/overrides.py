"""``--set KEY=VALUE`` overrides: parsing the value as a TOML literal, and setting a dotted key in a table."""

from __future__ import annotations

import tomllib
from typing import Any

from trainlab.errors import ConfigError


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` from ``--set``; VALUE is a TOML literal (``0.05``, ``true``, ``[1, 2]``) or a string."""
    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. train.lr=0.05), got '{text}'")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects KEY=VALUE, got '{text}' with an empty key")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()  # a bare word such as adam or cuda is a string
    except RecursionError:
        # tomllib parses nested arrays recursively: a few hundred levels exhaust the stack.
        raise ConfigError(f"--set {key}: the value's arrays or inline tables are nested too deeply") from None
    return key, parsed


def set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    """Set ``d[a][b][c] = value`` for ``key = "a.b.c"``, creating tables on the way.

    ``sweep.<dotted key>`` is special: the sweep table's keys contain dots themselves.
    """
    if key.startswith("sweep."):
        d.setdefault("sweep", {})[key[len("sweep.") :]] = value
        return
    parts = key.split(".")
    node = d
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set '{key}': '{p}' is a value, not a table")
        node = nxt
    node[parts[-1]] = value
