"""OPC UA with SignAndEncrypt (Basic256Sha256) against a simulated PLC that offers nothing else,
with certificates made for this test run."""
import pytest
import pytest_asyncio

from drivers import Confirmation
from drivers.link import OpcUaSettings
from drivers.opcua_certs import make_certificate
from drivers.regmap import DivertResult
from sim_plc.opcua_server import APPLICATION_URI, OpcUaPlcServer, ServerSecurity
from tests.conftest import free_port
from tests.sim_plc.helpers import alive, next_event, until

from .peers import linked, sim_plc

pytestmark = [pytest.mark.timeout(30), pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    server = make_certificate(folder, "plc", APPLICATION_URI, server=True)
    controller = make_certificate(folder, "controller", "urn:sortline:controller")
    stranger = make_certificate(folder, "stranger", "urn:sortline:stranger")
    return {"server": server, "controller": controller, "stranger": stranger}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def secure_server(certs):
    security = ServerSecurity(*certs["server"], trusted_clients=(certs["controller"][0],), users={"line": "s3cret"},
                              user_certificates=(certs["controller"][0],))
    server = OpcUaPlcServer("127.0.0.1", free_port(), security=security)
    yield server
    await server.close()


def secure(certs, who="controller", **overrides) -> OpcUaSettings:
    cert, key = certs[who]
    values = dict(path="/sorter/", security="sign-and-encrypt", certificate=str(cert), private_key=str(key),
                  server_certificate=str(certs["server"][0]), auth="username", username="line", password="s3cret")
    values.update(overrides)
    return OpcUaSettings(**values)


async def test_username_over_sign_and_encrypt_sorts_a_parcel(secure_server, certs):
    async with sim_plc("opcua", secure_server) as (plc, port), linked("opcua", port, opcua=secure(certs)) as link:
        await alive(plc.model)
        p = plc.model.scan()
        ev = await next_event(link)
        await link.assign(ev.tracking, 2, 1)
        conf = await next_event(link, Confirmation, 2.0)
        assert (conf.tracking, conf.chute, conf.result) == (p.tracking, 2, DivertResult.DIVERTED)


async def test_certificate_auth_opens_a_session(secure_server, certs):
    async with sim_plc("opcua", secure_server) as (plc, port), \
            linked("opcua", port, opcua=secure(certs, auth="certificate", username="", password="")) as link:
        await alive(plc.model)
        p = plc.model.scan()
        assert (await next_event(link)).tracking == p.tracking


@pytest.mark.parametrize("who, overrides, expected", [
    ("controller", {"password": "guess"}, "BadUserAccessDenied"),
    ("stranger", {}, "opcua_certificate to the PLC's trusted certificates"),
])
async def test_refused_credentials_say_what_to_change(secure_server, certs, who, overrides, expected):
    async with sim_plc("opcua", secure_server) as (plc, port), \
            linked("opcua", port, connect=False, opcua=secure(certs, who, **overrides)) as link:
        await until(lambda: link.status.anomalies.get("opcua_session_refused", 0) >= 1, 5.0)
        assert not link.status.connected and expected in link.status.last_error
        assert plc.model.regs[plc.model.map.edge(0)] == 0          # not one heartbeat got through


async def test_a_client_without_security_gets_nothing(secure_server):
    async with sim_plc("opcua", secure_server) as (plc, port), \
            linked("opcua", port, connect=False) as link:
        await until(lambda: link.status.anomalies.get("opcua_session_refused", 0) >= 1, 5.0)
        assert not link.status.connected and "opcua_security" in link.status.last_error


async def test_the_password_can_live_in_a_file_of_its_own(secure_server, certs, tmp_path):
    secret = tmp_path / "plc.pass"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    settings = secure(certs, password="", password_file=str(secret))
    async with sim_plc("opcua", secure_server) as (plc, port), linked("opcua", port, opcua=settings) as link:
        await alive(plc.model)
        p = plc.model.scan()
        assert (await next_event(link)).tracking == p.tracking


async def test_a_password_file_others_can_read_or_a_second_password_is_refused(certs, tmp_path):
    from drivers.link import LinkSettings
    from drivers.opcua import check_settings
    secret = tmp_path / "plc.pass"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)

    def problems(**overrides):
        return check_settings(LinkSettings(opcua=secure(certs, **overrides)))
    assert problems(password="", password_file=str(secret)) == [
        f'[plc] opcua_password_file = "{secret}" can be read by other users: chmod 600 {secret} '
        f"(and chown it to the controller's user)"]
    secret.chmod(0o600)
    assert problems(password="", password_file=str(secret)) == []
    assert "are both set: keep the file and remove opcua_password" in problems(password_file=str(secret))[0]
    assert "no such file; write the password alone on its first line" in \
        problems(password="", password_file=str(tmp_path / "none"))[0]
