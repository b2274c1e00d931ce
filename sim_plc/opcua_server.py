"""Serve the PLC model over OPC UA with asyncua: the same register image, as typed variables.

The model stays the single PLC logic and keeps writing its register list. It tells its watchers of
every change; one publisher task then writes the PLC variables whose value changed into the address
space, where subscriptions pick them up (drivers.opcua_layout gives the mapping). Controller writes
pass through a setter that checks them and hands them to the model as a Modbus write would; reads
of the controller variables come from the register image, so they show what the PLC holds.

A protocol server for sim_plc.plc.SimPlc: `start`, `stop`, `drop_connections`, `slow_answers`.
Setting up the address space takes ~2 s, so it happens once; `stop` only closes the listening
socket and every connection, and `start` opens them again (a PLC restart), until `close`.
"""
import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from drivers import opcua_layout as lay
from drivers import regmap as rm
from drivers.timed_awaits import bounded

log = logging.getLogger("sortline.sim")

APPLICATION_URI = "urn:sortline:sim-plc"


@dataclass(frozen=True)
class ServerSecurity:
    """SignAndEncrypt with Basic256Sha256 only; who may connect and as whom."""
    certificate: Path
    private_key: Path
    trusted_clients: tuple[Path, ...] = ()        # application certificates allowed a secure channel
    users: dict = field(default_factory=dict)     # username -> password
    user_certificates: tuple[Path, ...] = ()      # certificates accepted as user identity


class _Users:
    def __init__(self, users: dict, certificates: set[bytes]):
        self.users, self.certificates = users, certificates

    def get_user(self, iserver, username=None, password=None, certificate=None):
        # asyncua passes the channel's certificate along with a user name: the name decides then.
        from asyncua.crypto.permission_rules import User, UserRole
        if username is not None:
            return User(role=UserRole.User, name=username) if self.users.get(username) == password else None
        if certificate is not None and certificate in self.certificates:
            return User(role=UserRole.User, name="certificate")
        return None


