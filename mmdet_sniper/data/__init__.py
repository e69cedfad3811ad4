"""Conversions of public detection data into the COCO files the configs read (numpy and stdlib only)."""
