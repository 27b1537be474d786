print("jail")
