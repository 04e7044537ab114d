"""What a reservation asks for, checked before anything else looks at it.

Amounts arrive from request bodies and from the profile catalogue. They are
never trusted: :func:`parse_request` accepts only finite, non-negative numbers
below fixed ceilings, a known kind, and plain names, and raises
:class:`BadRequest` with a sentence that says which field is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

KINDS = ("server", "dask-cluster", "dask-worker")
# ceilings far above any real node; a request above them is a bug or an attack
MAX_CORES = 4096
MAX_MEMORY = 64 * 1024**4  # 64 TiB
MAX_GPUS = 64
MEMORY_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
MEMORY_TEXT = re.compile(r"^([0-9]{1,15}(?:\.[0-9]{1,6})?)([KMGT]?)(?:i?B)?$")
# GPU types and server/cluster names: letters, digits and . _ - only
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SERVER_NAME = re.compile(r"^[A-Za-z0-9._-]{0,255}$")
REQUEST_FIELDS = frozenset(["user", "kind", "resources", "server"])
RESOURCE_FIELDS = frozenset(["cores", "memory", "gpus"])


class BadRequest(ValueError):
    """The request is malformed; the message names the field at fault."""


@dataclass(frozen=True)
class Resources:
    """Cores, memory in bytes, and GPUs by type (``{"t4": 1}``)."""

    cores: float = 0.0
    memory: int = 0
    gpus: Mapping[str, int] = field(default_factory=dict)

    @property
    def gpu_count(self) -> int:
        """GPUs of every type."""
        return sum(self.gpus.values())

    def as_json(self) -> dict:
        """The resources as the REST API answers them."""
        return {"cores": self.cores, "memory": self.memory, "gpus": dict(self.gpus)}


@dataclass(frozen=True)
class Request:
    """One reservation request: for whom, what kind, what size, and which server."""

    user: str
    kind: str
    resources: Resources
    server: str = ""


def _checked_number(value, what: str, ceiling: float, shown: str = "") -> float:
    # bool is an int in Python; "true cores" is never meant
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{what} must be a number, not {type(value).__name__}.")
    if math.isnan(value) or math.isinf(value):
        raise BadRequest(f"{what} must be a finite number.")
    if value < 0:
        raise BadRequest(f"{what} must not be negative.")
    if value > ceiling:
        raise BadRequest(
            f"{what} is larger than any node can hold (at most {shown or f'{ceiling:g}'})."
        )
    return float(value)


def memory_bytes(value, what: str = "memory") -> int:
    """Bytes from ``8G``-style text (K, M, G, T are powers of 1024) or a number of bytes."""
    if isinstance(value, str):
        match = MEMORY_TEXT.match(value.strip())
        if not match:
            raise BadRequest(f"{what} must be bytes or text like 8G, not {value[:20]!r}.")
        value = float(match.group(1)) * MEMORY_UNITS[match.group(2)]
    return int(_checked_number(value, what, MAX_MEMORY, format_memory(MAX_MEMORY)))


def format_memory(n: float) -> str:
    """``8589934592`` -> ``8G``; whole units where possible."""
    for unit in ("T", "G", "M", "K"):
        size = MEMORY_UNITS[unit]
        if n >= size:
            value = n / size
            return f"{value:g}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    return f"{int(n)} bytes"


def parse_resources(value) -> Resources:
    """``{"cores", "memory", "gpus"}`` from a request body, checked: :class:`Resources`,
    or :class:`BadRequest` naming the field at fault. Called by :func:`parse_request`."""
    if not isinstance(value, Mapping):
        raise BadRequest("resources must be an object with cores, memory and gpus.")
    unknown = set(value) - RESOURCE_FIELDS
    if unknown:
        raise BadRequest(f"resources has unknown field {sorted(unknown)[0][:40]!r}.")
    cores = _checked_number(value.get("cores", 0), "resources.cores", MAX_CORES)
    memory = memory_bytes(value.get("memory", 0), "resources.memory")
    gpus_in = value.get("gpus", {})
    if not isinstance(gpus_in, Mapping):
        raise BadRequest('resources.gpus must map a GPU type to a count, like {"t4": 1}.')
    gpus = {}
    for gpu_type, count in gpus_in.items():
        if not isinstance(gpu_type, str) or not NAME.match(gpu_type):
            raise BadRequest("resources.gpus has a GPU type that is not a plain name.")
        n = _checked_number(count, f"resources.gpus.{gpu_type}", MAX_GPUS)
        if n != int(n):
            raise BadRequest(f"resources.gpus.{gpu_type} must be a whole number.")
        if n:
            gpus[gpu_type] = int(n)
    if len(gpus) > 1:
        raise BadRequest("resources.gpus may name one GPU type (a node has one kind of GPU).")
    if sum(gpus.values()) > MAX_GPUS:
        raise BadRequest(f"resources.gpus asks for more than {MAX_GPUS} GPUs.")
    return Resources(cores=cores, memory=memory, gpus=gpus)


def parse_request(body) -> Request:
    """A :class:`Request` from a decoded JSON body, or :class:`BadRequest`."""
    if not isinstance(body, Mapping):
        raise BadRequest("The request body must be a JSON object.")
    unknown = set(body) - REQUEST_FIELDS
    if unknown:
        raise BadRequest(f"Unknown field {sorted(unknown)[0][:40]!r} in the request.")
    user = body.get("user")
    if not isinstance(user, str) or not user or len(user) > 255:
        raise BadRequest("user must be the name of a hub user.")
    kind = body.get("kind")
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}.")
    server = body.get("server", "")
    if not isinstance(server, str) or not SERVER_NAME.match(server):
        raise BadRequest("server must be a server or cluster name (letters, digits, . _ -).")
    return Request(
        user=user, kind=kind, resources=parse_resources(body.get("resources", {})), server=server
    )
