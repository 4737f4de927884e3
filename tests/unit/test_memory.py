"""roadlab.controller.memory on this machine's glibc: calls are taken, a trim returns pages."""

from __future__ import annotations

import platform

import pytest

from roadlab.controller import memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


@glibc
def test_glibc_takes_the_arena_limit() -> None:
    assert memory.limit_arenas() is True


@glibc
def test_freed_memory_goes_back() -> None:
    chunks = [bytearray(64 * 1024) for _ in range(2000)]  # 128 MB in malloc'd blocks
    del chunks
    assert memory.release_free_memory() is True
