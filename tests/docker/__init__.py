"""Tests that build the images and run them on the real Docker engine."""
