"""Calibration of the mpsim model against reported figures."""
