"""UPI (India): the dynamic QR's payment link, the PSP plug-in protocol, the [upi]/[voice]
settings. A payment reaches this package only as data (amount in paise, reference, note); the
terminal loop decides when to show the QR and what to journal.

Nothing here imports the simulators; the simulated PSP is simulators.upi, reached over HTTP.
"""
