"""Simulated hardware and a test acquirer, to develop and test pitap without a Pi.

Phone wallets (simulators.wallet), an emulated PN532 (simulators.pn532), an SPI panel and a GPIO
fake, and the host simulator with its test PKI and test issuer (simulators.host). Their own
distribution, `pitap-sim` (simulators/setup.py): it may import the terminal's packages, the
terminal never imports it except by name when configured to (gpio.backend = "sim") or in the
development commands (`pitap demo`, `wallet`, `host`, `sim`). Never on a terminal's SD image:
simulators/data/ holds TEST private keys.
"""
