import pytest
import pytest_asyncio

from sim_plc.opcua_server import OpcUaPlcServer
from tests.conftest import free_port

from .peers import PROTOCOLS


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def opcua_server():
    """One OPC UA server for every test here, built on first start (~2 s): each test binds a new PLC to it."""
    server = OpcUaPlcServer("127.0.0.1", free_port())
    yield server
    await server.close()


@pytest.fixture(params=PROTOCOLS)
def protocol(request) -> str:
    return request.param

