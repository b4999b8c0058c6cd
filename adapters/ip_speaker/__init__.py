"""IP loudspeaker (IP 大喇叭/音柱) terminals: the binary 0xFEFD protocol of eb-protocols §4.1.

``bcd`` + ``payloads`` + ``codec`` are the pure wire format, shared with ``sim``; ``adapter`` is the
controller-side TCP server. Importing this package must never open sockets or import the core.
"""
