"""Audio production (制作播发): speech engines, attention tone, programme rendering, cache, uploads.

This package owns turning message text (or an operator's recording) into cached audio files that
adapters can send; it must never dispatch, schedule or talk to terminals.
"""