class OpcUaPlcServer:
    def __init__(self, host: str, port: int, path: str = "/sorter/", security: ServerSecurity | None = None):
        self.host, self.port, self.path, self.security = host, port, path, security
        self.model = None
        self._server = None
        self._listener = None
        self._publisher = None
        self._dirty = asyncio.Event()
        self._nodes: dict[tuple[str, str], object] = {}
        self._published: dict[str, object] = {}
        self._changed: set[str] = set()              # PLC variables whose registers changed
        self._failed: set[str] = set()
        self._delay_s: float | None = None
        self.dropped = 0

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}{self.path}"

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def bind_model(self, model) -> None:
        """Serve `model` (a new one replaces the old: one server can serve a PLC per test)."""
        if self.model is not None and self._mark_changed in self.model.watchers:
            self.model.watchers.remove(self._mark_changed)
        self.model = model
        model.watchers.append(self._mark_changed)
        self._republish()

    def _republish(self) -> None:
        self._published.clear()
        self._changed.update(lay.PLC_BY_NAME)
        self._dirty.set()

    def _mark_changed(self, address: int, count: int) -> None:
        # The model rewrites its encoder every 5 ms: recompute only the variables made of what changed.
        lo = max(0, address - self.model.map.plc_base)
        for offset in range(lo, min(address - self.model.map.plc_base + count, rm.PLC_BLOCK_WORDS)):
            self._changed |= _VARS_AT[offset]
        self._dirty.set()

    def _plc_block(self) -> list[int]:
        base = self.model.map.plc_base
        return self.model.regs[base:base + rm.PLC_BLOCK_WORDS]

    # -- life cycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self.model is None:
            raise RuntimeError("bind a PLC model before starting the OPC UA server")
        if self._server is None:
            await self._build()
        if self._listener is None:
            await self._listen()
        if self._publisher is None:
            self._republish()
            self._publisher = asyncio.create_task(self._publish_forever(), name="opcua-publisher")

    async def stop(self) -> None:
        """Close the listening socket and every connection (the address space stays for `start`)."""
        self._delay_s = None
        if self._publisher is not None:
            self._publisher.cancel()
            await asyncio.gather(self._publisher, return_exceptions=True)
            self._publisher = None
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await bounded(listener.stop(), 5.0)

    async def close(self) -> None:
        await self.stop()
        if self._server is not None:
            server, self._server = self._server, None
            await bounded(server.iserver.stop(), 5.0)

    async def _build(self) -> None:
        from asyncua import Server, ua
        sec = self.security
        users = _Users(dict(sec.users), {_der(p) for p in sec.user_certificates}) if sec else None
        server = Server(user_manager=users)
        await server.init()
        server.disable_clock()               # its 1 s clock task would hold up every stop
        server.set_endpoint(self.url)
        server.set_server_name("sortline simulated PLC")
        await server.set_application_uri(APPLICATION_URI)
        if sec is None:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        else:
            await server.load_certificate(str(sec.certificate))
            await server.load_private_key(str(sec.private_key))
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            server.set_identity_tokens(([ua.UserNameIdentityToken] if sec.users else []) +
                                       ([ua.X509IdentityToken] if sec.user_certificates else []))
            server.set_certificate_validator(_trust_only({_der(p) for p in sec.trusted_clients}))
        idx = await server.register_namespace(lay.NAMESPACE)
        root = await server.nodes.objects.add_object(ua.NodeId(lay.OBJECT, idx), ua.QualifiedName(lay.OBJECT, idx))
        block = self._plc_block()
        for folder, variables in ((lay.PLC_FOLDER, lay.PLC_VARS), (lay.EDGE_FOLDER, lay.EDGE_VARS)):
            parent = await root.add_object(ua.NodeId(f"{lay.OBJECT}.{folder}", idx), ua.QualifiedName(folder, idx))
            for var in variables:
                initial = lay.plc_value(var, block) if folder == lay.PLC_FOLDER else self._edge_value(var)
                node = await parent.add_variable(ua.NodeId(lay.node_id(folder, var.name), idx),
                                                 ua.QualifiedName(var.name, idx), initial, varianttype=_variant(var))
                if var.is_array:
                    # asyncua leaves an array's ValueRank at 0 (one or more dimensions) and no
                    # ArrayDimensions; a PLC's data block arrays have one dimension of a fixed length,
                    # and clients that build their tag lists from the address space read it here.
                    await node.write_value_rank(ua.ValueRank.OneDimension)
                    await node.write_array_dimensions([var.length])
                self._nodes[(folder, var.name)] = node
                if folder == lay.EDGE_FOLDER:
                    await node.set_writable()
                    server.set_attribute_value_setter(node.nodeid, self._setter(var))
                    server.set_attribute_value_callback(node.nodeid, self._getter(var))
        _refuse_per_item(server)
        # Server.start() would add the endpoints once; a restart only reopens the socket (_listen).
        await server._setup_server_nodes()
        await server.iserver.start()
        self._server = server

    async def _listen(self) -> None:
        listener = _listener_class()(self._server.iserver, self.host, self.port, self._server.limits,
                                     hold=self._hold)
        listener.set_policies(self._server._policies)
        try:
            await listener.start()
        except OSError as exc:
            raise OSError(f"the simulated PLC cannot listen on {self.host}:{self.port} ({exc}): is another "
                          f"simulator or PLC using the port?") from None
        self._listener = listener

    # -- controller variables: reads from the image, writes through the model -----------------------
    def _edge_value(self, var):
        m = self.model.map
        a = m.edge(var.offset)
        w = self.model.regs[a:a + max(rm.SLOT_WORDS, rm.CHUTE_BIT_WORDS)]
        if var.kind == "u16":
            return w[0]
        if var.kind == "u32":
            return rm.join_u32(w[0], w[1])
        if var.kind == "bool[]":
            return lay.flags_from_chutes(rm.chutes_from_bits(w[:rm.CHUTE_BIT_WORDS]))
        return [rm.join_u32(w[0], w[1]), rm.join_u32(w[2], w[3]), w[4], w[5]]

    def _getter(self, var):
        from asyncua import ua

        def read(nodeid, attr):
            return ua.DataValue(ua.Variant(self._edge_value(var), _variant(var)))
        return read

    def _setter(self, var):
        from asyncua import ua

        def store(nodedata, attr, datavalue):
            value = datavalue.Value.Value if datavalue.Value is not None else None
            if datavalue.Value is None or datavalue.Value.VariantType != _variant(var) or \
                    isinstance(value, list) != var.is_array or (var.is_array and len(value) != var.length):
                got = "no value" if datavalue.Value is None else datavalue.Value.VariantType.name + \
                    (f"[{len(value)}]" if isinstance(value, list) else "")
                log.warning("refused a controller write of %s: %s, not %s%s", var.name, got, _variant(var).name,
                            f"[{var.length}]" if var.is_array else "")
                raise ua.UaStatusCodeError(ua.StatusCodes.BadTypeMismatch)
            try:
                offset, words = lay.edge_registers(var, value)
            except ValueError as exc:
                log.warning("refused a controller write: %s", exc)
                raise ua.UaStatusCodeError(ua.StatusCodes.BadOutOfRange) from None
            refused = self.model.on_edge_write(self.model.map.edge(offset), words)
            if refused == "off":
                raise ua.UaStatusCodeError(ua.StatusCodes.BadServerHalted)
            if refused:
                raise ua.UaStatusCodeError(ua.StatusCodes.BadNotWritable)
        return store

    # -- PLC variables: published when the image changes ----------------------------------------------
    async def _publish_forever(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self._publish()

    async def _publish(self) -> None:
        from asyncua import ua
        block = self._plc_block()
        names, self._changed = self._changed - self._failed, self._changed & self._failed
        changed = []
        for var in lay.PLC_VARS:
            if var.name not in names:
                continue
            value = lay.plc_value(var, block)
            if self._published.get(var.name) != value:
                self._published[var.name] = value
                changed.append((var, value))
        for var, value in changed:
            await self._server.write_attribute_value(self._nodes[(lay.PLC_FOLDER, var.name)].nodeid,
                                                     ua.DataValue(ua.Variant(value, _variant(var))))

    # -- faults on command ------------------------------------------------------------------------------
    async def fail_variable(self, name: str, status_name: str = "BadCommunicationError") -> None:
        """A PLC variable goes Bad (its data block unreachable, say) until `restore_variable`."""
        from asyncua import ua
        self._failed.add(name)
        await self._server.write_attribute_value(self._nodes[(lay.PLC_FOLDER, name)].nodeid,
                                                 ua.DataValue(StatusCode=ua.StatusCode(getattr(ua.StatusCodes,
                                                                                               status_name))))

    def restore_variable(self, name: str) -> None:
        self._failed.discard(name)
        self._published.pop(name, None)
        self._changed.add(name)
        self._dirty.set()

    def drop_connections(self) -> int:
        """Reset every open client connection, as a broken cable or a switch reboot would."""
        if self._server is None:
            return 0
        transports = list(self._server.iserver.asyncio_transports)
        for transport in transports:
            transport.abort()
        self.dropped += len(transports)
        log.warning("dropped %d OPC UA connection(s) on command", len(transports))
        return len(transports)

    def slow_answers(self, delay_s: float | None) -> None:
        """Hold every request for `delay_s` before serving it (math.inf: never answer); None: at once."""
        if delay_s is not None and not delay_s > 0:
            raise ValueError(f"answer delay must be positive (or None to answer at once), got {delay_s}")
        self._delay_s = delay_s
        log.warning("OPC UA answers %s", "at full speed again" if delay_s is None else f"held {delay_s} s")

    async def _hold(self) -> None:
        loop = asyncio.get_running_loop()
        since = loop.time()
        while self._delay_s and loop.time() - since < self._delay_s:
            await asyncio.sleep(min(0.01, max(0.0, since + self._delay_s - loop.time())))


# PLC block offset -> the PLC variables made (in part) of that register.
_VARS_AT = [frozenset(v.name for v in lay.PLC_VARS if any(a <= offset < b for a, b in lay.plc_var_words(v)))
            for offset in range(rm.PLC_BLOCK_WORDS)]


def _listener_class():
    """asyncua's socket server, with every request passing through `hold` first."""
    from asyncua.server.binary_server_asyncio import BinaryServer, OPCUAProtocol

    class HeldProtocol(OPCUAProtocol):
        def __init__(self, *args, hold, **kwargs):
            super().__init__(*args, **kwargs)
            self._hold = hold

        def connection_made(self, transport):
            super().connection_made(transport)
            if self.processor is not None:
                process = self.processor.process

                async def held(header, body):
                    await self._hold()
                    return await process(header, body)
                self.processor.process = held
                # OPC UA lets a session with subscriptions outlive its connection; like many PLCs with few
                # session slots, this one frees it with the connection (the controller opens a new one).
                self.processor._should_close_session_on_transport_loss = lambda: self.processor.session is not None

    class Listener(BinaryServer):
        def __init__(self, *args, hold, **kwargs):
            super().__init__(*args, **kwargs)
            self._hold = hold

        def _make_protocol(self):
            return HeldProtocol(iserver=self.iserver, policies=self._policies, clients=self.clients,
                                closing_tasks=self.closing_tasks, limits=self.limits, hold=self._hold)
    return Listener


def _refuse_per_item(server) -> None:
    """A refused value comes back as that item's status in the Write response, as from a PLC.

    asyncua lets a value setter's error end the whole Write service (a ServiceFault): the items
    before it are stored and the ones after it are not. A PLC refuses one item and stores the
    others, so the heartbeat and both acknowledgements stand or fall each on their own.
    """
    from asyncua import ua
    aspace = server.iserver.aspace
    write = aspace.write_attribute_value

    async def per_item(nodeid, attr, value):
        try:
            return await write(nodeid, attr, value)
        except ua.UaStatusCodeError as exc:
            return ua.StatusCode(exc.code)
    aspace.write_attribute_value = per_item


def _trust_only(trusted: set[bytes]):
    async def validate(certificate, app_description):
        from asyncua import ua
        from asyncua.common.utils import ServiceError
        from asyncua.crypto import uacrypto
        if uacrypto.der_from_x509(certificate) not in trusted:
            log.warning("refused a secure channel from an untrusted certificate (%s)", app_description.ApplicationUri)
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)
    return validate


