"""The compiled-component cache hands back only entries that verify, and never fails a start."""

from __future__ import annotations

from pathlib import Path

from wasmflow.engine.cache import CompiledCache, cache_key


def test_a_stored_entry_is_found_again(tmp_path: Path) -> None:
    cache = CompiledCache(tmp_path)
    stored = cache.store("k", b"compiled code")
    assert stored is not None
    assert cache.lookup("k") == stored
    assert stored.read_bytes() == b"compiled code"


def test_a_missing_entry_is_none(tmp_path: Path) -> None:
    assert CompiledCache(tmp_path / "absent").lookup("k") is None


def test_a_corrupt_entry_is_not_returned_and_is_removed(tmp_path: Path) -> None:
    cache = CompiledCache(tmp_path)
    stored = cache.store("k", b"compiled code")
    assert stored is not None
    stored.write_bytes(b"compiled cod3")
    assert cache.lookup("k") is None
    assert not stored.exists()


def test_rewriting_an_entry_replaces_the_old_one(tmp_path: Path) -> None:
    cache = CompiledCache(tmp_path)
    cache.store("k", b"old")
    new = cache.store("k", b"new")
    assert [p.name for p in tmp_path.iterdir()] == [new.name if new else ""]


def test_an_unwritable_directory_costs_only_the_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert CompiledCache(blocker / "sub").store("k", b"x") is None


def test_keys_change_with_the_digest_and_the_engine_settings() -> None:
    assert cache_key("sha256:a", "fuel=0") == cache_key("sha256:a", "fuel=0")
    assert cache_key("sha256:a", "fuel=0") != cache_key("sha256:b", "fuel=0")
    assert cache_key("sha256:a", "fuel=0") != cache_key("sha256:a", "fuel=1")
