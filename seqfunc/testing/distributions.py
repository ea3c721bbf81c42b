"""Fake installed distributions, to test entry-point registration without ``pip install``.

def test_my_plugin_registers(tmp_path, monkeypatch):
    fake_distribution(tmp_path, "my-plugin", "0.1", {"seqfunc.models": {"mine": "my_plugin:Mine"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert seqfunc.registry.find("models", "mine").dist == "my-plugin"
"""

from __future__ import annotations

from pathlib import Path


def fake_distribution(
    directory: str | Path, name: str, version: str, entry_points: dict[str, dict[str, str]]
) -> Path:
    """Write ``NAME-VERSION.dist-info`` (METADATA + entry_points.txt) into ``directory``; with
    ``directory`` on ``sys.path``, :mod:`importlib.metadata` sees the distribution. Returns it."""
    info = Path(directory) / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, items in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {value}" for key, value in items.items())
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))
    return info
