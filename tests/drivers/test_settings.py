"""The [plc] keys of the line config reach the link, and each protocol imports only its own library."""
import re
import subprocess
import sys
import textwrap

import pytest

from drivers import open_link
from drivers.opcua_certs import make_certificate
from edge.run import link_settings
from edge.config import ConfigError, load_config
from tests.conftest import REPO

from .peers import settings


def line_config(tmp_path, plc_lines: str):
    text = (REPO / "configs" / "county-24.toml").read_text()
    text = re.sub(r'(?m)^file = "(plans/.*)"', lambda m: f'file = "{REPO / "configs" / m.group(1)}"', text)
    text = text.replace('protocol = "modbus"\n', plc_lines)
    path = tmp_path / "line.toml"
    path.write_text(text)
    return path


def test_an_opcua_line_with_security_gets_its_certificates_relative_to_the_config(tmp_path):
    make_certificate(tmp_path / "pki", "controller", "urn:sortline:controller")
    make_certificate(tmp_path / "pki", "plc", "urn:acme:plc", server=True)
    path = line_config(tmp_path, textwrap.dedent('''\
        protocol = "opcua"
        opcua_path = "/sorter/"
        opcua_security = "sign-and-encrypt"
        opcua_certificate = "pki/controller.der"
        opcua_private_key = "pki/controller.pem"
        opcua_server_certificate = "pki/plc.der"
        opcua_auth = "username"
        opcua_username = "line"
        opcua_password = "s3cret"
        reconnect_max_ms = 400
        '''))
    s = link_settings(load_config(path))
    assert s.opcua.certificate == str(tmp_path / "pki" / "controller.der")
    assert (s.opcua.username, s.opcua.auth, s.reconnect_max_s) == ("line", "username", 0.4)
    link = open_link("opcua", s)
    assert link.address == "opc.tcp://127.0.0.1:15020/sorter/"


def test_a_misspelled_opcua_key_is_refused_with_the_right_spelling(tmp_path):
    path = line_config(tmp_path, 'protocol = "opcua"\nopcua_secruity = "sign-and-encrypt"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "opcua_security" in str(err.value)


@pytest.mark.parametrize("overrides, expected", [
    ({"certificate": ""}, "[plc] opcua_certificate is needed"),
    ({"server_certificate": "/nowhere/plc.der"}, '[plc] opcua_server_certificate = "/nowhere/plc.der": no such file'),
    ({"security": "none"}, 'opcua_auth = "username" needs opcua_security = "sign-and-encrypt"'),
    ({"auth": "kerberos"}, '[plc] opcua_auth = "kerberos"'),
])
def test_incomplete_security_settings_are_refused_before_connecting(tmp_path, overrides, expected):
    from drivers.link import OpcUaSettings
    cert, key = make_certificate(tmp_path, "controller", "urn:sortline:controller")
    values = dict(path="/sorter/", security="sign-and-encrypt", certificate=str(cert), private_key=str(key),
                  server_certificate=str(cert), auth="username", username="line", password="pw")
    values.update(overrides)
    with pytest.raises(ValueError) as err:
        open_link("opcua", settings("opcua", 4840, opcua=OpcUaSettings(**values)))
    assert expected in str(err.value)


PROBE = textwrap.dedent('''
    import asyncio, sys
    from drivers import LinkSettings, open_link

    async def main():
        link = open_link(sys.argv[1], LinkSettings(port=9, timeout_s=0.05, reconnect_max_s=0.05))
        await link.start()
        await asyncio.sleep(0.3)             # a few connection attempts, all refused
        await link.stop()

    asyncio.run(main())
    print(" ".join(sorted(m for m in ("asyncua", "pymodbus", "drivers.opcua", "drivers.modbus") if m in sys.modules)))
''')


@pytest.mark.parametrize("protocol, loaded", [("modbus", "drivers.modbus pymodbus"),
                                              ("opcua", "asyncua drivers.opcua")])
def test_a_line_imports_only_the_library_of_its_protocol(protocol, loaded):
    out = subprocess.run([sys.executable, "-c", PROBE, protocol], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == loaded
