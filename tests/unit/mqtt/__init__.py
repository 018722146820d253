"""Tests of the pure MQTT protocol package."""
