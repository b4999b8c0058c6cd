"""IP loudspeaker (IP 大喇叭/音柱) terminals: the binary 0xFEFD protocol of eb-protocols §4.1.

``payload_fields`` + ``params`` + ``payloads`` + ``codec`` (over ``adapters.wire``) are the pure wire
format, shared with ``sim``; ``server`` is the §4.1 TCP server shell, ``adapter`` the controller
side. Importing this package must never open sockets or import the core.
"""
