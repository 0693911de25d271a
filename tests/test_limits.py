"""The memory budget: sizes parsed, the budget set and read, allocations refused before they happen."""

from __future__ import annotations

import pytest

from trabecula.errors import ParameterError
from trabecula.limits import check_memory, format_bytes, memory_budget_bytes, parse_size, set_memory_budget


def test_sizes_parse_with_binary_multiples_and_bad_sizes_name_the_option():
    assert parse_size("8G") == 8 * 1024**3 and parse_size("500M") == 500 * 1024**2 and parse_size(4096) == 4096
    assert parse_size("1.5GiB") == int(1.5 * 1024**3)
    for bad in ("foo", "-1G", "0", "nan", "1Q"):
        with pytest.raises(ParameterError, match="--max-memory"):
            parse_size(bad)


def test_budget_from_setting_then_environment_then_default(monkeypatch):
    monkeypatch.setenv("TRABECULA_MAX_MEMORY", "2G")
    set_memory_budget(None)
    assert memory_budget_bytes() == 2 * 1024**3
    set_memory_budget("1M")
    try:
        assert memory_budget_bytes() == 1024**2
        check_memory(1000, "a small array", "--size")
        with pytest.raises(ParameterError, match=r"--size: a 3000³ volume needs .* over the memory budget of 1 MiB"):
            check_memory(3000**3, "a 3000³ volume", "--size", hint="try --size 100")
        with pytest.raises(ParameterError, match="unbounded"):
            check_memory(float("inf"), "x", "--smooth")
    finally:
        set_memory_budget(None)
    monkeypatch.delenv("TRABECULA_MAX_MEMORY")
    assert memory_budget_bytes() > 0
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(12) == "12 B"
