"""The acquirer side: ISO 8583 dialects, the TCP/TLS link, store-and-forward, settlement and
the host simulator. Payments reach it only as data."""
