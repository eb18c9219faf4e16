"""Simulated phone wallets: profiles, the APDU-level applet, its TLV and test PKI, ISO-DEP card
side and the phone on nfcpy's udp: driver. Written apart from the kernel on purpose (their own
TLV and signing code), so that each checks the other."""
