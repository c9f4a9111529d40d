// Placeholder: the benchmark executable is being written.
print("netevents-bench")
