"""The proxy benchmark harness behind `bench/run.py`: contenders, load, measurements, report."""
