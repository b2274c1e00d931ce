"""OPC UA backend: data-change subscriptions (publishing interval 0) on the PLC's event arrays,
one Write request per assignment slot.

Only a line configured with protocol "opcua" imports this module, and with it asyncua. The
variables are found by browse path under the configured namespace, so a PLC may give them its
own NodeIds. Silence is a failure: the PLC heartbeat changes every 100 ms, so a subscription that
delivers nothing for `silence_s` is dead even if the socket still looks open.
"""
import asyncio
import logging
import stat
from pathlib import Path

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent
from asyncua.crypto import security_policies

from . import opcua_layout as lay
from . import regmap as rm
from .link import InterfaceMismatch, LinkError, OutsideWindow, PlcLink, PlcRefused
from .timed_awaits import answered, bounded

log = logging.getLogger("sortline.link")
# asyncua logs every publish at INFO, the granted publishing interval 0 as a warning and every lost
# connection as a traceback; the link reports connection trouble itself, once, with the remedy.
logging.getLogger("asyncua").setLevel(logging.CRITICAL)

SESSION_TIMEOUT_MS = 10_000
SUBSCRIBED = ("ScanEvents", "ConfirmEvents", "Heartbeat", "LineState", "ChuteFull", "ChuteFault")
READ_AT_START = ("Version", "ScanEvents", "ConfirmEvents", "AssignTaken", "ChuteFull", "ChuteFault", "LineState")
# Answers about one value, not the session: the request was understood and refused.
VALUE_REFUSALS = {ua.StatusCodes.BadOutOfRange, ua.StatusCodes.BadTypeMismatch, ua.StatusCodes.BadNotWritable,
                  ua.StatusCodes.BadUserAccessDenied, ua.StatusCodes.BadWriteNotSupported,
                  ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadIndexRangeInvalid}
SESSION_HINTS = {
    ua.StatusCodes.BadUserAccessDenied: "check [plc] opcua_username / opcua_password, or that the PLC accepts "
                                        "this controller's certificate as a user",
    ua.StatusCodes.BadIdentityTokenInvalid: "check [plc] opcua_auth against what the PLC offers",
    ua.StatusCodes.BadIdentityTokenRejected: "check [plc] opcua_username / opcua_password",
    ua.StatusCodes.BadCertificateUntrusted: "add [plc] opcua_certificate to the PLC's trusted certificates",
    ua.StatusCodes.BadSecurityChecksFailed: "add [plc] opcua_certificate to the PLC's trusted certificates, and "
                                            "check [plc] opcua_server_certificate is the PLC's own",
    ua.StatusCodes.BadSecurityPolicyRejected: "the PLC does not offer Basic256Sha256 with SignAndEncrypt",
}
VARIANT = {"u16": ua.VariantType.UInt16, "u32": ua.VariantType.UInt32, "u32[]": ua.VariantType.UInt32,
           "bool[]": ua.VariantType.Boolean}


def check_settings(s) -> list[str]:
    """What is wrong with the [plc] OPC UA keys, each with what to set."""
    o, errors = s.opcua, []
    if o.security not in ("none", "sign-and-encrypt"):
        errors.append(f'[plc] opcua_security = "{o.security}": use "none" or "sign-and-encrypt"')
    if o.auth not in ("anonymous", "username", "certificate"):
        errors.append(f'[plc] opcua_auth = "{o.auth}": use "anonymous", "username" or "certificate"')
    if o.security == "sign-and-encrypt":
        for key, value in (("opcua_certificate", o.certificate), ("opcua_private_key", o.private_key),
                           ("opcua_server_certificate", o.server_certificate)):
            if not value:
                errors.append(f"[plc] {key} is needed with opcua_security = \"sign-and-encrypt\"")
            elif not Path(value).is_file():
                errors.append(f"[plc] {key} = \"{value}\": no such file")
    elif o.auth != "anonymous":
        errors.append(f'[plc] opcua_auth = "{o.auth}" needs opcua_security = "sign-and-encrypt": credentials '
                      f"must not travel in clear text")
    if o.auth == "username" and not o.username:
        errors.append('[plc] opcua_username is needed with opcua_auth = "username"')
    if o.password and o.password_file:
        errors.append("[plc] opcua_password and opcua_password_file are both set: keep the file and remove "
                      "opcua_password from the line config")
    if o.password_file:
        errors += _password_file_problems(o.password_file)
    return errors


def _password_file_problems(path: str) -> list[str]:
    where = f'[plc] opcua_password_file = "{path}"'
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return [f"{where}: no such file; write the password alone on its first line, then chmod 600 it"]
    if not stat.S_ISREG(mode):
        return [f"{where} is not a file: name the file that holds the password"]
    if mode & 0o077:
        return [f"{where} can be read by other users: chmod 600 {path} (and chown it to the controller's user)"]
    return []


