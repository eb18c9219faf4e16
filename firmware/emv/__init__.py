"""The EMV contactless kernel: TLV, DOL, APDUs, entry point, kernel flows, ODA, outcome.

It sees a card only as `transceive(bytes) -> bytes` and never touches the network or hardware.
"""
