"""Terminals (终端): the county inventory (topology, resource codes), terminal health and reports.

This package knows which terminals exist, where they are and how they are addressed; it must never send
anything to a terminal itself (that is the adapters' job) nor import a concrete adapter or the simulator.
"""
