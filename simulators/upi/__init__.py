"""A simulated UPI payment service provider (PSP): a real HTTP server on 127.0.0.1 speaking the
API of firmware.upi.http_psp, with a simulated payer who pays after a delay (simulators.upi.psp).
"""
