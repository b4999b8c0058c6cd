"""Platform-to-platform interconnect (平台间接口, GY/T 384/385, formerly GD/J 082/083): two halves.

``ebd/`` is the pure codec (packet model, XML writer and reader, tar packages, SM2/SM3 signatures,
identifiers, key files): it never does network I/O and imports nothing of the service, so the simulators
(``sim/``) can speak the protocol without the service.

Beside it, the upper-platform service, which does talk HTTP (through the one session it is given):
``routes`` (the aiohttp routes and the parts' start/stop), ``upper`` (receiving EBDs), ``link`` (heartbeats,
periodic reports, reporting broadcasts upward), ``outbox`` (the durable outbound queue), ``media`` (the
media-centre link), ``convert``/``resources``/``snapshot`` (between the core's values and EBD bodies).
These reach the county core only through the ``CountyFacade`` protocol (``upper_boundary``);
``facade.ControllerFacade`` implements it over the intake, the desk and the broadcast store, and is the
only module here that touches those. The composition root (``broadcast.app.interconnect``) wires it all.
"""
