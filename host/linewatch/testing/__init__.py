"""Test support shared by every tests/ folder: a real Mosquitto and the MicroPython unix port."""
