"""The reference PLC program's scripted sequence (plc/README.md), walked through the simulated PLC
and through the reference program itself.

The table in plc/README.md is the specification a PLC programmer tests a real PLC against: each
row is an event and the registers after it. Here the same events go to the simulator's register
image in-process, through `on_edge_write` as the Modbus server hands them over, and to
plc/sortline_sorter.st run cycle by cycle; every value of every row is compared. The step names of
the program, the simulator and the table must agree.
"""
import ast
import asyncio
import re

import pytest

from drivers import regmap as rm
from drivers.regmap import join_u32, split_u32
from sim_plc.model import PlcModel
from tests.conftest import REPO

from .helpers import GEOMETRY, until

pytestmark = pytest.mark.timeout(60)

README = REPO / "plc" / "README.md"
PROGRAM = REPO / "plc" / "sortline_sorter.st"
HEARTBEAT_TIMEOUT_S = 0.5            # the table's line: plc/README.md, "Scripted sequence"
HEARTBEAT_EVERY_S = 0.05
REASON = 2
COLUMNS = ("LINE_STATE", "BOOT_ID", "FLAGS", "SCAN_SEQ", "newest scan", "ASSIGN_TAKEN", "REFUSED",
           "LAST_REFUSAL", "CONFIRM_SEQ", "newest confirmation")


def table(text: str, name: str) -> list[dict[str, str]]:
    """The markdown table between `<!-- name:start -->` and `<!-- name:end -->`, as rows of cells by header."""
    found = re.search(rf"<!-- {name}:start -->\n(.*?)\n<!-- {name}:end -->", text, re.S)
    assert found, f"plc/README.md has no table delimited by <!-- {name}:start --> and <!-- {name}:end -->"
    lines = [line.strip() for line in found.group(1).strip().splitlines()]
    split = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    header, rows = split[0], split[2:]
    for row in rows:
        assert len(row) == len(header), f"plc/README.md {name} row {row} has {len(row)} cells, not {len(header)}"
    return [dict(zip(header, row)) for row in rows]


def sequence(text: str | None = None) -> list[dict[str, str]]:
    return table(README.read_text() if text is None else text, "sequence")


def registers(model: PlcModel) -> dict[str, str]:
    """The table's columns, read from the PLC block as a Modbus client would."""
    block = model.regs[model.map.plc(0):model.map.plc(rm.PLC_BLOCK_WORDS)]

    def u32(offset: int) -> int:
        return join_u32(block[offset], block[offset + 1])

    scan_seq, confirm_seq = u32(rm.PLC_SCAN_SEQ), u32(rm.PLC_CONFIRM_SEQ)
    newest_scan = "-"
    if scan_seq:
        newest_scan = str(u32(rm.PLC_SCAN_RING + (scan_seq - 1) % rm.RING_SLOTS * rm.SLOT_WORDS + 2))
    newest_confirmation = "-"
    if confirm_seq:
        at = rm.PLC_CONFIRM_RING + (confirm_seq - 1) % rm.RING_SLOTS * rm.SLOT_WORDS
        newest_confirmation = f"{u32(at + 2)}/{block[at + 4]}/{block[at + 5]}"
    return {"LINE_STATE": str(block[rm.PLC_LINE_STATE]), "BOOT_ID": str(block[rm.PLC_BOOT_ID]),
            "FLAGS": str(block[rm.PLC_FLAGS]), "SCAN_SEQ": str(scan_seq), "newest scan": newest_scan,
            "ASSIGN_TAKEN": str(u32(rm.PLC_ASSIGN_TAKEN)), "REFUSED": str(block[rm.PLC_REFUSED]),
            "LAST_REFUSAL": str(block[rm.PLC_LAST_REFUSAL]), "CONFIRM_SEQ": str(confirm_seq),
            "newest confirmation": newest_confirmation}


