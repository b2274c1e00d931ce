"""A simulated sorter PLC: the controller's test peer and the PLC programmer's reference.

It speaks the real protocols on loopback (see sim_plc.modbus_server) and behaves like a correct
PLC: it tracks each parcel from the scan photo-eye, takes assignments only before the decision
point, diverts at the computed time and reports what happened to every parcel.
"""