def _variant(var):
    from asyncua import ua
    return {"u16": ua.VariantType.UInt16, "u32": ua.VariantType.UInt32, "u32[]": ua.VariantType.UInt32,
            "bool[]": ua.VariantType.Boolean}[var.kind]


def _der(path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    data = Path(path).read_bytes()
    if data.startswith(b"-----"):
        return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    return data


async def _serve_forever(args) -> None:
    from edge.config import load_or_exit

    from .plc import SimPlc
    config = load_or_exit(args.config)
    plc = SimPlc(config.geometry, modbus=False, heartbeat_timeout_s=config["plc"]["heartbeat_timeout_ms"] / 1000)
    security = None
    if args.pki:
        pki = Path(args.pki)
        security = ServerSecurity(pki / "plc.der", pki / "plc.pem", trusted_clients=(pki / "controller.der",),
                                  users=dict([args.user.split(":", 1)]) if args.user else {},
                                  user_certificates=(pki / "controller.der",))
    server = OpcUaPlcServer("127.0.0.1", args.port, path=args.path, security=security)
    server.bind_model(plc.model)
    plc.add_server(server)
    async with plc:
        log.warning("simulated PLC on %s (OPC UA, namespace %s)", server.url, lay.NAMESPACE)
        while True:
            await asyncio.sleep(args.scan_every_s or 3600)
            if args.scan_every_s and plc.model.powered:
                plc.model.scan()


def main(argv=None) -> int:
    """`python -m sim_plc.opcua_server`: an OPC UA PLC for PLC programmers to browse and try."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m sim_plc.opcua_server", description=main.__doc__)
    parser.add_argument("--config", default="configs/county-24.toml", help="line config: geometry and timeouts")
    parser.add_argument("--port", type=int, default=4840)
    parser.add_argument("--path", default="/sorter/")
    parser.add_argument("--scan-every-s", type=float, default=0.0, help="a parcel passes the scan point this often")
    parser.add_argument("--pki", default="", help="folder with plc.der/.pem and controller.der: SignAndEncrypt only")
    parser.add_argument("--user", default="", help="USER:PASSWORD accepted with --pki")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve_forever(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
