"""Numbers for people: byte sizes and parameter counts, one formatter for CLI and site alike."""

from __future__ import annotations


def human_size(n: int | None) -> str:
    """Bytes in decimal units with three significant digits.

    >>> human_size(999), human_size(1234), human_size(3_145_728)
    ('999 B', '1.23 kB', '3.15 MB')
    """
    if n is None:
        return "–"
    if n < 1000:
        return f"{n} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000.0
        if n < 999.5 or unit == "TB":
            return f"{n:.3g} {unit}" if n >= 10 else f"{n:.2f} {unit}"
    return f"{n:.3g} TB"  # pragma: no cover


def human_count(n: int | None) -> str:
    """A parameter count for people: 784k, 1.17M.

    >>> human_count(784_123), human_count(1_170_000), human_count(950)
    ('784k', '1.17M', '950')
    """
    if n is None:
        return "–"
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.3g}k"
    if n < 1_000_000_000:
        return f"{n / 1e6:.3g}M"
    return f"{n / 1e9:.3g}B"
