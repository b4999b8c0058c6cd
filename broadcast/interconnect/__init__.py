"""Platform-to-platform interconnect (平台间接口, GY/T 384/385, formerly GD/J 082/083).

``ebd/`` is the pure codec (packet model, XML, tar packages, SM2/SM3 signatures, identifiers): it never
does network I/O. Beside it, the upper-platform service: receiving EBDs over HTTP (``routes``,
``upper``), the durable outbox and the live link upward, the media-centre link, and the conversions
between the core's values and EBD bodies. The service reaches the county core only through the
``CountyFacade`` protocol (``upper_boundary``).
"""
