"""A simulated sorter PLC: the controller's test peer and the PLC programmer's reference.

It speaks the real protocols on loopback and behaves like a correct PLC (docs/plc-interface.md):
it tracks each parcel by belt position from the scan photo-eye, takes assignments only before the
decision point, fires diverters at the computed time, and reports what happened to every parcel.

    plc.py        one PLC: model + protocol servers + faults that span both (start here)
    model.py      the PLC logic on a register image      belt.py      belt travel and position timers
    chutes.py     fill levels and full sensors           (the line's geometry: edge/line_geometry.py)
    modbus_server.py  Modbus TCP, faults on the wire     faults.py    faults scripted at parcel counts
    arrivals.py   fixed pitch, Poisson, traces           labels.py    label ground truth, expected chutes
    camera.py     label images rendered ahead, cached    shift.py     a whole shift; accounting.py its report
"""
