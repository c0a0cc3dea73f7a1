"""AIO map that calls the command invoker for messages whose payload is "invoke", and passes the rest on."""

from wit_world import exports
from wit_world.imports import command_invoker, types


def payload_bytes(payload: types.BufferOrBytes) -> bytes:
    if isinstance(payload, types.BufferOrBytes_Buffer):
        return payload.value.read()
    return payload.value


class Map(exports.Map):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        return True

    def process(self, message: types.DataModel) -> types.DataModel:
        if isinstance(message, types.DataModel_Message) and payload_bytes(message.value.payload) == b"invoke":
            command_invoker.CommandRequestBuilder()
        return message
