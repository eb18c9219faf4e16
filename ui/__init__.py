"""Screens drawn with Pillow from plain data. No I/O, no drivers."""
