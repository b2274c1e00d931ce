import pytest
import pytest_asyncio

from sim_plc.opcua_server import OpcUaPlcServer
from tests.conftest import free_port

from .peers import PROTOCOLS


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def opcua_server():
    """One OPC UA server per module, built on first start (only modules that use OPC UA pay for it)."""
    server = OpcUaPlcServer("127.0.0.1", free_port())
    yield server
    await server.close()


@pytest.fixture(params=PROTOCOLS)
def protocol(request) -> str:
    return request.param

