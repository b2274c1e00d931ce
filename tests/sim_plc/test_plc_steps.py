"""The reference PLC program's scripted sequence (plc/README.md), walked through the simulated PLC.

The table in plc/README.md is the specification a PLC programmer tests a real PLC against: each
row is an event and the registers after it. Here the same events go to the simulator's register
image in-process, through `on_edge_write` as the Modbus server hands them over, and every value
of every row is compared. The step names of the program, the simulator and the table must agree.
"""
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
