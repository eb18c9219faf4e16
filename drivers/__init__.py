"""Hardware drivers, one module a kind of hardware, each with a real and a simulated backend.

Drivers know nothing of payments: nothing here imports `firmware`.
"""
