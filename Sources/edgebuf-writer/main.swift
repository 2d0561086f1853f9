print("edgebuf-writer: not built yet")