def read_password(o) -> str:
    """The password: from its file when one is named (read again at every connection, so a changed
    password needs no restart), else as written in the line config."""
    if not o.password_file:
        return o.password
    try:
        lines = Path(o.password_file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LinkError(f"[plc] opcua_password_file {o.password_file} cannot be read ({exc}): check the file and "
                        f"that it belongs to the controller's user") from None
    return lines[0] if lines else ""


def _application_uri(certificate_path: str) -> str | None:
    """The URI the certificate was issued for: the client must present the same one."""
    from cryptography import x509
    data = Path(certificate_path).read_bytes()
    cert = x509.load_pem_x509_certificate(data) if data.startswith(b"-----") else x509.load_der_x509_certificate(data)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


class OpcUaLink(PlcLink):
    def __init__(self, settings):
        problems = check_settings(settings)
        if problems:
            raise ValueError("the OPC UA settings cannot work:\n  " + "\n  ".join(problems))
        super().__init__(settings)
        self._client: Client | None = None
        self._sub = None
        self._plc: dict[str, ua.NodeId] = {}
        self._edge: dict[str, ua.NodeId] = {}
        self._names: dict[ua.NodeId, str] = {}
        self.silence_s = max(0.5, 3 * settings.timeout_s)

    @property
    def address(self) -> str:
        return f"opc.tcp://{self.settings.host}:{self.settings.port}{self.settings.opcua.path}"

    # -- connection -------------------------------------------------------------------------------
    async def _open(self) -> None:
        s, o = self.settings, self.settings.opcua
        client = self._client = Client(self.address, timeout=s.connect_timeout_s)
        # A session the link had to abandon (its socket died) holds one of the PLC's few session
        # slots until it times out: keep that short. Requests every 100 ms keep a live one open.
        client.session_timeout = SESSION_TIMEOUT_MS
        if o.security == "sign-and-encrypt":
            client.application_uri = _application_uri(o.certificate) or client.application_uri
            await client.set_security(security_policies.SecurityPolicyBasic256Sha256, o.certificate, o.private_key,
                                      server_certificate=o.server_certificate,
                                      mode=ua.MessageSecurityMode.SignAndEncrypt)
        if o.auth == "username":
            client.set_user(o.username)
            client.set_password(read_password(o))
        elif o.auth == "certificate":
            await client.load_client_certificate(o.certificate)
            await client.load_private_key(Path(o.private_key))
        try:
            await bounded(client.connect(), s.connect_timeout_s)
        except TimeoutError:
            self.status.anomaly("no_answer", f"PLC at {self.address} did not open a session within "
                                f"{s.connect_timeout_s:.1f} s")
            raise LinkError(f"no session within {s.connect_timeout_s:.1f} s (the PLC accepts but does not answer)") \
                from None
        except ua.UaStatusCodeError as exc:
            hint = SESSION_HINTS.get(exc.code, "")
            self.status.anomaly("opcua_session_refused", f"PLC at {self.address} refused the session: {exc}"
                                f"{'; ' + hint if hint else ''}", level=logging.ERROR)
            raise LinkError(f"the PLC refused the session ({exc}){'; ' + hint if hint else ''}") from exc
        except ua.UaError as exc:
            self.status.anomaly("opcua_session_refused", f"PLC at {self.address} offers no session this link can "
                                f"open: {exc}", level=logging.ERROR)
            raise LinkError(f"cannot open an OPC UA session ({exc}): check [plc] opcua_security and opcua_path "
                            f"against the endpoints the PLC offers") from exc
        except (ConnectionError, OSError) as exc:
            raise LinkError(f"cannot open an OPC UA session: {exc!r}") from exc
        await self._find_nodes(client)
        await self._read_start_state(client)
        await self._subscribe(client)

    async def _find_nodes(self, client: Client) -> None:
        try:
            ns = await self._call(client.get_namespace_index(self.settings.opcua.namespace), "the namespace array")
        except ValueError:
            raise InterfaceMismatch(f"the OPC UA server has no namespace \"{self.settings.opcua.namespace}\": set "
                                    f"[plc] opcua_namespace to the namespace URI of the PLC's interface") from None
        wanted = [(lay.PLC_FOLDER, v.name) for v in lay.PLC_VARS] + [(lay.EDGE_FOLDER, v.name) for v in lay.EDGE_VARS]
        results = await self._call(client.translate_browsepaths(
            client.nodes.objects.nodeid, [lay.browse_path(ns, f, n) for f, n in wanted]), "the browse paths")
        missing = []
        self._plc, self._edge = {}, {}
        for (folder, name), result in zip(wanted, results):
            if not result.StatusCode.is_good() or not result.Targets:
                missing.append(f"{lay.OBJECT}/{folder}/{name}")
                continue
            t = result.Targets[0].TargetId
            (self._plc if folder == lay.PLC_FOLDER else self._edge)[name] = ua.NodeId(t.Identifier, t.NamespaceIndex,
                                                                                       t.NodeIdType)
        if missing:
            raise InterfaceMismatch(f"the PLC has no variables {', '.join(missing[:5])}"
                                    f"{' and more' if len(missing) > 5 else ''} under Objects in namespace "
                                    f"\"{self.settings.opcua.namespace}\": see docs/plc-interface.md, OPC UA")
        self._names = {nid: name for name, nid in self._plc.items()}

    async def _read_start_state(self, client: Client) -> None:
        edge_names = ["ScanAck", "ConfirmAck", *(lay.assign_var(i) for i in range(rm.RING_SLOTS))]
        ids = [self._plc[n] for n in READ_AT_START] + [self._edge[n] for n in edge_names]
        dvs = await self._call(client.uaclient.read_attributes(ids, ua.AttributeIds.Value), "the start-up state")
        values = {}
        for name, dv in zip([*READ_AT_START, *edge_names], dvs):
            if dv.StatusCode is not None and not dv.StatusCode.is_good():
                self.status.anomaly("opcua_bad_status", f"PLC variable {name} reads {dv.StatusCode.name}")
                raise LinkError(f"the PLC variable {name} reads {dv.StatusCode.name}")
            values[name] = dv.Value.Value if dv.Value is not None else None
        if values["Version"] != rm.INTERFACE_VERSION:
            raise InterfaceMismatch(f"{lay.OBJECT}/Plc/Version is {values['Version']!r}, this controller speaks "
                                    f"interface version {rm.INTERFACE_VERSION}: update the PLC program or sortline")
        for name in ("ScanEvents", "ConfirmEvents"):
            problem = lay.check_array(lay.PLC_BY_NAME[name], values[name])
            if problem:
                raise InterfaceMismatch(f"{lay.OBJECT}/Plc/{name}: {problem}")
        rings = []
        for i in range(rm.RING_SLOTS):
            slot = values[lay.assign_var(i)]
            rings.append(slot[0] if isinstance(slot, list) and slot and isinstance(slot[0], int) else 0)
        scan, confirm = values["ScanEvents"], values["ConfirmEvents"]
        assert scan is not None and confirm is not None          # check_array refused anything else
        self._first_contact(boot=scan[0], scan_seq=scan[1], scan_ack=int(values["ScanAck"] or 0),
                            confirm_seq=confirm[1], confirm_ack=int(values["ConfirmAck"] or 0),
                            taken=int(values["AssignTaken"] or 0), ring_aseqs=rings)
        now_s = asyncio.get_running_loop().time()
        for name in ("ScanEvents", "ConfirmEvents", "ChuteFull", "ChuteFault", "LineState"):
            self._take_value(name, values[name], now_s)

    async def _subscribe(self, client: Client) -> None:
        self._sub = await self._call(client.create_subscription(0, None, queue_maxsize=1000),
                                     "the subscription", self.settings.connect_timeout_s)
        handles = await self._call(self._sub.subscribe_data_change(
            [client.get_node(self._plc[n]) for n in SUBSCRIBED], sampling_interval=0),
            "the monitored items", self.settings.connect_timeout_s)
        refused = [f"{n} ({h.name})" for n, h in zip(SUBSCRIBED, handles) if isinstance(h, ua.StatusCode)]
        if refused:
            raise InterfaceMismatch(f"the PLC refused to monitor {', '.join(refused)}")

    async def _close(self) -> None:
        client, self._client, self._sub = self._client, None, None
        if client is None:
            return
        try:
            await bounded(client.disconnect(), self.settings.timeout_s)
        except (TimeoutError, ua.UaError, ConnectionError, OSError):
            pass                        # the PLC is gone or silent: dropping the socket is all that is left
        finally:
            client.disconnect_socket()

    # -- requests -----------------------------------------------------------------------------------
    async def _call(self, coro, what: str, timeout_s: float | None = None):
        timeout_s = timeout_s or self.settings.timeout_s
        try:
            return await answered(coro, timeout_s)
        except TimeoutError:
            self.status.anomaly("no_answer", f"PLC at {self.address} did not answer {what} within "
                                f"{timeout_s * 1000:.0f} ms")
            raise LinkError(f"no answer to {what} within {timeout_s * 1000:.0f} ms") from None
        except ua.UaStatusCodeError as exc:
            if exc.code in VALUE_REFUSALS:
                self.status.anomaly("opcua_bad_status", f"PLC answered {what} with {exc}")
                raise PlcRefused(f"PLC answered {what} with {exc}") from exc
            raise LinkError(f"{what} failed: {exc}") from exc
        except (ua.UaError, ConnectionError, OSError) as exc:
            raise LinkError(f"{what} failed: {exc!r}") from exc

    async def _write(self, values: dict[str, object], what: str) -> None:
        outside = [name for name in values if name not in self._edge]
        if outside:
            raise OutsideWindow(f"write of {', '.join(outside)}: only the variables under {lay.OBJECT}/"
                                f"{lay.EDGE_FOLDER} are the controller's; not sent")
        client = self._client
        if client is None:
            raise LinkError("not connected")
        ids = [self._edge[name] for name in values]
        dvs = [ua.DataValue(ua.Variant(v, VARIANT[lay.EDGE_BY_NAME[name].kind])) for name, v in values.items()]
        results = await self._call(client.uaclient.write_attributes(ids, dvs, ua.AttributeIds.Value), what)
        bad = [f"{name}: {r.name}" for name, r in zip(values, results) if not r.is_good()]
        if bad:
            self.status.anomaly("opcua_bad_status", f"PLC refused {what} ({'; '.join(bad)})")
            raise PlcRefused(f"PLC refused {what} ({'; '.join(bad)})")

    # -- notifications ------------------------------------------------------------------------------
    async def _serve(self) -> None:
        while True:
            try:
                ev = await bounded(self._sub.__anext__(), self.silence_s)
            except StopAsyncIteration:
                raise LinkError("the PLC ended the subscription") from None
            except TimeoutError:
                self.status.anomaly("opcua_silent", f"no notification from the PLC at {self.address} for "
                                    f"{self.silence_s * 1000:.0f} ms although its heartbeat changes every 100 ms")
                raise LinkError(f"no notification for {self.silence_s * 1000:.0f} ms: the subscription is dead") \
                    from None
            if isinstance(ev, StatusChangeEvent):
                status = ev.notification.Status
                if not status.is_good():
                    raise LinkError(f"the PLC reports the subscription {status.name}")
            elif isinstance(ev, DataChangeEvent):
                self._on_change(ev)

    def _on_change(self, ev) -> None:
        name = self._names.get(ev.node.nodeid)
        if name is None:
            return
        dv = ev.data.monitored_item.Value
        if dv is not None and dv.StatusCode is not None and not dv.StatusCode.is_good():
            self.status.anomaly("opcua_bad_status", f"PLC variable {lay.OBJECT}/Plc/{name} is {dv.StatusCode.name}: "
                                f"ignored until it is good again")
            return
        self._take_value(name, ev.value, asyncio.get_running_loop().time())

    def _take_value(self, name: str, value, now_s: float) -> None:
        var = lay.PLC_BY_NAME[name]
        problem = lay.check_array(var, value) if var.is_array else \
            None if isinstance(value, int) and not isinstance(value, bool) else f"expected an integer, got {value!r}"
        if problem:
            self.status.anomaly("plc_value_invalid", f"PLC variable {lay.OBJECT}/Plc/{name}: {problem}: ignored",
                                level=logging.ERROR)
            return
        if name == "ScanEvents":
            boot, newest, slots = lay.split_events(value, lay.SCAN_FIELDS)
            self._take_scans(boot, newest, slots, now_s)
        elif name == "ConfirmEvents":
            boot, newest, slots = lay.split_events(value, lay.CONFIRM_FIELDS)
            self._take_confirmations(boot, newest, slots, now_s)
        elif name == "Heartbeat":
            self._plc_heartbeat_seen(value, now_s)
        elif name == "LineState":
            self.line_state = value
        elif name == "ChuteFull":
            self.chute_full = lay.chutes_from_flags(value)
        elif name == "ChuteFault":
            self.chute_fault = lay.chutes_from_flags(value)

    # -- commands ----------------------------------------------------------------------------------------
    async def _send_heartbeat(self, heartbeat: int, scan_ack: int, confirm_ack: int) -> None:
        await self._write({"Heartbeat": heartbeat, "ScanAck": scan_ack, "ConfirmAck": confirm_ack}, "the heartbeat")

    async def _send_assignment(self, slot: int, aseq: int, tracking: int, chute: int, reason: int) -> None:
        await self._write({lay.assign_var(slot): [aseq, tracking, chute, reason]}, f"assignment {aseq}")

    async def _send_disabled(self, chutes: set[int]) -> None:
        await self._write({"ChuteDisable": lay.flags_from_chutes(chutes)}, "the disabled chutes")
