"""The one reconnecting client of the simulated devices (sim/ip_client.py): its delays are the devices'
old doubling backoff taken from ``RetryPolicy``; it keeps trying until a controller listens, tells its
device when a connection opens and ends, delivers decoded frames, sends heartbeats on its timer, and
reconnects after the controller drops it."""

from __future__ import annotations

import asyncio

from adapters.ip_speaker.codec import Frame, PacketType, encode_frame
from adapters.ip_speaker.payloads import Reply
from sim.ip_client import UplinkClient, backoff_policy
from tests.helpers.poll import until

CODE = "45301810000000101010101"


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap_without_jitter() -> None:
    policy = backoff_policy(0.05, 2.0)
    delays = [policy.delay(n) for n in range(1, 10)]
    doubled, b = [], 0.05
    for _ in range(9):  # the loop the devices ran before: sleep, then double up to the cap
        doubled.append(b)
        b = min(b * 2, 2.0)
    assert delays == doubled == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]


class Peer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.heartbeat_interval_s = 0.01
        self.registrations = 0
        self.connects = 0
        self.disconnects = 0
        self.heartbeats = 0
        self.frames: list[Frame] = []

    def endpoint(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def on_connected(self) -> None:
        self.connects += 1
        self.registrations += 1

    def on_frame(self, frame: Frame) -> None:
        self.frames.append(frame)

    def send_heartbeat(self) -> None:
        self.heartbeats += 1

    def on_disconnected(self) -> None:
        self.disconnects += 1


async def test_connects_when_the_controller_appears_and_reconnects_after_a_drop() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()  # nobody listens on ``port`` yet

    peer = Peer(port)
    client = UplinkClient(peer, name="test-uplink", retry=backoff_policy(0.01, 0.05))
    writers: list[asyncio.StreamWriter] = []
    reply = Frame(7, PacketType.RESPONSE, CODE, (), 0x10, Reply(0).encode())

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        writer.write(encode_frame(reply))

    client.start()
    try:
        await until(lambda: not client.connected)
        server = await asyncio.start_server(accept, "127.0.0.1", port)
        try:
            await until(lambda: peer.connects == 1 and client.connected)
            await until(lambda: len(peer.frames) == 1 and peer.heartbeats >= 2)
            assert peer.frames[0].session_id == 7 and client.send(b"")
            writers[0].close()  # the controller drops the link: the client comes back on its own
            await until(lambda: peer.disconnects == 1)
            await until(lambda: peer.connects == 2 and client.connected)
        finally:
            server.close()
    finally:
        await client.stop()
        for writer in writers:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
    assert not client.online and not client.connected and not client.send(b"x")
    assert peer.disconnects == 2
