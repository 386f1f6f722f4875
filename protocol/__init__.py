# LineWatch wire protocol v1 (see SPEC.md). One implementation for the host (CPython) and
# the boards (MicroPython): struct + hashlib only, no dataclasses, no runtime typing.
