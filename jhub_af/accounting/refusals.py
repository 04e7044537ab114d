"""The sentences of af-accounting's refusals and warnings, which a physicist reads.

Each names the limit, where it comes from, what is in use, and what to do next.
:func:`jhub_af.accounting.policy.decide` picks which one applies.
"""

from __future__ import annotations

from .dimensions import BUDGETS, COUNTED, DIMENSIONS, MEMORY_DIMS, Limit, dimension_of
from .resources import format_memory

ADVICE = "Stop something you no longer need, or ask your VO admin for a larger quota."
# the request alone is larger than the limit: stopping things would not help
TOO_BIG_ADVICE = "Choose a smaller profile or size, or ask your VO admin for a larger quota."
ZERO_ADVICE = "Ask your VO admin if you need it."
BUDGET_ADVICE = (
    "The budget starts again with the next {period}; ask your VO admin if you need more now."
)
# what a float comparison may be off by (sums of cores such as 0.1 + 0.2)
SLACK = 1e-9


def amount_text(key: str, value: float) -> str:
    """A number with its unit: ``8 cores``, ``1 t4 GPU``, ``4.0 GiB of memory``."""
    dim = dimension_of(key)
    if dim in MEMORY_DIMS:
        return f"{format_memory(value)} {DIMENSIONS[dim][0]}"
    one, many, _ = DIMENSIONS[dim]
    gpu_type = f"{key[5:]} " if dim == "gpus" else ""
    number = f"{value:g}" if dim not in BUDGETS else f"{value:.1f}".removesuffix(".0")
    return f"{number} {gpu_type}{one if value == 1 else many}"


def number_text(key: str, value: float) -> str:
    """A number without its unit: ``2``, ``12.5`` (budgets), ``4.0 GiB`` (memory)."""
    if dimension_of(key) in MEMORY_DIMS:
        return format_memory(value)
    return f"{value:.1f}".removesuffix(".0") if key in BUDGETS else f"{value:g}"


def _who_may(limit: Limit, verb: str) -> str:
    if limit.source == "group":
        return f"Your group {limit.group} may {verb}"
    if limit.source == "user":
        return f"Your personal quota lets you {verb}"
    return f"The facility's default quota lets you {verb}"


def limit_sentence(key: str, limit: Limit, period: str = "month") -> str:
    """``Your group /cms/gpu may run 1 t4 GPU at a time`` (no full stop).

    Called by the refusals below.
    """
    verb = DIMENSIONS[dimension_of(key)][2]
    if limit.value == 0:
        things = amount_text(key, 2).split(" ", 1)[1]
        return f"{_who_may(limit, verb)} no {things}"
    when = f"per {period}" if key in BUDGETS else "at a time"
    return f"{_who_may(limit, verb)} {amount_text(key, limit.value)} {when}"


def over_own_limit(key: str, limit: Limit, used: float, amount: float, period: str) -> str:
    """The user's own limit of ``key`` refuses ``amount`` more on top of ``used``."""
    if limit.value == 0:
        return f"{limit_sentence(key, limit, period)}. {ZERO_ADVICE}"
    in_use = f"you are using {number_text(key, used)}" if used else "you are using none"
    one_thing = dimension_of(key) in COUNTED and amount == 1
    asked = "" if one_thing else f" and asked for {number_text(key, amount)} more"
    advice = TOO_BIG_ADVICE if amount > limit.value + SLACK else ADVICE
    return f"{limit_sentence(key, limit, period)}; {in_use}{asked}. {advice}"


def over_group_total(group: str, key: str, cap: float, used: float) -> str:
    """The at-once total of ``group`` (``cap``, ``used`` by its members) refuses more."""
    verb = DIMENSIONS[dimension_of(key)][2]
    return (
        f"Group {group} may {verb} {amount_text(key, cap)} at a time across all its members; "
        f"its members are using {number_text(key, used)}. Try again when some are stopped."
    )


def budget_spent(key: str, limit: Limit, used: float, period: str, group: str = "") -> str:
    """The budget ``key`` of the user (or of ``group``, a group total) is used up."""
    advice = BUDGET_ADVICE.format(period=period)
    if group:
        return (
            f"Group {group} has used its budget of {amount_text(key, limit.value)} "
            f"this {period} ({number_text(key, used)} used). " + advice
        )
    return (
        f"{limit_sentence(key, limit, period)}; you have used "
        f"{number_text(key, used)} this {period}. " + advice
    )


def budget_warning(key: str, limit: Limit, used: float, period: str, group: str = "") -> str:
    """A granted reservation's warning: the budget ``key`` is used past the soft threshold."""
    owner = f"Group {group} has" if group else "You have"
    return (
        f"{owner} used {number_text(key, used)} of {amount_text(key, limit.value)} "
        f"this {period} ({used / limit.value:.0%})."
    )
