"""AIO values on the host side (engine/worlds/aio/codec.py): results told apart however wasmtime-py lifted them."""

from __future__ import annotations

from wasmtime.component import Variant

from wasmflow.engine.worlds.aio.codec import BufferTable, error_text, record, split_result


def test_a_tagged_result_splits_into_its_case_and_payload() -> None:
    assert split_result(Variant("ok", True)) == (True, True)
    error = record(message="too hot")
    assert split_result(Variant("err", error)) == (False, error)


def test_an_untagged_error_record_is_an_error_and_anything_else_the_value() -> None:
    error = record(message="too hot")
    assert split_result(error) == (False, error)
    assert error_text(error) == "too hot"
    data = Variant("message", record(topic=b"t"))
    assert split_result(data) == (True, data)  # a data-model is a variant too, never with an ok/err case
    assert split_result(False) == (True, False)


def test_a_buffer_handed_back_by_the_guest_is_freed_and_reads_empty_afterwards() -> None:
    buffers = BufferTable()
    handle = buffers.add(b"payload")
    assert buffers.read(handle.rep) == b"payload"
    buffers.drop(handle.rep)
    assert (len(buffers), buffers.read(handle.rep)) == (0, b"")
