"""Bytes shared by several wire formats (CRC-32/MPEG-2, packed BCD): written once, used by the IP
loudspeaker codec (§4.1), the cable-TV sections and link (§4.2) and, through those codecs, by ``sim``.

Pure functions over bytes; never does I/O and never imports the rest of the product.
"""