class Controller:
    """Plays the controller's side of the table: the heartbeat and whole assignment slots."""

    def __init__(self, model: PlcModel):
        self.model = model
        self.beat = 0
        self.beating = False
        self._task = asyncio.create_task(self._beat_forever())

    def write_beat(self) -> None:
        self.beat = self.beat % 0xFFFF + 1
        self.model.on_edge_write(self.model.map.edge(rm.EDGE_HEARTBEAT), [self.beat, 0, 0, 0, 0])

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY_S)
            if self.beating and self.model.powered:
                self.write_beat()

    def assign(self, aseq: int, tracking: int, chute: int) -> None:
        slot = (aseq - 1) % rm.RING_SLOTS
        address = self.model.map.edge(rm.EDGE_ASSIGN_RING + slot * rm.SLOT_WORDS)
        refused = self.model.on_edge_write(address, [*split_u32(aseq), *split_u32(tracking), chute, REASON])
        assert refused is None, f"the PLC refused the write of assignment {aseq}: {refused}"

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def _args(action: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in action.split() if "=" in part)


async def perform(action: str, model: PlcModel, controller: Controller) -> None:
    """One row's action (plc/README.md, "Scripted sequence")."""
    args = _args(action)
    words = [w for w in action.split() if "=" not in w]

    def parcel():
        return model.parcels[int(args["tracking"])]

    if action == "start":
        return
    if action == "heartbeat on":
        controller.beating = True
        controller.write_beat()
    elif action == "heartbeat off":
        controller.beating = False
    elif action == "scan":
        model.scan()
    elif words == ["assign"]:
        controller.assign(int(args["aseq"]), int(args["tracking"]), int(args["chute"]))
    elif words == ["wait", "landed"]:
        tracking = int(args["tracking"])
        await until(lambda: any(p.tracking == tracking and p.confirmed for p in model.finished), 5.0)
    elif words == ["wait", "decision"]:
        p = parcel()
        await model.belt.reach(p.scan_m + GEOMETRY.decision_m + 0.01)
        assert p.decided
    elif words == ["wait", "travel"]:
        p = parcel()
        await model.belt.reach(p.scan_m + float(args["m"]))
    elif action == "wait heartbeat lost":
        await until(lambda: model.regs[model.map.plc(rm.PLC_FLAGS)] == 0, 5.0)
    elif action == "wait heartbeat seen":
        await until(lambda: model.regs[model.map.plc(rm.PLC_FLAGS)] == 1, 5.0)
    elif words[:1] == ["full"]:
        model.set_chute_full(int(args["chute"]), True if words[-1] == "on" else None)
    elif action == "restart":
        model.power_off()
        model.power_on()
    elif words == ["jam"]:
        model.jam(float(args["m"]))
    elif action == "clear":
        model.clear()
    else:
        raise AssertionError(f"plc/README.md names an action this test does not know: {action!r}")


async def walk(rows: list[dict[str, str]]) -> None:
    """Every row's action, then every column checked; the first row that differs fails."""
    model = PlcModel(GEOMETRY, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)
    model.start()
    controller = Controller(model)
    try:
        for row in rows:
            action = row["action"].strip("`")
            await perform(action, model, controller)
            seen = registers(model)
            wrong = [f"{c} is {seen[c]}, the table says {row[c]}" for c in COLUMNS if seen[c] != row[c]]
            assert not wrong, f"plc/README.md row {row['#']} ({row['event']}, `{action}`): " + "; ".join(wrong)
    finally:
        await controller.stop()
        await model.stop()


