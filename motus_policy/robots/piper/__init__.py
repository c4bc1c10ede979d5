"""Piper arm over piper-sdk (CAN): the driver core and a fake arm for tests."""
