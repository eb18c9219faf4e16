"""An emulated PN532 on a pseudo-terminal: the serial frames, the chip, the RF field and the pty
link that nfcpy's tty: driver opens."""
