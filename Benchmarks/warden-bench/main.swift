// Entry point; each area adds its own file with a `run...Benchmarks()` function.
print("warden-bench")
