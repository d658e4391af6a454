"""Render the config key table of docs/daemon.md from the schema: `python -m edge_sdk.daemon.reference`."""

from __future__ import annotations

import sys

from edge_sdk.daemon.config import describe_keys


def render_key_table() -> str:
    """Return a Markdown table with one row per config key."""
    rows = ["| key | type | default | unit | meaning |", "|---|---|---|---|---|"]
    for doc in describe_keys():
        description = doc.description.replace("|", "\\|")
        default = doc.default.replace("|", "\\|")
        rows.append(f"| `{doc.key}` | {doc.type_name} | {default} | {doc.unit} | {description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_key_table())
