"""Devices named by the user (``--device``), checked before anything runs on them."""

from __future__ import annotations

import torch

from seqfunc.errors import ConfigError


def available_devices() -> list[str]:
    """The devices this build of torch can run on here, e.g. ``["cpu", "cuda:0"]``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


def resolve_device(name: str | torch.device, *, where: str = "device") -> torch.device:
    """``name`` as a :class:`torch.device`, or a ConfigError naming the devices there are."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(
            f"{where}={name!r}: not a device name; available here: {', '.join(available_devices())}"
        ) from None
    available = available_devices()
    usable = (
        device.type == "cpu"
        or (
            device.type == "cuda"
            and torch.cuda.is_available()
            and (device.index is None or device.index < torch.cuda.device_count())
        )
        or (device.type == "mps" and "mps" in available)
    )
    if not usable:
        raise ConfigError(
            f"{where}={str(name)!r}: no such device on this machine; "
            f"available here: {', '.join(available)}"
        )
    return device
