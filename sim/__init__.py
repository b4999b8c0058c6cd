"""Simulated devices speaking the real protocols (loopback, pty, socket://), with named fault levers.

Only tests, the benchmark and the demo runner import this package; product code never does.
"""
