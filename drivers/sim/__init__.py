"""Simulated hardware: phone wallets on nfcpy's udp: driver, emulated chips, recorded pins."""