async def test_the_simulator_gives_every_register_value_of_the_scripted_sequence():
    rows = sequence()
    assert len(rows) >= 30 and [r["#"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    assert set(COLUMNS) <= set(rows[0])
    await walk(rows)


async def test_a_changed_value_in_the_table_fails_the_walk():
    text = README.read_text()
    row4 = "| 4 | assignment: tracking 1 to chute 3 | `assign aseq=1 tracking=1 chute=3` | 1 | 1 | 1 | 1 | 1 | 1 |"
    assert row4 in text, "row 4 of the scripted sequence changed: update this test's copy of it"
    rows = sequence(text.replace(row4, row4.removesuffix("1 |") + "2 |"))
    with pytest.raises(AssertionError, match=r"row 4 .*ASSIGN_TAKEN is 1, the table says 2"):
        await walk(rows[:4])


def test_the_program_the_simulator_and_the_table_name_the_same_steps():
    steps = table(README.read_text(), "steps")
    assert [s["step"] for s in steps] == [str(i) for i in range(1, len(steps) + 1)]
    program = PROGRAM.read_text()
    in_program = re.findall(r"\(\* =+ STEP (\d+) ([A-Z_]+)", program)
    assert in_program == [(s["step"], s["name"]) for s in steps], "plc/sortline_sorter.st runs other steps"
    for s in steps:
        method = f"_step_{s['name'].lower()}"
        assert callable(getattr(PlcModel, method, None)), f"sim_plc.model.PlcModel has no {method}"


# -- the reference program itself, run on the same sequence ---------------------------------------
# plc/sortline_sorter.st is translated into Python by the few rules its plain ST needs (IF, FOR,
# CASE, EXIT, assignments, arrays with bounds checked, structures, the conversions it calls) and
# run cycle by cycle on a virtual clock: 5 ms cycles, the encoder moving 2 mm per ms while BeltRun,
# the controller's writes applied before each cycle as a Modbus server called before the block.

class _Array:
    def __init__(self, lo: int, hi: int, make):
        self.lo, self.items = lo, [make() for _ in range(hi - lo + 1)]

    def _at(self, index: int) -> int:
        at = int(index) - self.lo
        if not 0 <= at < len(self.items):
            raise IndexError(f"index {index} outside [{self.lo}..{self.lo + len(self.items) - 1}]")
        return at

    def __getitem__(self, index):
        return self.items[self._at(index)]

    def __setitem__(self, index, value):
        self.items[self._at(index)] = value


class _Vars:
    pass


def _and(a, b):
    return a and b if isinstance(a, bool) else a & b


def _or(a, b):
    return a or b if isinstance(a, bool) else a | b


def _sub(a, b):
    d = a - b
    return d % 2 ** 32 if d < 0 and isinstance(d, int) else d       # UDINT differences wrap


def _div(a, b):
    return a // b if isinstance(a, int) and isinstance(b, int) else a / b


_CONVERSIONS = {"WORD_TO_UDINT": lambda x: x & 0xFFFF, "UDINT_TO_WORD": lambda x: x & 0xFFFF,
                "WORD_TO_UINT": lambda x: x & 0xFFFF, "UINT_TO_WORD": lambda x: x & 0xFFFF,
                "UINT_TO_INT": int, "UDINT_TO_INT": int, "REAL_TO_UDINT": lambda x: int(round(x)),
                "UDINT_TO_REAL": float, "ABS": abs}
_DEFAULTS = {"BOOL": lambda: False, "REAL": lambda: 0.0}
_KEYWORDS = {"AND": " and ", "OR": " or ", "NOT": " not ", "MOD": " % ", "TRUE": "True", "FALSE": "False"}


class _Operators(ast.NodeTransformer):
    """ST's AND / OR work on BOOL and on WORD bits alike, UDINT differences wrap, INT division truncates."""

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        name = "_and" if isinstance(node.op, ast.And) else "_or"
        call = node.values[0]
        for value in node.values[1:]:
            call = ast.Call(ast.Name(name, ast.Load()), [call, value], [])
        return call

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, (ast.Sub, ast.Div)):
            name = "_sub" if isinstance(node.op, ast.Sub) else "_div"
            return ast.Call(ast.Name(name, ast.Load()), [node.left, node.right], [])
        return node


class StProgram:
    """The POUs of one .st file: types, functions and function blocks, made runnable."""

    def __init__(self, text: str):
        text = re.sub(r"\(\*.*?\*\)", "", text, flags=re.S)
        self.types = {m.group(1): self._decls(m.group(2)) for m in
                      re.finditer(r"TYPE (\w+) :\s*STRUCT(.*?)END_STRUCT\s*END_TYPE", text, re.S)}
        self.functions, self.blocks = {}, {}
        for m in re.finditer(r"FUNCTION (\w+) : \w+(.*?)END_FUNCTION\b", text, re.S):
            self.functions[m.group(1)] = self._compile(m.group(1), m.group(2), result=m.group(1))
        for m in re.finditer(r"FUNCTION_BLOCK (\w+)(.*?)END_FUNCTION_BLOCK", text, re.S):
            self.blocks[m.group(1)] = self._compile(m.group(1), m.group(2))

    @staticmethod
    def _decls(text: str) -> list[tuple[str, str, str | None]]:
        out = []
        for line in text.split(";"):
            m = re.match(r"\s*(\w+)\s*:\s*([^:]+?)\s*(?::=\s*(.+))?\s*$", line)
            if m and m.group(1) not in ("VAR", "END_VAR"):
                out.append((m.group(1), m.group(2).strip(), m.group(3)))
        return out

    def new(self, type_name: str):
        m = re.match(r"ARRAY\[(-?\d+)\.\.(-?\d+)\] OF (\w+)", type_name)
        if m:
            return _Array(int(m.group(1)), int(m.group(2)), lambda: self.new(m.group(3)))
        if type_name in self.types:
            struct = _Vars()
            for name, member_type, _ in self.types[type_name]:
                setattr(struct, name, self.new(member_type))
            return struct
        return _DEFAULTS.get(type_name, int)()

    def _compile(self, name: str, text: str, result: str | None = None):
        sections = re.findall(r"(VAR\w*(?: CONSTANT)?)(.*?)END_VAR", text, re.S)
        decls = [(n, t, init) for _, body in sections for n, t, init in self._decls(body)]
        inputs = [n for kind, body in sections if kind == "VAR_INPUT" for n, _, _ in self._decls(body)]
        body = text[text.rindex("END_VAR") + len("END_VAR"):]
        names = {n for n, _, _ in decls} | ({result} if result else set())
        lines, depth = [], 1
        for raw in re.split(r";|\n", body):
            stmt = raw.strip()
            if not stmt:
                continue
            keyword = stmt.split()[0]
            if keyword == "END_CASE":            # CASE arms are translated as one-line ifs
                continue
            if keyword in ("END_IF", "END_FOR"):
                depth -= 1
                continue
            if keyword in ("ELSIF", "ELSE"):
                depth -= 1
            py, opens = self._statement(stmt, names)
            lines.append("    " * depth + py)
            depth += opens
        source = "def run(V, F, C, _and, _or, _sub, _div):\n" + "\n".join(lines) + "\n    pass\n"
        space: dict = {}
        exec(compile(source, f"{PROGRAM.name}:{name}", "exec"), space)
        run = space["run"]

        def make():
            v = _Vars()
            for n, t, init in decls:
                setattr(v, n, self.new(t) if init is None else eval(self._expr(init, names)))
            if result:
                setattr(v, result, 0)
            return v
        if result is None:
            def instance():
                v = make()
                return v, lambda: run(v, self, _CONVERSIONS, _and, _or, _sub, _div)
            return instance

        def function(*args):
            v = make()
            for n, a in zip(inputs, args):
                setattr(v, n, a)
            run(v, self, _CONVERSIONS, _and, _or, _sub, _div)
            return getattr(v, result)
        return function

    def __getattr__(self, name):                # F.SortHiWord(...) inside the translated code
        try:
            return self.__dict__["functions"][name]
        except KeyError:
            raise AttributeError(name) from None

    def _statement(self, stmt: str, names: set[str]) -> tuple[str, int]:
        m = re.match(r"IF (.*) THEN$", stmt)
        if m:
            return f"if {self._expr(m.group(1), names)}:", 1
        m = re.match(r"ELSIF (.*) THEN$", stmt)
        if m:
            return f"elif {self._expr(m.group(1), names)}:", 1
        if stmt == "ELSE":
            return "else:", 1
        m = re.match(r"FOR (\w+) := (.*) TO (.*?)(?: BY (.*))? DO$", stmt)
        if m:
            v, lo, hi, by = m.group(1), *(self._expr(g, names) for g in (m.group(2), m.group(3))), m.group(4)
            step = self._expr(by, names) if by else "1"
            return f"for V.{v} in range({lo}, ({hi}) + (1 if ({step}) > 0 else -1), {step}):", 1
        m = re.match(r"CASE (.*) OF$", stmt)
        if m:
            return f"V._case = {self._expr(m.group(1), names)}", 0
        m = re.match(r"(\d+):\s*(.*)$", stmt)
        if m:
            return f"if V._case == {m.group(1)}: {self._statement(m.group(2), names)[0]}", 0
        if stmt == "EXIT":
            return "break", 0
        m = re.match(r"(.+?)\s*:=\s*(.+)$", stmt)
        assert m, f"plc/sortline_sorter.st: a statement this translation does not know: {stmt!r}"
        return f"{self._expr(m.group(1), names)} = {self._expr(m.group(2), names)}", 0

    def _expr(self, text: str, names: set[str]) -> str:
        out = []
        for token in re.findall(r"16#[0-9A-Fa-f]+|\d+\.\d+(?:E-?\d+)?|\d+|\.\w+|\w+|<>|<=|>=|:=|\S", text):
            if token.startswith("16#"):
                out.append(str(int(token[3:], 16)))
            elif token in _KEYWORDS:
                out.append(_KEYWORDS[token])
            elif token in names:
                out.append(f"V.{token}")
            elif token in _CONVERSIONS:
                out.append(f"C['{token}']")
            elif re.fullmatch(r"[A-Za-z_]\w*", token):
                out.append(f"F.{token}")
            elif token == "<>":
                out.append("!=")
            elif token == "=":
                out.append("==")
            else:
                out.append(token)
        tree = _Operators().visit(ast.parse("".join(out).strip(), mode="eval"))
        return ast.unparse(ast.fix_missing_locations(tree))


CYCLE_MS = 5
MM_PER_MS = 2.0                     # the table's belt: 2.0 m/s


class ReferencePlc:
    """SortlineSorter on the table's line, cycle by cycle; the controller's writes land before a cycle."""

    def __init__(self, program: StProgram):
        self.program = program
        self.plc_block = program.new("ARRAY[0..231] OF WORD")
        self.edge_block = program.new("ARRAY[0..111] OF WORD")
        self.retained = program.new("SortRetained")
        self.now_ms = 1000
        self.encoder = 0.0
        self.beat, self.beating, self.next_beat_ms = 0, False, 0
        self.power_on()

    def power_on(self) -> None:
        self.v, self._cycle = self.program.blocks["SortlineSorter"]()
        v = self.v
        for c in GEOMETRY.chutes:
            v.ChutePositionMm[c.number] = c.position_m * 1000
        v.EndChute, v.SwitchTimeMs, v.PlcMarginMs = GEOMETRY.end_chute, 100.0, 20.0
        v.BeltSpeedMps, v.MmPerCount, v.HeartbeatTimeoutMs = GEOMETRY.belt_speed_m_s, 1.0, 500
        v.PlcBlock, v.EdgeBlock, v.Retained = self.plc_block, self.edge_block, self.retained

    def write(self, offset: int, words: list[int]) -> None:
        for i, w in enumerate(words):
            self.edge_block[offset + i] = w

    def cycle(self) -> None:
        if self.beating and self.now_ms >= self.next_beat_ms:
            self.write_beat()
        v = self.v
        v.NowMs, v.Encoder = self.now_ms, int(self.encoder) % 2 ** 32
        self._cycle()
        v.ScanEye = False
        self.now_ms += CYCLE_MS
        if v.BeltRun:
            self.encoder += MM_PER_MS * CYCLE_MS

    def write_beat(self) -> None:
        self.beat = self.beat % 0xFFFF + 1
        self.write(rm.EDGE_HEARTBEAT, [self.beat, 0, 0, 0, 0])
        self.next_beat_ms = self.now_ms + int(HEARTBEAT_EVERY_S * 1000)

    def cycles_until(self, done, limit_ms: int = 5000) -> None:
        for _ in range(limit_ms // CYCLE_MS):
            if done():
                return
            self.cycle()
        raise AssertionError(f"not reached within {limit_ms} ms of PLC time")

    def travel(self, tracking: int) -> float:
        for p in self.v.Parcels.items:
            if p.State and p.Tracking == tracking:
                return self.encoder - p.ScanCounts          # 1 mm per count
        raise AssertionError(f"tracking {tracking} is not on the belt")

    def registers(self) -> dict[str, str]:
        model = _Vars()
        model.map = rm.RegisterMap(0, 300)
        model.regs = list(self.plc_block.items) + [0] * (rm.PLC_BLOCK_WORDS - len(self.plc_block.items))
        return registers(model)


def perform_on_reference(action: str, plc: ReferencePlc) -> None:
    args = _args(action)
    words = [w for w in action.split() if "=" not in w]
    v = plc.v
    if action == "heartbeat on":
        plc.beating = True
        plc.write_beat()
    elif action == "heartbeat off":
        plc.beating = False
    elif action == "scan":
        v.ScanEye = True
    elif words == ["assign"]:
        aseq = int(args["aseq"])
        plc.write(rm.EDGE_ASSIGN_RING + (aseq - 1) % rm.RING_SLOTS * rm.SLOT_WORDS,
                  [*split_u32(aseq), *split_u32(int(args["tracking"])), int(args["chute"]), REASON])
    elif words == ["wait", "landed"]:
        tracking = int(args["tracking"])
        plc.cycles_until(lambda: plc.registers()["newest confirmation"].startswith(f"{tracking}/"))
        return
    elif words == ["wait", "decision"]:
        tracking = int(args["tracking"])
        plc.cycles_until(lambda: plc.travel(tracking) >= GEOMETRY.decision_m * 1000 + 10)
        return
    elif words == ["wait", "travel"]:
        tracking, mm = int(args["tracking"]), float(args["m"]) * 1000
        plc.cycles_until(lambda: plc.travel(tracking) >= mm)
        return
    elif action in ("wait heartbeat lost", "wait heartbeat seen"):
        flags = "0" if action.endswith("lost") else "1"
        plc.cycles_until(lambda: plc.registers()["FLAGS"] == flags)
        return
    elif words[:1] == ["full"]:
        v.ChuteFull[int(args["chute"])] = words[-1] == "on"
    elif action == "restart":
        plc.power_on()
    elif words == ["jam"]:
        v.JamDetected, v.JamPositionMm = True, float(args["m"]) * 1000
    elif action == "clear":
        v.JamDetected = False
    elif action != "start":
        raise AssertionError(f"plc/README.md names an action this test does not know: {action!r}")
    plc.cycle()


def test_the_reference_program_gives_every_register_value_of_the_scripted_sequence():
    plc = ReferencePlc(StProgram(PROGRAM.read_text()))
    for row in sequence():
        action = row["action"].strip("`")
        perform_on_reference(action, plc)
        seen = plc.registers()
        wrong = [f"{c} is {seen[c]}, the table says {row[c]}" for c in COLUMNS if seen[c] != row[c]]
        assert not wrong, (f"plc/sortline_sorter.st, plc/README.md row {row['#']} ({row['event']}, `{action}`): "
                           + "; ".join(wrong))
